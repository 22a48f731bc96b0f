//! `topics --describe` output, byte-for-byte like kafka-topics.sh.

use std::fmt::Write;

use uuid::Uuid;

use crate::client::{ConfigEntry, PartitionMetadata, TopicMetadata};

/// Kafka's describe report options (`--under-replicated-partitions` and
/// friends): with any set, only the partitions they select are printed, and
/// no topic header line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// ISR smaller than the replica set.
    pub under_replicated: bool,
    /// No leader, or a leader that is not a live broker.
    pub unavailable: bool,
    /// No leader, or an ISR smaller than `min.insync.replicas`.
    pub under_min_isr: bool,
    /// An ISR of exactly `min.insync.replicas`.
    pub at_min_isr: bool,
}

impl Report {
    pub fn any(&self) -> bool {
        self.under_replicated || self.unavailable || self.under_min_isr || self.at_min_isr
    }

    /// Kafka's `TopicCommand.shouldPrintTopicPartition`.
    fn selects(&self, p: &PartitionMetadata, min_isr: Option<usize>, live: &[i32]) -> bool {
        let has_leader = p.leader >= 0;
        !self.any()
            || (self.under_replicated && p.isr.len() < p.replicas.len())
            || (self.unavailable && (!has_leader || !live.contains(&p.leader)))
            || (self.under_min_isr && (!has_leader || min_isr.is_some_and(|m| p.isr.len() < m)))
            || (self.at_min_isr && min_isr == Some(p.isr.len()))
    }
}

/// The header line plus one line per partition, each ending in '\n', as
/// narrowed by report options; `live` are the brokers the cluster lists (for
/// `unavailable`).
pub fn describe_topic_report(
    topic: &TopicMetadata,
    configs: &[ConfigEntry],
    report: Report,
    live: &[i32],
) -> String {
    let overrides: Vec<String> = configs
        .iter()
        .filter(|c| !c.is_default())
        .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("null")))
        .collect();
    let min_isr: Option<usize> = configs
        .iter()
        .find(|c| c.name == "min.insync.replicas")
        .and_then(|c| c.value.as_deref()?.parse().ok());
    let replication = topic.partitions.first().map_or(0, |p| p.replicas.len());

    let mut out = String::new();
    if !report.any() {
        let _ = write!(out, "Topic: {}", topic.name);
        if !topic.topic_id.is_nil() {
            let _ = write!(out, "\tTopicId: {}", kafka_uuid(&topic.topic_id));
        }
        let _ = writeln!(
            out,
            "\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
            topic.partitions.len(),
            replication,
            overrides.join(",")
        );
    }
    for p in topic
        .partitions
        .iter()
        .filter(|p| report.selects(p, min_isr, live))
    {
        let leader = if p.leader < 0 {
            "none".to_string()
        } else {
            p.leader.to_string()
        };
        let _ = writeln!(
            out,
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
            topic.name,
            p.partition,
            leader,
            join(&p.replicas),
            join(&p.isr)
        );
    }
    out
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Kafka's `Uuid.toString()`: URL-safe base64 of the 16 bytes, no padding.
pub fn kafka_uuid(id: &Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in id.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(ALPHABET[index as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_like_kafka() {
        assert_eq!(kafka_uuid(&Uuid::from_u128(1)), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(
            kafka_uuid(&Uuid::from_u128(u128::MAX)),
            "_____________________w"
        );
        // The topic id shown in Kafka's quickstart documentation.
        let id = Uuid::parse_str("34f9991f-285b-47dc-b4d3-032094c1f6b2").unwrap();
        assert_eq!(kafka_uuid(&id), "NPmZHyhbR9y00wMglMH2sg");
    }

    #[test]
    fn format_matches_kafka_topics_sh() {
        let topic = TopicMetadata {
            name: "orders".into(),
            topic_id: Uuid::from_u128(1),
            is_internal: false,
            error: None,
            partitions: vec![
                PartitionMetadata {
                    partition: 0,
                    leader: 1,
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                    error: None,
                },
                PartitionMetadata {
                    partition: 1,
                    leader: -1,
                    replicas: vec![2, 1],
                    isr: vec![],
                    error: None,
                },
            ],
        };
        let entry = |name: &str, value: &str, source: i8| ConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            source,
            read_only: false,
            sensitive: false,
        };
        let configs = vec![
            entry("cleanup.policy", "compact", 1),
            entry("retention.ms", "604800000", 5),
            entry("segment.bytes", "1024", 1),
        ];
        assert_eq!(
            describe_topic_report(&topic, &configs, Report::default(), &[]),
            "Topic: orders\tTopicId: AAAAAAAAAAAAAAAAAAAAAQ\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: cleanup.policy=compact,segment.bytes=1024\n\
             \tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\n\
             \tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 2,1\tIsr: \n"
        );
    }

    #[test]
    fn report_options_select_partitions_as_kafka_does() {
        let part = |partition, leader, replicas: &[i32], isr: &[i32]| PartitionMetadata {
            partition,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            error: None,
        };
        let topic = TopicMetadata {
            name: "t".into(),
            topic_id: Uuid::nil(),
            is_internal: false,
            error: None,
            partitions: vec![
                part(0, 1, &[1, 2, 3], &[1, 2, 3]),
                part(1, 2, &[2, 3, 1], &[2, 3]),
                part(2, 3, &[3, 1, 2], &[3]),
                part(3, -1, &[1, 2, 3], &[1]),
                part(4, 4, &[4, 1, 2], &[4, 1, 2]),
            ],
        };
        let configs = vec![ConfigEntry {
            name: "min.insync.replicas".into(),
            value: Some("2".into()),
            source: 1,
            read_only: false,
            sensitive: false,
        }];
        let live = [1, 2, 3];
        let selected = |report: Report| -> Vec<i32> {
            describe_topic_report(&topic, &configs, report, &live)
                .lines()
                .map(|l| {
                    assert!(l.starts_with("\tTopic: t\tPartition: "), "{l}");
                    l.split('\t').nth(2).unwrap()["Partition: ".len()..]
                        .parse()
                        .unwrap()
                })
                .collect()
        };
        let under_replicated = Report {
            under_replicated: true,
            ..Report::default()
        };
        assert_eq!(selected(under_replicated), vec![1, 2, 3]);
        let unavailable = Report {
            unavailable: true,
            ..Report::default()
        };
        assert_eq!(selected(unavailable), vec![3, 4]);
        let under_min_isr = Report {
            under_min_isr: true,
            ..Report::default()
        };
        assert_eq!(selected(under_min_isr), vec![2, 3]);
        let at_min_isr = Report {
            at_min_isr: true,
            ..Report::default()
        };
        assert_eq!(selected(at_min_isr), vec![1]);
        // Without an option: the header and every partition.
        let all = describe_topic_report(&topic, &configs, Report::default(), &live);
        assert!(all.starts_with(
            "Topic: t\tPartitionCount: 5\tReplicationFactor: 3\tConfigs: min.insync.replicas=2\n"
        ));
        assert_eq!(all.lines().count(), 6);
    }
}
