//! Measurements shared between the load-generator shards and the thread that
//! reports on them. Shards count with relaxed atomics and keep latency
//! histograms locally, folding them into the shared interval histograms a few
//! times a second (one short lock per shard per flush, never per record).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, 1 µs to 1 hour, 3 significant digits.
pub const HIST_MAX_US: u64 = 3_600_000_000;
pub const HIST_SIGFIG: u8 = 3;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, HIST_SIGFIG).expect("valid histogram bounds")
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[derive(Default)]
pub struct Flag(AtomicBool);

impl Flag {
    pub fn set(&self) {
        self.0.store(true, Relaxed);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Relaxed)
    }
}

/// Everything the shards report and the controls the reporter sets.
pub struct Shared {
    /// Run epoch: intended send times are nanoseconds since this instant.
    pub start: Instant,
    /// Wall clock (µs since the Unix epoch) at `start`, to turn instants into
    /// record timestamps and back.
    pub wall_at_start_us: i64,

    /// Producers finish their current batches and stop.
    pub stop_producing: Flag,
    /// Everyone stops now (end of run, deadline, or a fatal error).
    pub stop_all: Flag,
    /// Catch-up runs hold consumers back until the backlog is built.
    pub consumers_go: Flag,

    pub sent_msgs: Counter,
    /// Acknowledged (acks=0: written) records and payload bytes.
    pub produced_msgs: Counter,
    pub produced_bytes: Counter,
    pub produce_errors: Counter,
    pub consumed_msgs: Counter,
    pub consumed_bytes: Counter,
    /// Acknowledged records per topic.
    pub produced_per_topic: Vec<Counter>,
    /// Records consumed per (topic, subscription): index topic * subs + sub.
    pub consumed_per_subscription: Vec<Counter>,
    pub producers_done: Counter,
    pub consumers_done: Counter,

    /// Latencies since the reporter last took them.
    pub publish_interval: Mutex<Histogram<u64>>,
    pub e2e_interval: Mutex<Histogram<u64>>,
    /// The first fatal error; setting it also stops everyone.
    pub error: Mutex<Option<String>>,
}

impl Shared {
    pub fn new(topics: usize, subscriptions_per_topic: usize) -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64;
        Shared {
            start: Instant::now(),
            wall_at_start_us: wall,
            stop_producing: Flag::default(),
            stop_all: Flag::default(),
            consumers_go: Flag::default(),
            sent_msgs: Counter::default(),
            produced_msgs: Counter::default(),
            produced_bytes: Counter::default(),
            produce_errors: Counter::default(),
            consumed_msgs: Counter::default(),
            consumed_bytes: Counter::default(),
            produced_per_topic: (0..topics).map(|_| Counter::default()).collect(),
            consumed_per_subscription: (0..topics * subscriptions_per_topic)
                .map(|_| Counter::default())
                .collect(),
            producers_done: Counter::default(),
            consumers_done: Counter::default(),
            publish_interval: Mutex::new(new_histogram()),
            e2e_interval: Mutex::new(new_histogram()),
            error: Mutex::new(None),
        }
    }

    /// Nanoseconds since the run epoch.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Wall-clock microseconds for a run-epoch time (ns).
    pub fn wall_us(&self, ns: u64) -> i64 {
        self.wall_at_start_us + (ns / 1_000) as i64
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Record a fatal error (the first one wins) and stop the run.
    pub fn fail(&self, msg: String) {
        tracing::error!("{msg}");
        let mut e = self.error.lock().unwrap();
        if e.is_none() {
            *e = Some(msg);
        }
        self.stop_all.set();
    }

    pub fn failed(&self) -> Option<String> {
        self.error.lock().unwrap().clone()
    }

    /// Take the latencies recorded since the last call.
    pub fn take_intervals(&self) -> (Histogram<u64>, Histogram<u64>) {
        let take =
            |m: &Mutex<Histogram<u64>>| std::mem::replace(&mut *m.lock().unwrap(), new_histogram());
        (take(&self.publish_interval), take(&self.e2e_interval))
    }
}

/// One shard's latency histograms, folded into `Shared` by `flush`.
pub struct LocalLatency {
    pub publish: Histogram<u64>,
    pub e2e: Histogram<u64>,
}

impl Default for LocalLatency {
    fn default() -> Self {
        LocalLatency {
            publish: new_histogram(),
            e2e: new_histogram(),
        }
    }
}

impl LocalLatency {
    pub fn record_publish_us(&mut self, us: u64, count: u64) {
        self.publish.saturating_record_n(us.max(1), count);
    }

    pub fn record_e2e_us(&mut self, us: i64) {
        // Clocks of producer and consumer are the same host's; a negative
        // value can only come from a timestamp rounded up, so count it as 1 µs.
        self.e2e.saturating_record(us.max(1) as u64);
    }

    pub fn flush(&mut self, shared: &Shared) {
        if !self.publish.is_empty() {
            shared
                .publish_interval
                .lock()
                .unwrap()
                .add(&self.publish)
                .ok();
            self.publish.reset();
        }
        if !self.e2e.is_empty() {
            shared.e2e_interval.lock().unwrap().add(&self.e2e).ok();
            self.e2e.reset();
        }
    }
}

/// Percentiles reported everywhere, in this order.
pub const PERCENTILES: [(&str, f64); 7] = [
    ("p50", 50.0),
    ("p75", 75.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
];
