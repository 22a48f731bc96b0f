//! Workload files: the OpenMessaging Benchmark's field names (YAML), plus the
//! producer and consumer settings OMB keeps in its driver file.
//!
//! OMB's minute/GB-based fields (`testDurationMinutes`, `warmupDurationMinutes`,
//! `consumerBacklogSizeGB`, `consumerPerSubscription`) are accepted too, so an
//! OMB workload file runs unchanged; giving both spellings of one setting is
//! an error rather than a silent pick.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A field that cannot be used, named as it is spelled in the file.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("field `{field}`: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("{0}")]
    Parse(String),
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
}

fn bad(field: &'static str, reason: impl Into<String>) -> WorkloadError {
    WorkloadError::Field {
        field,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyDistributor {
    /// No key; the partition is chosen sticky-round-robin per batch (Kafka's
    /// sticky partitioner).
    #[serde(rename = "none", alias = "NO_KEY")]
    None,
    /// Keys cycle through a fixed pool; partition = murmur2(key) % partitions.
    #[serde(rename = "round-robin", alias = "KEY_ROUND_ROBIN")]
    RoundRobin,
    /// Keys picked at random from the pool.
    #[serde(rename = "random", alias = "RANDOM_NANO")]
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The record batch attributes bits for this codec.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// Producer settings (Kafka's names in the comments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ProducerSettings {
    /// `acks`: 0, 1 or all (-1).
    pub acks: Acks,
    /// `batch.size`: a partition's batch is sent once it holds this many bytes.
    pub batch_bytes: usize,
    /// `linger.ms`: a non-full batch is sent this long after its first record.
    pub linger_ms: u64,
    pub compression: Compression,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `buffer.memory`: records buffered or in flight per producer; the
    /// producer waits (and, at a fixed rate, the waiting counts as latency).
    pub buffer_bytes: usize,
    /// `request.timeout.ms`: a request unanswered this long ends the run.
    pub request_timeout_ms: u64,
    /// `enable.idempotence`: a producer id from InitProducerId, and a
    /// sequence number on every batch. Needs acks=all and maxInFlight <= 5,
    /// as in Kafka's producer.
    pub idempotence: bool,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        ProducerSettings {
            acks: Acks::All,
            batch_bytes: 128 << 10,
            linger_ms: 1,
            compression: Compression::None,
            max_in_flight: 5,
            buffer_bytes: 32 << 20,
            request_timeout_ms: 30_000,
            idempotence: false,
        }
    }
}

/// Consumer fetch settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ConsumerSettings {
    /// `fetch.max.bytes`
    pub fetch_max_bytes: usize,
    /// `max.partition.fetch.bytes`
    pub partition_max_bytes: usize,
    /// `fetch.max.wait.ms`
    pub fetch_max_wait_ms: u64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            fetch_max_bytes: 50 << 20,
            partition_max_bytes: 1 << 20,
            fetch_max_wait_ms: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("acks: expected 0, 1 or all, got {other:?}")),
        }
    }
}

impl std::fmt::Display for Acks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        })
    }
}

impl Serialize for Acks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML gives `acks: 1` as a number and `acks: all` as a string.
        let v = serde_yaml::Value::deserialize(d)?;
        let s = match v {
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::String(s) => s,
            other => format!("{other:?}"),
        };
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The file as written; `Workload` is the checked form.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WorkloadFile {
    name: Option<String>,
    topics: Option<i64>,
    partitions_per_topic: Option<i64>,
    message_size: Option<i64>,
    payload_file: Option<String>,
    key_distributor: Option<KeyDistributor>,
    subscriptions_per_topic: Option<i64>,
    producers_per_topic: Option<i64>,
    consumers_per_subscription: Option<i64>,
    /// OMB's spelling.
    consumer_per_subscription: Option<i64>,
    producer_rate: Option<f64>,
    test_duration_seconds: Option<f64>,
    test_duration_minutes: Option<f64>,
    warmup_seconds: Option<f64>,
    warmup_duration_minutes: Option<f64>,
    consumer_backlog_size_bytes: Option<i64>,
    #[serde(rename = "consumerBacklogSizeGB")]
    consumer_backlog_size_gb: Option<f64>,
    producer: Option<ProducerSettings>,
    consumer: Option<ConsumerSettings>,
}

