//! The metadata quorum: the cluster's metadata as a log replicated by TiKV's
//! raft-rs (consensus is never home-made here). raft-rs is sans-I/O: this
//! module owns its storage (`storage`, on-disk formats in `format`) and, as
//! the cluster issue lands, its transport and the driving of its ticks and
//! `Ready`s. Nothing outside this module names raft-rs, as nothing outside
//! `shard/` names glommio.
//!
//! Step 1 (this): durable raft storage in `<log.dirs>/__cluster_metadata-0/`
//! (CRC-checked entries, torn tails cut, hard state, snapshots, compaction),
//! driven by raft-rs in the tests. Not yet wired into the broker.

pub mod format;
pub mod storage;

pub use storage::DiskStorage;

/// Kafka's name for the metadata log's directory.
pub const METADATA_DIR: &str = "__cluster_metadata-0";
