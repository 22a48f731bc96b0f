//! The classic group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) as a
//! state machine without I/O, after Kafka's `GroupCoordinator`: states Empty →
//! PreparingRebalance → CompletingRebalance → Stable, generations, a leader
//! chosen among the members, static membership and timeouts that evict dead
//! members. Waiting JoinGroup/SyncGroup callers hold a oneshot receiver; every
//! path that drops a member answers its waiters first.

mod join;
mod members;
mod sync;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::ResponseError;

pub use join::{JoinRequest, JoinResult, Joined};
pub use sync::{SyncRequest, SyncResult, Synced};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka's tools print and ListGroups filters on.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Broker-wide bounds on groups (Kafka's `group.*` settings).
#[derive(Debug, Clone)]
pub struct GroupLimits {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub max_size: usize,
    /// Bound on one member's protocol metadata (all protocols together).
    pub max_member_metadata_bytes: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: 1_000,
            max_member_metadata_bytes: 1 << 20,
        }
    }
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Order of arrival: the leader is the earliest member still present.
    seq: u64,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    last_heartbeat_ms: i64,
}

impl Member {
    /// This member's metadata for `protocol` (empty if it has none).
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Take what a new JoinGroup says about the member.
    fn refresh(&mut self, req: JoinRequest, now_ms: i64) {
        self.protocols = req.protocols;
        self.protocol_type = req.protocol_type;
        self.session_timeout_ms = req.session_timeout_ms;
        self.rebalance_timeout_ms = req.rebalance_timeout_ms;
        self.client_id = req.client_id;
        self.client_host = req.client_host;
        self.last_heartbeat_ms = now_ms;
    }

    /// A member waiting in JoinGroup or SyncGroup is alive by definition.
    fn awaiting(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }
}

/// Extension of the first rebalance of an empty group, so members starting
/// together land in one generation (`group.initial.rebalance.delay.ms`).
struct InitialDelay {
    remaining_ms: i64,
    new_member_added: bool,
}

pub struct ClassicGroup {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: HashMap<String, Member>,
    /// group.instance.id → member id of static members.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED → expiry (ms).
    pending: HashMap<String, i64>,
    join_deadline_ms: Option<i64>,
    initial_delay: Option<InitialDelay>,
    /// Assignments the leader sent, waiting to be persisted.
    staged: Option<HashMap<String, Bytes>>,
    next_seq: u64,
    pub state_timestamp_ms: i64,
    /// Group metadata changed in a way that must reach `__consumer_offsets`.
    pub needs_persist: bool,
    /// `group.initial.rebalance.delay.ms`, set by the coordinator.
    pub initial_delay_ms: i32,
}

impl ClassicGroup {
    pub fn new(id: String, now_ms: i64) -> Self {
        ClassicGroup {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            join_deadline_ms: None,
            initial_delay: None,
            staged: None,
            next_seq: 0,
            state_timestamp_ms: now_ms,
            needs_persist: false,
            initial_delay_ms: 0,
        }
    }

    fn transition(&mut self, to: GroupState, now_ms: i64) {
        tracing::debug!(group = %self.id, from = self.state.name(), to = to.name(), generation = self.generation, "group state");
        self.state = to;
        self.state_timestamp_ms = now_ms;
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Members by arrival, for stable leader choice and output order.
    pub fn members_in_order(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.values().collect();
        v.sort_by_key(|m| m.seq);
        v
    }

    /// Protocols every member supports, voted on by each member's preference.
    fn select_protocol(&self) -> Option<String> {
        let members = self.members_in_order();
        let first = members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| {
                members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect();
        let mut votes: Vec<(&str, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in &members {
            if let Some((name, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()))
            {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        // Ties go to the earliest candidate, so the choice is deterministic.
        let mut best: Option<(&str, usize)> = None;
        for (c, n) in votes {
            if best.is_none_or(|(_, b)| n > b) {
                best = Some((c, n));
            }
        }
        best.map(|(c, _)| c.to_string())
    }

    /// Could a member with these protocols join the current group?
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(p, _)| p == name))
        })
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    /// Persisted form of the group (what `__consumer_offsets` holds).
    pub fn to_value(&self) -> crate::group::format::GroupValue {
        use crate::group::format::{GroupValue, MemberValue};
        let protocol = self.protocol.clone();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members_in_order()
                .into_iter()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: protocol
                        .as_deref()
                        .map(|p| m.metadata_for(p))
                        .unwrap_or_default(),
                    assignment: self
                        .staged
                        .as_ref()
                        .and_then(|s| s.get(&m.id).cloned())
                        .unwrap_or_else(|| m.assignment.clone()),
                })
                .collect(),
        }
    }

    /// The group's `__consumer_offsets` record as of now.
    pub fn record(&self) -> (crate::group::format::RecordKey, Option<Bytes>) {
        use crate::group::format::{encode_group, RecordKey};
        (
            RecordKey::group(&self.id),
            Some(encode_group(&self.to_value())),
        )
    }

    /// Rebuild a group from its persisted form. Members come back as if they
    /// had just heartbeated: those whose clients are gone expire after their
    /// session timeout, those still running carry on.
    pub fn from_value(id: String, v: crate::group::format::GroupValue, now_ms: i64) -> Self {
        let mut g = ClassicGroup::new(id, now_ms);
        g.generation = v.generation;
        g.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
        g.protocol = v.protocol.clone();
        g.leader = v.leader;
        if v.current_state_timestamp_ms >= 0 {
            g.state_timestamp_ms = v.current_state_timestamp_ms;
        }
        for m in v.members {
            let seq = g.next_seq;
            g.next_seq += 1;
            if let Some(i) = &m.group_instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            let protocols = match &v.protocol {
                Some(p) => vec![(p.clone(), m.subscription)],
                None => vec![],
            };
            g.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocols,
                    assignment: m.assignment,
                    seq,
                    join_waiter: None,
                    sync_waiter: None,
                    last_heartbeat_ms: now_ms,
                },
            );
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }

    /// Answer every SyncGroup waiter with `e` and forget the assignments, so
    /// nobody acts on a generation that is being replaced.
    fn reset_and_propagate_assignment_error(&mut self, e: ResponseError) {
        self.staged = None;
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncResult::error(e));
            }
        }
    }
}
