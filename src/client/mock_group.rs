//! Group coordinator of the mock broker. Deliberately simple: every JoinGroup
//! completes at once (no waiting for other members), so it models one member
//! at a time well and is only used to test our client's requests and state
//! handling; real rebalances are tested against sluice with real clients.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::mock::encode;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

#[derive(Debug, Clone)]
struct Member {
    client_id: String,
    instance_id: Option<String>,
    metadata: Bytes,
    assignment: Bytes,
}

/// One group's state.
#[derive(Debug, Default)]
pub(crate) struct MockGroup {
    generation: i32,
    protocol: String,
    /// Members in join order; the first is the leader.
    members: Vec<(String, Member)>,
    synced: bool,
    offsets: BTreeMap<(String, i32), i64>,
    /// Test knob: the next heartbeat answers REBALANCE_IN_PROGRESS.
    pub force_rebalance: bool,
}

impl MockGroup {
    fn state(&self) -> &'static str {
        match (self.members.is_empty(), self.synced) {
            (true, _) => "Empty",
            (false, true) => "Stable",
            (false, false) => "CompletingRebalance",
        }
    }

    fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|(m, _)| m == id).map(|(_, m)| m)
    }
}

/// All groups plus what responses need to know about the broker.
pub(crate) struct Groups<'a> {
    pub groups: &'a mut BTreeMap<String, MockGroup>,
    pub port: u16,
    /// Partition count per topic, for commit validation.
    pub topics: BTreeMap<String, usize>,
    pub client_id: String,
}

/// Handles a group API, or returns None if `api` is not one.
pub(crate) fn handle(
    api: ApiKey,
    v: i16,
    buf: &mut Bytes,
    g: Groups<'_>,
) -> Option<Option<BytesMut>> {
    Some(match api {
        ApiKey::FindCoordinator => {
            find_coordinator(&g, FindCoordinatorRequest::decode(buf, v).unwrap(), v)
        }
        ApiKey::JoinGroup => join(g, JoinGroupRequest::decode(buf, v).unwrap(), v),
        ApiKey::SyncGroup => sync(g, SyncGroupRequest::decode(buf, v).unwrap(), v),
        ApiKey::Heartbeat => heartbeat(g, HeartbeatRequest::decode(buf, v).unwrap(), v),
        ApiKey::LeaveGroup => leave(g, LeaveGroupRequest::decode(buf, v).unwrap(), v),
        ApiKey::OffsetCommit => commit(g, OffsetCommitRequest::decode(buf, v).unwrap(), v),
        ApiKey::OffsetFetch => fetch(g, OffsetFetchRequest::decode(buf, v).unwrap(), v),
        ApiKey::ListGroups => list(g, ListGroupsRequest::decode(buf, v).unwrap(), v),
        ApiKey::DescribeGroups => describe(g, DescribeGroupsRequest::decode(buf, v).unwrap(), v),
        ApiKey::DeleteGroups => delete(g, DeleteGroupsRequest::decode(buf, v).unwrap(), v),
        _ => return None,
    })
}

/// The group APIs the mock advertises.
pub(crate) const APIS: [ApiKey; 10] = [
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
];

fn find_coordinator(g: &Groups<'_>, req: FindCoordinatorRequest, v: i16) -> Option<BytesMut> {
    let resp = FindCoordinatorResponse::default();
    let resp = if v >= 4 {
        resp.with_coordinators(
            req.coordinator_keys
                .into_iter()
                .map(|k| {
                    Coordinator::default()
                        .with_key(k)
                        .with_node_id(BrokerId(1))
                        .with_host(s("127.0.0.1"))
                        .with_port(i32::from(g.port))
                })
                .collect(),
        )
    } else {
        resp.with_node_id(BrokerId(1))
            .with_host(s("127.0.0.1"))
            .with_port(i32::from(g.port))
    };
    encode(resp, v)
}

fn join(g: Groups<'_>, req: JoinGroupRequest, v: i16) -> Option<BytesMut> {
    let group = g.groups.entry(req.group_id.0.to_string()).or_default();
    let mut member_id = req.member_id.to_string();
    let fresh = || format!("{}-{}", g.client_id, uuid::Uuid::new_v4());
    if member_id.is_empty() {
        member_id = fresh();
        if v >= 4 {
            let resp = JoinGroupResponse::default()
                .with_error_code(79) // MEMBER_ID_REQUIRED
                .with_generation_id(-1)
                .with_member_id(s(member_id));
            return encode(resp, v);
        }
    }
    let Some(proto) = req.protocols.first() else {
        return encode(JoinGroupResponse::default().with_error_code(23), v); // INCONSISTENT_GROUP_PROTOCOL
    };
    let member = Member {
        client_id: g.client_id.clone(),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
        metadata: proto.metadata.clone(),
        assignment: Bytes::new(),
    };
    match group.members.iter_mut().find(|(m, _)| *m == member_id) {
        Some((_, existing)) => *existing = member,
        None => group.members.push((member_id.clone(), member)),
    }
    group.generation += 1;
    group.protocol = proto.name.to_string();
    group.synced = false;
    let leader = group.members[0].0.clone();
    let members = if leader == member_id {
        group
            .members
            .iter()
            .map(|(id, m)| {
                JoinGroupResponseMember::default()
                    .with_member_id(s(id.clone()))
                    .with_group_instance_id(m.instance_id.clone().map(s))
                    .with_metadata(m.metadata.clone())
            })
            .collect()
    } else {
        Vec::new()
    };
    let resp = JoinGroupResponse::default()
        .with_generation_id(group.generation)
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s(group.protocol.clone())))
        .with_leader(s(leader))
        .with_member_id(s(member_id))
        .with_members(members);
    encode(resp, v)
}

