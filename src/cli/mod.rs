//! Kafka-tool-shaped commands: `topics`, `console-producer`, `console-consumer`,
//! `consumer-groups`, `metadata-quorum`.
//!
//! Each command only talks to the cluster through [`crate::client::Client`],
//! so it works against any Kafka-compatible broker.

mod common;
mod consumer;
mod consumer_groups;
mod describe;
mod format;
#[cfg(test)]
mod group_cli_tests;
mod group_consumer;
mod group_reset;
mod group_tables;
mod leader_election;
mod metadata_quorum;
mod murmur;
mod producer;
mod props;
mod reassign;
#[cfg(test)]
mod tests;
mod topics;

pub use common::ConnArgs;
pub use consumer::ConsumerArgs;
pub use consumer_groups::ConsumerGroupsArgs;
pub use group_tables::OFFSETS_COLUMNS;
pub use leader_election::LeaderElectionArgs;
pub use metadata_quorum::MetadataQuorumArgs;
pub use murmur::{murmur2, partition_for_key};
pub use producer::ProducerArgs;
pub use reassign::ReassignArgs;
pub use topics::TopicsArgs;

/// `sluice topics`: create, list, describe, delete or alter topics.
pub fn topics(args: TopicsArgs) -> anyhow::Result<()> {
    topics::run(args)
}

/// `sluice console-producer`: produce stdin lines as records.
pub fn console_producer(args: ProducerArgs) -> anyhow::Result<()> {
    producer::run(args)
}

/// `sluice console-consumer`: print records to stdout.
pub fn console_consumer(args: ConsumerArgs) -> anyhow::Result<()> {
    consumer::run(args)
}

/// `sluice metadata-quorum describe --status | --replication`.
pub fn metadata_quorum(args: MetadataQuorumArgs) -> anyhow::Result<()> {
    metadata_quorum::run(args)
}

/// `sluice leader-election`: preferred or unclean leader elections.
pub fn leader_election(args: LeaderElectionArgs) -> anyhow::Result<()> {
    leader_election::run(args)
}

/// `sluice reassign-partitions`: move partitions' replicas between brokers.
pub fn reassign_partitions(args: ReassignArgs) -> anyhow::Result<()> {
    reassign::run(args)
}

/// `sluice consumer-groups`: list, describe, delete groups, reset offsets.
pub fn consumer_groups(args: ConsumerGroupsArgs) -> anyhow::Result<()> {
    consumer_groups::run(args)
}
