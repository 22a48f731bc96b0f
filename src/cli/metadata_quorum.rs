//! `sluice metadata-quorum`: what `kafka-metadata-quorum.sh describe` prints,
//! from DescribeQuorum.

use std::io::Write;

use anyhow::{bail, Result};

use super::common::ConnArgs;
use crate::client::{Client, QuorumInfo};

/// Arguments of `sluice metadata-quorum` (shaped like kafka-metadata-quorum.sh).
#[derive(Debug, Clone, clap::Args)]
pub struct MetadataQuorumArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub cmd: QuorumCmd,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum QuorumCmd {
    /// Describe the metadata quorum.
    Describe {
        /// The quorum's leader, epoch, high watermark, lag and voters.
        #[arg(long)]
        status: bool,
        /// Each voter's log end offset, lag and last contact.
        #[arg(long)]
        replication: bool,
        /// With --replication: timestamps as "N ms ago".
        #[arg(long = "human-readable")]
        human_readable: bool,
    },
}

pub fn run(args: MetadataQuorumArgs) -> Result<()> {
    let QuorumCmd::Describe {
        status,
        replication,
        human_readable,
    } = args.cmd;
    // Kafka's own refusals, word for word.
    if status && replication {
        bail!(
            "Only one of --status or --replication should be specified with describe sub-command"
        );
    }
    if !status && !replication {
        bail!("One of --status or --replication must be specified with describe sub-command");
    }
    if human_readable && !replication {
        bail!("The option --human-readable is only supported along with --replication");
    }
    let mut client = Client::connect(&args.conn.bootstrap())?;
    let q = client.describe_quorum()?;
    let mut out = Vec::new();
    if status {
        let cluster_id = client
            .metadata(Some(vec![]))?
            .cluster_id
            .unwrap_or_default();
        write_status(&mut out, &cluster_id, &q)?;
    } else {
        write_replication(&mut out, &q, human_readable, now_ms())?;
    }
    std::io::stdout().write_all(&out)?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Kafka 4's `describe --status`.
pub fn write_status(out: &mut impl Write, cluster_id: &str, q: &QuorumInfo) -> Result<()> {
    let leader = q
        .voters
        .iter()
        .find(|v| v.0 == q.leader_id)
        .copied()
        .unwrap_or((q.leader_id, 0, -1, -1));
    // The voter furthest behind (the leader itself when all are level).
    let laggard = q
        .voters
        .iter()
        .min_by_key(|v| v.1)
        .copied()
        .unwrap_or(leader);
    let max_lag = leader.1 - laggard.1;
    let max_lag_ms = if laggard.0 == leader.0 {
        0
    } else if leader.3 >= 0 && laggard.3 >= 0 {
        leader.3 - laggard.3
    } else {
        -1
    };
    let nodes = |v: &[(i32, i64, i64, i64)]| {
        let items: Vec<String> = v
            .iter()
            .map(
                |(id, ..)| match q.endpoints.get(id).filter(|e| !e.is_empty()) {
                    Some(eps) => {
                        let eps: Vec<String> = eps.iter().map(|e| format!("\"{e}\"")).collect();
                        format!("{{\"id\": {id}, \"endpoints\": [{}]}}", eps.join(", "))
                    }
                    None => format!("{{\"id\": {id}}}"),
                },
            )
            .collect();
        format!("[{}]", items.join(", "))
    };
    writeln!(out, "ClusterId:              {cluster_id}")?;
    writeln!(out, "LeaderId:               {}", q.leader_id)?;
    writeln!(out, "LeaderEpoch:            {}", q.leader_epoch)?;
    writeln!(out, "HighWatermark:          {}", q.high_watermark)?;
    writeln!(out, "MaxFollowerLag:         {max_lag}")?;
    writeln!(out, "MaxFollowerLagTimeMs:   {max_lag_ms}")?;
    writeln!(out, "CurrentVoters:          {}", nodes(&q.voters))?;
    writeln!(out, "CurrentObservers:       {}", nodes(&q.observers))?;
    Ok(())
}

/// Kafka 4's `describe --replication`: leader, then followers, then
/// observers; columns padded to their widest cell, each followed by a tab.
pub fn write_replication(
    out: &mut impl Write,
    q: &QuorumInfo,
    human_readable: bool,
    now_ms: i64,
) -> Result<()> {
    let leader_end = q
        .voters
        .iter()
        .find(|v| v.0 == q.leader_id)
        .map_or(0, |v| v.1);
    let ts = |t: i64| {
        if t < 0 {
            "-1".to_string()
        } else if human_readable {
            format!("{} ms ago", (now_ms - t).max(0))
        } else {
            t.to_string()
        }
    };
    let row = |v: &(i32, i64, i64, i64), status: &str| {
        vec![
            v.0.to_string(),
            // sluice keeps one log dir per node and has no directory ids.
            "AAAAAAAAAAAAAAAAAAAAAA".to_string(),
            v.1.to_string(),
            (leader_end - v.1).to_string(),
            ts(v.2),
            ts(v.3),
            status.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    rows.extend(
        q.voters
            .iter()
            .filter(|v| v.0 == q.leader_id)
            .map(|v| row(v, "Leader")),
    );
    rows.extend(
        q.voters
            .iter()
            .filter(|v| v.0 != q.leader_id)
            .map(|v| row(v, "Follower")),
    );
    rows.extend(q.observers.iter().map(|v| row(v, "Observer")));
    let header: Vec<String> = [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            std::iter::once(&header)
                .chain(rows.iter())
                .map(|r| r[c].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let mut line = String::new();
        for (cell, w) in r.iter().zip(&widths) {
            line.push_str(&format!("{cell:<w$}\t"));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> QuorumInfo {
        QuorumInfo {
            leader_id: 2,
            leader_epoch: 5,
            high_watermark: 40,
            voters: vec![(1, 38, 1000, 900), (2, 41, 1010, 1010), (3, 41, 1005, 1005)],
            observers: vec![],
            endpoints: [(1, vec!["CONTROLLER://127.0.0.1:9093".to_string()])]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn status_as_kafka_prints_it() {
        let mut out = Vec::new();
        write_status(&mut out, "abc", &info()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ClusterId:              abc\n\
             LeaderId:               2\n\
             LeaderEpoch:            5\n\
             HighWatermark:          40\n\
             MaxFollowerLag:         3\n\
             MaxFollowerLagTimeMs:   110\n\
             CurrentVoters:          [{\"id\": 1, \"endpoints\": [\"CONTROLLER://127.0.0.1:9093\"]}, {\"id\": 2}, {\"id\": 3}]\n\
             CurrentObservers:       []\n"
        );
    }

    #[test]
    fn replication_as_kafka_prints_it() {
        let mut out = Vec::new();
        write_replication(&mut out, &info(), false, 2000).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t"
        );
        assert_eq!(
            lines[1],
            "2     \tAAAAAAAAAAAAAAAAAAAAAA\t41          \t0  \t1010              \t1010                 \tLeader  \t"
        );
        assert!(lines[2].starts_with("1     \t") && lines[2].ends_with("\tFollower\t"));
        assert!(lines[2].contains("\t3  \t"), "lag of node 1: {}", lines[2]);
        let mut out = Vec::new();
        write_replication(&mut out, &info(), true, 2000).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines().nth(1).unwrap().contains("990 ms ago"),
            "{text}"
        );
    }
}
