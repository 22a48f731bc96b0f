//! Every topic-level config key of Apache Kafka 4.0 (LogConfig), with its
//! type, default, validator and broker synonyms, and Kafka's parsing and
//! validation messages, so CreateTopics / AlterConfigs /
//! IncrementalAlterConfigs accept and refuse exactly what Kafka does, and
//! DescribeConfigs reports each key with its type. Read from Kafka's 4.0
//! sources (LogConfig.java, ServerTopicConfigSynonyms.java, ConfigDef.java).
//! Keys removed in 4.0 (message.format.version, ...) are unknown names here
//! too.

/// ConfigDef.Type. `wire_id()` is the DescribeConfigs v3+ `ConfigType` byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl Kind {
    /// DescribeConfigsResponse.ConfigType id (UNKNOWN = 0).
    pub const fn wire_id(self) -> i8 {
        match self {
            Kind::Boolean => 1,
            Kind::String => 2,
            Kind::Int => 3,
            Kind::Short => 4,
            Kind::Long => 5,
            Kind::Double => 6,
            Kind::List => 7,
            Kind::Class => 8,
            Kind::Password => 9,
        }
    }
    /// Java enum name, as printed in "Not a number of type INT".
    pub const fn java_name(self) -> &'static str {
        match self {
            Kind::Boolean => "BOOLEAN",
            Kind::String => "STRING",
            Kind::Int => "INT",
            Kind::Short => "SHORT",
            Kind::Long => "LONG",
            Kind::Double => "DOUBLE",
            Kind::List => "LIST",
            Kind::Class => "CLASS",
            Kind::Password => "PASSWORD",
        }
    }
}

/// The validator attached to the key in LogConfig.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// No validator; any value that parses as the type is accepted.
    None,
    /// ConfigDef.Range.atLeast(n)
    AtLeast(i64),
    /// ConfigDef.Range.between(lo, hi), bounds included
    Between(i64, i64),
    /// Range.between(0, 1) on a DOUBLE. Java prints the bounds as integers ("0", "1").
    DoubleBetween(f64, f64),
    /// ConfigDef.ValidString.in(..): exact, case-sensitive match after trimming
    OneOf(&'static [&'static str]),
    /// ConfigDef.ValidList.in(..): every element must be one of these (case-sensitive).
    /// An empty list passes.
    ListOf(&'static [&'static str]),
    /// ThrottledReplicaListValidator: "*" or entries matching ([0-9]+:[0-9]+)?
    ThrottledReplicas,
    /// gzip level: between(lo, hi) or exactly `or` (CompressionType.GZIP.levelValidator)
    BetweenOr(i64, i64, i64),
}