/// Kafka's member/generation checks; 0 when the request may proceed.
fn check_member(group: Option<&MockGroup>, member: &str, generation: i32) -> i16 {
    match group {
        Some(grp) if grp.member(member).is_some() => {
            if generation == grp.generation {
                0
            } else {
                22 // ILLEGAL_GENERATION
            }
        }
        _ => 25, // UNKNOWN_MEMBER_ID
    }
}

fn sync(g: Groups<'_>, req: SyncGroupRequest, v: i16) -> Option<BytesMut> {
    let group = g.groups.get_mut(req.group_id.0.as_str());
    let code = check_member(group.as_deref(), &req.member_id, req.generation_id);
    let Some(group) = group.filter(|_| code == 0) else {
        return encode(SyncGroupResponse::default().with_error_code(code), v);
    };
    if group.members[0].0 == req.member_id.as_str() {
        for a in req.assignments {
            if let Some((_, m)) = group
                .members
                .iter_mut()
                .find(|(id, _)| *id == a.member_id.as_str())
            {
                m.assignment = a.assignment;
            }
        }
        group.synced = true;
    }
    let assignment = group.member(&req.member_id).unwrap().assignment.clone();
    let resp = SyncGroupResponse::default()
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s(group.protocol.clone())))
        .with_assignment(assignment);
    encode(resp, v)
}

fn heartbeat(g: Groups<'_>, req: HeartbeatRequest, v: i16) -> Option<BytesMut> {
    let group = g.groups.get_mut(req.group_id.0.as_str());
    let mut code = check_member(group.as_deref(), &req.member_id, req.generation_id);
    if let Some(grp) = group {
        if code == 0 && std::mem::take(&mut grp.force_rebalance) {
            code = 27; // REBALANCE_IN_PROGRESS
        }
    }
    encode(HeartbeatResponse::default().with_error_code(code), v)
}

fn leave(g: Groups<'_>, req: LeaveGroupRequest, v: i16) -> Option<BytesMut> {
    let ids: Vec<String> = if v >= 3 {
        req.members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect()
    } else {
        vec![req.member_id.to_string()]
    };
    let group = g.groups.get_mut(req.group_id.0.as_str());
    let Some(group) = group else {
        return encode(LeaveGroupResponse::default().with_error_code(25), v);
    };
    let mut results = Vec::new();
    for id in ids {
        let before = group.members.len();
        group.members.retain(|(m, _)| *m != id);
        let code = if group.members.len() < before { 0 } else { 25 };
        results.push(
            MemberResponse::default()
                .with_member_id(s(id))
                .with_error_code(code),
        );
    }
    group.generation += 1;
    group.synced = false;
    let resp = LeaveGroupResponse::default();
    let resp = if v >= 3 {
        resp.with_members(results)
    } else {
        resp.with_error_code(results[0].error_code)
    };
    encode(resp, v)
}

fn commit(g: Groups<'_>, req: OffsetCommitRequest, v: i16) -> Option<BytesMut> {
    let group = g.groups.entry(req.group_id.0.to_string()).or_default();
    let simple = req.generation_id_or_member_epoch < 0 && req.member_id.is_empty();
    let code = if simple {
        if group.members.is_empty() {
            0
        } else {
            25
        }
    } else {
        check_member(
            Some(group),
            &req.member_id,
            req.generation_id_or_member_epoch,
        )
    };
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let count = g.topics.get(t.name.0.as_str()).copied();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let exists = count.is_some_and(|c| (p.partition_index as usize) < c);
                    let code = if code != 0 {
                        code
                    } else if exists {
                        0
                    } else {
                        3
                    };
                    if code == 0 {
                        group.offsets.insert(
                            (t.name.0.to_string(), p.partition_index),
                            p.committed_offset,
                        );
                    }
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    encode(OffsetCommitResponse::default().with_topics(topics), v)
}

/// (topic, partitions) as asked for in an OffsetFetch.
type TopicList = Vec<(String, Vec<i32>)>;
/// (topic, [(partition, committed offset)]) as answered.
type TopicOffsets = (String, Vec<(i32, i64)>);