/// A checked workload. Sizes in bytes, times in seconds, rates per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub name: String,
    pub topics: usize,
    pub partitions_per_topic: usize,
    pub message_size: usize,
    pub payload_file: Option<String>,
    pub key_distributor: KeyDistributor,
    pub subscriptions_per_topic: usize,
    pub producers_per_topic: usize,
    pub consumers_per_subscription: usize,
    /// Messages per second over all producers; 0 = as fast as possible.
    pub producer_rate: f64,
    pub test_duration_seconds: f64,
    pub warmup_seconds: f64,
    /// Build this many bytes of backlog with consumers held back, then drain
    /// it (catch-up read); 0 = consumers read along with producers.
    pub consumer_backlog_size_bytes: u64,
    pub producer: ProducerSettings,
    pub consumer: ConsumerSettings,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "one-off".into(),
            topics: 1,
            partitions_per_topic: 8,
            message_size: 1024,
            payload_file: None,
            key_distributor: KeyDistributor::None,
            subscriptions_per_topic: 1,
            producers_per_topic: 1,
            consumers_per_subscription: 1,
            producer_rate: 0.0,
            test_duration_seconds: 60.0,
            warmup_seconds: 5.0,
            consumer_backlog_size_bytes: 0,
            producer: ProducerSettings::default(),
            consumer: ConsumerSettings::default(),
        }
    }
}

/// Most partitions a run may create; beyond this the setup alone takes minutes.
const MAX_TOTAL_PARTITIONS: usize = 1_000_000;
/// Largest record we build (Kafka's default message.max.bytes is ~1 MiB).
const MAX_MESSAGE_BYTES: usize = 100 << 20;
/// Largest producer batch (Kafka caps a request at socket.request.max.bytes).
const MAX_BATCH_BYTES: usize = 64 << 20;

fn count(
    field: &'static str,
    v: Option<i64>,
    default: usize,
    min: i64,
) -> Result<usize, WorkloadError> {
    match v {
        None => Ok(default),
        Some(n) if n < min => Err(bad(field, format!("must be at least {min}, got {n}"))),
        Some(n) => Ok(n as usize),
    }
}

