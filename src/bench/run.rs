//! A whole run: set up, start the load generator on its own thread-per-core
//! runtime, walk through the phases (warmup, measure, drain; or backlog build
//! then catch-up read), sample once a second, and always end with results,
//! complete or not. Every phase has a deadline.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::cpu;
use super::plan::{self, Plan, SetupOptions};
use super::progress::Progress;
use super::result::{
    BrokerLatency, Cpu, Latency, RunResult, Sample, Throughput, Totals, FORMAT_VERSION,
};
use super::stats::{new_histogram, Shared};
use super::workload::Workload;
use super::{consumer, producer, ShardCtx};
use crate::shard::{self, RuntimeConfig};

/// Transitions are checked this often; samples are taken once a second.
const POLL: Duration = Duration::from_millis(20);
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Shards fold their latencies into the shared histograms this often.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// After the stop signal, how long the load generator may take to wind down
/// before its results are taken as they are.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// DMA memory per load-generator shard: it does no file I/O.
const IO_MEMORY_BYTES: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub bootstrap: String,
    pub workload: Workload,
    pub output_dir: PathBuf,
    pub shards: usize,
    pub broker_pid: Option<u32>,
    /// The broker's `sluice.metrics.listener` (host:port): its own latencies
    /// over the measured window go beside the client's.
    pub broker_metrics: Option<String>,
    pub keep_topics: bool,
    pub topic_prefix: Option<String>,
    pub replication_factor: i16,
    /// After producers stop, how long consumers get to read the rest.
    pub drain_timeout: Duration,
    /// Also bounds each admin request and the backlog-build phase start.
    pub connect_timeout: Duration,
    /// Longest the backlog build of a catch-up run may take.
    pub backlog_timeout: Duration,
    pub progress: bool,
}

pub struct Outcome {
    pub result: RunResult,
    pub publish: Histogram<u64>,
    pub e2e: Histogram<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    /// Producers stopped; consumers read what is left.
    Drain,
    /// Catch-up runs: producing the backlog, consumers held back.
    Backlog,
    /// Backlog reached; waiting for the last acknowledgements.
    BacklogSettle,
    /// Consumers reading the backlog (the measured window).
    CatchUp,
    Done,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Measure => "measure",
            Phase::Drain => "drain",
            Phase::Backlog => "backlog",
            Phase::BacklogSettle => "settle",
            Phase::CatchUp => "catch-up",
            Phase::Done => "done",
        }
    }
    /// Whether latencies recorded now count in the results.
    fn measured(self) -> bool {
        self != Phase::Warmup
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    produced_msgs: u64,
    produced_bytes: u64,
    consumed_msgs: u64,
    consumed_bytes: u64,
}

impl Snapshot {
    fn take(s: &Shared) -> Self {
        Snapshot {
            produced_msgs: s.produced_msgs.get(),
            produced_bytes: s.produced_bytes.get(),
            consumed_msgs: s.consumed_msgs.get(),
            consumed_bytes: s.consumed_bytes.get(),
        }
    }
}

pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

