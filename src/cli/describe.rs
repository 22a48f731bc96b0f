//! `topics --describe` output, byte-for-byte like kafka-topics.sh.

use std::fmt::Write;

use uuid::Uuid;

use crate::client::{ConfigEntry, TopicMetadata};

/// The header line plus one line per partition, each ending in '\n'.
pub fn describe_topic(topic: &TopicMetadata, configs: &[ConfigEntry]) -> String {
    let overrides: Vec<String> = configs
        .iter()
        .filter(|c| !c.is_default())
        .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("null")))
        .collect();
    let replication = topic.partitions.first().map_or(0, |p| p.replicas.len());

    let mut out = format!("Topic: {}", topic.name);
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
    for p in &topic.partitions {
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
    use crate::client::PartitionMetadata;

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
            describe_topic(&topic, &configs),
            "Topic: orders\tTopicId: AAAAAAAAAAAAAAAAAAAAAQ\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: cleanup.policy=compact,segment.bytes=1024\n\
             \tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\n\
             \tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 2,1\tIsr: \n"
        );
    }
}
