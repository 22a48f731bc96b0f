//! Cluster metadata: the image (brokers, topics and their partitions'
//! placement, configs), the records that change it, replica placement, topic
//! configs, and what brokers ask the active controller. Every shard of every
//! broker holds a full copy of the image.

pub mod catalog;
pub mod controller_rpc;
pub mod leadership;
pub mod placement;
pub mod producer_ids;
pub mod reassignment;
pub mod records;
pub mod topic_config;
pub mod topic_keys;

pub use catalog::{Catalog, TopicMeta};