fn one_of<T>(
    a: (&'static str, Option<T>),
    b: (&'static str, Option<T>),
) -> Result<Option<T>, WorkloadError> {
    match (a.1, b.1) {
        (Some(_), Some(_)) => Err(bad(
            a.0,
            format!("give either `{}` or `{}`, not both", a.0, b.0),
        )),
        (x, y) => Ok(x.or(y)),
    }
}

fn seconds(field: &'static str, v: f64, allow_zero: bool) -> Result<f64, WorkloadError> {
    if !v.is_finite() || v < 0.0 || (!allow_zero && v == 0.0) || v > 7.0 * 86_400.0 {
        let want = if allow_zero { ">= 0" } else { "> 0" };
        return Err(bad(
            field,
            format!("must be {want} seconds and at most a week, got {v}"),
        ));
    }
    Ok(v)
}

impl Workload {
    pub fn from_yaml(text: &str) -> Result<Self, WorkloadError> {
        let file: WorkloadFile =
            serde_yaml::from_str(text).map_err(|e| WorkloadError::Parse(e.to_string()))?;
        Workload::from_file(file)
    }

    pub fn load(path: &Path) -> Result<Self, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkloadError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Workload::from_yaml(&text).map_err(|e| match e {
            WorkloadError::Parse(m) => WorkloadError::Parse(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    fn from_file(f: WorkloadFile) -> Result<Self, WorkloadError> {
        let d = Workload::default();
        let consumers = one_of(
            ("consumersPerSubscription", f.consumers_per_subscription),
            ("consumerPerSubscription", f.consumer_per_subscription),
        )?;
        let duration_s = one_of(
            ("testDurationSeconds", f.test_duration_seconds),
            (
                "testDurationMinutes",
                f.test_duration_minutes.map(|m| m * 60.0),
            ),
        )?;
        let warmup_s = one_of(
            ("warmupSeconds", f.warmup_seconds),
            (
                "warmupDurationMinutes",
                f.warmup_duration_minutes.map(|m| m * 60.0),
            ),
        )?;
        let backlog = one_of(
            (
                "consumerBacklogSizeBytes",
                f.consumer_backlog_size_bytes.map(|b| b as f64),
            ),
            (
                "consumerBacklogSizeGB",
                f.consumer_backlog_size_gb.map(|g| g * (1u64 << 30) as f64),
            ),
        )?;
        if backlog.is_some_and(|b| !b.is_finite() || b < 0.0) {
            return Err(bad("consumerBacklogSizeBytes", "must be >= 0"));
        }
        let w = Workload {
            name: f.name.unwrap_or(d.name),
            topics: count("topics", f.topics, d.topics, 1)?,
            partitions_per_topic: count(
                "partitionsPerTopic",
                f.partitions_per_topic,
                d.partitions_per_topic,
                1,
            )?,
            message_size: count("messageSize", f.message_size, d.message_size, 1)?,
            payload_file: f.payload_file,
            key_distributor: f.key_distributor.unwrap_or(d.key_distributor),
            subscriptions_per_topic: count(
                "subscriptionsPerTopic",
                f.subscriptions_per_topic,
                d.subscriptions_per_topic,
                0,
            )?,
            producers_per_topic: count(
                "producersPerTopic",
                f.producers_per_topic,
                d.producers_per_topic,
                1,
            )?,
            consumers_per_subscription: count(
                "consumersPerSubscription",
                consumers,
                d.consumers_per_subscription,
                0,
            )?,
            producer_rate: f.producer_rate.unwrap_or(d.producer_rate),
            test_duration_seconds: duration_s.unwrap_or(d.test_duration_seconds),
            warmup_seconds: warmup_s.unwrap_or(d.warmup_seconds),
            consumer_backlog_size_bytes: backlog.map_or(0, |b| b as u64),
            producer: f.producer.unwrap_or_default(),
            consumer: f.consumer.unwrap_or_default(),
        };
        w.validate()?;
        Ok(w)
    }

    /// Checks every value, naming the first impossible one. Called again after
    /// command-line overrides.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let total = self.topics.saturating_mul(self.partitions_per_topic);
        if total > MAX_TOTAL_PARTITIONS {
            return Err(bad("partitionsPerTopic", format!("topics × partitionsPerTopic = {total}, above the limit of {MAX_TOTAL_PARTITIONS}")));
        }
        if self.message_size == 0 || self.message_size > MAX_MESSAGE_BYTES {
            return Err(bad(
                "messageSize",
                format!(
                    "must be 1..={MAX_MESSAGE_BYTES} bytes, got {}",
                    self.message_size
                ),
            ));
        }
        if self.payload_file.as_deref() == Some("") {
            return Err(bad("payloadFile", "is empty"));
        }
        if self.producers_per_topic == 0 {
            return Err(bad("producersPerTopic", "must be at least 1"));
        }
        if !self.producer_rate.is_finite() || self.producer_rate < 0.0 {
            return Err(bad(
                "producerRate",
                format!(
                    "must be >= 0 messages per second (0 = as fast as possible), got {}",
                    self.producer_rate
                ),
            ));
        }
        seconds("testDurationSeconds", self.test_duration_seconds, false)?;
        seconds("warmupSeconds", self.warmup_seconds, true)?;
        if self.consumer_backlog_size_bytes > 0
            && self.consumers_per_subscription * self.subscriptions_per_topic == 0
        {
            return Err(bad("consumerBacklogSizeBytes", "a backlog needs consumers (consumersPerSubscription and subscriptionsPerTopic >= 1)"));
        }
        let p = &self.producer;
        if p.batch_bytes == 0 || p.batch_bytes > MAX_BATCH_BYTES {
            return Err(bad(
                "producer.batchBytes",
                format!("must be 1..={MAX_BATCH_BYTES}, got {}", p.batch_bytes),
            ));
        }
        if p.linger_ms > 60_000 {
            return Err(bad(
                "producer.lingerMs",
                format!("must be at most 60000, got {}", p.linger_ms),
            ));
        }
        if !(1..=1024).contains(&p.max_in_flight) {
            return Err(bad(
                "producer.maxInFlight",
                format!("must be 1..=1024, got {}", p.max_in_flight),
            ));
        }
        if p.idempotence && p.acks != Acks::All {
            return Err(bad(
                "producer.idempotence",
                "needs acks: all (as Kafka's producer requires)".to_string(),
            ));
        }
        if p.idempotence && p.max_in_flight > 5 {
            return Err(bad(
                "producer.idempotence",
                format!(
                    "needs maxInFlight <= 5 (the broker remembers a producer's last five batches), got {}",
                    p.max_in_flight
                ),
            ));
        }
        if p.buffer_bytes < p.batch_bytes.max(self.message_size) {
            return Err(bad(
                "producer.bufferBytes",
                format!(
                    "must hold at least one batch ({} bytes), got {}",
                    p.batch_bytes.max(self.message_size),
                    p.buffer_bytes
                ),
            ));
        }
        if !(1..=3_600_000).contains(&p.request_timeout_ms) {
            return Err(bad(
                "producer.requestTimeoutMs",
                format!("must be 1..=3600000, got {}", p.request_timeout_ms),
            ));
        }
        let c = &self.consumer;
        if c.fetch_max_bytes == 0 || c.fetch_max_bytes > i32::MAX as usize {
            return Err(bad(
                "consumer.fetchMaxBytes",
                format!("must be 1..={}, got {}", i32::MAX, c.fetch_max_bytes),
            ));
        }
        if c.partition_max_bytes == 0 || c.partition_max_bytes > i32::MAX as usize {
            return Err(bad(
                "consumer.partitionMaxBytes",
                format!("must be 1..={}, got {}", i32::MAX, c.partition_max_bytes),
            ));
        }
        if c.fetch_max_wait_ms > 60_000 {
            return Err(bad(
                "consumer.fetchMaxWaitMs",
                format!("must be at most 60000, got {}", c.fetch_max_wait_ms),
            ));
        }
        Ok(())
    }

    pub fn total_partitions(&self) -> usize {
        self.topics * self.partitions_per_topic
    }

    pub fn total_producers(&self) -> usize {
        self.topics * self.producers_per_topic
    }

    pub fn total_consumers(&self) -> usize {
        self.topics * self.subscriptions_per_topic * self.consumers_per_subscription
    }

    /// "T topic(s) × P partitions, S B messages, N producer(s), M
    /// consumer(s), acks=A": the shape of the load, for the run summary and
    /// the report.
    pub fn describe(&self) -> String {
        format!(
            "{} topic(s) × {} partitions, {} B messages, {} producer(s), {} consumer(s), acks={}",
            self.topics,
            self.partitions_per_topic,
            self.message_size,
            self.total_producers(),
            self.total_consumers(),
            self.producer.acks,
        )
    }

    /// The target producer rate as shown to people: "N msg/s", or "max".
    pub fn rate_label(&self) -> String {
        if self.producer_rate > 0.0 {
            format!("{} msg/s", self.producer_rate)
        } else {
            "max".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omb_file_parses() {
        let w = Workload::from_yaml(
            "name: 1 topic / 16 partitions / 1kb\ntopics: 1\npartitionsPerTopic: 16\nmessageSize: 1024\n\
             payloadFile: payload/payload-1Kb.data\nsubscriptionsPerTopic: 1\nconsumerPerSubscription: 1\n\
             producersPerTopic: 1\nproducerRate: 50000\nconsumerBacklogSizeGB: 0\ntestDurationMinutes: 15\n\
             keyDistributor: NO_KEY\n",
        )
        .unwrap();
        assert_eq!(w.partitions_per_topic, 16);
        assert_eq!(w.test_duration_seconds, 900.0);
        assert_eq!(w.producer_rate, 50_000.0);
    }

    #[test]
    fn producer_section_and_acks() {
        let w = Workload::from_yaml("producer:\n  acks: 1\n  compression: zstd\n  lingerMs: 5\n")
            .unwrap();
        assert_eq!(w.producer.acks, Acks::Leader);
        assert_eq!(w.producer.compression, Compression::Zstd);
        let w = Workload::from_yaml("producer:\n  acks: all\n").unwrap();
        assert_eq!(w.producer.acks, Acks::All);
        let e = Workload::from_yaml("producer:\n  acks: 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("acks"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("topics: 0\n", "topics"),
            ("producerRate: -5\n", "producerRate"),
            ("partitionsPerTopc: 3\n", "partitionsPerTopc"),
            ("testDurationSeconds: 0\n", "testDurationSeconds"),
            ("producer:\n  maxInFlight: 0\n", "producer.maxInFlight"),
            (
                "producer:\n  idempotence: true\n  acks: 1\n",
                "producer.idempotence",
            ),
            (
                "producer:\n  idempotence: true\n  maxInFlight: 6\n",
                "producer.idempotence",
            ),
            ("producer:\n  lingerMss: 0\n", "lingerMss"),
            (
                "testDurationSeconds: 5\ntestDurationMinutes: 1\n",
                "testDurationSeconds",
            ),
            ("messageSize: 0\n", "messageSize"),
        ];
        for (yaml, field) in cases {
            let e = Workload::from_yaml(yaml).unwrap_err().to_string();
            assert!(e.contains(field), "{yaml:?} -> {e}");
        }
    }
}
