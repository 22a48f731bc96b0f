//! `sluice leader-election`: what `kafka-leader-election.sh` does, through
//! ElectLeaders (API 43), printing Kafka's lines.

use std::io::Write;

use anyhow::{bail, Context, Result};
use kafka_protocol::ResponseError;

use super::common::ConnArgs;
use crate::client::{Client, ElectionResult};

/// Arguments of `sluice leader-election` (shaped like kafka-leader-election.sh).
#[derive(Debug, Clone, clap::Args)]
pub struct LeaderElectionArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// "preferred": move leadership to each partition's first replica if
    /// it is in sync; "unclean": give leaderless partitions any live replica.
    #[arg(long = "election-type", value_name = "TYPE")]
    pub election_type: Option<String>,
    /// Every partition an election applies to.
    #[arg(long = "all-topic-partitions")]
    pub all_topic_partitions: bool,
    /// One topic (with --partition).
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long)]
    pub partition: Option<i32>,
    /// {"partitions": [{"topic": "foo", "partition": 1}, ...]}
    #[arg(long = "path-to-json-file", value_name = "FILE")]
    pub path_to_json_file: Option<std::path::PathBuf>,
    /// Accepted as Kafka's tool does; sluice's client needs no properties.
    #[arg(
        long = "command-config",
        visible_alias = "admin.config",
        value_name = "FILE"
    )]
    pub command_config: Option<std::path::PathBuf>,
}

pub fn run(args: LeaderElectionArgs) -> Result<()> {
    // Kafka's checks and messages, in its order.
    let mut missing = Vec::new();
    if args.conn.bootstrap_server.is_none() {
        missing.push("bootstrap-server");
    }
    let Some(kind) = args.election_type.as_deref() else {
        missing.push("election-type");
        bail!("Missing required option(s): {}", missing.join(", "));
    };
    if !missing.is_empty() {
        bail!("Missing required option(s): {}", missing.join(", "));
    }
    let unclean = match kind.to_ascii_lowercase().as_str() {
        "preferred" => false,
        "unclean" => true,
        other => bail!("{other} is not a valid election type: preferred or unclean"),
    };
    let chosen = [
        args.topic.is_some(),
        args.all_topic_partitions,
        args.path_to_json_file.is_some(),
    ];
    if chosen.iter().filter(|c| **c).count() != 1 {
        bail!("One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file");
    }
    if args.topic.is_some() && args.partition.is_none() {
        bail!("Missing required option(s): partition");
    }
    if args.topic.is_none() && args.partition.is_some() {
        bail!("Option partition is only allowed if topic is used");
    }
    let partitions = match (&args.topic, &args.path_to_json_file) {
        (Some(t), _) => Some(vec![(t.clone(), args.partition.unwrap_or_default())]),
        (_, Some(f)) => Some(parse_json_file(
            &std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        )?),
        _ => None,
    };
    let mut client = Client::connect(&args.conn.bootstrap())?;
    let results = client.elect_leaders(unclean, partitions)?;
    let mut out = Vec::new();
    let failed = write_results(
        &mut out,
        if unclean { "UNCLEAN" } else { "PREFERRED" },
        &results,
    )?;
    std::io::stdout().write_all(&out)?;
    if failed > 0 {
        bail!("{failed} replica(s) could not be elected");
    }
    Ok(())
}

/// Kafka's replica election data file; duplicates are refused.
pub fn parse_json_file(text: &str) -> Result<Vec<(String, i32)>> {
    #[derive(serde::Deserialize)]
    struct File {
        partitions: Option<Vec<Tp>>,
    }
    #[derive(serde::Deserialize)]
    struct Tp {
        topic: String,
        partition: i32,
    }
    let f: File = serde_json::from_str(text).context("Replica election data is not valid JSON")?;
    let Some(tps) = f.partitions else {
        bail!("Replica election data is missing \"partitions\" field");
    };
    let mut out: Vec<(String, i32)> = Vec::with_capacity(tps.len());
    for tp in tps {
        let key = (tp.topic, tp.partition);
        if out.contains(&key) {
            bail!(
                "Replica election data contains duplicate partitions: {}-{}",
                key.0,
                key.1
            );
        }
        out.push(key);
    }
    Ok(out)
}

