//! One file per API. Each handler turns a decoded request into a response and
//! maps internal errors to Kafka error codes.

mod alter_partition_reassignments;
mod api_versions;
mod configs;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod coordinator;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_quorum;
mod elect_leaders;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;

use std::collections::VecDeque;
use std::future::Future;

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::ResponseError;

use crate::broker::state::local;
use crate::broker::State;
use crate::protocol::response::{self, Response};
use crate::storage::log::SharedLog;
use crate::storage::producer_state::SequenceError;
use crate::storage::{Chunk, StorageError};

/// What a handler produced: the body, and record chunks for its placeholders.
pub struct Reply {
    pub body: ResponseKind,
    pub records: VecDeque<Vec<Chunk>>,
    /// Encode in this version instead of the request's (ApiVersions fallback).
    pub version: Option<i16>,
}

impl From<ResponseKind> for Reply {
    fn from(body: ResponseKind) -> Self {
        Reply {
            body,
            records: VecDeque::new(),
            version: None,
        }
    }
}

/// Handle one request; `None` means no response is sent (acks=0 produce).
/// `peer` is the client's address (group members are shown with it).
pub async fn handle(
    state: State,
    header: RequestHeader,
    api: ApiKey,
    body: Option<RequestKind>,
    peer: std::rc::Rc<str>,
    // The request's share of `queued.max.request.bytes`: held until this
    // returns, except that Produce gives back each partition's records as
    // soon as they are stored, before any wait for replication (a follower's
    // fetch must still be read for that wait to end).
    mut memory: crate::shard::budget::Permit,
) -> Option<Response> {
    let version = header.request_api_version;
    let client_id = || {
        header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default()
    };
    let reply: Option<Reply> = match body {
        None => Some(api_versions::unsupported_version()),
        Some(RequestKind::ApiVersions(_)) => Some(api_versions::handle().into()),
        Some(RequestKind::Metadata(r)) => Some(metadata::handle(&state, r, version).await.into()),
        Some(RequestKind::Produce(r)) => produce::handle(&state, r, version, &mut memory)
            .await
            .map(Into::into),
        Some(RequestKind::Fetch(r)) => Some(fetch::handle(&state, r, version).await),
        Some(RequestKind::ListOffsets(r)) => {
            Some(list_offsets::handle(&state, r, version).await.into())
        }
        Some(RequestKind::CreateTopics(r)) => {
            Some(create_topics::handle(&state, r, version).await.into())
        }
        Some(RequestKind::DeleteTopics(r)) => {
            Some(delete_topics::handle(&state, r, version).await.into())
        }
        Some(RequestKind::ElectLeaders(r)) => {
            Some(ResponseKind::ElectLeaders(elect_leaders::handle(&state, r, version).await).into())
        }
        Some(RequestKind::AlterPartitionReassignments(r)) => Some(
            ResponseKind::AlterPartitionReassignments(
                alter_partition_reassignments::handle(r, version).await,
            )
            .into(),
        ),
        Some(RequestKind::ListPartitionReassignments(r)) => Some(
            ResponseKind::ListPartitionReassignments(list_partition_reassignments::handle(
                &state, r,
            ))
            .into(),
        ),
        Some(RequestKind::CreatePartitions(r)) => Some(create_partitions::handle(r).await.into()),
        Some(RequestKind::DescribeConfigs(r)) => {
            Some(describe_configs::handle(&state, r, version).await.into())
        }
        Some(RequestKind::AlterConfigs(r)) => {
            Some(configs::alter(state.cfg.broker_id, r).await.into())
        }
        Some(RequestKind::IncrementalAlterConfigs(r)) => {
            Some(configs::incremental(state.cfg.broker_id, r).await.into())
        }
        Some(RequestKind::DescribeCluster(r)) => {
            Some(describe_cluster::handle(&state, r, version).into())
        }
        Some(RequestKind::DescribeQuorum(r)) => {
            Some(describe_quorum::handle(&state, r, version).await.into())
        }
        Some(RequestKind::FindCoordinator(r)) => {
            Some(find_coordinator::handle(&state, r, version).await.into())
        }
        Some(RequestKind::JoinGroup(r)) => Some(
            join_group::handle(&state, r, version, client_id(), &peer)
                .await
                .into(),
        ),
        Some(RequestKind::SyncGroup(r)) => {
            Some(sync_group::handle(&state, r, version).await.into())
        }
        Some(RequestKind::Heartbeat(r)) => Some(heartbeat::handle(&state, r).await.into()),
        Some(RequestKind::InitProducerId(r)) => {
            Some(init_producer_id::handle(&state, r).await.into())
        }
        Some(RequestKind::LeaveGroup(r)) => {
            Some(leave_group::handle(&state, r, version).await.into())
        }
        Some(RequestKind::OffsetCommit(r)) => Some(offset_commit::handle(&state, r).await.into()),
        Some(RequestKind::OffsetFetch(r)) => {
            Some(offset_fetch::handle(&state, r, version).await.into())
        }
        Some(RequestKind::OffsetForLeaderEpoch(r)) => {
            Some(offset_for_leader_epoch::handle(&state, r).await.into())
        }
        Some(RequestKind::OffsetDelete(r)) => Some(offset_delete::handle(&state, r).await.into()),
        Some(RequestKind::ListGroups(r)) => {
            Some(list_groups::handle(&state, r, version).await.into())
        }
        Some(RequestKind::DescribeGroups(r)) => {
            Some(describe_groups::handle(&state, r, version).await.into())
        }
        Some(RequestKind::DeleteGroups(r)) => Some(delete_groups::handle(&state, r).await.into()),
        Some(RequestKind::ConsumerGroupHeartbeat(r)) => Some(
            consumer_group_heartbeat::handle(&state, r, client_id(), &peer)
                .await
                .into(),
        ),
        Some(RequestKind::ConsumerGroupDescribe(r)) => Some(
            consumer_group_describe::handle(&state, r, version)
                .await
                .into(),
        ),
        Some(other) => {
            // Unreachable in practice: the connection refuses APIs we do not
            // advertise before decoding them.
            tracing::error!(?api, "no handler for {other:?}");
            None
        }
    };
    let reply = reply?;
    let v = reply.version.unwrap_or(version);
    match response::encode(api, v, header.correlation_id, &reply.body, reply.records) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(?api, version = v, error = %e, "cannot encode response");
            None
        }
    }
}

