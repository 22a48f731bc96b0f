use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Kafka-wire-compatible broker, thread-per-core on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the broker (defaults: data in ./data, listening on 127.0.0.1:9092).
    Broker(BrokerArgs),
    /// Create, list, describe, alter and delete topics (like kafka-topics.sh).
    Topics(sluice::cli::TopicsArgs),
    /// Produce one record per stdin line (like kafka-console-producer.sh).
    ConsoleProducer(sluice::cli::ProducerArgs),
    /// Print records (like kafka-console-consumer.sh).
    ConsoleConsumer(sluice::cli::ConsumerArgs),
    /// List, describe and delete consumer groups, reset their offsets (like kafka-consumer-groups.sh).
    ConsumerGroups(sluice::cli::ConsumerGroupsArgs),
    /// Describe the metadata quorum (like kafka-metadata-quorum.sh).
    MetadataQuorum(sluice::cli::MetadataQuorumArgs),
    /// Elect preferred or unclean partition leaders (like kafka-leader-election.sh).
    LeaderElection(sluice::cli::LeaderElectionArgs),
    /// Move partitions' replicas between brokers (like kafka-reassign-partitions.sh).
    ReassignPartitions(sluice::cli::ReassignArgs),
    /// Run Kafka Connect standalone with file connectors (like connect-standalone.sh).
    ConnectStandalone(sluice::connect::StandaloneArgs),
    /// Benchmark any Kafka-compatible cluster: run workloads, compare, report.
    Bench(sluice::bench::BenchArgs),
}

#[derive(clap::Args)]
struct BrokerArgs {
    /// A Kafka server.properties file (as `kafka-server-start.sh FILE`).
    #[arg(value_name = "FILE", conflicts_with = "config")]
    config_file: Option<PathBuf>,
    /// A Kafka server.properties file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Shorthand for `--override listeners=...`.
    #[arg(long)]
    listeners: Option<String>,
    /// Shorthand for `--override log.dirs=...`.
    #[arg(long)]
    log_dirs: Option<String>,
    /// Shards to run (one per core); default: every core this process may use.
    #[arg(long)]
    cores: Option<usize>,
    /// Do not pin shards to cores, for a machine whose cores other programs
    /// share (as Redpanda's flag): `--override sluice.shard.thread.affinity=false`.
    #[arg(long)]
    overprovisioned: bool,
    /// Any server.properties key, as key=value; wins over the file.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Broker(a) => run_broker(a),
        Cmd::Topics(a) => sluice::cli::topics(a),
        Cmd::ConsoleProducer(a) => sluice::cli::console_producer(a),
        Cmd::ConsoleConsumer(a) => sluice::cli::console_consumer(a),
        Cmd::ConsumerGroups(a) => sluice::cli::consumer_groups(a),
        Cmd::MetadataQuorum(a) => sluice::cli::metadata_quorum(a),
        Cmd::LeaderElection(a) => sluice::cli::leader_election(a),
        Cmd::ReassignPartitions(a) => sluice::cli::reassign_partitions(a),
        Cmd::ConnectStandalone(a) => {
            sluice::logging::init("info");
            sluice::connect::run_standalone(a)
        }
        Cmd::Bench(a) => sluice::bench::main(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_broker(a: BrokerArgs) -> anyhow::Result<()> {
    sluice::logging::init("info");
    let mut overrides = Vec::new();
    for o in &a.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--override expects key=value, got {o:?}"))?;
        overrides.push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(l) = a.listeners {
        overrides.push(("listeners".into(), l));
    }
    if let Some(d) = a.log_dirs {
        overrides.push(("log.dirs".into(), d));
    }
    if let Some(c) = a.cores {
        overrides.push(("smp".into(), c.to_string()));
    }
    if a.overprovisioned {
        overrides.push(("sluice.shard.thread.affinity".into(), "false".into()));
    }
    let file = a.config.as_deref().or(a.config_file.as_deref());
    let cfg = sluice::config::BrokerConfig::load(file, &overrides)?;
    sluice::broker::run(cfg)
}
