//! Moving one member from its current assignment towards its target
//! (Kafka's CurrentAssignmentBuilder, simplified): first revoke what it must
//! give up and wait for the acknowledgement, then take the new epoch and the
//! target partitions that nobody else still holds.

use std::collections::BTreeSet;

use super::{ConsumerGroup, MemberState, Tp};

impl ConsumerGroup {
    /// Partitions held (assigned or being revoked) by members other than `id`.
    fn held_by_others(&self, id: &str) -> BTreeSet<Tp> {
        self.members
            .values()
            .filter(|m| m.id != id)
            .flat_map(|m| m.assigned.iter().chain(m.revoking.iter()).cloned())
            .collect()
    }

    pub(super) fn reconcile(&mut self, id: &str, owned: Option<&BTreeSet<Tp>>, now_ms: i64) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let epoch = self.assignment_epoch;
        let held = self.held_by_others(id);
        let m = self.members.get_mut(id).expect("member");
        if m.state == MemberState::UnrevokedPartitions {
            let acked = owned.is_some_and(|o| o.is_disjoint(&m.revoking));
            if !acked {
                // The target may have moved on meanwhile: revoke more, never less.
                let more: BTreeSet<Tp> = m.assigned.difference(&target).cloned().collect();
                m.assigned.retain(|tp| target.contains(tp));
                m.revoking.extend(more);
                return;
            }
            m.revoking.clear();
            m.revoke_deadline_ms = None;
            m.state = MemberState::Stable;
        }
        if m.epoch == epoch && m.state == MemberState::Stable {
            return;
        }
        let to_revoke: BTreeSet<Tp> = m.assigned.difference(&target).cloned().collect();
        if !to_revoke.is_empty() {
            m.assigned.retain(|tp| target.contains(tp));
            m.revoking = to_revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revoke_deadline_ms = Some(now_ms + m.rebalance_timeout_ms as i64);
            return;
        }
        if m.epoch != epoch {
            m.previous_epoch = m.epoch;
            m.epoch = epoch;
        }
        for tp in target.iter().filter(|tp| !held.contains(*tp)) {
            m.assigned.insert(tp.clone());
        }
        m.state = if m.assigned.len() == target.len() {
            MemberState::Stable
        } else {
            MemberState::UnreleasedPartitions
        };
    }
}
