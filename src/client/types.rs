//! Plain data returned by the client (decoupled from the wire structs).

use kafka_protocol::ResponseError;
use uuid::Uuid;

pub use super::records::FetchedRecord;

/// DescribeConfigs `config_source` value for a topic-level override.
pub const CONFIG_SOURCE_DYNAMIC_TOPIC: i8 = 1;
/// DescribeConfigs `config_source` value for a built-in default.
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// Cluster metadata as returned by a Metadata request.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerMetadata>,
    pub topics: Vec<TopicMetadata>,
}

impl Metadata {
    /// The topic called `name`, if the response mentions it.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl BrokerMetadata {
    /// "host:port", bracketing IPv6 literals.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One topic; `error` is set when the broker could not describe it.
#[derive(Debug, Clone)]
pub struct TopicMetadata {
    pub name: String,
    /// Nil when the broker does not report topic ids (Metadata < v10).
    pub topic_id: Uuid,
    pub is_internal: bool,
    pub error: Option<ResponseError>,
    pub partitions: Vec<PartitionMetadata>,
}

/// One partition; `leader` is -1 when there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: Option<ResponseError>,
}

/// One topic configuration entry from DescribeConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// Kafka `ConfigSource` id (1 = DYNAMIC_TOPIC_CONFIG, 5 = DEFAULT_CONFIG, ...).
    pub source: i8,
    pub read_only: bool,
    pub sensitive: bool,
}

impl ConfigEntry {
    /// Kafka's `ConfigEntry.isDefault()`.
    pub fn is_default(&self) -> bool {
        self.source == CONFIG_SOURCE_DEFAULT
    }
}

/// What one partition of a fetch returned.
#[derive(Debug, Clone, Default)]
pub struct FetchResult {
    pub records: Vec<FetchedRecord>,
    pub high_watermark: i64,
    /// Where the next fetch should start (past control batches too).
    pub next_offset: i64,
}

/// A partition position to fetch from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Special timestamps for [`Client::list_offsets`](super::Client::list_offsets).
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// See [`EARLIEST_TIMESTAMP`].
pub const LATEST_TIMESTAMP: i64 = -1;
