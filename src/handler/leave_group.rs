use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::group::api;

pub async fn handle(state: &State, req: LeaveGroupRequest, version: i16) -> ResponseKind {
    let group = req.group_id.0.to_string();
    // v0-2 name one member; v3+ a batch, by member or instance id.
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .into_iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let (g, ms) = (group.clone(), members.clone());
    let result = on_coordinator(
        state,
        &group,
        move |c, _| async move { api::leave(&c, &g, &ms) },
    )
    .await
    .and_then(|r| r);
    let resp = match result {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(errors) if version >= 3 => LeaveGroupResponse::default().with_members(
            members
                .into_iter()
                .zip(errors)
                .map(|((m, i), e)| {
                    MemberResponse::default()
                        .with_member_id(StrBytes::from_string(m))
                        .with_group_instance_id(i.map(StrBytes::from_string))
                        .with_error_code(super::code(e))
                })
                .collect(),
        ),
        Ok(errors) => LeaveGroupResponse::default()
            .with_error_code(super::code(errors.into_iter().next().flatten())),
    };
    ResponseKind::LeaveGroup(resp)
}
