//! Routing of group requests: a group belongs to the shard that owns its
//! `__consumer_offsets` partition (created on first use, as Kafka does).

use std::future::Future;

use kafka_protocol::ResponseError;

use crate::broker::controller::{self, Change, TopicSpec};
use crate::broker::state::local;
use crate::broker::State;
use crate::group::coordinator::{ensure_loaded, Shared};
use crate::group::format::partition_for;
use crate::group::OFFSETS_TOPIC;

/// Partitions of `__consumer_offsets`, creating the topic if it is missing.
pub async fn offsets_topic_partitions(state: &State) -> Result<i32, ResponseError> {
    if let Some(t) = state.catalog().topics.get(OFFSETS_TOPIC) {
        return Ok(t.partitions);
    }
    let cfg = &state.cfg.groups;
    let spec = TopicSpec {
        name: OFFSETS_TOPIC.to_string(),
        partitions: cfg.offsets_topic_partitions,
        replication_factor: cfg.offsets_topic_replication_factor,
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".into(), "compact".into()),
            (
                "segment.bytes".into(),
                cfg.offsets_topic_segment_bytes.to_string(),
            ),
        ],
    };
    let results = controller::submit(Change::Create {
        specs: vec![spec],
        validate_only: false,
    })
    .await;
    match results.into_iter().next().map(|(_, r)| r) {
        Some(Ok(meta)) => {
            tracing::info!(partitions = meta.partitions, "created {OFFSETS_TOPIC}");
            Ok(meta.partitions)
        }
        Some(Err((ResponseError::TopicAlreadyExists, _))) => state
            .catalog()
            .topics
            .get(OFFSETS_TOPIC)
            .map(|t| t.partitions)
            .ok_or(ResponseError::CoordinatorNotAvailable),
        Some(Err((e, msg))) => {
            tracing::error!(error = ?e, %msg, "cannot create {OFFSETS_TOPIC}");
            Err(ResponseError::CoordinatorNotAvailable)
        }
        None => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// Run `f` on the coordinator of `group`, once its partition is loaded.
pub async fn on_coordinator<F, Fut, T>(state: &State, group: &str, f: F) -> Result<T, ResponseError>
where
    F: FnOnce(Shared, i32) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    if group.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    let partitions = offsets_topic_partitions(state).await?;
    let p = partition_for(group, partitions);
    // Not led here: the client looks the coordinator up again.
    let shard = state
        .table
        .borrow()
        .shard_of(OFFSETS_TOPIC, p)
        .ok_or(ResponseError::NotCoordinator)?;
    crate::shard::submit_to(shard, move || async move {
        let st = local();
        // The routing table moved while the request travelled.
        if st.table.borrow().shard_of(OFFSETS_TOPIC, p) != Some(st.id) {
            return Err(ResponseError::NotCoordinator);
        }
        let c = st.groups.clone();
        ensure_loaded(&c, p).await?;
        Ok(f(c, p).await)
    })
    .await
    .map_err(|_| ResponseError::CoordinatorNotAvailable)?
}

/// `/ip`, the way Kafka shows a member's host.
pub fn client_host(peer: &str) -> String {
    let ip = peer
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| peer.to_string());
    format!("/{ip}")
}
