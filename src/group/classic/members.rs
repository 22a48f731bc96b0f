//! Liveness and departures: member checks, heartbeats, LeaveGroup, session
//! and join deadlines, and the rules for who may commit offsets.

use kafka_protocol::ResponseError;

use super::{ClassicGroup, GroupState, JoinResult, SyncResult};

impl ClassicGroup {
    /// UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID for a request naming a member.
    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Option<ResponseError> {
        if let Some(i) = instance_id {
            match self.static_members.get(i) {
                Some(id) if id == member_id => {}
                Some(_) => return Some(ResponseError::FencedInstanceId),
                None => return Some(ResponseError::UnknownMemberId),
            }
        }
        if !self.members.contains_key(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        None
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Option<ResponseError> {
        match self.state {
            GroupState::Dead => return Some(ResponseError::CoordinatorNotAvailable),
            GroupState::Empty => return Some(ResponseError::UnknownMemberId),
            _ => {}
        }
        if let Some(e) = self.check_member(member_id, instance_id) {
            return Some(e);
        }
        if generation != self.generation {
            tracing::debug!(group = %self.id, member = member_id, generation, current = self.generation, "heartbeat: illegal generation");
            return Some(ResponseError::IllegalGeneration);
        }
        self.members
            .get_mut(member_id)
            .expect("checked")
            .last_heartbeat_ms = now_ms;
        match self.state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// LeaveGroup for one member (v3+ names them by member or instance id).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> Option<ResponseError> {
        if self.state == GroupState::Dead {
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        let id = match instance_id {
            Some(i) => match self.static_members.get(i) {
                None => return Some(ResponseError::UnknownMemberId),
                Some(id) if !member_id.is_empty() && id != member_id => {
                    return Some(ResponseError::FencedInstanceId)
                }
                Some(id) => id.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            self.try_complete_join(now_ms);
            return None;
        }
        if !self.members.contains_key(&id) {
            return Some(ResponseError::UnknownMemberId);
        }
        tracing::info!(group = %self.id, member = %id, "member left the group");
        self.remove_member_and_update_group(&id, now_ms);
        None
    }

    /// Drop a member, answering anything it waits on.
    pub(super) fn remove_member(&mut self, id: &str) {
        let Some(mut m) = self.members.remove(id) else {
            return;
        };
        if let Some(tx) = m.join_waiter.take() {
            let _ = tx.send(JoinResult::error(ResponseError::UnknownMemberId, id));
        }
        if let Some(tx) = m.sync_waiter.take() {
            let _ = tx.send(SyncResult::error(ResponseError::UnknownMemberId));
        }
        if let Some(i) = &m.instance_id {
            if self.static_members.get(i).map(String::as_str) == Some(id) {
                self.static_members.remove(i);
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members_in_order().first().map(|m| m.id.clone());
        }
    }

    fn remove_member_and_update_group(&mut self, id: &str, now_ms: i64) {
        self.remove_member(id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(now_ms);
                self.try_complete_join(now_ms);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// The earliest time `tick` has something to do: a session that ends,
    /// a pending member's or the join's deadline.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| !m.awaiting())
            .map(|m| m.last_heartbeat_ms + m.session_timeout_ms as i64);
        let join = self
            .join_deadline_ms
            .filter(|_| self.state == GroupState::PreparingRebalance);
        sessions
            .chain(self.pending.values().copied())
            .chain(join)
            .min()
    }

    /// Evict members whose session expired and act on a passed join deadline.
    /// A session ends at its deadline (last heartbeat + session timeout), as
    /// Kafka's heartbeat timer fires then.
    pub fn tick(&mut self, now_ms: i64) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !m.awaiting() && now_ms >= m.last_heartbeat_ms + m.session_timeout_ms as i64
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired; removed");
            self.remove_member_and_update_group(&id, now_ms);
        }
        let before = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now_ms);
        if self.pending.len() != before {
            self.try_complete_join(now_ms);
        }
        if self.state == GroupState::PreparingRebalance
            && self.join_deadline_ms.is_some_and(|d| now_ms >= d)
        {
            self.join_deadline_reached(now_ms);
        }
    }

    /// May this request commit offsets? `generation < 0` with no member is a
    /// "simple" commit, allowed only while the group has no members.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Option<ResponseError> {
        // Kafka's order of checks (GroupCoordinator.doCommitOffsets).
        if self.state == GroupState::Dead {
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(i) = instance_id {
            if self.static_members.get(i).is_some_and(|id| id != member_id) {
                return Some(ResponseError::FencedInstanceId);
            }
        }
        if generation < 0 && self.state == GroupState::Empty {
            return None;
        }
        if self.state == GroupState::CompletingRebalance {
            return Some(ResponseError::RebalanceInProgress);
        }
        if !self.members.contains_key(member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Some(ResponseError::IllegalGeneration);
        }
        self.members
            .get_mut(member_id)
            .expect("checked")
            .last_heartbeat_ms = now_ms;
        None
    }

    /// Is any member subscribed to `topic`? Only known for the "consumer"
    /// protocol, whose subscription metadata we can read.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        let Some(p) = &self.protocol else {
            return false;
        };
        if self.protocol_type.as_deref() != Some("consumer") {
            return false;
        }
        self.members.values().any(|m| {
            crate::group::subscription::topics(&m.metadata_for(p))
                .is_some_and(|ts| ts.iter().any(|t| t == topic))
        })
    }
}
