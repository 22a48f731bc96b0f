//! `sluice topics`: create, list, describe, delete and alter topics.

use std::io::Write;

use anyhow::{bail, Result};
use clap::ArgGroup;
use kafka_protocol::ResponseError;

use super::common::{is_internal, ConnArgs, TopicFilter};
use super::describe::{describe_topic_report, Report};
use super::props::parse_pairs;
use crate::client::{Client, Metadata};

/// Arguments of `sluice topics` (shaped like kafka-topics.sh).
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    ArgGroup::new("action")
        .required(true)
        .args(["create", "list", "describe", "delete", "alter"])
))]
pub struct TopicsArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Create a new topic.
    #[arg(long)]
    pub create: bool,
    /// List all topics.
    #[arg(long)]
    pub list: bool,
    /// Describe the given topic(s), or all topics.
    #[arg(long)]
    pub describe: bool,
    /// Delete a topic.
    #[arg(long)]
    pub delete: bool,
    /// Add partitions to a topic or change its configuration.
    #[arg(long)]
    pub alter: bool,
    /// Topic name (a regular expression except with --create).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Number of partitions (--create; --alter to increase).
    #[arg(long, value_name = "N")]
    pub partitions: Option<i32>,
    /// Replication factor for --create.
    #[arg(long = "replication-factor", value_name = "N")]
    pub replication_factor: Option<i16>,
    /// Manual placement for --create: the brokers of each partition,
    /// partitions separated by commas, replicas by colons (the first
    /// leads), e.g. `1:2,2:3`. Instead of --partitions/--replication-factor.
    #[arg(long = "replica-assignment", value_name = "B1:B2,...")]
    pub replica_assignment: Option<String>,
    /// Topic configuration override (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Topic configuration override to remove with --alter (repeatable).
    #[arg(long = "delete-config", value_name = "KEY")]
    pub delete_config: Vec<String>,
    /// With --create, do nothing if the topic already exists.
    #[arg(long = "if-not-exists")]
    pub if_not_exists: bool,
    /// With --alter/--delete/--describe, do nothing if the topic does not exist.
    #[arg(long = "if-exists")]
    pub if_exists: bool,
    /// With --describe: only partitions whose ISR is smaller than their replicas.
    #[arg(long = "under-replicated-partitions", requires = "describe")]
    pub under_replicated_partitions: bool,
    /// With --describe: only partitions with no leader, or a leader that is not live.
    #[arg(long = "unavailable-partitions", requires = "describe")]
    pub unavailable_partitions: bool,
    /// With --describe: only partitions whose ISR is below min.insync.replicas.
    #[arg(long = "under-min-isr-partitions", requires = "describe")]
    pub under_min_isr_partitions: bool,
    /// With --describe: only partitions whose ISR is exactly min.insync.replicas.
    #[arg(long = "at-min-isr-partitions", requires = "describe")]
    pub at_min_isr_partitions: bool,
}

/// Runs `sluice topics`, printing to stdout.
pub fn run(args: TopicsArgs) -> Result<()> {
    let mut out = Vec::new();
    let result = run_to(&args, &mut out);
    std::io::stdout().write_all(&out)?;
    result
}

/// Runs the command, writing its normal output to `out`.
pub(crate) fn run_to(args: &TopicsArgs, out: &mut impl Write) -> Result<()> {
    validate(args)?;
    let mut client = args.conn.connect("sluice-topics", false)?;
    if args.create {
        create(&mut client, args, out)
    } else if args.list {
        list(&mut client, args, out)
    } else if args.describe {
        describe(&mut client, args, out)
    } else if args.delete {
        delete(&mut client, args)
    } else {
        alter(&mut client, args)
    }
}

fn validate(args: &TopicsArgs) -> Result<()> {
    let action = if args.create {
        "create"
    } else if args.list {
        "list"
    } else if args.describe {
        "describe"
    } else if args.delete {
        "delete"
    } else {
        "alter"
    };
    let misuse =
        |option: &str| -> Result<()> { bail!("option --{option} cannot be used with --{action}") };
    if args.topic.is_none() && matches!(action, "create" | "delete" | "alter") {
        bail!("--topic is required with --{action}");
    }
    if args.partitions.is_some() && !matches!(action, "create" | "alter") {
        misuse("partitions")?;
    }
    if args.replication_factor.is_some() && action != "create" {
        misuse("replication-factor")?;
    }
    if let Some(a) = &args.replica_assignment {
        if action != "create" {
            misuse("replica-assignment")?;
        }
        if args.partitions.is_some() || args.replication_factor.is_some() {
            bail!("Option \"[replica-assignment]\" can't be used with option \"[partitions],[replication-factor]\"");
        }
        parse_assignment(a)?;
    }
    if !args.config.is_empty() && !matches!(action, "create" | "alter") {
        misuse("config")?;
    }
    if !args.delete_config.is_empty() && action != "alter" {
        misuse("delete-config")?;
    }
    if args.if_not_exists && action != "create" {
        misuse("if-not-exists")?;
    }
    if args.if_exists && !matches!(action, "alter" | "delete" | "describe") {
        misuse("if-exists")?;
    }
    if matches!(args.partitions, Some(n) if n < 1) {
        bail!("the number of partitions must be at least 1");
    }
    if matches!(args.replication_factor, Some(n) if n < 1) {
        bail!("the replication factor must be at least 1");
    }
    if action == "alter"
        && args.partitions.is_none()
        && args.config.is_empty()
        && args.delete_config.is_empty()
    {
        bail!("--alter needs --partitions, --config or --delete-config");
    }
    parse_pairs(&args.config, "--config")?;
    Ok(())
}

