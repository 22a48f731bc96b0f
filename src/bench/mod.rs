//! `sluice bench`: a throughput and latency harness for any Kafka-compatible
//! cluster. The load generator runs on the same thread-per-core runtime as
//! the broker (`crate::shard`) and speaks the protocol directly.
//!
//! | file | responsibility |
//! |---|---|
//! | workload.rs | workload files (OMB field names) and their checks |
//! | plan.rs | topic creation, leaders, who runs where, static partition split |
//! | wire.rs | connection framing and ApiVersions negotiation |
//! | batch.rs / scan.rs | building record batches / walking fetched ones |
//! | producer.rs / consumer.rs | the load itself |
//! | stats.rs | counters and latency histograms shared with the reporter |
//! | run.rs | phases, deadlines, sampling, the result |
//! | result.rs, output.rs, hgrm.rs, chart.rs | what is saved and printed |
//! | compare.rs, report.rs | reading saved runs back |

pub mod batch;
pub mod chart;
pub mod compare;
mod consumer;
pub mod cpu;
pub mod error;
pub mod hgrm;
pub mod output;
pub mod plan;
mod producer;
mod progress;
pub mod report;
pub mod result;
pub mod run;
pub mod scan;
pub mod stats;
pub mod wire;
pub mod workload;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plan::Plan;
use stats::{LocalLatency, Shared};
use workload::{Acks, Compression, KeyDistributor, Workload};

/// What the producers and consumers of one shard share.
pub struct ShardCtx {
    pub plan: Arc<Plan>,
    pub shared: Arc<Shared>,
    pub latency: RefCell<LocalLatency>,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    cmd: BenchCmd,
}

#[derive(clap::Subcommand)]
enum BenchCmd {
    /// Run a workload against a cluster and save the results.
    Run(Box<RunArgs>),
    /// Print two saved runs side by side with ratios (B/A).
    Compare { a: PathBuf, b: PathBuf },
    /// Render DIR/report.md from every run saved under DIR.
    Report { dir: PathBuf },
    /// The broker's own latencies between two saved scrapes of its
    /// `GET /metrics` (`sluice.metrics.listener`), as `run --broker-metrics`
    /// prints them: for clients other than `sluice bench` (perf/peer).
    MetricsWindow { before: PathBuf, after: PathBuf },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KeysArg {
    None,
    RoundRobin,
    Random,
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, alias = "bootstrap", default_value = "127.0.0.1:9092")]
    bootstrap_server: String,
    /// Workload YAML (OpenMessaging Benchmark field names); flags below override it.
    #[arg(long)]
    workload: Option<PathBuf>,
    /// Where results go; default perf/results/<timestamp>/.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Load-generator shards (one pinned executor per core); default: every core.
    #[arg(long)]
    cores: Option<usize>,
    /// The broker's pid, to report its CPU seconds (local brokers only).
    #[arg(long)]
    broker_pid: Option<u32>,
    /// The broker's metrics listener (`sluice.metrics.listener`, host:port),
    /// to report its fdatasync, write and request latencies over the
    /// measured window beside the client's.
    #[arg(long, value_name = "HOST:PORT")]
    broker_metrics: Option<String>,
    /// Keep the benchmark topics afterwards (default: delete them).
    #[arg(long)]
    keep_topics: bool,
    /// Topic names are PREFIX-0, PREFIX-1, ...; default sluice-bench-<random>.
    #[arg(long)]
    topic_prefix: Option<String>,
    /// -1 = the broker's default.
    #[arg(long, default_value_t = -1)]
    replication_factor: i16,
    /// After producers stop, how long consumers may take to read the rest.
    #[arg(long, default_value_t = 60)]
    drain_timeout_s: u64,
    /// Bound on connecting and on each setup request.
    #[arg(long, default_value_t = 10)]
    connect_timeout_s: u64,
    /// Longest a catch-up run may spend building its backlog.
    #[arg(long, default_value_t = 1800)]
    backlog_timeout_s: u64,
    /// No live progress line.
    #[arg(long, short)]
    quiet: bool,

    // One-off overrides of workload fields.
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    topics: Option<usize>,
    #[arg(long)]
    partitions: Option<usize>,
    #[arg(long)]
    message_size: Option<usize>,
    #[arg(long)]
    payload_file: Option<String>,
    #[arg(long, value_enum)]
    key_distributor: Option<KeysArg>,
    #[arg(long)]
    subscriptions: Option<usize>,
    #[arg(long)]
    producers: Option<usize>,
    #[arg(long)]
    consumers: Option<usize>,
    /// Messages per second over all producers; 0 = as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long)]
    duration_s: Option<f64>,
    #[arg(long)]
    warmup_s: Option<f64>,
    #[arg(long)]
    backlog_bytes: Option<u64>,
    /// 0, 1 or all.
    #[arg(long)]
    acks: Option<Acks>,
    #[arg(long)]
    batch_bytes: Option<usize>,
    #[arg(long)]
    linger_ms: Option<u64>,
    #[arg(long, value_enum)]
    compression: Option<Compression>,
    #[arg(long)]
    max_in_flight: Option<usize>,
    #[arg(long)]
    buffer_bytes: Option<usize>,
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// Idempotent producer (InitProducerId, sequence numbers; needs acks=all).
    #[arg(long)]
    idempotence: Option<bool>,
}

