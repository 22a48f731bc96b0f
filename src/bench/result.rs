//! A run's results as saved in `result.json`, and the end-of-run table.
//! MB means 10^6 bytes of record payload (values), as OMB reports it.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::workload::Workload;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub msgs: u64,
    pub bytes: u64,
    pub rate_msgs_per_s: f64,
    pub rate_mb_per_s: f64,
}

impl Throughput {
    pub fn over(msgs: u64, bytes: u64, duration_s: f64) -> Self {
        let d = duration_s.max(1e-9);
        Throughput {
            msgs,
            bytes,
            rate_msgs_per_s: msgs as f64 / d,
            rate_mb_per_s: bytes as f64 / 1e6 / d,
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    #[serde(rename = "p99.99")]
    pub p99_99: u64,
    pub max: u64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let q = |p: f64| h.value_at_percentile(p);
        Latency {
            count: h.len(),
            mean: h.mean(),
            p50: q(50.0),
            p75: q(75.0),
            p90: q(90.0),
            p95: q(95.0),
            p99: q(99.0),
            p99_9: q(99.9),
            p99_99: q(99.99),
            max: h.max(),
        }
    }

    /// (label, value) in report order.
    pub fn rows(&self) -> [(&'static str, u64); 8] {
        [
            ("p50", self.p50),
            ("p75", self.p75),
            ("p90", self.p90),
            ("p95", self.p95),
            ("p99", self.p99),
            ("p99.9", self.p99_9),
            ("p99.99", self.p99_99),
            ("max", self.max),
        ]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Records handed to the connection (acknowledged or not).
    pub sent_msgs: u64,
    /// Records the broker acknowledged (acks=0: written to the socket).
    pub produced_msgs: u64,
    pub consumed_msgs: u64,
    /// produced × subscriptions: what the consumers should have read.
    pub expected_consumed_msgs: u64,
    pub produce_errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// This process (load generator and reporting), whole run.
    pub client_s: f64,
    /// The broker process over the same span, when its pid was known.
    pub broker_s: Option<f64>,
    pub wall_s: f64,
}

/// One reporting interval (about a second).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    pub produce_msgs_per_s: f64,
    pub produce_mb_per_s: f64,
    pub consume_msgs_per_s: f64,
    pub consume_mb_per_s: f64,
    pub publish_p99_us: u64,
    pub e2e_p99_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub format_version: u32,
    pub name: String,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub bootstrap: String,
    pub workload: Workload,
    /// False when the run ended early; `error` says why.
    pub complete: bool,
    pub error: Option<String>,
    /// Length of the measured window (after warmup; for catch-up runs, the drain).
    pub measured_s: f64,
    pub produce: Throughput,
    pub consume: Throughput,
    pub totals: Totals,
    pub publish_latency_us: Latency,
    pub e2e_latency_us: Latency,
    pub cpu: Cpu,
    pub timeline: Vec<Sample>,
    /// The broker's own latencies over the measured window, when it was
    /// given with `--broker-metrics` (absent in older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_latency_us: Option<BrokerLatency>,
}

/// One broker-side latency distribution over the measured window, from the
/// broker's histograms (each value is its bucket's upper bound: at most
/// 12.5% high).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerQuantiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

impl BrokerQuantiles {
    pub fn of(c: &crate::metrics::Counts) -> Option<Self> {
        let n = c.count();
        (n > 0).then(|| BrokerQuantiles {
            count: n,
            mean: c.sum_us as f64 / n as f64,
            p50: c.quantile_us(0.50).unwrap_or(0),
            p99: c.quantile_us(0.99).unwrap_or(0),
            p99_9: c.quantile_us(0.999).unwrap_or(0),
            max: c.max_us().unwrap_or(0),
        })
    }
}

/// What the broker measured itself over the run's measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerLatency {
    /// One fdatasync of a partition's segment.
    pub log_fdatasync: Option<BrokerQuantiles>,
    /// One syncfs for a commit round's partitions (in place of their
    /// fdatasyncs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_syncfs: Option<BrokerQuantiles>,
    /// One DMA write of a partition's appends.
    pub log_write: Option<BrokerQuantiles>,
    /// Produce requests, read to answered.
    pub produce_request: Option<BrokerQuantiles>,
    /// Fetch requests, read to answered (long polls included).
    pub fetch_request: Option<BrokerQuantiles>,
    /// Why the broker's metrics could not be read, when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BrokerLatency {
    /// The difference of two scrapes of `GET /metrics`.
    pub fn between(before: &str, after: &str) -> Self {
        use crate::metrics::{parse_histogram, LOG_FDATASYNC, LOG_SYNCFS, LOG_WRITE, REQUEST};
        let window = |name: &str, labels: &str| {
            let a = parse_histogram(after, name, labels)?;
            let b = parse_histogram(before, name, labels).unwrap_or_default();
            BrokerQuantiles::of(&a.since(&b))
        };
        BrokerLatency {
            log_fdatasync: window(LOG_FDATASYNC, ""),
            log_syncfs: window(LOG_SYNCFS, ""),
            log_write: window(LOG_WRITE, ""),
            produce_request: window(REQUEST, "api=\"Produce\""),
            fetch_request: window(REQUEST, "api=\"Fetch\""),
            error: None,
        }
    }

    pub fn failed(error: String) -> Self {
        BrokerLatency {
            error: Some(error),
            ..Default::default()
        }
    }

    /// (label, quantiles) in report order.
    pub fn rows(&self) -> [(&'static str, &Option<BrokerQuantiles>); 5] {
        [
            ("fdatasync", &self.log_fdatasync),
            ("syncfs", &self.log_syncfs),
            ("log write", &self.log_write),
            ("produce req", &self.produce_request),
            ("fetch req", &self.fetch_request),
        ]
    }
}

impl RunResult {
    /// Whether every subscription read exactly what was produced.
    pub fn consistent(&self) -> bool {
        self.totals.consumed_msgs == self.totals.expected_consumed_msgs
    }
}

pub fn fmt_us(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else if us >= 1_000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

/// The end-of-run table.
pub fn summary(r: &RunResult) -> String {
    let mut s = String::new();
    let w = &r.workload;
    let _ = writeln!(s, "{}: {}, rate={}", r.name, w.describe(), w.rate_label());
    let _ = writeln!(s, "measured        {:>10.1} s", r.measured_s);
    let _ = writeln!(
        s,
        "produce         {:>10.1} MB/s {:>12.0} msg/s",
        r.produce.rate_mb_per_s, r.produce.rate_msgs_per_s
    );
    let _ = writeln!(
        s,
        "consume         {:>10.1} MB/s {:>12.0} msg/s",
        r.consume.rate_mb_per_s, r.consume.rate_msgs_per_s
    );
    let _ = writeln!(s, "{:<8}{:>12}{:>12}", "latency", "publish", "end-to-end");
    for ((label, p), (_, e)) in r
        .publish_latency_us
        .rows()
        .iter()
        .zip(r.e2e_latency_us.rows())
    {
        let _ = writeln!(s, "{label:<8}{:>12}{:>12}", fmt_us(*p), fmt_us(e));
    }
    let t = &r.totals;
    let _ = writeln!(
        s,
        "records         produced {} consumed {} (expected {}){}",
        t.produced_msgs,
        t.consumed_msgs,
        t.expected_consumed_msgs,
        if r.consistent() { "" } else { "  MISMATCH" }
    );
    let _ = writeln!(
        s,
        "errors          {}",
        t.produce_errors + u64::from(r.error.is_some())
    );
    let broker = r
        .cpu
        .broker_s
        .map_or("n/a (no --broker-pid)".into(), |b| format!("{b:.2} s"));
    let _ = writeln!(
        s,
        "cpu             client {:.2} s, broker {broker}, wall {:.1} s",
        r.cpu.client_s, r.cpu.wall_s
    );
    if let Some(b) = &r.broker_latency_us {
        s.push_str(&broker_table(b));
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "INCOMPLETE: {e}");
    }
    s
}

/// The broker's own latencies as `sluice bench` prints them: one row per
/// histogram (count, p50, p99, p99.9, max).
pub fn broker_table(b: &BrokerLatency) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "broker", "count", "p50", "p99", "p99.9", "max"
    );
    for (label, q) in b.rows() {
        match q {
            Some(q) => {
                let _ = writeln!(
                    s,
                    "  {label:<14}{:>10}{:>10}{:>10}{:>10}{:>10}",
                    q.count,
                    fmt_us(q.p50),
                    fmt_us(q.p99),
                    fmt_us(q.p99_9),
                    fmt_us(q.max)
                );
            }
            None => {
                let _ = writeln!(s, "  {label:<14}{:>10}", 0);
            }
        }
    }
    if let Some(e) = &b.error {
        let _ = writeln!(s, "  (broker metrics not read: {e})");
    }
    s
}