/// The tool's three kinds of line; returns how many partitions failed.
pub fn write_results(
    out: &mut impl Write,
    kind: &str,
    results: &[ElectionResult],
) -> Result<usize> {
    let names = |code: Option<i16>| -> Vec<String> {
        results
            .iter()
            .filter(|r| match code {
                Some(c) => r.error_code == c,
                None => {
                    r.error_code != 0 && r.error_code != ResponseError::ElectionNotNeeded.code()
                }
            })
            .map(|r| format!("{}-{}", r.topic, r.partition))
            .collect()
    };
    let succeeded = names(Some(0));
    if !succeeded.is_empty() {
        writeln!(
            out,
            "Successfully completed leader election ({kind}) for partitions {}",
            succeeded.join(", ")
        )?;
    }
    let noop = names(Some(ResponseError::ElectionNotNeeded.code()));
    if !noop.is_empty() {
        writeln!(
            out,
            "Valid replica already elected for partitions {}",
            noop.join(", ")
        )?;
    }
    let mut failed = 0;
    for r in results
        .iter()
        .filter(|r| r.error_code != 0 && r.error_code != ResponseError::ElectionNotNeeded.code())
    {
        failed += 1;
        let code =
            ResponseError::try_from_code(r.error_code).unwrap_or(ResponseError::UnknownServerError);
        writeln!(
            out,
            "Error completing leader election ({kind}) for partition: {}-{}: org.apache.kafka.common.errors.{code:?}Exception: {}",
            r.topic,
            r.partition,
            r.message.as_deref().unwrap_or_default()
        )?;
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(topic: &str, partition: i32, code: ResponseError, msg: &str) -> ElectionResult {
        ElectionResult {
            topic: topic.into(),
            partition,
            error_code: code.code(),
            message: (!msg.is_empty()).then(|| msg.to_string()),
        }
    }

    #[test]
    fn prints_kafkas_three_kinds_of_line() {
        let results = [
            ElectionResult {
                topic: "t".into(),
                partition: 0,
                error_code: 0,
                message: None,
            },
            ElectionResult {
                topic: "t".into(),
                partition: 2,
                error_code: 0,
                message: None,
            },
            r(
                "u",
                1,
                ResponseError::ElectionNotNeeded,
                "Leader election not needed",
            ),
            r(
                "v",
                3,
                ResponseError::PreferredLeaderNotAvailable,
                "Failed to elect",
            ),
        ];
        let mut out = Vec::new();
        assert_eq!(write_results(&mut out, "PREFERRED", &results).unwrap(), 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Successfully completed leader election (PREFERRED) for partitions t-0, t-2\n\
             Valid replica already elected for partitions u-1\n\
             Error completing leader election (PREFERRED) for partition: v-3: \
             org.apache.kafka.common.errors.PreferredLeaderNotAvailableException: Failed to elect\n"
        );
        let mut out = Vec::new();
        assert_eq!(write_results(&mut out, "UNCLEAN", &[]).unwrap(), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn reads_kafkas_election_file_and_refuses_duplicates() {
        assert_eq!(
            parse_json_file(r#"{"partitions": [{"topic": "foo", "partition": 1}, {"topic": "bar", "partition": 2}]}"#)
                .unwrap(),
            vec![("foo".to_string(), 1), ("bar".to_string(), 2)]
        );
        let dup = parse_json_file(
            r#"{"partitions": [{"topic": "foo", "partition": 1}, {"topic": "foo", "partition": 1}]}"#,
        );
        assert!(dup
            .unwrap_err()
            .to_string()
            .contains("duplicate partitions: foo-1"));
        assert!(parse_json_file(r#"{"version": 1}"#)
            .unwrap_err()
            .to_string()
            .contains("missing \"partitions\""));
    }
}
