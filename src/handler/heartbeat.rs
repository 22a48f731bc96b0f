use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, ResponseKind};

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::group::api;

pub async fn handle(state: &State, req: HeartbeatRequest) -> ResponseKind {
    let group = req.group_id.0.to_string();
    let (g, member, instance) = (
        group.clone(),
        req.member_id.to_string(),
        req.group_instance_id.map(|s| s.to_string()),
    );
    let generation = req.generation_id;
    let error = on_coordinator(state, &group, move |c, _| async move {
        api::heartbeat(&c, &g, &member, instance.as_deref(), generation)
    })
    .await
    .unwrap_or_else(Some);
    ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(super::code(error)))
}