impl RunArgs {
    fn workload(&self) -> Result<Workload, workload::WorkloadError> {
        let mut w = match &self.workload {
            Some(p) => Workload::load(p)?,
            None => Workload::default(),
        };
        macro_rules! set {
            ($field:expr, $flag:expr) => {
                if let Some(v) = $flag.clone() {
                    $field = v;
                }
            };
        }
        set!(w.name, self.name);
        set!(w.topics, self.topics);
        set!(w.partitions_per_topic, self.partitions);
        set!(w.message_size, self.message_size);
        if self.payload_file.is_some() {
            w.payload_file = self.payload_file.clone();
        }
        if let Some(k) = self.key_distributor {
            w.key_distributor = match k {
                KeysArg::None => KeyDistributor::None,
                KeysArg::RoundRobin => KeyDistributor::RoundRobin,
                KeysArg::Random => KeyDistributor::Random,
            };
        }
        set!(w.subscriptions_per_topic, self.subscriptions);
        set!(w.producers_per_topic, self.producers);
        set!(w.consumers_per_subscription, self.consumers);
        set!(w.producer_rate, self.rate);
        set!(w.test_duration_seconds, self.duration_s);
        set!(w.warmup_seconds, self.warmup_s);
        set!(w.consumer_backlog_size_bytes, self.backlog_bytes);
        set!(w.producer.acks, self.acks);
        set!(w.producer.batch_bytes, self.batch_bytes);
        set!(w.producer.linger_ms, self.linger_ms);
        set!(w.producer.compression, self.compression);
        set!(w.producer.max_in_flight, self.max_in_flight);
        set!(w.producer.buffer_bytes, self.buffer_bytes);
        set!(w.producer.request_timeout_ms, self.request_timeout_ms);
        set!(w.producer.idempotence, self.idempotence);
        w.validate()?;
        Ok(w)
    }
}

/// Entry point of `sluice bench ...`.
pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    crate::logging::init("warn");
    match args.cmd {
        BenchCmd::Run(a) => run_cmd(*a),
        BenchCmd::Compare { a, b } => {
            let (a, b) = (output::load(&a)?, output::load(&b)?);
            print!("{}", compare::compare(&a, &b));
            Ok(())
        }
        BenchCmd::Report { dir } => {
            print!("{}", report::write(&dir)?);
            eprintln!("written to {}", dir.join("report.md").display());
            Ok(())
        }
        BenchCmd::MetricsWindow { before, after } => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
            };
            let window = result::BrokerLatency::between(&read(&before)?, &read(&after)?);
            print!("{}", result::broker_table(&window));
            Ok(())
        }
    }
}

fn run_cmd(a: RunArgs) -> anyhow::Result<()> {
    let w = a.workload().map_err(error::BenchError::from)?;
    let cpus = crate::shard::available_cpus();
    let shards = a.cores.unwrap_or(cpus.len()).max(1);
    let dir = a.output.clone().unwrap_or_else(output::default_dir);
    let opts = run::RunOptions {
        bootstrap: a.bootstrap_server.clone(),
        workload: w,
        output_dir: dir.clone(),
        shards,
        broker_pid: a.broker_pid,
        broker_metrics: a.broker_metrics.clone(),
        keep_topics: a.keep_topics,
        topic_prefix: a.topic_prefix.clone(),
        replication_factor: a.replication_factor,
        drain_timeout: Duration::from_secs(a.drain_timeout_s),
        connect_timeout: Duration::from_secs(a.connect_timeout_s.max(1)),
        backlog_timeout: Duration::from_secs(a.backlog_timeout_s),
        progress: !a.quiet,
    };
    let outcome = run::run(&opts);
    output::save(&dir, &outcome)?;
    print!("{}", result::summary(&outcome.result));
    println!("results: {}", dir.display());
    match &outcome.result.error {
        Some(e) => anyhow::bail!("run incomplete: {e}"),
        None => Ok(()),
    }
}