/// How a broker synonym's value maps to the topic key (ConfigSynonym converter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Same,
    HoursToMs,
    MinutesToMs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synonym {
    pub name: &'static str,
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopicKey {
    pub name: &'static str,
    pub kind: Kind,
    /// Value DescribeConfigs shows with no topic override and no broker override.
    pub default: &'static str,
    pub check: Check,
    /// Main broker key (ServerTopicConfigSynonyms.TOPIC_CONFIG_SYNONYMS);
    /// None for LogConfig.CONFIGS_WITH_NO_SERVER_DEFAULTS.
    pub broker_key: Option<&'static str>,
    /// Every broker synonym, highest priority first (ALL_TOPIC_CONFIG_SYNONYMS).
    pub broker_synonyms: &'static [Synonym],
}

const fn s(name: &'static str) -> Synonym {
    Synonym {
        name,
        unit: Unit::Same,
    }
}

const fn key(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    check: Check,
    broker_synonyms: &'static [Synonym],
) -> TopicKey {
    TopicKey {
        name,
        kind,
        default,
        check,
        broker_key: if broker_synonyms.is_empty() {
            None
        } else {
            Some(broker_synonyms[0].name)
        },
        broker_synonyms,
    }
}

pub const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
/// BrokerCompressionType.names(), in Kafka's declaration order (used in the error text).
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

pub const I64_MAX: &str = "9223372036854775807";

/// The 33 topic keys in Kafka 4.0.x, sorted by name (LogConfig.configNames() order).
pub const TOPIC_KEYS: &[TopicKey] = &[
    key(
        "cleanup.policy",
        Kind::List,
        "delete",
        Check::ListOf(CLEANUP_POLICIES),
        &[s("log.cleanup.policy")],
    ),
    key(
        "compression.gzip.level",
        Kind::Int,
        "-1",
        Check::BetweenOr(1, 9, -1),
        &[s("compression.gzip.level")],
    ),
    key(
        "compression.lz4.level",
        Kind::Int,
        "9",
        Check::Between(1, 17),
        &[s("compression.lz4.level")],
    ),
    key(
        "compression.type",
        Kind::String,
        "producer",
        Check::OneOf(COMPRESSION_TYPES),
        &[s("compression.type")],
    ),
    key(
        "compression.zstd.level",
        Kind::Int,
        "3",
        Check::Between(-131072, 22),
        &[s("compression.zstd.level")],
    ),
    key(
        "delete.retention.ms",
        Kind::Long,
        "86400000",
        Check::AtLeast(0),
        &[s("log.cleaner.delete.retention.ms")],
    ),
    key(
        "file.delete.delay.ms",
        Kind::Long,
        "60000",
        Check::AtLeast(0),
        &[s("log.segment.delete.delay.ms")],
    ),
    key(
        "flush.messages",
        Kind::Long,
        I64_MAX,
        Check::AtLeast(1),
        &[s("log.flush.interval.messages")],
    ),
    // log.flush.interval.ms has no default; the broker falls back to log.flush.scheduler.interval.ms.
    key(
        "flush.ms",
        Kind::Long,
        I64_MAX,
        Check::AtLeast(0),
        &[
            s("log.flush.interval.ms"),
            s("log.flush.scheduler.interval.ms"),
        ],
    ),
    // Default is the empty list; DescribeConfigs shows "" (ConfigDef.convertToString).
    key(
        "follower.replication.throttled.replicas",
        Kind::List,
        "",
        Check::ThrottledReplicas,
        &[],
    ),
    key(
        "index.interval.bytes",
        Kind::Int,
        "4096",
        Check::AtLeast(0),
        &[s("log.index.interval.bytes")],
    ),
    key(
        "leader.replication.throttled.replicas",
        Kind::List,
        "",
        Check::ThrottledReplicas,
        &[],
    ),
    // -2 = use retention.bytes
    key(
        "local.retention.bytes",
        Kind::Long,
        "-2",
        Check::AtLeast(-2),
        &[s("log.local.retention.bytes")],
    ),
    // -2 = use retention.ms
    key(
        "local.retention.ms",
        Kind::Long,
        "-2",
        Check::AtLeast(-2),
        &[s("log.local.retention.ms")],
    ),
    key(
        "max.compaction.lag.ms",
        Kind::Long,
        I64_MAX,
        Check::AtLeast(1),
        &[s("log.cleaner.max.compaction.lag.ms")],
    ),
    // 1024*1024 + Records.LOG_OVERHEAD(12)
    key(
        "max.message.bytes",
        Kind::Int,
        "1048588",
        Check::AtLeast(0),
        &[s("message.max.bytes")],
    ),
    // KIP-1030: 4.0 changed the default from Long.MAX_VALUE to 1 hour.
    key(
        "message.timestamp.after.max.ms",
        Kind::Long,
        "3600000",
        Check::AtLeast(0),
        &[s("log.message.timestamp.after.max.ms")],
    ),
    key(
        "message.timestamp.before.max.ms",
        Kind::Long,
        I64_MAX,
        Check::AtLeast(0),
        &[s("log.message.timestamp.before.max.ms")],
    ),
    key(
        "message.timestamp.type",
        Kind::String,
        "CreateTime",
        Check::OneOf(TIMESTAMP_TYPES),
        &[s("log.message.timestamp.type")],
    ),
    key(
        "min.cleanable.dirty.ratio",
        Kind::Double,
        "0.5",
        Check::DoubleBetween(0.0, 1.0),
        &[s("log.cleaner.min.cleanable.ratio")],
    ),
    key(
        "min.compaction.lag.ms",
        Kind::Long,
        "0",
        Check::AtLeast(0),
        &[s("log.cleaner.min.compaction.lag.ms")],
    ),
    key(
        "min.insync.replicas",
        Kind::Int,
        "1",
        Check::AtLeast(1),
        &[s("min.insync.replicas")],
    ),
    key(
        "preallocate",
        Kind::Boolean,
        "false",
        Check::None,
        &[s("log.preallocate")],
    ),
    key(
        "remote.log.copy.disable",
        Kind::Boolean,
        "false",
        Check::None,
        &[],
    ),
    key(
        "remote.log.delete.on.disable",
        Kind::Boolean,
        "false",
        Check::None,
        &[],
    ),
    key(
        "remote.storage.enable",
        Kind::Boolean,
        "false",
        Check::None,
        &[],
    ),
    // No validator at all: any long, negative included (-1 = unlimited).
    key(
        "retention.bytes",
        Kind::Long,
        "-1",
        Check::None,
        &[s("log.retention.bytes")],
    ),
    key(
        "retention.ms",
        Kind::Long,
        "604800000",
        Check::AtLeast(-1),
        &[
            s("log.retention.ms"),
            Synonym {
                name: "log.retention.minutes",
                unit: Unit::MinutesToMs,
            },
            Synonym {
                name: "log.retention.hours",
                unit: Unit::HoursToMs,
            },
        ],
    ),
    // In 4.0.x the topic minimum is still LegacyRecord.RECORD_OVERHEAD_V0 = 14.
    // (The broker's log.segment.bytes minimum is 1 MiB in 4.0; the topic minimum
    // becomes 1 MiB in 4.1.)
    key(
        "segment.bytes",
        Kind::Int,
        "1073741824",
        Check::AtLeast(14),
        &[s("log.segment.bytes")],
    ),
    key(
        "segment.index.bytes",
        Kind::Int,
        "10485760",
        Check::AtLeast(4),
        &[s("log.index.size.max.bytes")],
    ),
    key(
        "segment.jitter.ms",
        Kind::Long,
        "0",
        Check::AtLeast(0),
        &[
            s("log.roll.jitter.ms"),
            Synonym {
                name: "log.roll.jitter.hours",
                unit: Unit::HoursToMs,
            },
        ],
    ),
    key(
        "segment.ms",
        Kind::Long,
        "604800000",
        Check::AtLeast(1),
        &[
            s("log.roll.ms"),
            Synonym {
                name: "log.roll.hours",
                unit: Unit::HoursToMs,
            },
        ],
    ),
    key(
        "unclean.leader.election.enable",
        Kind::Boolean,
        "false",
        Check::None,
        &[s("unclean.leader.election.enable")],
    ),
];

/// Keys in TOPIC_KEYS of type LIST: the only ones IncrementalAlterConfigs
/// APPEND/SUBTRACT accept.
pub const LIST_KEYS: &[&str] = &[
    "cleanup.policy",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
];

// Keys valid in 3.x and gone in 4.0 (message.downconversion.enable,
// message.format.version, message.timestamp.difference.max.ms) are unknown
// names, INVALID_CONFIG "Unknown topic config name: <key>", as in Kafka 4.
/// DescribeConfigsResponse.ConfigSource ids.
pub mod config_source {
    pub const UNKNOWN: i8 = 0;
    /// admin ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG
    pub const TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
    pub const DYNAMIC_BROKER_LOGGER_CONFIG: i8 = 6;
    pub const CLIENT_METRICS_CONFIG: i8 = 7;
    pub const GROUP_CONFIG: i8 = 8;
}

/// Binary search (TOPIC_KEYS is sorted).
pub fn lookup(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS
        .binary_search_by(|k| k.name.cmp(name))
        .ok()
        .map(|i| &TOPIC_KEYS[i])
}

/// LogConfig.validateNames: InvalidConfigurationException, so INVALID_CONFIG.
pub fn unknown_key_message(name: &str) -> String {
    format!("Unknown topic config name: {}", name)
}

/// IncrementalAlterConfigs APPEND/SUBTRACT on a key that is not LIST (or unknown).
/// `op` is "APPEND" or "SUBTRACT".
pub fn not_list_message(op: &str, name: &str) -> String {
    format!("Can't {} to key {} because its type is not LIST.", op, name)
}

/// ConfigException(name, value, message).getMessage()
pub fn config_exception(name: &str, value: &str, msg: &str) -> String {
    format!(
        "Invalid value {} for configuration {}: {}",
        value, name, msg
    )
}

/// A parsed value, in the form Kafka's validators see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Bool(bool),
    Str(String),
    Int(i64), // INT / SHORT / LONG
    Double(f64),
    List(Vec<String>),
}

