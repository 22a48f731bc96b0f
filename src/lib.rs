//! sluice: a Kafka-wire-compatible broker, thread-per-core on io_uring.

pub mod alloc;
pub mod bench;
pub mod broker;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod connect;
pub mod group;
pub mod handler;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod quorum;
pub mod shard;
pub mod storage;

#[global_allocator]
static GLOBAL: alloc::Allocator = alloc::Allocator;
