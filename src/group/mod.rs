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