/// String.trim(): removes every char <= U+0020 at both ends.
fn java_trim(v: &str) -> &str {
    v.trim_matches(|c: char| c <= ' ')
}

/// Java regex \s = [ \t\n\x0B\f\r]
fn is_java_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// Double.toString, for the usual cases (no exact digit-by-digit match in every case).
pub fn java_double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = d.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let mut out = format!("{}", d);
        if !out.contains('.') {
            out.push_str(".0");
        }
        out
    } else {
        let sci = format!("{:E}", d); // e.g. "1E7", "1.5E-5"
        let (mant, exp) = sci.split_once('E').unwrap();
        if mant.contains('.') {
            format!("{}E{}", mant, exp)
        } else {
            format!("{}.0E{}", mant, exp)
        }
    }
}

/// Double.parseDouble, roughly: decimal with an optional f/F/d/D suffix, "NaN" and
/// "[+-]Infinity". Hex floats are not handled. Rust's own words "inf"/"nan" are
/// rejected, as in Java.
fn java_parse_double(t: &str) -> Option<f64> {
    match t {
        "NaN" | "+NaN" | "-NaN" => return Some(f64::NAN),
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let body = t.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(t);
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
    {
        return None;
    }
    body.parse::<f64>().ok()
}

/// ConfigDef.parseType for a String input. Err carries Kafka's exact message.
pub fn parse_value(k: &TopicKey, raw: &str) -> Result<Parsed, String> {
    let t = java_trim(raw);
    let nan = |kind: Kind| {
        config_exception(
            k.name,
            raw,
            &format!("Not a number of type {}", kind.java_name()),
        )
    };
    match k.kind {
        Kind::Boolean => {
            if t.eq_ignore_ascii_case("true") {
                Ok(Parsed::Bool(true))
            } else if t.eq_ignore_ascii_case("false") {
                Ok(Parsed::Bool(false))
            } else {
                Err(config_exception(
                    k.name,
                    raw,
                    "Expected value to be either true or false",
                ))
            }
        }
        Kind::String | Kind::Password | Kind::Class => Ok(Parsed::Str(t.to_string())),
        Kind::Int => t
            .parse::<i32>()
            .map(|v| Parsed::Int(v as i64))
            .map_err(|_| nan(Kind::Int)),
        Kind::Short => t
            .parse::<i16>()
            .map(|v| Parsed::Int(v as i64))
            .map_err(|_| nan(Kind::Short)),
        Kind::Long => t
            .parse::<i64>()
            .map(Parsed::Int)
            .map_err(|_| nan(Kind::Long)),
        Kind::Double => java_parse_double(t)
            .map(Parsed::Double)
            .ok_or_else(|| nan(Kind::Double)),
        Kind::List => {
            if t.is_empty() {
                Ok(Parsed::List(Vec::new()))
            } else {
                // Pattern "\\s*,\\s*", split(..., -1): empty pieces are kept.
                Ok(Parsed::List(
                    t.split(',')
                        .map(|p| p.trim_matches(is_java_ws).to_string())
                        .collect(),
                ))
            }
        }
    }
}

fn fmt_bound(b: f64) -> String {
    if b.fract() == 0.0 {
        format!("{}", b as i64)
    } else {
        java_double_to_string(b)
    }
}

fn is_replica_entry(e: &str) -> bool {
    // ([0-9]+:[0-9]+)?  (full match; the empty string is allowed)
    if e.is_empty() {
        return true;
    }
    match e.split_once(':') {
        Some((p, b)) => {
            !p.is_empty()
                && !b.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Runs the key's validator on a parsed value. Err carries Kafka's exact message.
pub fn check_parsed(k: &TopicKey, v: &Parsed) -> Result<(), String> {
    let name = k.name;
    match (k.check, v) {
        (Check::None, _) => Ok(()),
        (Check::AtLeast(min), Parsed::Int(n)) => {
            if *n < min {
                Err(config_exception(
                    name,
                    &n.to_string(),
                    &format!("Value must be at least {}", min),
                ))
            } else {
                Ok(())
            }
        }
        (Check::Between(lo, hi), Parsed::Int(n)) => {
            if *n < lo {
                Err(config_exception(
                    name,
                    &n.to_string(),
                    &format!("Value must be at least {}", lo),
                ))
            } else if *n > hi {
                Err(config_exception(
                    name,
                    &n.to_string(),
                    &format!("Value must be no more than {}", hi),
                ))
            } else {
                Ok(())
            }
        }
        (Check::DoubleBetween(lo, hi), Parsed::Double(d)) => {
            // Java compares with < and >, so NaN passes (same here).
            if *d < lo {
                Err(config_exception(
                    name,
                    &java_double_to_string(*d),
                    &format!("Value must be at least {}", fmt_bound(lo)),
                ))
            } else if *d > hi {
                Err(config_exception(
                    name,
                    &java_double_to_string(*d),
                    &format!("Value must be no more than {}", fmt_bound(hi)),
                ))
            } else {
                Ok(())
            }
        }
        (Check::BetweenOr(lo, hi, or), Parsed::Int(n)) => {
            if *n > hi || (*n < lo && *n != or) {
                Err(config_exception(
                    name,
                    &n.to_string(),
                    &format!("Value must be between {} and {} or equal to {}", lo, hi, or),
                ))
            } else {
                Ok(())
            }
        }
        (Check::OneOf(allowed), Parsed::Str(sv)) => {
            if allowed.contains(&sv.as_str()) {
                Ok(())
            } else {
                Err(config_exception(
                    name,
                    sv,
                    &format!("String must be one of: {}", allowed.join(", ")),
                ))
            }
        }
        (Check::ListOf(allowed), Parsed::List(items)) => {
            for it in items {
                if !allowed.contains(&it.as_str()) {
                    return Err(config_exception(
                        name,
                        it,
                        &format!("String must be one of: {}", allowed.join(", ")),
                    ));
                }
            }
            Ok(())
        }
        (Check::ThrottledReplicas, Parsed::List(items)) => {
            let trimmed: Vec<&str> = items.iter().map(|e| java_trim(e)).collect();
            if trimmed.iter().all(|e| is_replica_entry(e)) || trimmed.concat() == "*" {
                Ok(())
            } else {
                let shown = format!("[{}]", items.join(", "));
                Err(config_exception(
                    name,
                    &shown,
                    &format!(
                    "{} must be the literal '*' or a list of replicas in the following format: \
                     [partitionId]:[brokerId],[partitionId]:[brokerId],...", name),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// Type and validator checks for one (name, value) pair, in Kafka's order:
/// unknown name, then parse, then validator. The error is Kafka's message
/// (the code is always INVALID_CONFIG).
/// Cross-key checks (min/max compaction lag, tiered storage) are not covered here;
/// see topic_configs.md.
pub fn validate_pair(name: &str, raw: &str) -> Result<(), String> {
    let k = lookup(name).ok_or_else(|| unknown_key_message(name))?;
    check_parsed(k, &parse_value(k, raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_unique() {
        for w in TOPIC_KEYS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
        assert_eq!(TOPIC_KEYS.len(), 33);
    }

    #[test]
    fn list_keys_match() {
        let l: Vec<&str> = TOPIC_KEYS
            .iter()
            .filter(|k| k.kind == Kind::List)
            .map(|k| k.name)
            .collect();
        assert_eq!(l, LIST_KEYS);
    }

    #[test]
    fn defaults_are_valid() {
        for k in TOPIC_KEYS {
            let v = parse_value(k, k.default).unwrap();
            check_parsed(k, &v).unwrap();
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            validate_pair("foo", "1").unwrap_err(),
            "Unknown topic config name: foo"
        );
        assert_eq!(
            validate_pair("message.format.version", "3.0").unwrap_err(),
            "Unknown topic config name: message.format.version"
        );
        assert_eq!(
            validate_pair("retention.ms", "-5").unwrap_err(),
            "Invalid value -5 for configuration retention.ms: Value must be at least -1"
        );
        assert_eq!(
            validate_pair("retention.ms", "abc").unwrap_err(),
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(validate_pair("min.cleanable.dirty.ratio", "1.5").unwrap_err(),
                   "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1");
        assert_eq!(validate_pair("min.cleanable.dirty.ratio", "-1").unwrap_err(),
                   "Invalid value -1.0 for configuration min.cleanable.dirty.ratio: Value must be at least 0");
        assert_eq!(validate_pair("compression.type", "GZIP").unwrap_err(),
                   "Invalid value GZIP for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer");
        assert_eq!(validate_pair("cleanup.policy", "compact, foo").unwrap_err(),
                   "Invalid value foo for configuration cleanup.policy: String must be one of: compact, delete");
        assert!(validate_pair("cleanup.policy", "").is_ok());
        assert!(validate_pair("cleanup.policy", " compact , delete ").is_ok());
        assert_eq!(validate_pair("compression.gzip.level", "0").unwrap_err(),
                   "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1");
        assert!(validate_pair("compression.gzip.level", "-1").is_ok());
        assert_eq!(validate_pair("preallocate", "yes").unwrap_err(),
                   "Invalid value yes for configuration preallocate: Expected value to be either true or false");
        assert!(validate_pair("preallocate", " TRUE ").is_ok());
        assert!(validate_pair("leader.replication.throttled.replicas", "*").is_ok());
        assert!(validate_pair("leader.replication.throttled.replicas", "0:1, 1:2").is_ok());
        assert_eq!(validate_pair("leader.replication.throttled.replicas", "0-1").unwrap_err(),
                   "Invalid value [0-1] for configuration leader.replication.throttled.replicas: leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...");
        assert_eq!(
            validate_pair("segment.bytes", "13").unwrap_err(),
            "Invalid value 13 for configuration segment.bytes: Value must be at least 14"
        );
        assert_eq!(validate_pair("max.message.bytes", "2147483648").unwrap_err(),
                   "Invalid value 2147483648 for configuration max.message.bytes: Not a number of type INT");
        assert!(validate_pair("retention.bytes", "-12345").is_ok());
    }

    #[test]
    fn doubles() {
        assert_eq!(java_double_to_string(0.5), "0.5");
        assert_eq!(java_double_to_string(2.0), "2.0");
        assert_eq!(java_double_to_string(1e7), "1.0E7");
        assert_eq!(java_double_to_string(1.5e-5), "1.5E-5");
        assert!(java_parse_double("inf").is_none());
        assert_eq!(java_parse_double("1d"), Some(1.0));
    }
}
