//! KIP-848 consumer groups (ConsumerGroupHeartbeat): the broker computes the
//! target assignment with a server-side assignor, members reconcile towards
//! it one heartbeat at a time, and epochs fence stale members. A partition
//! moves only after its previous owner acknowledged revoking it.

mod assignor;
mod reconcile;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::ResponseError;

pub use assignor::{Tp, ASSIGNORS};

use crate::cluster::Catalog;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Waiting for the member to give up `revoking`.
    UnrevokedPartitions,
    /// Some target partitions are still held by other members.
    UnreleasedPartitions,
}

pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub topics: Vec<String>,
    pub regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub assigned: BTreeSet<Tp>,
    pub revoking: BTreeSet<Tp>,
    last_heartbeat_ms: i64,
    revoke_deadline_ms: Option<i64>,
    /// (epoch, partitions) last sent, so unchanged assignments are not resent.
    last_sent: Option<(i32, BTreeSet<Tp>)>,
}

/// A ConsumerGroupHeartbeat in owned form (topics by name, ids resolved).
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub topics: Option<Vec<String>>,
    pub regex: Option<String>,
    pub server_assignor: Option<String>,
    /// What the member says it owns (None: unchanged since last time).
    pub owned: Option<BTreeSet<Tp>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<BTreeSet<Tp>>,
}

pub type HeartbeatError = (ResponseError, String);

/// Group-wide KIP-848 settings.
#[derive(Debug, Clone)]
pub struct ConsumerGroupConfig {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
}

pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, BTreeSet<Tp>>,
    /// Partition counts of subscribed topics when the target was computed.
    topics_snapshot: BTreeMap<String, i32>,
    pub assignor: String,
    pub empty_since_ms: i64,
}

