//! Broker-side latency histograms: what each shard's disk writes, fdatasyncs
//! and requests took, summed over shards and served in Prometheus' text format
//! (`sluice.metrics.listener`, see `http`). `sluice bench --broker-metrics`
//! reads them before and after its measured window and reports the
//! difference beside the client's own latencies.
//!
//! Each shard records into its own `ShardMetrics` with relaxed atomic adds
//! (one writer per histogram, no lock); a scrape only loads.

pub mod http;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::versions::SUPPORTED;
use crate::protocol::ApiKey;

/// Values below this many microseconds get a bucket each; above, every power
/// of two is cut into this many buckets (so a bucket is at most 1/8 = 12.5%
/// wide, which bounds the error of a quantile read from it).
const SUB_BUCKETS: u64 = 8;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// The highest power of two with buckets: 2^31 µs is 36 minutes; longer
/// values count in the last bucket.
const MAX_POWER: u32 = 31;
/// Buckets of one histogram.
pub const BUCKETS: usize = (SUB_BUCKETS + (MAX_POWER - SUB_BITS + 1) as u64 * SUB_BUCKETS) as usize;

/// The bucket of a value in microseconds.
pub fn bucket_index(us: u64) -> usize {
    if us < SUB_BUCKETS {
        return us as usize;
    }
    let power = 63 - us.leading_zeros();
    if power > MAX_POWER {
        return BUCKETS - 1;
    }
    let sub = (us >> (power - SUB_BITS)) & (SUB_BUCKETS - 1);
    (SUB_BUCKETS + (power - SUB_BITS) as u64 * SUB_BUCKETS + sub) as usize
}

/// The largest value (µs) a bucket counts: Prometheus' `le`, exact for whole
/// microseconds.
pub fn bucket_le_us(i: usize) -> u64 {
    assert!(i < BUCKETS, "bucket {i} out of {BUCKETS}");
    let i = i as u64;
    if i < SUB_BUCKETS {
        return i;
    }
    let power = (i - SUB_BUCKETS) / SUB_BUCKETS + SUB_BITS as u64;
    let sub = (i - SUB_BUCKETS) % SUB_BUCKETS;
    let width = 1u64 << (power - SUB_BITS as u64);
    ((SUB_BUCKETS + sub + 1) * width) - 1
}

/// One latency distribution, recorded by one shard.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        self.record_us(d.as_micros().min(u64::MAX as u128) as u64);
    }

    /// Runs `f` and records how long it took.
    pub async fn time<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let t = std::time::Instant::now();
        let out = f.await;
        self.record(t.elapsed());
        out
    }

    pub fn record_us(&self, us: u64) {
        self.buckets[bucket_index(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Adds this histogram's counts into `into` (a scrape sums shards).
    pub fn add_to(&self, into: &mut Counts) {
        for (c, b) in into.buckets.iter_mut().zip(self.buckets.iter()) {
            *c += b.load(Ordering::Relaxed);
        }
        into.sum_us += self.sum_us.load(Ordering::Relaxed);
    }
}

/// A histogram's counts at one moment: what a scrape shows and what a reader
/// subtracts and takes quantiles from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub buckets: Vec<u64>,
    pub sum_us: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            buckets: vec![0; BUCKETS],
            sum_us: 0,
        }
    }
}

impl Counts {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What was recorded after `before` (an earlier reading of the same
    /// histogram; a broker restarted in between reads as its new counts).
    pub fn since(&self, before: &Counts) -> Counts {
        let restarted = self.buckets.iter().zip(&before.buckets).any(|(a, b)| a < b);
        if restarted {
            return self.clone();
        }
        Counts {
            buckets: self
                .buckets
                .iter()
                .zip(&before.buckets)
                .map(|(a, b)| a - b)
                .collect(),
            sum_us: self.sum_us.saturating_sub(before.sum_us),
        }
    }

    /// The `q` quantile (0..=1) in µs: the upper bound of the bucket holding
    /// it, so at most 12.5% above the true value. `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        // The rank of the quantile, 1-based: the smallest value with at least
        // q * n values at or below it.
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_le_us(i));
            }
        }
        unreachable!("rank {rank} <= count {n}")
    }

    pub fn max_us(&self) -> Option<u64> {
        self.quantile_us(1.0)
    }
}

