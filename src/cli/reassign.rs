//! `sluice reassign-partitions`: what `kafka-reassign-partitions.sh` does,
//! through AlterPartitionReassignments / ListPartitionReassignments (APIs
//! 45/46) and Metadata, printing Kafka's lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use kafka_protocol::ResponseError;

use super::common::ConnArgs;
use crate::client::{Client, ElectionResult, OngoingReassignment};

/// Arguments of `sluice reassign-partitions` (shaped like
/// kafka-reassign-partitions.sh). Its `--broker-list` is --generate's list
/// of brokers, as in Kafka's tool, so the connection options are its own.
#[derive(Debug, Clone, clap::Args)]
pub struct ReassignArgs {
    /// Broker(s) to bootstrap from: HOST:PORT[,HOST:PORT...]
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Accepted for Kafka 0.9 command lines (sluice has no ZooKeeper).
    #[arg(long, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
    /// Start the reassignment in --reassignment-json-file.
    #[arg(long)]
    pub execute: bool,
    /// Report whether the reassignment in --reassignment-json-file is done.
    #[arg(long)]
    pub verify: bool,
    /// Cancel the reassignment of the partitions in --reassignment-json-file.
    #[arg(long)]
    pub cancel: bool,
    /// List the partitions being reassigned.
    #[arg(long)]
    pub list: bool,
    /// Propose a placement of --topics-to-move-json-file's topics over
    /// --broker-list (prints it; moves nothing).
    #[arg(long)]
    pub generate: bool,
    /// {"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[1,2,3]}]}
    #[arg(long = "reassignment-json-file", value_name = "FILE")]
    pub reassignment_json_file: Option<PathBuf>,
    /// {"version":1,"topics":[{"topic":"foo"}]}
    #[arg(long = "topics-to-move-json-file", value_name = "FILE")]
    pub topics_to_move_json_file: Option<PathBuf>,
    /// --generate: the brokers to place on, "1,2,3".
    #[arg(long = "broker-list", value_name = "IDS")]
    pub broker_list: Option<String>,
    /// --execute while other reassignments are in progress.
    #[arg(long)]
    pub additional: bool,
    /// Refused: sluice does not throttle replication.
    #[arg(long, value_name = "BYTES_PER_S")]
    pub throttle: Option<i64>,
    /// Refused: sluice has one log directory per broker.
    #[arg(long = "replica-alter-log-dirs-throttle", value_name = "BYTES_PER_S")]
    pub replica_alter_log_dirs_throttle: Option<i64>,
    /// How long --execute and --cancel wait for the controller, in ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout: u64,
    /// Accepted (there are no throttles to clear).
    #[arg(long = "preserve-throttles")]
    pub preserve_throttles: bool,
    /// Accepted (sluice brokers have no racks).
    #[arg(long = "disable-rack-aware")]
    pub disable_rack_aware: bool,
    /// Accepted as Kafka's tool does; sluice's client needs no properties.
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

/// One partition's wanted replicas.
pub type Target = ((String, i32), Vec<i32>);

pub fn run(args: ReassignArgs) -> Result<()> {
    let actions = [
        args.execute,
        args.verify,
        args.cancel,
        args.list,
        args.generate,
    ];
    if actions.iter().filter(|a| **a).count() != 1 {
        bail!("Command must include exactly one action: --generate, --execute, --verify, --cancel, --list");
    }
    if args.bootstrap_server.is_none() && args.zookeeper.is_none() {
        bail!("Please specify either --bootstrap-server or --bootstrap-controller");
    }
    if args.throttle.is_some() || args.replica_alter_log_dirs_throttle.is_some() {
        bail!("sluice does not throttle replication: --throttle and --replica-alter-log-dirs-throttle cannot be honoured (a reassignment copies at the followers' fetch rate, bounded by replica.fetch.max.bytes)");
    }
    let conn = ConnArgs {
        bootstrap_server: args.bootstrap_server.clone(),
        zookeeper: args.zookeeper.clone(),
        request_timeout_ms: args.timeout.max(1),
    };
    let json_file = || -> Result<String> {
        let Some(f) = &args.reassignment_json_file else {
            bail!("Missing required argument \"[reassignment-json-file]\"");
        };
        std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))
    };
    let mut out = Vec::new();
    let result = if args.list {
        let mut client = Client::connect(&conn.bootstrap())?;
        write_list(&mut out, &client.list_partition_reassignments()?)
    } else if args.generate {
        let Some(f) = &args.topics_to_move_json_file else {
            bail!("Missing required argument \"[topics-to-move-json-file]\"");
        };
        let Some(brokers) = &args.broker_list else {
            bail!("Missing required argument \"[broker-list]\"");
        };
        let topics = parse_topics_to_move(
            &std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        )?;
        let brokers = parse_broker_list(brokers)?;
        let mut client = Client::connect(&conn.bootstrap())?;
        generate(&mut out, &mut client, &topics, &brokers)
    } else {
        let targets = parse_reassignment(&json_file()?)?;
        let mut client = Client::connect(&conn.bootstrap())?;
        if args.verify {
            verify(&mut out, &mut client, &targets)
        } else if args.execute {
            check_for_execute(&targets)?;
            execute(&mut out, &mut client, &targets, args.additional)
        } else {
            cancel(&mut out, &mut client, &targets)
        }
    };
    std::io::stdout().write_all(&out)?;
    result
}