impl ConsumerGroup {
    pub fn new(id: String, now_ms: i64) -> Self {
        ConsumerGroup {
            id,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            topics_snapshot: BTreeMap::new(),
            assignor: ASSIGNORS[0].to_string(),
            empty_since_ms: now_ms,
        }
    }

    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        catalog: &Catalog,
        cfg: &ConsumerGroupConfig,
        now_ms: i64,
    ) -> Result<HeartbeatResult, HeartbeatError> {
        if let Some(a) = &req.server_assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return Err((
                    ResponseError::UnsupportedAssignor,
                    format!("Assignor {a} is not supported. Supported assignors: uniform, range."),
                ));
            }
        }
        if let Some(r) = &req.regex {
            if let Err(e) = regex::Regex::new(r) {
                return Err((ResponseError::InvalidRegularExpression, e.to_string()));
            }
        }
        // A new member already moved the group epoch.
        let is_new = match req.member_epoch {
            -1 | -2 => return Ok(self.leave(req, now_ms)),
            0 => self.join(&req, cfg, now_ms)?,
            _ => {
                self.check_epoch(&req)?;
                false
            }
        };
        let id = req.member_id.clone();
        let m = self.members.get_mut(&id).expect("joined or checked");
        m.last_heartbeat_ms = now_ms;
        let mut changed = false;
        if let Some(t) = req.topics {
            changed |= m.topics != t;
            m.topics = t;
        }
        if req.regex.is_some() && req.regex != m.regex {
            m.regex = req.regex;
            changed = true;
        }
        if req.server_assignor.is_some() && req.server_assignor != m.server_assignor {
            m.server_assignor = req.server_assignor;
            changed = true;
        }
        if req.rebalance_timeout_ms > 0 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id;
        }
        if changed && !is_new {
            self.group_epoch += 1;
        }
        self.refresh_target(catalog);
        self.reconcile(&id, req.owned.as_ref(), now_ms);
        let m = self.members.get_mut(&id).expect("member");
        let current = (m.epoch, m.assigned.clone());
        let send = req.member_epoch == 0 || m.last_sent.as_ref() != Some(&current);
        let assignment = send.then(|| current.1.clone());
        if send {
            m.last_sent = Some(current);
        }
        Ok(HeartbeatResult {
            member_id: id,
            member_epoch: m.epoch,
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            assignment,
        })
    }

    fn join(
        &mut self,
        req: &HeartbeatRequest,
        cfg: &ConsumerGroupConfig,
        now_ms: i64,
    ) -> Result<bool, HeartbeatError> {
        if req.member_id.is_empty() {
            return Err((
                ResponseError::InvalidRequest,
                "MemberId can't be empty.".into(),
            ));
        }
        if req.topics.is_none() && req.regex.is_none() {
            return Err((
                ResponseError::InvalidRequest,
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.".into(),
            ));
        }
        let mut inherited = None;
        if let Some(instance) = &req.instance_id {
            let holder = self
                .members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance) && m.id != req.member_id)
                .map(|m| (m.id.clone(), m.epoch));
            match holder {
                // The previous incarnation left with epoch -2 (KIP-345 style
                // temporary leave): the new one takes over its partitions.
                Some((old, -2)) => inherited = self.members.remove(&old),
                Some(_) => {
                    return Err((
                        ResponseError::UnreleasedInstanceId,
                        format!("Static member with instance id {instance} is still in the group."),
                    ))
                }
                None => {}
            }
        }
        if let Some(m) = self.members.get_mut(&req.member_id) {
            // A fenced member rejoining: it owns nothing any more.
            m.epoch = 0;
            m.previous_epoch = 0;
            m.assigned.clear();
            m.revoking.clear();
            m.state = MemberState::Stable;
            m.last_sent = None;
            return Ok(false);
        }
        if self.members.len() >= cfg.max_size {
            return Err((
                ResponseError::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    cfg.max_size
                ),
            ));
        }
        let mut member = ConsumerMember {
            id: req.member_id.clone(),
            instance_id: req.instance_id.clone(),
            rack_id: req.rack_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            topics: Vec::new(),
            regex: None,
            server_assignor: None,
            rebalance_timeout_ms: req.rebalance_timeout_ms.max(1),
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: BTreeSet::new(),
            revoking: BTreeSet::new(),
            last_heartbeat_ms: now_ms,
            revoke_deadline_ms: None,
            last_sent: None,
        };
        if let Some(old) = inherited {
            if let Some(t) = self.target.remove(&old.id) {
                self.target.insert(member.id.clone(), t);
            }
            member.epoch = old.previous_epoch.max(0);
            member.assigned = old.assigned;
        }
        self.members.insert(member.id.clone(), member);
        self.group_epoch += 1;
        Ok(true)
    }

    fn check_epoch(&self, req: &HeartbeatRequest) -> Result<(), HeartbeatError> {
        let Some(m) = self.members.get(&req.member_id) else {
            return Err((
                ResponseError::UnknownMemberId,
                format!(
                    "Member {} is not a member of group {}.",
                    req.member_id, self.id
                ),
            ));
        };
        if let Some(i) = &req.instance_id {
            if m.instance_id.as_ref() != Some(i) {
                return Err((
                    ResponseError::FencedInstanceId,
                    format!("Instance id {i} is owned by another member."),
                ));
            }
        }
        let ok = req.member_epoch == m.epoch
            // A lost response: the member still acts on the previous epoch
            // and owns nothing it should not.
            || (req.member_epoch == m.previous_epoch
                && req.owned.as_ref().is_some_and(|o| o.is_subset(&m.assigned)));
        if !ok {
            return Err((
                ResponseError::FencedMemberEpoch,
                format!(
                    "The consumer group member has a smaller member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    req.member_epoch, m.epoch
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self, req: HeartbeatRequest, now_ms: i64) -> HeartbeatResult {
        let epoch = req.member_epoch;
        if epoch == -2 && req.instance_id.is_some() {
            // A static member leaving temporarily keeps its partitions until
            // its session times out or its next incarnation joins.
            if let Some(m) = self.members.get_mut(&req.member_id) {
                m.previous_epoch = m.epoch;
                m.epoch = -2;
                m.last_heartbeat_ms = now_ms;
            }
        } else if self.members.remove(&req.member_id).is_some() {
            tracing::info!(group = %self.id, member = %req.member_id, "member left the consumer group");
            self.remove_member_state(&req.member_id, now_ms);
        }
        HeartbeatResult {
            member_id: req.member_id,
            member_epoch: epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }

    fn remove_member_state(&mut self, id: &str, now_ms: i64) {
        self.target.remove(id);
        self.group_epoch += 1;
        if self.members.is_empty() {
            self.empty_since_ms = now_ms;
        }
    }

    /// Fence members whose session or revocation deadline passed; recompute
    /// the target when subscribed topics changed.
    /// The earliest session or revocation deadline of a member.
    pub fn next_deadline_ms(&self, cfg: &ConsumerGroupConfig) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| {
                [
                    Some(m.last_heartbeat_ms + cfg.session_timeout_ms as i64),
                    m.revoke_deadline_ms,
                ]
            })
            .flatten()
            .min()
    }

    pub fn tick(&mut self, now_ms: i64, cfg: &ConsumerGroupConfig, catalog: &Catalog) {
        let dead: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now_ms >= m.last_heartbeat_ms + cfg.session_timeout_ms as i64
                    || m.revoke_deadline_ms.is_some_and(|d| now_ms >= d)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in dead {
            tracing::info!(group = %self.id, member = %id, "consumer group member fenced: session or rebalance timeout");
            self.members.remove(&id);
            self.remove_member_state(&id, now_ms);
        }
        if !self.members.is_empty() {
            self.refresh_target(catalog);
        }
    }

    /// Topics a member subscribes to, resolved against the catalogue.
    fn subscribed(m: &ConsumerMember, catalog: &Catalog) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m
            .topics
            .iter()
            .filter(|t| catalog.topics.contains_key(*t))
            .cloned()
            .collect();
        if let Some(re) = m
            .regex
            .as_deref()
            .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok())
        {
            out.extend(
                catalog
                    .topics
                    .keys()
                    .filter(|t| !t.starts_with("__") && re.is_match(t))
                    .cloned(),
            );
        }
        out
    }

    /// Recompute the target assignment if the group epoch moved or the
    /// subscribed topics' partition counts changed.
    fn refresh_target(&mut self, catalog: &Catalog) {
        let subs: BTreeMap<String, BTreeSet<String>> = self
            .members
            .values()
            .filter(|m| m.epoch != -2)
            .map(|m| (m.id.clone(), Self::subscribed(m, catalog)))
            .collect();
        let topics: BTreeMap<String, i32> = subs
            .values()
            .flatten()
            .filter_map(|t| {
                catalog
                    .topics
                    .get(t)
                    .map(|meta| (t.clone(), meta.partitions))
            })
            .collect();
        if topics != self.topics_snapshot && self.group_epoch <= self.assignment_epoch {
            self.group_epoch = self.assignment_epoch + 1;
        }
        if self.group_epoch <= self.assignment_epoch {
            return;
        }
        // Members agree on an assignor by majority of those that name one.
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        if let Some((a, _)) = votes.iter().max_by_key(|(_, n)| **n) {
            self.assignor = a.to_string();
        }
        let mut target = assignor::assign(
            &self.assignor,
            &assignor::AssignInput {
                members: &subs,
                topics: &topics,
                previous: &self.target,
            },
        );
        // Static members away on a temporary leave keep their target.
        for m in self.members.values().filter(|m| m.epoch == -2) {
            if let Some(t) = self.target.get(&m.id) {
                for a in target.values_mut() {
                    a.retain(|tp| !t.contains(tp));
                }
                target.insert(m.id.clone(), t.clone());
            }
        }
        self.target = target;
        self.topics_snapshot = topics;
        self.assignment_epoch = self.group_epoch;
        tracing::info!(group = %self.id, epoch = self.group_epoch, members = self.members.len(), assignor = %self.assignor, "new target assignment");
    }

    /// OffsetCommit from a member: its epoch must be current.
    pub fn validate_commit(&self, member_id: &str, epoch: i32) -> Option<ResponseError> {
        if epoch < 0 && member_id.is_empty() {
            return (!self.members.is_empty()).then_some(ResponseError::UnknownMemberId);
        }
        let m = self.members.get(member_id)?;
        if epoch > m.epoch {
            return Some(ResponseError::FencedMemberEpoch);
        }
        if epoch < m.epoch {
            return Some(ResponseError::StaleMemberEpoch);
        }
        None
    }

    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.topics_snapshot.contains_key(topic)
    }

    /// The group in DescribeGroups' classic shape: assignments encoded as
    /// ConsumerProtocolAssignment so classic tools can read them.
    pub fn describe_classic(&self) -> crate::group::admin::DescribedGroup {
        crate::group::admin::DescribedGroup {
            state: self.state_name().into(),
            protocol_type: "consumer".into(),
            protocol: self.assignor.clone(),
            members: self
                .members
                .values()
                .map(|m| crate::group::admin::DescribedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: Bytes::new(),
                    assignment: encode_assignment(&m.assigned),
                })
                .collect(),
        }
    }
}

/// Partitions grouped by topic, in order (the shape every answer uses).
pub fn by_topic(parts: &BTreeSet<Tp>) -> BTreeMap<&str, Vec<i32>> {
    let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        out.entry(t).or_default().push(*p);
    }
    out
}

/// ConsumerProtocolAssignment v0 (version-prefixed) of `parts`.
pub fn encode_assignment(parts: &BTreeSet<Tp>) -> Bytes {
    use bytes::BufMut;
    use kafka_protocol::messages::consumer_protocol_assignment::{
        ConsumerProtocolAssignment, TopicPartition,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic(parts)
            .into_iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(StrBytes::from_string(t.to_string()).into())
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut b = bytes::BytesMut::new();
    b.put_i16(0);
    a.encode(&mut b, 0).expect("assignment encodes");
    b.freeze()
}
