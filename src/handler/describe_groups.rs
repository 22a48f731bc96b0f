use futures::future::join_all;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::group::admin;

pub async fn handle(state: &State, req: DescribeGroupsRequest, version: i16) -> ResponseKind {
    let ops = if req.include_authorized_operations {
        super::acl_ops::GROUP
    } else {
        super::OPS_NOT_REQUESTED
    };
    let groups = join_all(req.groups.into_iter().map(|id| async move {
        let group = id.0.to_string();
        let g = group.clone();
        let found = on_coordinator(
            state,
            &group,
            move |c, _| async move { admin::describe(&c, &g) },
        )
        .await;
        let mut d = DescribedGroup::default()
            .with_group_id(id)
            .with_authorized_operations(ops);
        match found {
            Err(e) => {
                d = d
                    .with_error_code(e.code())
                    .with_group_state(StrBytes::from_static_str(""))
            }
            // Kafka describes an unknown group as Dead, or from v6 on with
            // GROUP_ID_NOT_FOUND.
            Ok(None) if version >= 6 => {
                d = d
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Group {group} not found."
                    ))))
                    .with_group_state(StrBytes::from_static_str("Dead"))
            }
            Ok(None) => d = d.with_group_state(StrBytes::from_static_str("Dead")),
            Ok(Some(g)) => {
                d = d
                    .with_group_state(StrBytes::from_string(g.state))
                    .with_protocol_type(StrBytes::from_string(g.protocol_type))
                    .with_protocol_data(StrBytes::from_string(g.protocol))
                    .with_members(
                        g.members
                            .into_iter()
                            .map(|m| {
                                let r = DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id))
                                    .with_client_id(StrBytes::from_string(m.client_id))
                                    .with_client_host(StrBytes::from_string(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment);
                                if version >= 4 {
                                    r.with_group_instance_id(
                                        m.instance_id.map(StrBytes::from_string),
                                    )
                                } else {
                                    r
                                }
                            })
                            .collect(),
                    )
            }
        }
        d
    }))
    .await;
    ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(groups))
}