/// The current replicas of every partition of `topics`, from Metadata.
fn current_replicas(
    client: &mut Client,
    topics: Vec<String>,
) -> Result<BTreeMap<(String, i32), Vec<i32>>> {
    let md = client.metadata(Some(topics))?;
    let mut out = BTreeMap::new();
    for t in md.topics {
        if t.error.is_some() {
            continue;
        }
        for p in t.partitions {
            out.insert((t.name.clone(), p.partition), p.replicas);
        }
    }
    Ok(out)
}

fn execute(
    out: &mut Vec<u8>,
    client: &mut Client,
    targets: &[Target],
    additional: bool,
) -> Result<()> {
    if !additional && !client.list_partition_reassignments()?.is_empty() {
        bail!("Cannot execute because there is an existing partition assignment.  Use --additional to override this and create a new partition assignment in addition to the existing one. The --additional flag can also be used to change the throttle by resubmitting the current reassignment.");
    }
    let topics = distinct_topics(targets);
    // As Kafka's tool: every target broker is a live one (Metadata lists
    // the unfenced brokers, as DescribeCluster does).
    let md = client.metadata(Some(topics.clone()))?;
    let live: Vec<i32> = md.brokers.iter().map(|b| b.node_id).collect();
    if let Some(b) = targets
        .iter()
        .flat_map(|(_, r)| r.iter())
        .find(|b| !live.contains(b))
    {
        bail!("Unknown broker id {b}");
    }
    let current = current_replicas(client, topics)?;
    let mut targets = targets.to_vec();
    targets.sort();
    if let Some(((t, _), _)) = targets
        .iter()
        .find(|((t, _), _)| !current.keys().any(|(ct, _)| ct == t))
    {
        bail!(
            "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: Topic {t} not found."
        );
    }
    let missing: Vec<String> = targets
        .iter()
        .filter(|((t, p), _)| !current.contains_key(&(t.clone(), *p)))
        .map(|((t, p), _)| format!("{t}-{p}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: Unable to find partition: {}",
            missing.join(", ")
        );
    }
    let now: Vec<Target> = targets
        .iter()
        .map(|(tp, _)| (tp.clone(), current[tp].clone()))
        .collect();
    writeln!(out, "Current partition replica assignment\n")?;
    writeln!(out, "{}\n", assignment_json(&now))?;
    writeln!(
        out,
        "Save this to use as the --reassignment-json-file option during rollback"
    )?;
    let asked: Vec<(String, i32, Option<Vec<i32>>)> = targets
        .iter()
        .map(|((t, p), r)| (t.clone(), *p, Some(r.clone())))
        .collect();
    let results = client.alter_partition_reassignments(&asked)?;
    let failed = failures(&results);
    if !failed.is_empty() {
        std::io::stdout().write_all(out)?;
        out.clear();
        bail!("Error reassigning partition(s):\n{}", failed.join("\n"));
    }
    let names: Vec<String> = targets
        .iter()
        .map(|((t, p), _)| format!("{t}-{p}"))
        .collect();
    writeln!(
        out,
        "Successfully started partition reassignment{} for {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(",")
    )?;
    Ok(())
}