fn fetch(g: Groups<'_>, req: OffsetFetchRequest, v: i16) -> Option<BytesMut> {
    // (group, wanted topics as (name, partitions); None = all committed)
    let asks: Vec<(String, Option<TopicList>)> = if v >= 8 {
        req.groups
            .into_iter()
            .map(|grp| {
                let topics = grp.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                (grp.group_id.0.to_string(), topics)
            })
            .collect()
    } else {
        let topics = req.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        vec![(req.group_id.0.to_string(), topics)]
    };
    let mut answers: Vec<(String, Vec<TopicOffsets>)> = Vec::new();
    for (group_id, topics) in asks {
        let offsets = g
            .groups
            .get(&group_id)
            .map(|grp| grp.offsets.clone())
            .unwrap_or_default();
        let wanted = topics.unwrap_or_else(|| {
            let mut all: Vec<(String, Vec<i32>)> = Vec::new();
            for (t, p) in offsets.keys() {
                match all.iter_mut().find(|(n, _)| n == t) {
                    Some((_, ps)) => ps.push(*p),
                    None => all.push((t.clone(), vec![*p])),
                }
            }
            all
        });
        let rows = wanted
            .into_iter()
            .map(|(t, ps)| {
                let parts = ps
                    .into_iter()
                    .map(|p| (p, offsets.get(&(t.clone(), p)).copied().unwrap_or(-1)))
                    .collect();
                (t, parts)
            })
            .collect();
        answers.push((group_id, rows));
    }
    let resp = if v >= 8 {
        OffsetFetchResponse::default().with_groups(
            answers
                .into_iter()
                .map(|(grp, rows)| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(s(grp)))
                        .with_topics(
                            rows.into_iter()
                                .map(|(t, ps)| {
                                    OffsetFetchResponseTopics::default()
                                        .with_name(TopicName(s(t)))
                                        .with_partitions(
                                            ps.into_iter()
                                                .map(|(p, o)| {
                                                    OffsetFetchResponsePartitions::default()
                                                        .with_partition_index(p)
                                                        .with_committed_offset(o)
                                                        .with_committed_leader_epoch(-1)
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    } else {
        let (_, rows) = answers.pop().unwrap();
        OffsetFetchResponse::default().with_topics(
            rows.into_iter()
                .map(|(t, ps)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, o)| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_committed_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    };
    encode(resp, v)
}

fn list(g: Groups<'_>, req: ListGroupsRequest, v: i16) -> Option<BytesMut> {
    let groups = g
        .groups
        .iter()
        .filter(|(_, grp)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|st| st.eq_ignore_ascii_case(grp.state()))
        })
        .map(|(id, grp)| {
            ListedGroup::default()
                .with_group_id(GroupId(s(id.clone())))
                .with_protocol_type(s("consumer"))
                .with_group_state(s(grp.state()))
                .with_group_type(s("classic"))
        })
        .collect();
    encode(ListGroupsResponse::default().with_groups(groups), v)
}

fn describe(g: Groups<'_>, req: DescribeGroupsRequest, v: i16) -> Option<BytesMut> {
    let groups = req
        .groups
        .into_iter()
        .map(|id| match g.groups.get(id.0.as_str()) {
            None => DescribedGroup::default()
                .with_group_id(id)
                .with_group_state(s("Dead")),
            Some(grp) => DescribedGroup::default()
                .with_group_id(id)
                .with_group_state(s(grp.state()))
                .with_protocol_type(s("consumer"))
                .with_protocol_data(s(grp.protocol.clone()))
                .with_members(
                    grp.members
                        .iter()
                        .map(|(mid, m)| {
                            DescribedGroupMember::default()
                                .with_member_id(s(mid.clone()))
                                .with_group_instance_id(m.instance_id.clone().map(s))
                                .with_client_id(s(m.client_id.clone()))
                                .with_client_host(s("/127.0.0.1"))
                                .with_member_metadata(m.metadata.clone())
                                .with_member_assignment(m.assignment.clone())
                        })
                        .collect(),
                ),
        })
        .collect();
    encode(DescribeGroupsResponse::default().with_groups(groups), v)
}

fn delete(g: Groups<'_>, req: DeleteGroupsRequest, v: i16) -> Option<BytesMut> {
    let results = req
        .groups_names
        .into_iter()
        .map(|id| {
            let code = match g.groups.get(id.0.as_str()) {
                None => 69,                                 // GROUP_ID_NOT_FOUND
                Some(grp) if !grp.members.is_empty() => 68, // NON_EMPTY_GROUP
                Some(_) => {
                    g.groups.remove(id.0.as_str());
                    0
                }
            };
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code)
        })
        .collect();
    encode(DeleteGroupsResponse::default().with_results(results), v)
}