pub fn run(o: &RunOptions) -> Outcome {
    let w = &o.workload;
    let started_at = rfc3339_now();
    let wall0 = Instant::now();
    let client_cpu0 = cpu::client_cpu_s();
    let broker_cpu0 = o.broker_pid.and_then(cpu::process_cpu_s);
    let setup = SetupOptions {
        bootstrap: o.bootstrap.clone(),
        topic_prefix: o
            .topic_prefix
            .clone()
            .unwrap_or_else(|| format!("sluice-bench-{}", random_suffix())),
        replication_factor: o.replication_factor,
        shards: o.shards,
        connect_timeout: o.connect_timeout,
    };
    let mut result = RunResult {
        format_version: FORMAT_VERSION,
        name: w.name.clone(),
        started_at,
        bootstrap: o.bootstrap.clone(),
        workload: w.clone(),
        complete: false,
        error: None,
        measured_s: 0.0,
        produce: Throughput::default(),
        consume: Throughput::default(),
        totals: Totals::default(),
        publish_latency_us: Latency::default(),
        e2e_latency_us: Latency::default(),
        cpu: Cpu::default(),
        timeline: Vec::new(),
        broker_latency_us: None,
    };
    let mut outcome = match plan::prepare(w, &setup) {
        Ok(plan) => {
            let names = plan.topics.iter().map(|t| t.name.clone()).collect();
            let out = drive(o, Arc::new(plan), result);
            if !o.keep_topics {
                plan::delete_topics(&o.bootstrap, names, o.connect_timeout);
            }
            out
        }
        Err(e) => {
            result.error = Some(e.to_string());
            Outcome {
                result,
                publish: new_histogram(),
                e2e: new_histogram(),
            }
        }
    };
    let r = &mut outcome.result;
    r.cpu = Cpu {
        client_s: cpu::client_cpu_s() - client_cpu0,
        broker_s: broker_cpu0
            .and_then(|b0| o.broker_pid.and_then(cpu::process_cpu_s).map(|b1| b1 - b0)),
        wall_s: wall0.elapsed().as_secs_f64(),
    };
    r.complete = r.error.is_none();
    outcome
}

/// The load generator's entry point on each shard.
async fn shard_main(id: usize, plan: Arc<Plan>, shared: Arc<Shared>) {
    let ctx = Rc::new(ShardCtx {
        plan: plan.clone(),
        shared: shared.clone(),
        latency: Default::default(),
    });
    let mut tasks = Vec::new();
    for p in plan.producers.iter().filter(|p| p.shard == id) {
        tasks.push(shard::spawn(producer::run(ctx.clone(), p.clone())));
    }
    for c in plan.consumers.iter().filter(|c| c.shard == id) {
        tasks.push(shard::spawn(consumer::run(ctx.clone(), c.clone())));
    }
    let done = Rc::new(std::cell::Cell::new(false));
    let flusher = {
        let (ctx, done) = (ctx.clone(), done.clone());
        shard::spawn(async move {
            while !done.get() {
                shard::sleep(FLUSH_EVERY).await;
                ctx.latency.borrow_mut().flush(&ctx.shared);
            }
        })
    };
    for t in tasks {
        t.await;
    }
    done.set(true);
    flusher.await;
    ctx.latency.borrow_mut().flush(&shared);
}