/// What one shard records.
#[derive(Default)]
pub struct ShardMetrics {
    /// One DMA write of a partition's pending appends (a commit round).
    pub log_write: Histogram,
    /// One fdatasync of a partition's segment.
    pub log_fdatasync: Histogram,
    /// One syncfs of the log dir's file system for a commit round's
    /// partitions (in place of their fdatasyncs).
    pub log_syncfs: Histogram,
    /// From a request's last byte read to its response's last byte written,
    /// by API (Kafka's `TotalTimeMs`), in `SUPPORTED`'s order.
    requests: Vec<Histogram>,
}

impl ShardMetrics {
    fn new() -> Self {
        ShardMetrics {
            requests: SUPPORTED.iter().map(|_| Histogram::default()).collect(),
            ..Default::default()
        }
    }

    pub fn request(&self, api: ApiKey, d: Duration) {
        if let Some(i) = SUPPORTED.iter().position(|a| *a == api) {
            self.requests[i].record(d);
        }
    }
}

/// Every shard's metrics, created once per broker.
pub struct BrokerMetrics {
    shards: Vec<Arc<ShardMetrics>>,
}

/// The histograms a scrape shows, by name and labels.
pub const LOG_WRITE: &str = "sluice_log_write_seconds";
pub const LOG_FDATASYNC: &str = "sluice_log_fdatasync_seconds";
pub const LOG_SYNCFS: &str = "sluice_log_syncfs_seconds";
pub const REQUEST: &str = "sluice_request_seconds";

impl BrokerMetrics {
    pub fn new(shards: usize) -> Arc<Self> {
        Arc::new(BrokerMetrics {
            shards: (0..shards).map(|_| Arc::new(ShardMetrics::new())).collect(),
        })
    }

    pub fn shard(&self, id: usize) -> Arc<ShardMetrics> {
        self.shards[id].clone()
    }

    fn sum(&self, pick: impl Fn(&ShardMetrics) -> &Histogram) -> Counts {
        let mut c = Counts::default();
        for s in &self.shards {
            pick(s).add_to(&mut c);
        }
        c
    }

    /// Prometheus' text exposition format (version 0.0.4), summed over shards;
    /// request histograms only for APIs that were called.
    pub fn render(&self) -> String {
        let mut out = String::new();
        write_histogram(
            &mut out,
            LOG_WRITE,
            "One DMA write of a partition's pending appends.",
            &[(String::new(), self.sum(|s| &s.log_write))],
        );
        write_histogram(
            &mut out,
            LOG_FDATASYNC,
            "One fdatasync of a partition's segment.",
            &[(String::new(), self.sum(|s| &s.log_fdatasync))],
        );
        write_histogram(
            &mut out,
            LOG_SYNCFS,
            "One syncfs of the log dir's file system for a commit round's partitions.",
            &[(String::new(), self.sum(|s| &s.log_syncfs))],
        );
        let requests: Vec<(String, Counts)> = SUPPORTED
            .iter()
            .enumerate()
            .map(|(i, api)| (format!("api=\"{api:?}\""), self.sum(|s| &s.requests[i])))
            .filter(|(_, c)| c.count() > 0)
            .collect();
        write_histogram(
            &mut out,
            REQUEST,
            "From a request's last byte read to its response's last byte written.",
            &requests,
        );
        out
    }
}

fn write_histogram(out: &mut String, name: &str, help: &str, series: &[(String, Counts)]) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (labels, c) in series {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, n) in c.buckets.iter().enumerate().take(BUCKETS - 1) {
            cumulative += n;
            let le = bucket_le_us(i) as f64 / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le:.6}\"}} {cumulative}"
            );
        }
        let total = c.count();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {total}");
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(
            out,
            "{name}_sum{} {:.6}",
            braces(labels),
            c.sum_us as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{} {total}", braces(labels));
    }
}