pub fn storage_error_code(e: &StorageError) -> ResponseError {
    match e {
        StorageError::Corrupt(_) => ResponseError::CorruptMessage,
        StorageError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::DiskFull(_) | StorageError::Io(_) => ResponseError::KafkaStorageError,
        StorageError::Closed => ResponseError::NotLeaderOrFollower,
        StorageError::Sequence(e) => match e {
            SequenceError::InvalidEpoch { .. } => ResponseError::InvalidProducerEpoch,
            SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
            SequenceError::NoSequence { .. } => ResponseError::InvalidRecord,
        },
        StorageError::InvalidRecord(_) => ResponseError::InvalidRecord,
        StorageError::InvalidTimestamp(_) => ResponseError::InvalidTimestamp,
    }
}

/// Run `f` on the log of `topic`/`partition`, on the shard that owns it.
/// `None` when no shard owns such a partition.
pub async fn on_partition<F, Fut, T>(state: &State, topic: &str, partition: i32, f: F) -> Option<T>
where
    F: FnOnce(SharedLog) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (shard, version) = {
        let table = state.table.borrow();
        (table.shard_of(topic, partition)?, table.version())
    };
    let topic = topic.to_string();
    crate::shard::submit_to(shard, move || async move {
        let log = local().log_at(&topic, partition, version).await?;
        Some(f(log).await)
    })
    .await
    .ok()
    .flatten()
}

/// authorized_operations when the client did not ask for them.
pub const OPS_NOT_REQUESTED: i32 = i32::MIN;

/// authorized_operations bit fields (bit n = Kafka's AclOperation code n).
/// sluice has no ACLs, and Kafka with no authorizer reports every operation
/// a resource type supports as allowed.
pub mod acl_ops {
    const READ: i32 = 3;
    const WRITE: i32 = 4;
    const CREATE: i32 = 5;
    const DELETE: i32 = 6;
    const ALTER: i32 = 7;
    const DESCRIBE: i32 = 8;
    const CLUSTER_ACTION: i32 = 9;
    const DESCRIBE_CONFIGS: i32 = 10;
    const ALTER_CONFIGS: i32 = 11;
    const IDEMPOTENT_WRITE: i32 = 12;

    const fn bits(ops: &[i32]) -> i32 {
        let mut b = 0;
        let mut i = 0;
        while i < ops.len() {
            b |= 1 << ops[i];
            i += 1;
        }
        b
    }

    pub const TOPIC: i32 = bits(&[
        READ,
        WRITE,
        CREATE,
        DELETE,
        ALTER,
        DESCRIBE,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
    ]);
    pub const CLUSTER: i32 = bits(&[
        CREATE,
        ALTER,
        DESCRIBE,
        CLUSTER_ACTION,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
        IDEMPOTENT_WRITE,
    ]);
    pub const GROUP: i32 = bits(&[READ, DELETE, DESCRIBE]);

    #[cfg(test)]
    #[test]
    fn kafkas_values() {
        // As Kafka's AdminClient decodes them (AclOperation codes).
        assert_eq!(TOPIC, 3576);
        assert_eq!(CLUSTER, 8096);
        assert_eq!(GROUP, 328);
    }
}

/// KIP-951: for partitions answered NOT_LEADER_OR_FOLLOWER, who leads
/// them in this broker's metadata, and each such leader's endpoint once,
/// so a client can move without asking Metadata (Produce v10+, Fetch v16+).
#[derive(Default)]
pub struct LeaderHints {
    /// (node id, host, port), one per leader named.
    pub endpoints: Vec<(i32, String, u16)>,
}

impl LeaderHints {
    /// (leader id, leader epoch) of `topic`-`partition`; notes its endpoint.
    pub fn leader(
        &mut self,
        catalog: &crate::cluster::Catalog,
        topic: &str,
        partition: i32,
    ) -> Option<(i32, i32)> {
        let m = catalog
            .partition(topic, partition)
            .filter(|m| m.leader >= 0)?;
        if let Some(b) = catalog.brokers.get(&m.leader) {
            if !self.endpoints.iter().any(|(id, ..)| *id == b.id) {
                self.endpoints.push((b.id, b.host.clone(), b.port));
            }
        }
        Some((m.leader, m.leader_epoch))
    }
}

pub fn code(e: Option<ResponseError>) -> i16 {
    e.map_or(0, |e| e.code())
}
