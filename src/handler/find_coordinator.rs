use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::offsets_topic_partitions;
use crate::broker::State;

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
    let coordinators: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            let c = Coordinator::default().with_key(key);
            match found {
                Ok(_) => c
                    .with_node_id(state.cfg.broker_id.into())
                    .with_host(StrBytes::from_string(state.cfg.advertised_host.clone()))
                    .with_port(state.cfg.advertised_port as i32),
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
