use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::group::api;
use crate::group::classic::{SyncRequest, SyncResult};

pub async fn handle(state: &State, req: SyncGroupRequest, version: i16) -> ResponseKind {
    let group = req.group_id.0.to_string();
    let sync = SyncRequest {
        member_id: req.member_id.to_string(),
        generation: req.generation_id,
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let g = group.clone();
    let r = on_coordinator(state, &group, move |c, p| async move {
        api::sync(&c, p, &g, sync).await
    })
    .await
    .unwrap_or_else(SyncResult::error);
    let mut resp = SyncGroupResponse::default()
        .with_error_code(super::code(r.error))
        .with_assignment(r.assignment);
    if version >= 5 {
        resp = resp
            .with_protocol_type(r.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(r.protocol_name.map(StrBytes::from_string));
    }
    ResponseKind::SyncGroup(resp)
}