/// Kafka's per-partition failure lines: "t-0: <message>", sorted.
fn failures(results: &[ElectionResult]) -> Vec<String> {
    let mut v: Vec<String> = results
        .iter()
        .filter(|r| r.error_code != 0)
        .map(|r| {
            let code = ResponseError::try_from_code(r.error_code)
                .unwrap_or(ResponseError::UnknownServerError);
            format!(
                "{}-{}: {}",
                r.topic,
                r.partition,
                r.message.clone().unwrap_or_else(|| format!("{code:?}"))
            )
        })
        .collect();
    v.sort();
    v
}

/// As Kafka's tool: only the file's partitions that are being moved are
/// cancelled.
fn cancel(out: &mut Vec<u8>, client: &mut Client, targets: &[Target]) -> Result<()> {
    let ongoing = client.list_partition_reassignments()?;
    let mut asked: Vec<(String, i32, Option<Vec<i32>>)> = targets
        .iter()
        .filter(|((t, p), _)| ongoing.iter().any(|o| o.topic == *t && o.partition == *p))
        .map(|((t, p), _)| (t.clone(), *p, None))
        .collect();
    asked.sort();
    let results = if asked.is_empty() {
        Vec::new()
    } else {
        client.alter_partition_reassignments(&asked)?
    };
    let mut cancelled: Vec<String> = results
        .iter()
        .filter(|r| r.error_code == 0)
        .map(|r| format!("{}-{}", r.topic, r.partition))
        .collect();
    cancelled.sort();
    let failed = failures(&results);
    if !failed.is_empty() {
        bail!(
            "Error cancelling partition reassignment{} for:\n{}",
            if failed.len() == 1 { "" } else { "s" },
            failed.join("\n")
        );
    }
    if !cancelled.is_empty() {
        writeln!(
            out,
            "Successfully cancelled partition reassignment{} for: {}",
            if cancelled.len() == 1 { "" } else { "s" },
            cancelled.join(",")
        )?;
    } else {
        writeln!(
            out,
            "None of the specified partition reassignments are active."
        )?;
    }
    Ok(())
}

/// Where each partition of a --verify stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub current: Vec<i32>,
    pub target: Vec<i32>,
    pub done: bool,
}

fn verify(out: &mut Vec<u8>, client: &mut Client, targets: &[Target]) -> Result<()> {
    let ongoing = client.list_partition_reassignments()?;
    let current = current_replicas(client, distinct_topics(targets))?;
    let states = reassignment_states(targets, &ongoing, &current);
    for line in status_lines(&states) {
        writeln!(out, "{line}")?;
    }
    // Kafka prints its (here always empty) replica log-dir moves next: a
    // blank line. It then clears replication throttles, which sluice does
    // not have.
    writeln!(out)?;
    Ok(())
}

