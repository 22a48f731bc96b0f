use std::collections::BTreeSet;

use futures::future::join_all;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::cluster::Catalog;
use crate::group::consumer::{by_topic, Tp};
use crate::group::coordinator::GroupKind;

/// ConsumerGroupDescribe v1 member_type: 1 = a KIP-848 consumer.
const MEMBER_TYPE_CONSUMER: i8 = 1;

pub async fn handle(
    state: &State,
    req: ConsumerGroupDescribeRequest,
    version: i16,
) -> ResponseKind {
    let catalog = state.catalog();
    let ops = if req.include_authorized_operations {
        super::acl_ops::GROUP
    } else {
        super::OPS_NOT_REQUESTED
    };
    let groups = join_all(req.group_ids.into_iter().map(|id| {
        let catalog = catalog.clone();
        async move {
            let group = id.0.to_string();
            let g = group.clone();
            let found = on_coordinator(state, &group, move |c, _| async move {
                let co = c.borrow();
                let e = co.groups.get(&g).ok_or(ResponseError::GroupIdNotFound)?;
                let GroupKind::Consumer(cg) = &e.kind else {
                    return Err(ResponseError::GroupIdNotFound);
                };
                Ok(Snapshot {
                    state: cg.state_name(),
                    group_epoch: cg.group_epoch,
                    assignment_epoch: cg.assignment_epoch,
                    assignor: cg.assignor.clone(),
                    members: cg
                        .members
                        .values()
                        .map(|m| MemberSnapshot {
                            id: m.id.clone(),
                            instance_id: m.instance_id.clone(),
                            rack_id: m.rack_id.clone(),
                            epoch: m.epoch,
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            topics: m.topics.clone(),
                            regex: m.regex.clone(),
                            assigned: m.assigned.clone(),
                            target: cg.target.get(&m.id).cloned().unwrap_or_default(),
                        })
                        .collect(),
                })
            })
            .await
            .and_then(|r| r);
            let d = DescribedGroup::default()
                .with_group_id(id)
                .with_authorized_operations(ops);
            match found {
                Err(e) => {
                    d.with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "Group {group} not found or not a consumer group."
                        ))))
                }
                Ok(s) => d
                    .with_group_state(StrBytes::from_static_str(s.state))
                    .with_group_epoch(s.group_epoch)
                    .with_assignment_epoch(s.assignment_epoch)
                    .with_assignor_name(StrBytes::from_string(s.assignor))
                    .with_members(
                        s.members
                            .into_iter()
                            .map(|m| {
                                let r = Member::default()
                                    .with_member_id(StrBytes::from_string(m.id))
                                    .with_instance_id(m.instance_id.map(StrBytes::from_string))
                                    .with_rack_id(m.rack_id.map(StrBytes::from_string))
                                    .with_member_epoch(m.epoch)
                                    .with_client_id(StrBytes::from_string(m.client_id))
                                    .with_client_host(StrBytes::from_string(m.client_host))
                                    .with_subscribed_topic_names(
                                        m.topics
                                            .into_iter()
                                            .map(|t| StrBytes::from_string(t).into())
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(m.regex.map(StrBytes::from_string))
                                    .with_assignment(assignment(&catalog, &m.assigned))
                                    .with_target_assignment(assignment(&catalog, &m.target));
                                if version >= 1 {
                                    r.with_member_type(MEMBER_TYPE_CONSUMER)
                                } else {
                                    r
                                }
                            })
                            .collect(),
                    ),
            }
        }
    }))
    .await;
    ResponseKind::ConsumerGroupDescribe(
        ConsumerGroupDescribeResponse::default().with_groups(groups),
    )
}

struct Snapshot {
    state: &'static str,
    group_epoch: i32,
    assignment_epoch: i32,
    assignor: String,
    members: Vec<MemberSnapshot>,
}

struct MemberSnapshot {
    id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    epoch: i32,
    client_id: String,
    client_host: String,
    topics: Vec<String>,
    regex: Option<String>,
    assigned: BTreeSet<Tp>,
    target: BTreeSet<Tp>,
}

fn assignment(catalog: &Catalog, parts: &BTreeSet<Tp>) -> Assignment {
    Assignment::default().with_topic_partitions(
        by_topic(parts)
            .into_iter()
            .map(|(t, ps)| {
                TopicPartitions::default()
                    .with_topic_id(catalog.topics.get(t).map(|m| m.id).unwrap_or_default())
                    .with_topic_name(StrBytes::from_string(t.to_string()).into())
                    .with_partitions(ps)
            })
            .collect(),
    )
}
