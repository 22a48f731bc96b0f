//! Group coordinator calls: FindCoordinator, the classic membership APIs
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), committed offsets and group
//! administration (ListGroups, DescribeGroups, DeleteGroups).
//!
//! Every group request goes to the group's coordinator, found once and cached;
//! NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE make us look it up again and
//! COORDINATOR_LOAD_IN_PROGRESS makes us wait, as Kafka's clients do.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;

use super::error::{check_code, ClientError, Result};
use super::{BrokerMetadata, Client, Target};

/// Versions from here on address topics by id (KIP-848 era); we use names.
const LAST_NAMED_OFFSET_COMMIT: i16 = 9;
const LAST_NAMED_OFFSET_FETCH: i16 = 9;
/// FindCoordinator `key_type` for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;
/// Pause between coordinator retries (loading, moved, not yet elected).
const COORDINATOR_BACKOFF: Duration = Duration::from_millis(100);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn group_id(v: &str) -> GroupId {
    GroupId(s(v))
}

fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// Who is committing or heartbeating: generation -1 with an empty member id
/// is a "simple" commit from outside the group (what admin tools send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

impl Generation {
    /// The static member id for a request of `version` of an API that carries
    /// it from version `since` on.
    fn instance_id(&self, version: i16, since: i16) -> Option<StrBytes> {
        instance_id(version, since, self.group_instance_id.as_deref())
    }

    /// No membership: commits as Kafka's admin client and `assign()` consumers do.
    pub fn none() -> Generation {
        Generation {
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// What a JoinGroup asks for.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub group_id: String,
    /// Empty on the first join; the broker assigns one (KIP-394).
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (assignor name, subscription metadata), in order of preference.
    pub protocols: Vec<(String, Bytes)>,
}

/// A successful JoinGroup.
#[derive(Debug, Clone)]
pub struct JoinResult {
    pub generation_id: i32,
    /// The assignor the group settled on.
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata; only the leader gets this.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn is_leader(&self) -> bool {
        self.leader == self.member_id
    }
}

/// One member as the leader sees it in a JoinGroup response.
#[derive(Debug, Clone)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// One committed offset; `offset` is -1 when the group has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: Option<String>,
    pub error: Option<ResponseError>,
}

/// One group from ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// Only reported from ListGroups v4 on.
    pub state: Option<String>,
}

/// One group from DescribeGroups.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub error: Option<ResponseError>,
    /// Kafka's state name: Stable, Empty, PreparingRebalance, ..., Dead.
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignor (e.g. `range`) for consumer groups.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// One member of a described group.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

impl Client {
    /// The coordinator of `group`, asked for afresh (and remembered).
    pub fn find_coordinator(&mut self, group: &str) -> Result<BrokerMetadata> {
        let deadline = Instant::now() + self.timeout();
        loop {
            match self.find_coordinator_once(group) {
                Err(e) if retriable_coordinator_error(&e) && Instant::now() < deadline => {
                    tracing::debug!("FindCoordinator for group '{group}': {e}; retrying");
                    std::thread::sleep(COORDINATOR_BACKOFF);
                }
                other => return other,
            }
        }
    }

