//! JoinGroup and the rebalance it drives: MEMBER_ID_REQUIRED (KIP-394), static
//! members (KIP-345), the initial rebalance delay, and completing the join
//! into a new generation.

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::ResponseError;

use super::{ClassicGroup, GroupLimits, GroupState, InitialDelay, Member};

/// A JoinGroup request in owned form.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a member without an id first gets one back with MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, instance id, metadata): only the leader gets them.
    pub members: Vec<(String, Option<String>, Bytes)>,
    pub skip_assignment: bool,
}

impl JoinResult {
    pub fn error(e: ResponseError, member_id: &str) -> Self {
        JoinResult {
            error: Some(e),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

pub enum Joined {
    Now(JoinResult),
    Wait(oneshot::Receiver<JoinResult>),
}

impl ClassicGroup {
    pub fn join(&mut self, req: JoinRequest, limits: &GroupLimits, now_ms: i64) -> Joined {
        tracing::debug!(group = %self.id, member = %req.member_id, state = self.state.name(), generation = self.generation, "JoinGroup");
        let err = |e| Joined::Now(JoinResult::error(e, &req.member_id));
        if self.state == GroupState::Dead {
            return err(ResponseError::CoordinatorNotAvailable);
        }
        if req.session_timeout_ms < limits.min_session_timeout_ms
            || req.session_timeout_ms > limits.max_session_timeout_ms
        {
            return err(ResponseError::InvalidSessionTimeout);
        }
        let metadata_bytes: usize = req.protocols.iter().map(|(n, m)| n.len() + m.len()).sum();
        if metadata_bytes > limits.max_member_metadata_bytes {
            tracing::warn!(group = %self.id, metadata_bytes, limit = limits.max_member_metadata_bytes, "JoinGroup refused: member metadata too large");
            return err(ResponseError::InvalidRequest);
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return err(ResponseError::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            self.join_new_member(req, limits, now_ms)
        } else {
            self.join_known_member(req, limits, now_ms)
        }
    }

    fn join_new_member(&mut self, req: JoinRequest, limits: &GroupLimits, now_ms: i64) -> Joined {
        let prefix = req.instance_id.as_deref().unwrap_or(&req.client_id);
        let member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = &req.instance_id {
            if let Some(old) = self.static_members.get(instance).cloned() {
                return self.replace_static_member(&old, member_id, req, now_ms);
            }
        }
        if self.members.len() + self.pending.len() >= limits.max_size {
            return Joined::Now(JoinResult::error(ResponseError::GroupMaxSizeReached, ""));
        }
        if req.instance_id.is_none() && req.require_known_member_id {
            // The id must come back in a second JoinGroup before the member
            // counts: a client that dies in between leaves no ghost member.
            self.pending
                .insert(member_id.clone(), now_ms + req.session_timeout_ms as i64);
            return Joined::Now(JoinResult::error(
                ResponseError::MemberIdRequired,
                &member_id,
            ));
        }
        self.add_member_and_rebalance(member_id, req, now_ms)
    }

    fn join_known_member(&mut self, req: JoinRequest, limits: &GroupLimits, now_ms: i64) -> Joined {
        let id = req.member_id.clone();
        if self.pending.remove(&id).is_some() {
            if self.members.len() >= limits.max_size {
                return Joined::Now(JoinResult::error(ResponseError::GroupMaxSizeReached, &id));
            }
            return self.add_member_and_rebalance(id, req, now_ms);
        }
        if let Some(instance) = &req.instance_id {
            if self.static_members.get(instance) != Some(&id) {
                return Joined::Now(JoinResult::error(ResponseError::FencedInstanceId, &id));
            }
        }
        let Some(member) = self.members.get(&id) else {
            return Joined::Now(JoinResult::error(ResponseError::UnknownMemberId, &id));
        };
        let unchanged =
            member.protocols == req.protocols && member.protocol_type == req.protocol_type;
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(req, now_ms),
            GroupState::CompletingRebalance if unchanged => {
                // A repeated join: answer with the generation already formed.
                Joined::Now(self.current_result(&id, self.is_leader(&id), false))
            }
            GroupState::Stable if unchanged && !self.is_leader(&id) => {
                Joined::Now(self.current_result(&id, false, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(req, now_ms)
            }
            GroupState::Empty | GroupState::Dead => {
                Joined::Now(JoinResult::error(ResponseError::UnknownMemberId, &id))
            }
        }
    }

    /// The answer for `member_id` in the current generation.
    fn current_result(&self, member_id: &str, with_members: bool, skip: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.members_in_order()
                    .into_iter()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                vec![]
            },
            skip_assignment: skip,
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now_ms: i64,
    ) -> Joined {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        if let Some(i) = &req.instance_id {
            self.static_members.insert(i.clone(), member_id.clone());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.members.insert(
            member_id.clone(),
            Member {
                id: member_id,
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                session_timeout_ms: req.session_timeout_ms,
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                seq,
                join_waiter: Some(tx),
                sync_waiter: None,
                last_heartbeat_ms: now_ms,
            },
        );
        if let Some(d) = &mut self.initial_delay {
            d.new_member_added = true;
        }
        self.maybe_prepare_rebalance(now_ms);
        self.try_complete_join(now_ms);
        Joined::Wait(rx)
    }

    fn update_member_and_rebalance(&mut self, req: JoinRequest, now_ms: i64) -> Joined {
        let (tx, rx) = oneshot::channel();
        let member_id = req.member_id.clone();
        let m = self.members.get_mut(&member_id).expect("known member");
        m.refresh(req, now_ms);
        if let Some(old) = m.join_waiter.replace(tx) {
            // The client gave up on its earlier JoinGroup and sent another.
            let _ = old.send(JoinResult::error(
                ResponseError::RebalanceInProgress,
                &member_id,
            ));
        }
        self.maybe_prepare_rebalance(now_ms);
        self.try_complete_join(now_ms);
        Joined::Wait(rx)
    }

    /// A static member came back without its member id (a restarted client):
    /// it takes over the old identity, which is fenced from now on.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
        now_ms: i64,
    ) -> Joined {
        let mut m = self.members.remove(old_id).expect("static member present");
        if let Some(tx) = m.join_waiter.take() {
            let _ = tx.send(JoinResult::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(tx) = m.sync_waiter.take() {
            let _ = tx.send(super::SyncResult::error(ResponseError::FencedInstanceId));
        }
        let unchanged = m.protocols == req.protocols;
        let instance = req.instance_id.clone().expect("static member");
        m.id = new_id.clone();
        m.refresh(req, now_ms);
        self.static_members.insert(instance, new_id.clone());
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        let (tx, rx) = oneshot::channel();
        m.join_waiter = Some(tx);
        self.members.insert(new_id.clone(), m);
        match self.state {
            GroupState::Stable if unchanged => {
                // Same subscription: no rebalance. The leader is told to skip
                // the assignment (KIP-814); the new identity is persisted.
                let m = self.members.get_mut(&new_id).expect("just inserted");
                m.join_waiter = None;
                self.needs_persist = true;
                let leader = self.is_leader(&new_id);
                Joined::Now(self.current_result(&new_id, leader, leader))
            }
            GroupState::PreparingRebalance => {
                self.try_complete_join(now_ms);
                Joined::Wait(rx)
            }
            _ => {
                self.prepare_rebalance(now_ms);
                self.try_complete_join(now_ms);
                Joined::Wait(rx)
            }
        }
    }

    pub(super) fn maybe_prepare_rebalance(&mut self, now_ms: i64) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(now_ms);
        }
    }

    fn prepare_rebalance(&mut self, now_ms: i64) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_error(ResponseError::RebalanceInProgress);
        }
        let rebalance_timeout_ms = self.max_rebalance_timeout_ms();
        let initial_ms = self.initial_delay_ms as i64;
        if self.state == GroupState::Empty && initial_ms > 0 {
            let delay = initial_ms.min(rebalance_timeout_ms);
            self.join_deadline_ms = Some(now_ms + delay);
            self.initial_delay = Some(InitialDelay {
                remaining_ms: (rebalance_timeout_ms - delay).max(0),
                new_member_added: false,
            });
        } else {
            self.join_deadline_ms = Some(now_ms + rebalance_timeout_ms);
            self.initial_delay = None;
        }
        self.transition(GroupState::PreparingRebalance, now_ms);
    }

    fn all_members_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    pub(super) fn try_complete_join(&mut self, now_ms: i64) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_members_joined()
        {
            self.complete_join(now_ms);
        }
    }

    /// The join deadline passed: extend the initial delay while members keep
    /// arriving, otherwise form the generation with whoever rejoined.
    pub(super) fn join_deadline_reached(&mut self, now_ms: i64) {
        if let Some(d) = &mut self.initial_delay {
            if d.new_member_added && d.remaining_ms > 0 {
                let delay = (self.initial_delay_ms as i64).min(d.remaining_ms);
                d.remaining_ms = (d.remaining_ms - delay).max(0);
                d.new_member_added = false;
                self.join_deadline_ms = Some(now_ms + delay);
                return;
            }
        }
        self.complete_join(now_ms);
    }

    fn complete_join(&mut self, now_ms: i64) {
        self.join_deadline_ms = None;
        self.initial_delay = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.remove_member(&id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.transition(GroupState::Empty, now_ms);
            self.needs_persist = true;
            return;
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members_in_order().first().map(|m| m.id.clone());
        }
        self.transition(GroupState::CompletingRebalance, now_ms);
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), protocol = ?self.protocol, "rebalance complete");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let leader = self.is_leader(&id);
            let result = self.current_result(&id, leader, false);
            let m = self.members.get_mut(&id).expect("member");
            m.last_heartbeat_ms = now_ms;
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(result);
            }
        }
    }
}
