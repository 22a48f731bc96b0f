use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::coordinator::{client_host, on_coordinator};
use crate::broker::State;
use crate::group::api;
use crate::group::classic::{JoinRequest, JoinResult};

pub async fn handle(
    state: &State,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    peer: &str,
) -> ResponseKind {
    let group = req.group_id.0.to_string();
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id,
        client_host: client_host(peer),
        session_timeout_ms: req.session_timeout_ms,
        // v0 had no rebalance timeout: the session timeout served as both.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let member = join.member_id.clone();
    let g = group.clone();
    let result = on_coordinator(state, &group, move |c, p| async move {
        api::join(&c, p, &g, join).await
    })
    .await
    .unwrap_or_else(|e| JoinResult::error(e, &member));
    ResponseKind::JoinGroup(response(result, version))
}

fn response(r: JoinResult, version: i16) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default()
        .with_error_code(super::code(r.error))
        .with_generation_id(r.generation)
        .with_protocol_name(Some(StrBytes::from_string(
            r.protocol_name.unwrap_or_default(),
        )))
        .with_leader(StrBytes::from_string(r.leader))
        .with_member_id(StrBytes::from_string(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    let m = JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(id))
                        .with_metadata(metadata);
                    if version >= 5 {
                        m.with_group_instance_id(instance.map(StrBytes::from_string))
                    } else {
                        m
                    }
                })
                .collect(),
        );
    if version >= 7 {
        resp = resp.with_protocol_type(r.protocol_type.map(StrBytes::from_string));
    }
    if version >= 9 {
        resp = resp.with_skip_assignment(r.skip_assignment);
    }
    resp
}
