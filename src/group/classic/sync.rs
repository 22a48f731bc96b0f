//! SyncGroup: the leader's assignments are persisted, then handed to every
//! member waiting in SyncGroup, and the group becomes Stable.

use std::collections::HashMap;

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::ResponseError;

use super::{ClassicGroup, GroupState};

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub member_id: String,
    pub generation: i32,
    pub instance_id: Option<String>,
    /// v5+: must match the group's, when given.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(e: ResponseError) -> Self {
        SyncResult {
            error: Some(e),
            ..Default::default()
        }
    }
}

pub enum Synced {
    Now(SyncResult),
    /// Wait for the answer; when `persist` is set the caller must first write
    /// the group (with the leader's staged assignments) and report back with
    /// `assignments_persisted`.
    Wait {
        rx: oneshot::Receiver<SyncResult>,
        persist: bool,
    },
}

impl ClassicGroup {
    pub fn sync(&mut self, req: SyncRequest, now_ms: i64) -> Synced {
        tracing::debug!(group = %self.id, member = %req.member_id, generation = req.generation, state = self.state.name(), "SyncGroup");
        let err = |e| Synced::Now(SyncResult::error(e));
        if self.state == GroupState::Dead {
            return err(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(e) = self.check_member(&req.member_id, req.instance_id.as_deref()) {
            return err(e);
        }
        if req.generation != self.generation {
            return err(ResponseError::IllegalGeneration);
        }
        let type_ok = req
            .protocol_type
            .as_ref()
            .is_none_or(|t| Some(t) == self.protocol_type.as_ref());
        let name_ok = req
            .protocol_name
            .as_ref()
            .is_none_or(|n| Some(n) == self.protocol.as_ref());
        if !type_ok || !name_ok {
            return err(ResponseError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => err(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let m = self.members.get_mut(&req.member_id).expect("checked");
                m.last_heartbeat_ms = now_ms;
                Synced::Now(SyncResult {
                    error: None,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment: m.assignment.clone(),
                })
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(&req.member_id).expect("checked");
                m.last_heartbeat_ms = now_ms;
                if let Some(old) = m.sync_waiter.replace(tx) {
                    let _ = old.send(SyncResult::error(ResponseError::RebalanceInProgress));
                }
                let persist = self.is_leader(&req.member_id) && self.staged.is_none();
                if persist {
                    let mut staged: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    staged.retain(|id, _| self.members.contains_key(id));
                    for id in self.members.keys() {
                        staged.entry(id.clone()).or_default();
                    }
                    self.staged = Some(staged);
                }
                Synced::Wait { rx, persist }
            }
        }
    }

    /// The write of the leader's assignments for `generation` finished.
    pub fn assignments_persisted(
        &mut self,
        generation: i32,
        result: Result<(), ResponseError>,
        now_ms: i64,
    ) {
        if self.generation != generation || self.state != GroupState::CompletingRebalance {
            return;
        }
        let Some(staged) = self.staged.take() else {
            return;
        };
        if let Err(e) = result {
            tracing::warn!(group = %self.id, generation, error = ?e, "could not persist assignments; rebalancing");
            self.reset_and_propagate_assignment_error(e);
            self.maybe_prepare_rebalance(now_ms);
            self.try_complete_join(now_ms);
            return;
        }
        for (id, assignment) in staged {
            if let Some(m) = self.members.get_mut(&id) {
                m.assignment = assignment;
            }
        }
        for m in self.members.values_mut() {
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncResult {
                    error: None,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment: m.assignment.clone(),
                });
            }
        }
        self.transition(GroupState::Stable, now_ms);
    }
}
