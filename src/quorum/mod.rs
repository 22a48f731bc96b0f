//! The metadata quorum: the cluster's metadata as a log replicated by TiKV's
//! raft-rs (consensus is never home-made here). raft-rs is sans-I/O: this
//! module owns its storage (`storage`, on-disk formats in `format`) and, as
//! the cluster issue lands, its transport and the driving of its ticks and
//! `Ready`s. Nothing outside this module names raft-rs, as nothing outside
//! `shard/` names glommio.
//!
//! - `storage`: durable raft storage in `<log.dirs>/__cluster_metadata-0/`
//!   (CRC-checked entries, torn tails cut, hard state, snapshots, compaction);
//! - `node`: the raft-rs node, driven from the controller shard; it knows
//!   entries as bytes only (their meaning is `cluster::records`);
//! - `transport`: raft messages and requests to the leader between voters,
//!   over the controller listener.

pub mod format;
pub mod node;
pub mod storage;
pub mod transport;

pub use node::{
    open_log, Committed, CommittedLog, Node, QuorumConfig, QuorumError, QuorumStatus, VoterState,
};
pub use storage::DiskStorage;

/// Kafka's name for the metadata log's directory.
pub const METADATA_DIR: &str = "__cluster_metadata-0";
