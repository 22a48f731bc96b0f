//! Cluster metadata: the topic catalogue and topic configs. On a single broker
//! shard 0 is the controller that changes it; every shard holds a full copy.

pub mod catalog;
pub mod producer_ids;
pub mod topic_config;
pub mod topic_keys;

pub use catalog::{Catalog, TopicMeta};
