//! Topic-level configs: which keys exist, how values are checked, and how they
//! resolve against the broker defaults into a `LogConfig`.

use std::collections::BTreeMap;

use crate::config::BrokerConfig;
use crate::storage::LogConfig;

/// The broker-level default of a topic key, as a string.
pub fn default_value(key: &str, b: &BrokerConfig) -> String {
    let l = &b.log;
    match key {
        "cleanup.policy" => "delete".into(),
        "retention.ms" => l.retention_ms.to_string(),
        "retention.bytes" => l.retention_bytes.to_string(),
        "segment.bytes" => l.segment_bytes.to_string(),
        "segment.ms" => l.segment_ms.to_string(),
        "max.message.bytes" => l.max_message_bytes.to_string(),
        "message.timestamp.type" => if l.log_append_time {
            "LogAppendTime"
        } else {
            "CreateTime"
        }
        .into(),
        "index.interval.bytes" => l.index_interval_bytes.to_string(),
        "min.insync.replicas" => b.min_insync_replicas.to_string(),
        "unclean.leader.election.enable" => {
            b.replication.unclean_leader_election_enable.to_string()
        }
        "compression.type" => l.compression.name().into(),
        "message.timestamp.before.max.ms" => l.timestamp_before_max_ms.to_string(),
        "message.timestamp.after.max.ms" => l.timestamp_after_max_ms.to_string(),
        "flush.messages" => (l.flush_interval_messages.min(i64::MAX as u64)).to_string(),
        "flush.ms" => l
            .flush_interval_ms
            .map_or(i64::MAX, |v| v as i64)
            .to_string(),
        // Keys sluice has no broker setting for: Kafka's own default.
        _ => super::topic_keys::lookup(key).map_or(String::new(), |k| k.default.to_string()),
    }
}

/// Check one key/value as Kafka 4 does (unknown name, type, range); the
/// error is the message Kafka clients show.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    super::topic_keys::validate_pair(key, value)
}

/// Does the broker itself set this key to something other than Kafka's
/// default (DescribeConfigs then says STATIC_BROKER_CONFIG, not DEFAULT)?
pub fn broker_overrides(key: &str, b: &BrokerConfig) -> bool {
    super::topic_keys::lookup(key).is_some_and(|k| default_value(key, b) != k.default)
}

/// Resolve a topic's overrides over the broker defaults.
pub fn resolve(b: &BrokerConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let mut l = b.log.clone();
    l.min_insync_replicas = b.min_insync_replicas;
    for (k, v) in overrides {
        let n = v.parse::<i64>().ok();
        match (k.as_str(), n) {
            ("retention.ms", Some(n)) => l.retention_ms = n,
            ("retention.bytes", Some(n)) => l.retention_bytes = n,
            ("segment.bytes", Some(n)) => l.segment_bytes = n as u64,
            ("segment.ms", Some(n)) => l.segment_ms = n,
            ("max.message.bytes", Some(n)) => l.max_message_bytes = n as usize,
            ("index.interval.bytes", Some(n)) => l.index_interval_bytes = n as u64,
            ("flush.messages", Some(n)) => l.flush_interval_messages = n as u64,
            ("flush.ms", Some(n)) => l.flush_interval_ms = Some(n as u64),
            ("min.insync.replicas", Some(n)) => l.min_insync_replicas = n as i32,
            ("message.timestamp.before.max.ms", Some(n)) => l.timestamp_before_max_ms = n,
            ("message.timestamp.after.max.ms", Some(n)) => l.timestamp_after_max_ms = n,
            ("message.timestamp.type", _) => l.log_append_time = v == "LogAppendTime",
            ("cleanup.policy", _) => l.compact = v.split(',').any(|p| p.trim() == "compact"),
            ("compression.type", _) => {
                if let Some(c) = crate::storage::recompress::TopicCompression::parse(v) {
                    l.compression = c;
                }
            }
            _ => {}
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_resolve_over_defaults() {
        let b = BrokerConfig::default();
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "5000".to_string());
        o.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let l = resolve(&b, &o);
        assert_eq!(l.retention_ms, 5000);
        assert!(l.log_append_time);
        assert_eq!(l.segment_bytes, b.log.segment_bytes);
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("segment.bytes", "1").is_err());
        assert!(validate("no.such.key", "1")
            .unwrap_err()
            .contains("Unknown"));
        // Kafka 4's keys beyond what sluice acts on are accepted and checked.
        assert!(validate("compression.type", "lz4").is_ok());
        assert!(validate("delete.retention.ms", "900").is_ok());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("message.format.version", "3.0").is_err());
        // Every key's broker-level default is a valid value of it.
        for k in crate::cluster::topic_keys::TOPIC_KEYS {
            let v = default_value(k.name, &b);
            assert!(validate(k.name, &v).is_ok(), "{} = {v}", k.name);
        }
    }
}