fn create(client: &mut Client, args: &TopicsArgs, out: &mut impl Write) -> Result<()> {
    let topic = args.topic.as_deref().unwrap_or_default();
    let configs = parse_pairs(&args.config, "--config")?;
    let partitions = args.partitions.unwrap_or(-1);
    let replication = args.replication_factor.unwrap_or(-1);
    let assignments = match &args.replica_assignment {
        Some(a) => parse_assignment(a)?,
        None => Vec::new(),
    };
    match client.create_topic_placed(topic, partitions, replication, &assignments, configs) {
        Ok(()) => {
            writeln!(out, "Created topic {topic}.")?;
            Ok(())
        }
        Err(e) if e.kafka_code() == Some(ResponseError::TopicAlreadyExists) => {
            if args.if_not_exists {
                Ok(())
            } else {
                bail!("Topic '{topic}' already exists.")
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Kafka's `--replica-assignment` value: `1:2,2:3` = partition 0 on
/// brokers 1 and 2, partition 1 on 2 and 3. Every partition has as many
/// replicas as the first; a broker appears once per partition.
fn parse_assignment(v: &str) -> Result<Vec<Vec<i32>>> {
    let mut out: Vec<Vec<i32>> = Vec::new();
    for (i, part) in v.split(',').enumerate() {
        let brokers = part
            .split(':')
            .map(|b| b.trim().parse::<i32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                anyhow::anyhow!(
                    "--replica-assignment: '{part}' is not a list of broker ids separated by ':'"
                )
            })?;
        let mut unique = brokers.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != brokers.len() {
            bail!("Partition replica lists may not contain duplicate entries: {part}");
        }
        if let Some(first) = out.first() {
            if first.len() != brokers.len() {
                bail!("Partition {i} has different replication factor: {part}");
            }
        }
        out.push(brokers);
    }
    Ok(out)
}

fn list(client: &mut Client, args: &TopicsArgs, out: &mut impl Write) -> Result<()> {
    for name in matching_topics(client, args.topic.as_deref())?.1 {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

fn describe(client: &mut Client, args: &TopicsArgs, out: &mut impl Write) -> Result<()> {
    let (metadata, names) = existing_topics(client, args)?;
    let report = Report {
        under_replicated: args.under_replicated_partitions,
        unavailable: args.unavailable_partitions,
        under_min_isr: args.under_min_isr_partitions,
        at_min_isr: args.at_min_isr_partitions,
    };
    let live: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id).collect();
    for name in &names {
        let Some(topic) = metadata.topic(name) else {
            continue;
        };
        let configs = client.describe_configs(name)?;
        out.write_all(describe_topic_report(topic, &configs, report, &live).as_bytes())?;
    }
    Ok(())
}

fn delete(client: &mut Client, args: &TopicsArgs) -> Result<()> {
    let (_, names) = existing_topics(client, args)?;
    if let Some(internal) = names.iter().find(|n| n.starts_with("__")) {
        bail!("Topic {internal} is a kafka internal topic and is not allowed to be marked for deletion.");
    }
    if names.is_empty() {
        return Ok(());
    }
    Ok(client.delete_topics(names)?)
}

fn alter(client: &mut Client, args: &TopicsArgs) -> Result<()> {
    let (_, names) = existing_topics(client, args)?;
    let configs = parse_pairs(&args.config, "--config")?;
    for name in &names {
        if let Some(count) = args.partitions {
            client.create_partitions(name, count)?;
        }
        if !configs.is_empty() || !args.delete_config.is_empty() {
            client.incremental_alter_configs(name, configs.clone(), args.delete_config.clone())?;
        }
    }
    Ok(())
}

/// Sorted topic names selected by `pattern` (all non-internal when `None`).
fn matching_topics(client: &mut Client, pattern: Option<&str>) -> Result<(Metadata, Vec<String>)> {
    let metadata = client.metadata(None)?;
    let filter = pattern.map(TopicFilter::new);
    let mut names: Vec<String> = metadata
        .topics
        .iter()
        .filter(|t| match &filter {
            Some(f) => f.matches(&t.name),
            None => !is_internal(&t.name, t.is_internal),
        })
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    names.dedup();
    Ok((metadata, names))
}

/// Like [`matching_topics`] but an explicit `--topic` must match something
/// unless `--if-exists` was given.
fn existing_topics(client: &mut Client, args: &TopicsArgs) -> Result<(Metadata, Vec<String>)> {
    let (metadata, names) = matching_topics(client, args.topic.as_deref())?;
    if let Some(topic) = &args.topic {
        if names.is_empty() && !args.if_exists {
            bail!("Topic '{topic}' does not exist as expected");
        }
    }
    Ok((metadata, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TopicsArgs,
    }

    fn parse(argv: &[&str]) -> std::result::Result<TopicsArgs, clap::Error> {
        let mut full = vec!["topics"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).map(|c| c.args)
    }

    #[test]
    fn replica_assignment_is_read_as_kafkas_tool_reads_it() {
        assert_eq!(
            parse_assignment("1:2:3, 2:3:1").unwrap(),
            vec![vec![1, 2, 3], vec![2, 3, 1]]
        );
        assert_eq!(parse_assignment("4").unwrap(), vec![vec![4]]);
        assert!(parse_assignment("1:1")
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
        assert!(parse_assignment("1:2,3")
            .unwrap_err()
            .to_string()
            .contains("different replication factor"));
        assert!(parse_assignment("1:x").is_err());
        let mut args = vec!["--bootstrap-server", "h:1", "--create", "--topic", "t"];
        args.extend(["--replica-assignment", "1:2", "--partitions", "2"]);
        assert!(
            validate(&parse(&args).unwrap()).is_err(),
            "not with --partitions"
        );
    }

    #[test]
    fn parses_create() {
        let a = parse(&[
            "--bootstrap-server",
            "h:1",
            "--create",
            "--topic",
            "t",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=1",
            "--config",
            "x=y",
            "--if-not-exists",
        ])
        .unwrap();
        assert!(a.create && a.if_not_exists);
        assert_eq!(a.conn.bootstrap(), "h:1");
        assert_eq!(a.conn.request_timeout_ms, 30_000);
        assert_eq!(a.partitions, Some(3));
        assert_eq!(a.replication_factor, Some(1));
        assert_eq!(a.config, vec!["retention.ms=1", "x=y"]);
        validate(&a).unwrap();
    }

    #[test]
    fn exactly_one_action() {
        assert!(parse(&["--bootstrap-server", "h:1"]).is_err());
        assert!(parse(&["--bootstrap-server", "h:1", "--list", "--describe"]).is_err());
        assert!(parse(&["--list"]).is_err()); // bootstrap server is required
    }

    #[test]
    fn zookeeper_and_broker_list_of_kafka_0_9() {
        // --zookeeper alone: the default broker.
        let a = parse(&["--list", "--zookeeper", "localhost:2181"]).unwrap();
        assert_eq!(a.conn.bootstrap(), crate::cli::common::DEFAULT_BOOTSTRAP);
        // --zookeeper with --bootstrap-server: the latter.
        let a = parse(&[
            "--list",
            "--zookeeper",
            "zk:2181",
            "--bootstrap-server",
            "b:1",
        ])
        .unwrap();
        assert_eq!(a.conn.bootstrap(), "b:1");
        let a = parse(&["--list", "--broker-list", "b:2"]).unwrap();
        assert_eq!(a.conn.bootstrap(), "b:2");
    }

    #[test]
    fn validation() {
        let bad = |argv: &[&str]| validate(&parse(argv).unwrap()).is_err();
        assert!(bad(&["--bootstrap-server", "h:1", "--create"]));
        assert!(bad(&[
            "--bootstrap-server",
            "h:1",
            "--list",
            "--partitions",
            "2"
        ]));
        assert!(bad(&[
            "--bootstrap-server",
            "h:1",
            "--alter",
            "--topic",
            "t"
        ]));
        assert!(bad(&[
            "--bootstrap-server",
            "h:1",
            "--create",
            "--topic",
            "t",
            "--partitions",
            "0"
        ]));
        assert!(bad(&[
            "--bootstrap-server",
            "h:1",
            "--create",
            "--topic",
            "t",
            "--config",
            "oops"
        ]));
        assert!(!bad(&[
            "--bootstrap-server",
            "h:1",
            "--alter",
            "--topic",
            "t",
            "--partitions",
            "4"
        ]));
        assert!(!bad(&["--bootstrap-server", "h:1", "--describe"]));
    }
}