/// Reads one histogram back from a scrape: `name` with exactly `labels`
/// (`""`, or e.g. `api="Produce"`). `None` if the scrape does not have it.
pub fn parse_histogram(text: &str, name: &str, labels: &str) -> Option<Counts> {
    let bucket = format!("{name}_bucket{{");
    let sum = if labels.is_empty() {
        format!("{name}_sum ")
    } else {
        format!("{name}_sum{{{labels}}} ")
    };
    let mut counts = Counts::default();
    let mut found = false;
    let mut previous = 0u64;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(&bucket) {
            let Some((inside, value)) = rest.split_once("} ") else {
                continue;
            };
            let Some(le) = inside
                .strip_prefix(labels)
                .map(|s| s.trim_start_matches(','))
            else {
                continue;
            };
            let Some(le) = le.strip_prefix("le=\"").and_then(|s| s.strip_suffix('"')) else {
                continue;
            };
            let cumulative: u64 = value.trim().parse().ok()?;
            let i = if le == "+Inf" {
                BUCKETS - 1
            } else {
                let secs: f64 = le.parse().ok()?;
                bucket_index((secs * 1e6).round() as u64)
            };
            counts.buckets[i] = cumulative.checked_sub(previous)?;
            previous = cumulative;
            found = true;
        } else if let Some(v) = line.strip_prefix(&sum) {
            counts.sum_us = (v.trim().parse::<f64>().ok()? * 1e6).round() as u64;
        }
    }
    found.then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_the_bucket_whose_bounds_hold_it() {
        let mut previous_le = None;
        for i in 0..BUCKETS {
            let le = bucket_le_us(i);
            if let Some(p) = previous_le {
                assert!(le > p, "bucket {i}: le {le} after {p}");
                // The first and last value of the bucket map back to it.
                assert_eq!(bucket_index(p + 1), i);
            }
            assert_eq!(bucket_index(le), i, "le {le}");
            previous_le = Some(le);
        }
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
        // At most 1/8 wide above the exact range.
        for us in [9u64, 100, 1_000, 12_345, 987_654, 1 << 30] {
            let le = bucket_le_us(bucket_index(us));
            assert!(
                le >= us && (le - us) as f64 <= us as f64 / 8.0,
                "{us} -> {le}"
            );
        }
    }

    #[test]
    fn quantiles_come_from_the_counts_recorded_since_a_reading() {
        let h = Histogram::default();
        for us in 1..=100 {
            h.record_us(us * 10);
        }
        let mut before = Counts::default();
        h.add_to(&mut before);
        // The median, 500, is in the bucket [480, 511].
        assert_eq!(before.quantile_us(0.5), Some(511));
        assert_eq!(before.quantile_us(0.99), Some(1023));
        assert_eq!(before.max_us(), Some(1023));
        h.record_us(50_000);
        let mut after = Counts::default();
        h.add_to(&mut after);
        let window = after.since(&before);
        assert_eq!(window.count(), 1);
        assert_eq!(window.sum_us, 50_000);
        assert_eq!(
            window.quantile_us(0.5),
            Some(bucket_le_us(bucket_index(50_000)))
        );
        assert_eq!(Counts::default().quantile_us(0.99), None);
        // A reading from before a restart is not subtracted.
        assert_eq!(before.since(&after), before);
    }

    #[test]
    fn a_scrape_reads_back_as_the_counts_summed_over_shards() {
        let m = BrokerMetrics::new(2);
        m.shard(0).log_fdatasync.record_us(70);
        m.shard(1).log_fdatasync.record_us(70);
        m.shard(1).log_fdatasync.record_us(90_000);
        m.shard(0)
            .request(ApiKey::Produce, Duration::from_micros(1_500));
        m.shard(1)
            .request(ApiKey::LeaveGroup, Duration::from_micros(3));
        let text = m.render();
        let sync = parse_histogram(&text, LOG_FDATASYNC, "").expect("fdatasync histogram");
        assert_eq!(sync.count(), 3);
        assert_eq!(sync.sum_us, 90_140);
        assert_eq!(sync.quantile_us(0.5), Some(71));
        assert_eq!(sync.max_us(), Some(bucket_le_us(bucket_index(90_000))));
        let produce = parse_histogram(&text, REQUEST, "api=\"Produce\"").expect("produce");
        assert_eq!((produce.count(), produce.sum_us), (1, 1_500));
        assert_eq!(
            parse_histogram(&text, REQUEST, "api=\"LeaveGroup\"")
                .unwrap()
                .count(),
            1
        );
        // Nothing recorded: no series for the API; the log histograms are
        // always there.
        assert!(parse_histogram(&text, REQUEST, "api=\"Fetch\"").is_none());
        assert_eq!(parse_histogram(&text, LOG_WRITE, "").unwrap().count(), 0);
        assert!(text.contains("sluice_request_seconds_count{api=\"Produce\"} 1\n"));
        assert!(text.contains("sluice_log_fdatasync_seconds_bucket{le=\"+Inf\"} 3\n"));
    }
}
