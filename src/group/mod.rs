//! Consumer groups: the coordinator (classic protocol and KIP-848), committed
//! offsets, and their storage in the compacted `__consumer_offsets` topic.
//! A group lives on the shard that owns its `__consumer_offsets` partition.

pub mod admin;
pub mod api;
pub mod classic;
pub mod compact;
pub mod consumer;
pub mod coordinator;
pub mod format;
pub mod offsets;
pub mod store;
pub mod subscription;

pub use coordinator::{Coordinator, CoordinatorConfig};
pub use store::OFFSETS_TOPIC;

/// KIP-848 group configs (DescribeConfigs / AlterConfigs on GROUP
/// resources): a group's own session timeout and heartbeat interval, within
/// the broker's `group.consumer.{min,max}.*` bounds.
pub const GROUP_SESSION_TIMEOUT: &str = "consumer.session.timeout.ms";
pub const GROUP_HEARTBEAT_INTERVAL: &str = "consumer.heartbeat.interval.ms";
/// Share-group keys Kafka 4.0 defines: stored and checked, not acted on
/// (share groups are not served).
pub const SHARE_GROUP_KEYS: &[&str] = &[
    "share.heartbeat.interval.ms",
    "share.record.lock.duration.ms",
    "share.session.timeout.ms",
];
