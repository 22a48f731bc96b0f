//! Topic-level configs: which keys exist, how values are checked, and how they
//! resolve against the broker defaults into a `LogConfig`.

use std::collections::BTreeMap;

use crate::config::BrokerConfig;
use crate::storage::LogConfig;

/// Keys a topic may override, with the broker key each defaults from.
pub const TOPIC_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("retention.ms", "log.retention.ms"),
    ("retention.bytes", "log.retention.bytes"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("max.message.bytes", "message.max.bytes"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("compression.type", "compression.type"),
];

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
        "flush.messages" => (l.flush_interval_messages.min(i64::MAX as u64)).to_string(),
        "flush.ms" => l
            .flush_interval_ms
            .map_or(i64::MAX, |v| v as i64)
            .to_string(),
        "compression.type" => "producer".into(),
        _ => String::new(),
    }
}

/// Check one key/value; the error is the message Kafka clients show.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    let int = |min: i64| -> Result<(), String> {
        match value.parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {key}: must be an integer >= {min}"
            )),
        }
    };
    match key {
        "cleanup.policy" if value == "delete" => Ok(()),
        "cleanup.policy" => Err(format!("Invalid value {value} for configuration {key}: sluice supports only 'delete' (log compaction is not implemented)")),
        "retention.ms" | "retention.bytes" => int(-1),
        "segment.bytes" => int(14),
        "segment.ms" | "max.message.bytes" | "min.insync.replicas" | "flush.messages" | "flush.ms" => int(1),
        "index.interval.bytes" => int(0),
        "message.timestamp.type" if value == "CreateTime" || value == "LogAppendTime" => Ok(()),
        "message.timestamp.type" => Err(format!("Invalid value {value} for configuration {key}: expected CreateTime or LogAppendTime")),
        "compression.type" if value == "producer" => Ok(()),
        "compression.type" => Err(format!("Invalid value {value} for configuration {key}: only 'producer' (store batches as sent) is supported")),
        _ => Err(format!("Unknown topic config name: {key}")),
    }
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
            ("message.timestamp.type", _) => l.log_append_time = v == "LogAppendTime",
            ("cleanup.policy", _) => l.compact = v.split(',').any(|p| p.trim() == "compact"),
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
    }
}