/// Kafka's `findPartitionReassignmentStates`: a partition in the
/// controller's list is in progress (its replicas being the full, widened
/// set); otherwise it is done, at whatever replicas it has.
pub fn reassignment_states(
    targets: &[Target],
    ongoing: &[OngoingReassignment],
    current: &BTreeMap<(String, i32), Vec<i32>>,
) -> BTreeMap<(String, i32), PartitionState> {
    targets
        .iter()
        .map(|(tp, target)| {
            let moving = ongoing
                .iter()
                .find(|o| o.topic == tp.0 && o.partition == tp.1);
            let state = match moving {
                Some(o) => PartitionState {
                    current: o.replicas.clone(),
                    target: target.clone(),
                    done: false,
                },
                None => PartitionState {
                    current: current.get(tp).cloned().unwrap_or_default(),
                    target: target.clone(),
                    done: true,
                },
            };
            (tp.clone(), state)
        })
        .collect()
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// `ReassignPartitionsCommand.partitionReassignmentStatesToString`.
pub fn status_lines(states: &BTreeMap<(String, i32), PartitionState>) -> Vec<String> {
    std::iter::once("Status of partition reassignment:".to_string())
        .chain(states.iter().map(|((t, p), s)| {
            if !s.done {
                format!("Reassignment of partition {t}-{p} is still in progress.")
            } else if s.current == s.target {
                format!("Reassignment of partition {t}-{p} is completed.")
            } else {
                format!(
                    "There is no active reassignment of partition {t}-{p}, but replica set is {} rather than {}.",
                    ids(&s.current),
                    ids(&s.target)
                )
            }
        }))
        .collect()
}

/// `--list`.
pub fn write_list(out: &mut impl Write, ongoing: &[OngoingReassignment]) -> Result<()> {
    if ongoing.is_empty() {
        writeln!(out, "No partition reassignments found.")?;
        return Ok(());
    }
    let mut sorted: Vec<&OngoingReassignment> = ongoing.iter().collect();
    sorted.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    writeln!(out, "Current partition reassignments:")?;
    for o in sorted {
        write!(
            out,
            "{}-{}: replicas: {}.",
            o.topic,
            o.partition,
            ids(&o.replicas)
        )?;
        if !o.adding.is_empty() {
            write!(out, " adding: {}.", ids(&o.adding))?;
        }
        if !o.removing.is_empty() {
            write!(out, " removing: {}.", ids(&o.removing))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn generate(
    out: &mut Vec<u8>,
    client: &mut Client,
    topics: &[String],
    brokers: &[i32],
) -> Result<()> {
    let md = client.metadata(Some(topics.to_vec()))?;
    // As Kafka's tool: brokers the cluster does not list are dropped.
    let brokers: Vec<i32> = brokers
        .iter()
        .copied()
        .filter(|b| md.brokers.iter().any(|m| m.node_id == *b))
        .collect();
    let brokers = &brokers[..];
    let mut now: Vec<Target> = Vec::new();
    let mut proposed: Vec<Target> = Vec::new();
    for name in topics {
        let Some(t) = md.topic(name).filter(|t| t.error.is_none()) else {
            bail!("Topic {name} not found");
        };
        let mut parts = t.partitions.clone();
        parts.sort_by_key(|p| p.partition);
        let rf = parts.first().map_or(0, |p| p.replicas.len());
        if rf > brokers.len() || brokers.is_empty() {
            bail!(
                "Replication factor: {rf} larger than available brokers: {}.",
                brokers.len()
            );
        }
        let (start, shift) = crate::cluster::placement::random_offsets();
        let placed =
            crate::cluster::placement::assign(brokers, 0, parts.len() as i32, rf, start, shift);
        for (p, replicas) in parts.iter().zip(placed) {
            now.push(((name.clone(), p.partition), p.replicas.clone()));
            proposed.push(((name.clone(), p.partition), replicas));
        }
    }
    writeln!(out, "Current partition replica assignment")?;
    writeln!(out, "{}\n", assignment_json(&now))?;
    writeln!(out, "Proposed partition reassignment configuration")?;
    writeln!(out, "{}", assignment_json(&proposed))?;
    Ok(())
}

fn distinct_topics(targets: &[Target]) -> Vec<String> {
    let mut v: Vec<String> = targets.iter().map(|((t, _), _)| t.clone()).collect();
    v.sort();
    v.dedup();
    v
}

/// Kafka's reassignment JSON, compact, `log_dirs` all "any".
pub fn assignment_json(parts: &[Target]) -> String {
    let partitions: Vec<serde_json::Value> = parts
        .iter()
        .map(|((t, p), replicas)| {
            serde_json::json!({
                "topic": t,
                "partition": p,
                "replicas": replicas,
                "log_dirs": vec!["any"; replicas.len()],
            })
        })
        .collect();
    // serde_json keeps insertion order only with preserve_order; write the
    // keys in Kafka's order by hand.
    let body: Vec<String> = partitions
        .iter()
        .map(|v| {
            format!(
                "{{\"topic\":{},\"partition\":{},\"replicas\":{},\"log_dirs\":{}}}",
                v["topic"], v["partition"], v["replicas"], v["log_dirs"]
            )
        })
        .collect();
    format!("{{\"version\":1,\"partitions\":[{}]}}", body.join(","))
}

/// Kafka's reassignment JSON: the partitions and their target replicas,
/// with the checks Kafka's tool makes for every action. `log_dirs` other
/// than "any" cannot be honoured (one log directory per broker) and are
/// refused.
pub fn parse_reassignment(text: &str) -> Result<Vec<Target>> {
    let v: serde_json::Value =
        serde_json::from_str(text).context("the reassignment JSON is not valid JSON")?;
    let parts = versioned_list(&v, "partitions")?;
    let mut out: Vec<Target> = Vec::with_capacity(parts.len());
    for p in &parts {
        if !p.is_object() {
            bail!("Expected JSON object, received {p}");
        }
        let field = |k: &str| {
            p.get(k)
                .with_context(|| format!("No such field exists: `{k}`"))
        };
        let int = |v: &serde_json::Value| {
            v.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .with_context(|| format!("Expected `Integer` value, received {v}"))
        };
        let topic = field("topic")?;
        let topic = topic
            .as_str()
            .with_context(|| format!("Expected `String` value, received {topic}"))?
            .to_string();
        let partition = int(field("partition")?)?;
        let replicas = field("replicas")?;
        let replicas: Vec<i32> = replicas
            .as_array()
            .with_context(|| format!("Expected JSON array, received {replicas}"))?
            .iter()
            .map(int)
            .collect::<Result<_>>()?;
        if let Some(dirs) = p.get("log_dirs") {
            let dirs: Vec<&str> = dirs
                .as_array()
                .with_context(|| format!("Expected JSON array, received {dirs}"))?
                .iter()
                .map(|d| {
                    d.as_str()
                        .with_context(|| format!("Expected `String` value, received {d}"))
                })
                .collect::<Result<_>>()?;
            if dirs.len() != replicas.len() {
                bail!(
                    "Size of replicas list [{}] is different from size of log dirs list [{}] for partition {topic}-{partition}",
                    replicas.iter().map(i32::to_string).collect::<Vec<_>>().join(", "),
                    dirs.join(", ")
                );
            }
            if dirs.iter().any(|d| *d != "any") {
                bail!("log_dirs other than \"any\" cannot be honoured for partition {topic}-{partition}: a sluice broker keeps every partition in its log.dirs directory");
            }
        }
        out.push(((topic, partition), replicas));
    }
    Ok(out)
}

/// Both of the tool's JSON files: an optional `version` (only 1) and an
/// optional list under `key` (absent: empty), with Kafka's messages.
fn versioned_list(v: &serde_json::Value, key: &str) -> Result<Vec<serde_json::Value>> {
    if let Some(version) = v.get("version") {
        if version.as_i64() != Some(1) {
            bail!("Not supported version field value {version}");
        }
    }
    match v.get(key) {
        None => Ok(Vec::new()),
        Some(l) => Ok(l
            .as_array()
            .with_context(|| format!("Expected JSON array, received {l}"))?
            .clone()),
    }
}

/// The checks Kafka's tool makes before --execute, with its messages.
pub fn check_for_execute(targets: &[Target]) -> Result<()> {
    if targets.is_empty() {
        bail!("Partition reassignment list cannot be empty");
    }
    if targets.iter().any(|(_, r)| r.is_empty()) {
        bail!("Partition replica list cannot be empty");
    }
    let mut dup_parts: Vec<String> = targets
        .iter()
        .enumerate()
        .filter(|(i, (tp, _))| targets[..*i].iter().any(|(o, _)| o == tp))
        .map(|(_, ((t, p), _))| format!("{t}-{p}"))
        .collect();
    dup_parts.sort();
    dup_parts.dedup();
    if !dup_parts.is_empty() {
        bail!(
            "Partition reassignment contains duplicate topic partitions: {}",
            dup_parts.join(",")
        );
    }
    let mut sorted = targets.to_vec();
    sorted.sort();
    let dup_replicas: Vec<String> = sorted
        .iter()
        .filter_map(|((t, p), r)| {
            let mut d: Vec<i32> = r
                .iter()
                .enumerate()
                .filter(|(i, b)| r[..*i].contains(b))
                .map(|(_, b)| *b)
                .collect();
            d.sort();
            d.dedup();
            (!d.is_empty()).then(|| format!("{t}-{p} contains multiple entries for {}", ids(&d)))
        })
        .collect();
    if !dup_replicas.is_empty() {
        bail!(
            "Partition replica lists may not contain duplicate entries: {}",
            dup_replicas.join(". ")
        );
    }
    Ok(())
}

/// --generate's topics: {"version":1,"topics":[{"topic":"foo"}]}.
pub fn parse_topics_to_move(text: &str) -> Result<Vec<String>> {
    let v: serde_json::Value =
        serde_json::from_str(text).context("the topics-to-move JSON is not valid JSON")?;
    let topics = versioned_list(&v, "topics")?;
    let mut out = Vec::new();
    for t in &topics {
        let name = t.get("topic").context("No such field exists: `topic`")?;
        let name = name
            .as_str()
            .with_context(|| format!("Expected `String` value, received {name}"))?;
        if out.iter().any(|o| o == name) {
            bail!("List of topics to reassign contains duplicate entries: [{name}]");
        }
        out.push(name.to_string());
    }
    Ok(out)
}

pub fn parse_broker_list(s: &str) -> Result<Vec<i32>> {
    let mut ids: Vec<i32> = s
        .split(',')
        .map(|b| {
            b.trim()
                .parse::<i32>()
                .with_context(|| format!("invalid broker id {b:?} in --broker-list"))
        })
        .collect::<Result<_>>()?;
    let mut dups: Vec<i32> = ids
        .iter()
        .enumerate()
        .filter(|(i, b)| ids[..*i].contains(b))
        .map(|(_, b)| *b)
        .collect();
    dups.dedup();
    if !dups.is_empty() {
        bail!(
            "Broker list contains duplicate entries: [{}]",
            dups.iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> (String, i32) {
        (t.to_string(), p)
    }

    #[test]
    fn reads_and_writes_kafkas_reassignment_json() {
        let text = r#"{"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[3,2],"log_dirs":["any","any"]},{"topic":"bar","partition":2,"replicas":[1]}]}"#;
        let parsed = parse_reassignment(text).unwrap();
        assert_eq!(
            parsed,
            vec![(tp("foo", 0), vec![3, 2]), (tp("bar", 2), vec![1])]
        );
        assert_eq!(
            assignment_json(&parsed),
            r#"{"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[3,2],"log_dirs":["any","any"]},{"topic":"bar","partition":2,"replicas":[1],"log_dirs":["any"]}]}"#
        );
        let err = |t: &str| parse_reassignment(t).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}"#),
            "Size of replicas list [1, 2] is different from size of log dirs list [any] for partition a-0"
        );
        assert!(err(
            r#"{"partitions":[{"topic":"a","partition":0,"replicas":[1],"log_dirs":["/d"]}]}"#
        )
        .contains("cannot be honoured"));
        assert_eq!(
            err(r#"{"partitions":[{"topic":"a","replicas":[1]}]}"#),
            "No such field exists: `partition`"
        );
        assert_eq!(
            err(r#"{"partitions":[{"topic":"a","partition":"x","replicas":[1]}]}"#),
            "Expected `Integer` value, received \"x\""
        );
        assert_eq!(
            err(r#"{"version":2,"partitions":[]}"#),
            "Not supported version field value 2"
        );
        // --execute's own checks.
        let exec = |t: &str| {
            check_for_execute(&parse_reassignment(t).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            exec(r#"{"version":1,"partitions":[]}"#),
            "Partition reassignment list cannot be empty"
        );
        assert_eq!(
            exec(r#"{"version":1}"#),
            "Partition reassignment list cannot be empty"
        );
        assert_eq!(
            exec(r#"{"partitions":[{"topic":"a","partition":0,"replicas":[]}]}"#),
            "Partition replica list cannot be empty"
        );
        assert_eq!(
            exec(
                r#"{"partitions":[{"topic":"a","partition":1,"replicas":[1]},{"topic":"a","partition":1,"replicas":[2]}]}"#
            ),
            "Partition reassignment contains duplicate topic partitions: a-1"
        );
        assert_eq!(
            exec(r#"{"partitions":[{"topic":"b","partition":1,"replicas":[2,3,2,3]},{"topic":"a","partition":0,"replicas":[1,1]}]}"#),
            "Partition replica lists may not contain duplicate entries: a-0 contains multiple entries for 1. b-1 contains multiple entries for 2,3"
        );
    }

    #[test]
    fn verify_reports_each_partition_as_kafka_does() {
        let targets = vec![
            (tp("bar", 0), vec![1]),
            (tp("foo", 0), vec![1, 2]),
            (tp("foo", 1), vec![2, 3]),
        ];
        let ongoing = vec![OngoingReassignment {
            topic: "foo".into(),
            partition: 1,
            replicas: vec![2, 3, 1],
            adding: vec![3],
            removing: vec![1],
        }];
        let current = BTreeMap::from([
            (tp("bar", 0), vec![2]),
            (tp("foo", 0), vec![1, 2]),
            (tp("foo", 1), vec![2, 3, 1]),
        ]);
        let states = reassignment_states(&targets, &ongoing, &current);
        assert_eq!(
            status_lines(&states),
            vec![
                "Status of partition reassignment:",
                "There is no active reassignment of partition bar-0, but replica set is 2 rather than 1.",
                "Reassignment of partition foo-0 is completed.",
                "Reassignment of partition foo-1 is still in progress.",
            ]
        );
        let mut out = Vec::new();
        write_list(&mut out, &ongoing).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Current partition reassignments:\nfoo-1: replicas: 2,3,1. adding: 3. removing: 1.\n"
        );
        let mut out = Vec::new();
        let reordered = OngoingReassignment {
            topic: "foo".into(),
            partition: 0,
            replicas: vec![1, 2],
            adding: vec![],
            removing: vec![],
        };
        write_list(&mut out, &[reordered]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Current partition reassignments:\nfoo-0: replicas: 1,2.\n"
        );
        let mut out = Vec::new();
        write_list(&mut out, &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "No partition reassignments found.\n"
        );
    }

    #[test]
    fn topics_to_move_and_broker_lists() {
        assert_eq!(
            parse_topics_to_move(r#"{"version":1,"topics":[{"topic":"a"},{"topic":"b"}]}"#)
                .unwrap(),
            vec!["a", "b"]
        );
        assert!(parse_topics_to_move(r#"{"topics":[{"topic":"a"},{"topic":"a"}]}"#).is_err());
        assert_eq!(parse_broker_list("3, 1,2").unwrap(), vec![1, 2, 3]);
        assert_eq!(
            parse_broker_list("1,2,1").unwrap_err().to_string(),
            "Broker list contains duplicate entries: [1]"
        );
        assert!(parse_broker_list("1,x").is_err());
    }
}
