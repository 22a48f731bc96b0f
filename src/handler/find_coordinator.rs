use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::offsets_topic_partitions;
use crate::broker::State;
use crate::group::format::partition_for;
use crate::group::OFFSETS_TOPIC;

/// Key types: 0 group, 1 transaction, 2 share group.
const KEY_TYPE_GROUP: i8 = 0;

pub async fn handle(state: &State, req: FindCoordinatorRequest, version: i16) -> ResponseKind {
    let keys: Vec<StrBytes> = if version >= 4 {
        req.coordinator_keys
    } else {
        vec![req.key]
    };
    let found = if req.key_type != KEY_TYPE_GROUP {
        Err((
            ResponseError::InvalidRequest,
            "sluice coordinates consumer groups only (no transactions or share groups)",
        ))
    } else {
        offsets_topic_partitions(state)
            .await
            .map_err(|e| (e, "the group coordinator is not available"))
    };
    let catalog = state.catalog();
    let coordinators: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            let c = Coordinator::default().with_key(key.clone());
            // The coordinator is the broker leading the group's partition.
            let leader = found.and_then(|partitions| {
                let p = partition_for(&key, partitions);
                catalog
                    .partition(OFFSETS_TOPIC, p)
                    .and_then(|m| catalog.brokers.get(&m.leader))
                    .filter(|b| !b.fenced)
                    .ok_or((
                        ResponseError::CoordinatorNotAvailable,
                        "the group's __consumer_offsets partition has no leader",
                    ))
            });
            match leader {
                Ok(b) => c
                    .with_node_id(b.id.into())
                    .with_host(StrBytes::from_string(b.host.clone()))
                    .with_port(b.port as i32),
                Err((e, msg)) => c
                    .with_node_id((-1).into())
                    .with_port(-1)
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_static_str(msg))),
            }
        })
        .collect();
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp = resp.with_coordinators(coordinators);
    } else if let Some(c) = coordinators.into_iter().next() {
        resp = resp
            .with_error_code(c.error_code)
            .with_node_id(c.node_id)
            .with_host(c.host)
            .with_port(c.port);
        if version >= 1 {
            resp = resp.with_error_message(c.error_message);
        }
    }
    ResponseKind::FindCoordinator(resp)
}