fn drive(o: &RunOptions, plan: Arc<Plan>, mut result: RunResult) -> Outcome {
    let w = &o.workload;
    let shared = Arc::new(Shared::new(w.topics, w.subscriptions_per_topic));
    let catch_up = w.consumer_backlog_size_bytes > 0;
    if !catch_up {
        shared.consumers_go.set();
    }
    let runtime = {
        let (plan, shared) = (plan.clone(), shared.clone());
        let cfg = RuntimeConfig {
            cpus: shard::available_cpus(),
            pin: true,
            nr_shards: o.shards,
            cross_shard_queue_depth: 16,
            io_memory_bytes: IO_MEMORY_BYTES,
            sched_slice_us: None,
        };
        std::thread::Builder::new()
            .name("bench-runtime".into())
            .spawn(move || {
                let s2 = shared.clone();
                let r = shard::run(cfg, move |id| shard_main(id, plan.clone(), s2.clone()));
                if let Err(e) = r {
                    shared.fail(format!("load generator runtime: {e}"));
                }
            })
            .expect("spawn runtime thread")
    };

    let mut progress = Progress::new(o.progress);
    let mut publish = new_histogram();
    let mut e2e = new_histogram();
    let start = shared.start;
    let mut phase = if catch_up {
        Phase::Backlog
    } else if w.warmup_seconds > 0.0 {
        Phase::Warmup
    } else {
        Phase::Measure
    };
    let zero = Snapshot::default();
    let mut window_start = (start, zero);
    let scrape = || {
        o.broker_metrics
            .as_ref()
            .map(|a| crate::metrics::http::scrape(a, o.connect_timeout))
    };
    let mut metrics_start = scrape();
    let mut metrics_end = None;
    let mut window_end: Option<(Instant, Snapshot)> = None;
    let mut backlog_end = (start, zero);
    let mut deadline = match phase {
        Phase::Backlog => start + o.backlog_timeout,
        _ => start + Duration::from_secs_f64(w.warmup_seconds + w.test_duration_seconds),
    };
    let mut last = (start, zero);
    let mut next_sample = start + SAMPLE_EVERY;
    let producers = w.total_producers() as u64;
    let consumers = w.total_consumers() as u64;
    let caught_up = |s: &Shared| {
        (0..w.topics).all(|t| {
            let produced = s.produced_per_topic[t].get();
            (0..w.subscriptions_per_topic).all(|sub| {
                s.consumed_per_subscription[t * w.subscriptions_per_topic + sub].get() >= produced
            })
        })
    };
    while phase != Phase::Done {
        std::thread::sleep(POLL);
        let now = Instant::now();
        let elapsed_s = (now - start).as_secs_f64();
        if now >= next_sample {
            let snap = Snapshot::take(&shared);
            let dt = (now - last.0).as_secs_f64().max(1e-9);
            let (p, e) = shared.take_intervals();
            let sample = Sample {
                t_s: elapsed_s,
                produce_msgs_per_s: (snap.produced_msgs - last.1.produced_msgs) as f64 / dt,
                produce_mb_per_s: (snap.produced_bytes - last.1.produced_bytes) as f64 / 1e6 / dt,
                consume_msgs_per_s: (snap.consumed_msgs - last.1.consumed_msgs) as f64 / dt,
                consume_mb_per_s: (snap.consumed_bytes - last.1.consumed_bytes) as f64 / 1e6 / dt,
                publish_p99_us: if p.is_empty() {
                    0
                } else {
                    p.value_at_quantile(0.99)
                },
                e2e_p99_us: if e.is_empty() {
                    0
                } else {
                    e.value_at_quantile(0.99)
                },
            };
            if phase.measured() {
                publish.add(&p).ok();
                e2e.add(&e).ok();
            }
            progress.update(phase.label(), &sample);
            result.timeline.push(sample);
            last = (now, snap);
            next_sample += SAMPLE_EVERY;
        }
        if shared.failed().is_some() {
            break;
        }
        if runtime.is_finished() {
            shared.fail("the load generator stopped unexpectedly (see the log above)".into());
            break;
        }
        let done_producing = shared.producers_done.get() == producers;
        match phase {
            Phase::Warmup if elapsed_s >= w.warmup_seconds => {
                window_start = (now, Snapshot::take(&shared));
                metrics_start = scrape();
                phase = Phase::Measure;
            }
            Phase::Measure if now >= deadline => {
                window_end = Some((now, Snapshot::take(&shared)));
                metrics_end = scrape();
                shared.stop_producing.set();
                deadline = now + o.drain_timeout;
                phase = Phase::Drain;
            }
            Phase::Drain => {
                if done_producing && (consumers == 0 || caught_up(&shared)) {
                    phase = Phase::Done;
                } else if now >= deadline {
                    let behind = shared.produced_msgs.get() * w.subscriptions_per_topic as u64
                        - shared
                            .consumed_msgs
                            .get()
                            .min(shared.produced_msgs.get() * w.subscriptions_per_topic as u64);
                    shared.fail(if done_producing {
                        format!(
                            "consumers still {behind} records behind {:?} after producers stopped",
                            o.drain_timeout
                        )
                    } else {
                        format!(
                            "producers did not finish within {:?} of the stop",
                            o.drain_timeout
                        )
                    });
                }
            }
            Phase::Backlog if shared.produced_bytes.get() >= w.consumer_backlog_size_bytes => {
                shared.stop_producing.set();
                phase = Phase::BacklogSettle;
            }
            Phase::Backlog | Phase::BacklogSettle if now >= deadline => {
                shared.fail(format!(
                    "backlog of {} bytes not built within {:?} ({} bytes produced)",
                    w.consumer_backlog_size_bytes,
                    o.backlog_timeout,
                    shared.produced_bytes.get()
                ));
            }
            Phase::BacklogSettle if done_producing => {
                backlog_end = (now, Snapshot::take(&shared));
                window_start = backlog_end;
                metrics_start = scrape();
                shared.consumers_go.set();
                deadline = now + Duration::from_secs_f64(w.test_duration_seconds);
                phase = Phase::CatchUp;
            }
            Phase::CatchUp if caught_up(&shared) => {
                window_end = Some((now, Snapshot::take(&shared)));
                metrics_end = scrape();
                phase = Phase::Done;
            }
            Phase::CatchUp if now >= deadline => {
                window_end = Some((now, Snapshot::take(&shared)));
                metrics_end = scrape();
                shared.fail(format!(
                    "consumers did not read the backlog within testDurationSeconds ({} s)",
                    w.test_duration_seconds
                ));
            }
            _ => {}
        }
    }
    let stopped_at = Instant::now();
    shared.stop_producing.set();
    shared.stop_all.set();
    while !runtime.is_finished() && stopped_at.elapsed() < STOP_GRACE {
        std::thread::sleep(POLL);
    }
    if runtime.is_finished() {
        let _ = runtime.join();
    } else {
        tracing::warn!(
            "load generator did not stop within {STOP_GRACE:?}; taking results as they are"
        );
    }
    progress.finish();
    // Latencies recorded since the last sample.
    let (p, e) = shared.take_intervals();
    if phase.measured() {
        publish.add(&p).ok();
        e2e.add(&e).ok();
    }

    let (end_t, end_snap) = window_end.unwrap_or((stopped_at, Snapshot::take(&shared)));
    let window_s = (end_t - window_start.0).as_secs_f64();
    result.measured_s = window_s;
    if let Some(start) = metrics_start {
        let end = metrics_end
            .or_else(scrape)
            .expect("scraped at the start, so at the end");
        result.broker_latency_us = Some(match (start, end) {
            (Ok(a), Ok(b)) => BrokerLatency::between(&a, &b),
            (Err(e), _) | (_, Err(e)) => BrokerLatency::failed(e),
        });
    }
    if catch_up {
        let build_s = (backlog_end.0 - start).as_secs_f64();
        let b = if backlog_end.1.produced_msgs > 0 {
            backlog_end.1
        } else {
            Snapshot::take(&shared)
        };
        result.produce = Throughput::over(b.produced_msgs, b.produced_bytes, build_s);
    } else {
        result.produce = Throughput::over(
            end_snap.produced_msgs - window_start.1.produced_msgs,
            end_snap.produced_bytes - window_start.1.produced_bytes,
            window_s,
        );
    }
    result.consume = Throughput::over(
        end_snap.consumed_msgs - window_start.1.consumed_msgs,
        end_snap.consumed_bytes - window_start.1.consumed_bytes,
        window_s,
    );
    let subs = if consumers > 0 {
        w.subscriptions_per_topic as u64
    } else {
        0
    };
    result.totals = Totals {
        sent_msgs: shared.sent_msgs.get(),
        produced_msgs: shared.produced_msgs.get(),
        consumed_msgs: shared.consumed_msgs.get(),
        expected_consumed_msgs: shared.produced_msgs.get() * subs,
        produce_errors: shared.produce_errors.get(),
    };
    result.publish_latency_us = Latency::from_histogram(&publish);
    result.e2e_latency_us = Latency::from_histogram(&e2e);
    result.error = shared.failed();
    if result.error.is_none() && !result.consistent() {
        result.error = Some(format!(
            "consumed {} records where {} were expected",
            result.totals.consumed_msgs, result.totals.expected_consumed_msgs
        ));
    }
    Outcome {
        result,
        publish,
        e2e,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_shape() {
        let s = super::rfc3339_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }
}