    fn find_coordinator_once(&mut self, group: &str) -> Result<BrokerMetadata> {
        let (version, resp) =
            self.call(Target::Any, ApiKey::FindCoordinator, i16::MAX, 0, |v| {
                let req = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_GROUP);
                if v >= 4 {
                    req.with_coordinator_keys(vec![s(group)])
                } else {
                    req.with_key(s(group))
                }
            })?;
        let context = || format!("cannot find the coordinator of group '{group}'");
        let found = if version >= 4 {
            let c = resp
                .coordinators
                .into_iter()
                .find(|c| c.key.as_str() == group)
                .ok_or_else(|| ClientError::Other(format!("{}: empty response", context())))?;
            check_code(c.error_code, c.error_message.as_deref(), context)?;
            BrokerMetadata {
                node_id: c.node_id.0,
                host: c.host.to_string(),
                port: c.port,
            }
        } else {
            check_code(resp.error_code, resp.error_message.as_deref(), context)?;
            BrokerMetadata {
                node_id: resp.node_id.0,
                host: resp.host.to_string(),
                port: resp.port,
            }
        };
        // The coordinator may be a broker our metadata has not mentioned yet.
        self.brokers
            .entry(found.node_id)
            .or_insert_with(|| found.address());
        self.coordinators.insert(group.to_string(), found.node_id);
        Ok(found)
    }

    /// Sends a request to `group`'s coordinator, finding it first and again
    /// whenever `code_of(response)` says it moved or is still loading.
    fn group_call<R: Request>(
        &mut self,
        group: &str,
        api: ApiKey,
        cap: i16,
        extra_ms: u64,
        mut build: impl FnMut(i16) -> R,
        code_of: impl Fn(&R::Response) -> i16,
    ) -> Result<(i16, R::Response)> {
        let deadline = Instant::now() + self.timeout();
        loop {
            let node = match self.coordinators.get(group) {
                Some(&node) => node,
                None => self.find_coordinator(group)?.node_id,
            };
            let result = self.call(Target::Node(node), api, cap, extra_ms, &mut build);
            let code = match &result {
                Ok((_, resp)) => ResponseError::try_from_code(code_of(resp)),
                Err(e) if e.breaks_connection() => Some(ResponseError::CoordinatorNotAvailable),
                Err(_) => None,
            };
            let retry = match code {
                Some(ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable) => {
                    self.coordinators.remove(group);
                    true
                }
                Some(ResponseError::CoordinatorLoadInProgress) => true,
                _ => false,
            };
            if !retry || Instant::now() >= deadline {
                return result;
            }
            tracing::debug!("{api:?} for group '{group}' got {code:?}; retrying");
            std::thread::sleep(COORDINATOR_BACKOFF);
        }
    }

    /// [`Client::group_call`] without extra wait that also fails on the
    /// error `code_of(response)` reports, described by `context`.
    fn checked_group_call<R: Request>(
        &mut self,
        group: &str,
        api: ApiKey,
        cap: i16,
        build: impl FnMut(i16) -> R,
        code_of: impl Fn(&R::Response) -> i16,
        context: impl FnOnce() -> String,
    ) -> Result<(i16, R::Response)> {
        let (version, resp) = self.group_call(group, api, cap, 0, build, &code_of)?;
        check_code(code_of(&resp), None, context)?;
        Ok((version, resp))
    }

    /// Joins (or rejoins) a group. A first join without a member id gets
    /// MEMBER_ID_REQUIRED from v4 on; we rejoin with the id it hands out.
    /// The broker may hold the request for up to the rebalance timeout.
    pub fn join_group(&mut self, params: &JoinParams) -> Result<JoinResult> {
        let mut member_id = params.member_id.clone();
        loop {
            let extra = params.rebalance_timeout_ms.max(0) as u64;
            let (_, resp) = self.group_call(
                &params.group_id,
                ApiKey::JoinGroup,
                i16::MAX,
                extra,
                |v| build_join(v, params, &member_id),
                |r| r.error_code,
            )?;
            let code = ResponseError::try_from_code(resp.error_code);
            if code == Some(ResponseError::MemberIdRequired) && member_id.is_empty() {
                member_id = resp.member_id.to_string();
                continue;
            }
            check_code(resp.error_code, None, || {
                format!("cannot join group '{}'", params.group_id)
            })?;
            return Ok(JoinResult {
                generation_id: resp.generation_id,
                protocol_name: resp.protocol_name.map(|p| p.to_string()),
                leader: resp.leader.to_string(),
                member_id: resp.member_id.to_string(),
                members: resp
                    .members
                    .into_iter()
                    .map(|m| JoinedMember {
                        member_id: m.member_id.to_string(),
                        group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                        metadata: m.metadata,
                    })
                    .collect(),
            });
        }
    }

    /// Completes a rebalance: the leader sends every member's assignment,
    /// the others send none. Returns this member's assignment bytes.
    pub fn sync_group(
        &mut self,
        group: &str,
        generation: &Generation,
        protocol_type: &str,
        protocol_name: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Bytes> {
        let assignments: Vec<SyncGroupRequestAssignment> = assignments
            .into_iter()
            .map(|(member, bytes)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(bytes)
            })
            .collect();
        let (_, resp) = self.checked_group_call(
            group,
            ApiKey::SyncGroup,
            i16::MAX,
            |v| {
                build_sync(v, group, generation, protocol_type, protocol_name)
                    .with_assignments(assignments.clone())
            },
            |r| r.error_code,
            || format!("cannot sync group '{group}'"),
        )?;
        Ok(resp.assignment)
    }

    /// Tells the coordinator this member is alive. REBALANCE_IN_PROGRESS
    /// (rejoin), ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID come back as errors.
    pub fn heartbeat(&mut self, group: &str, generation: &Generation) -> Result<()> {
        self.checked_group_call(
            group,
            ApiKey::Heartbeat,
            i16::MAX,
            |v| build_heartbeat(v, group, generation),
            |r| r.error_code,
            || format!("heartbeat to group '{group}'"),
        )?;
        Ok(())
    }

    /// Leaves a group (v3+ batches members; we always send just ourselves).
    pub fn leave_group(
        &mut self,
        group: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<()> {
        let context = || format!("cannot leave group '{group}'");
        let (version, resp) = self.checked_group_call(
            group,
            ApiKey::LeaveGroup,
            i16::MAX,
            |v| build_leave(v, group, member_id, group_instance_id),
            |r| r.error_code,
            context,
        )?;
        if version >= 3 {
            for m in &resp.members {
                check_code(m.error_code, None, context)?;
            }
        }
        Ok(())
    }

    /// Commits `offsets` (topic, partition, next offset to read) for `group`.
    /// Fails with the first partition-level error.
    pub fn offset_commit(
        &mut self,
        group: &str,
        generation: &Generation,
        offsets: &[(String, i32, i64)],
    ) -> Result<()> {
        let topics: Vec<OffsetCommitRequestTopic> = by_topic(offsets.iter().map(|(t, p, o)| {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::default()));
            (t, p)
        }))
        .into_iter()
        .map(|(name, ps)| {
            OffsetCommitRequestTopic::default()
                .with_name(name)
                .with_partitions(ps)
        })
        .collect();
        let (_, resp) = self.group_call(
            group,
            ApiKey::OffsetCommit,
            LAST_NAMED_OFFSET_COMMIT,
            0,
            |v| build_commit(v, group, generation).with_topics(topics.clone()),
            // Coordinator errors are reported per partition.
            |r| {
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .map(|p| p.error_code)
                    .find(|&c| c != 0)
                    .unwrap_or(0)
            },
        )?;
        for t in &resp.topics {
            for p in &t.partitions {
                check_code(p.error_code, None, || {
                    format!(
                        "cannot commit offset of {}-{} for group '{group}'",
                        t.name.0, p.partition_index
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Committed offsets of `group`: for the given partitions, or all of them
    /// (`None`). Partitions without a commit come back with offset -1.
    pub fn offset_fetch(
        &mut self,
        group: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<CommittedOffset>> {
        let (version, resp) = self.checked_group_call(
            group,
            ApiKey::OffsetFetch,
            LAST_NAMED_OFFSET_FETCH,
            |v| build_offset_fetch(v, group, partitions),
            offset_fetch_error,
            || format!("cannot fetch committed offsets of group '{group}'"),
        )?;
        // Topics and partitions have types of their own per group (v8+) and
        // at the top level (before), with the same fields.
        macro_rules! committed {
            ($topics:expr) => {
                $topics
                    .into_iter()
                    .flat_map(|t| {
                        t.partitions.into_iter().map(move |p| CommittedOffset {
                            topic: t.name.0.to_string(),
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            metadata: p.metadata.map(|m| m.to_string()),
                            error: ResponseError::try_from_code(p.error_code),
                        })
                    })
                    .collect::<Vec<_>>()
            };
        }
        let mut out = if version >= 8 {
            committed!(resp.groups.into_iter().flat_map(|g| g.topics))
        } else {
            committed!(resp.topics)
        };
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// Groups known to every broker of the cluster, optionally only those in
    /// one of `states` (filtered by the broker from v4, by us before).
    pub fn list_groups(&mut self, states: &[String]) -> Result<Vec<GroupListing>> {
        self.metadata(Some(Vec::new()))?;
        let mut nodes: Vec<i32> = self.brokers.keys().copied().collect();
        nodes.sort_unstable();
        let mut out = Vec::new();
        for node in nodes {
            let (version, resp) =
                self.call(Target::Node(node), ApiKey::ListGroups, i16::MAX, 0, |_| {
                    ListGroupsRequest::default()
                        .with_states_filter(states.iter().map(|x| s(x)).collect())
                })?;
            check_code(resp.error_code, None, || "ListGroups".into())?;
            for g in resp.groups {
                let state = (version >= 4).then(|| g.group_state.to_string());
                let wanted = states.is_empty()
                    || state
                        .as_ref()
                        .is_some_and(|st| states.iter().any(|w| w.eq_ignore_ascii_case(st)));
                if wanted {
                    out.push(GroupListing {
                        group_id: g.group_id.0.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        state,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// Describes one group (at its coordinator). A group that does not exist
    /// comes back as state `Dead` or with GROUP_ID_NOT_FOUND in `error`.
    pub fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let (_, resp) = self.group_call(
            group,
            ApiKey::DescribeGroups,
            i16::MAX,
            0,
            |_| DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
            |r| r.groups.first().map_or(0, |g| g.error_code),
        )?;
        let g = resp
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| {
                ClientError::Other(format!("DescribeGroups response omits group '{group}'"))
            })?;
        let error = ResponseError::try_from_code(g.error_code);
        if error.is_some() && error != Some(ResponseError::GroupIdNotFound) {
            check_code(g.error_code, g.error_message.as_deref(), || {
                format!("cannot describe group '{group}'")
            })?;
        }
        Ok(GroupDescription {
            group_id: group.to_string(),
            error,
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    metadata: m.member_metadata,
                    assignment: m.member_assignment,
                })
                .collect(),
        })
    }

    /// Deletes groups; returns each group's outcome (None = deleted).
    pub fn delete_groups(
        &mut self,
        groups: &[String],
    ) -> Result<Vec<(String, Option<ResponseError>)>> {
        let mut out = Vec::new();
        for group in groups {
            let (_, resp) = self.group_call(
                group,
                ApiKey::DeleteGroups,
                i16::MAX,
                0,
                |_| DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]),
                |r| r.results.first().map_or(0, |g| g.error_code),
            )?;
            let code = resp
                .results
                .iter()
                .find(|r| r.group_id.0.as_str() == group)
                .map(|r| r.error_code)
                .ok_or_else(|| {
                    ClientError::Other(format!("DeleteGroups response omits group '{group}'"))
                })?;
            out.push((group.clone(), ResponseError::try_from_code(code)));
        }
        Ok(out)
    }
}

fn retriable_coordinator_error(e: &ClientError) -> bool {
    matches!(
        e.kafka_code(),
        Some(
            ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress
                | ResponseError::NotCoordinator
        )
    )
}

/// Groups `(topic, item)` pairs by topic, topics in order of first appearance.
fn by_topic<'a, T>(items: impl IntoIterator<Item = (&'a String, T)>) -> Vec<(TopicName, Vec<T>)> {
    let mut out: Vec<(TopicName, Vec<T>)> = Vec::new();
    for (topic, item) in items {
        match out.iter_mut().find(|(t, _)| t.0.as_str() == topic) {
            Some((_, ts)) => ts.push(item),
            None => out.push((topic_name(topic), vec![item])),
        }
    }
    out
}

/// The first group-level error of an OffsetFetch response (top level before
/// v8, per group from v8).
fn offset_fetch_error(r: &OffsetFetchResponse) -> i16 {
    if r.error_code != 0 {
        return r.error_code;
    }
    r.groups
        .iter()
        .map(|g| g.error_code)
        .find(|&c| c != 0)
        .unwrap_or(0)
}

/// The static member id, where the version can carry it (older brokers only
/// know dynamic members, so the member simply is one there).
fn instance_id(version: i16, since: i16, id: Option<&str>) -> Option<StrBytes> {
    id.filter(|_| version >= since).map(s)
}

pub(super) fn build_join(version: i16, params: &JoinParams, member_id: &str) -> JoinGroupRequest {
    let req = JoinGroupRequest::default()
        .with_group_id(group_id(&params.group_id))
        .with_session_timeout_ms(params.session_timeout_ms)
        .with_member_id(s(member_id))
        .with_group_instance_id(instance_id(version, 5, params.group_instance_id.as_deref()));
    // v0 has no rebalance timeout: the session timeout bounds the join.
    let req = if version >= 1 {
        req.with_rebalance_timeout_ms(params.rebalance_timeout_ms)
    } else {
        req
    };
    req.with_protocol_type(s(&params.protocol_type))
        .with_protocols(
            params
                .protocols
                .iter()
                .map(|(name, meta)| {
                    JoinGroupRequestProtocol::default()
                        .with_name(s(name))
                        .with_metadata(meta.clone())
                })
                .collect(),
        )
}

pub(super) fn build_sync(
    version: i16,
    group: &str,
    generation: &Generation,
    protocol_type: &str,
    protocol_name: &str,
) -> SyncGroupRequest {
    let req = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation.generation_id)
        .with_member_id(s(&generation.member_id))
        .with_group_instance_id(generation.instance_id(version, 3));
    if version >= 5 {
        req.with_protocol_type(Some(s(protocol_type)))
            .with_protocol_name(Some(s(protocol_name)))
    } else {
        req
    }
}

pub(super) fn build_heartbeat(
    version: i16,
    group: &str,
    generation: &Generation,
) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation.generation_id)
        .with_member_id(s(&generation.member_id))
        .with_group_instance_id(generation.instance_id(version, 3))
}

pub(super) fn build_leave(
    version: i16,
    group: &str,
    member_id: &str,
    group_instance_id: Option<&str>,
) -> LeaveGroupRequest {
    let req = LeaveGroupRequest::default().with_group_id(group_id(group));
    if version < 3 {
        return req.with_member_id(s(member_id));
    }
    let reason = (version >= 5).then(|| s("the consumer is being closed"));
    req.with_members(vec![MemberIdentity::default()
        .with_member_id(s(member_id))
        .with_group_instance_id(group_instance_id.map(s))
        .with_reason(reason)])
}

pub(super) fn build_commit(
    version: i16,
    group: &str,
    generation: &Generation,
) -> OffsetCommitRequest {
    let req = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation.generation_id)
        .with_member_id(s(&generation.member_id))
        .with_group_instance_id(generation.instance_id(version, 7));
    // v2-v4 carry a retention time; -1 means "the broker's default".
    if (2..=4).contains(&version) {
        req.with_retention_time_ms(-1)
    } else {
        req
    }
}

pub(super) fn build_offset_fetch(
    version: i16,
    group: &str,
    partitions: Option<&[(String, i32)]>,
) -> OffsetFetchRequest {
    // v8+ asks per group, with a topic type of its own.
    if version >= 8 {
        let topics = requested_topics(partitions, |name, ps| {
            OffsetFetchRequestTopics::default()
                .with_name(name)
                .with_partition_indexes(ps)
        });
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_member_id(None)
            .with_member_epoch(-1)
            .with_topics(topics)])
    } else {
        let topics = requested_topics(partitions, |name, ps| {
            OffsetFetchRequestTopic::default()
                .with_name(name)
                .with_partition_indexes(ps)
        });
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(topics)
    }
}

/// The topics an OffsetFetch asks for, one `make(name, partitions)` each;
/// None (every committed partition) when `partitions` is.
fn requested_topics<T>(
    partitions: Option<&[(String, i32)]>,
    make: impl Fn(TopicName, Vec<i32>) -> T,
) -> Option<Vec<T>> {
    partitions.map(|ps| {
        by_topic(ps.iter().map(|(t, p)| (t, *p)))
            .into_iter()
            .map(|(name, ps)| make(name, ps))
            .collect()
    })
}
