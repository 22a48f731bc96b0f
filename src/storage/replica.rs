//! What one replica of a partition knows about replication: its role, the
//! in-sync replica set it was handed by the metadata image, and (on the
//! leader) how far each follower has fetched. The high watermark is computed
//! from it (see `PartitionLog::update_high_watermark`). Pure state: the
//! fetching and the ISR changes are driven by the broker.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    /// Fetches from `leader` (which may be -1: none alive yet).
    Follower {
        leader: i32,
    },
}

/// A follower as its leader sees it (Kafka's `Replica` state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end: the offset of its last fetch.
    pub log_end: i64,
    /// Last time the follower had everything the leader had (Kafka's
    /// `lastCaughtUpTimeMs`): what `replica.lag.time.max.ms` is measured from.
    pub caught_up_ms: i64,
    /// The leader's log end and the time of the follower's previous fetch.
    last_fetch_leader_end: i64,
    last_fetch_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Replication {
    pub role: Role,
    /// This broker.
    pub me: i32,
    pub replicas: Vec<i32>,
    /// The ISR as committed in the metadata log.
    pub isr: Vec<i32>,
    /// An ISR change the leader asked the controller for and that is not yet
    /// committed. While an expansion is pending the high watermark waits for
    /// the joining replica too (Kafka's "maximal ISR", KIP-497): it cannot
    /// advance past what a member of the ISR-to-be lacks.
    pub pending_isr: Option<Vec<i32>>,
    pub partition_epoch: i32,
    /// On the leader: every other replica's progress.
    pub followers: BTreeMap<i32, FollowerProgress>,
    /// On a follower: the leader's high watermark from its last response.
    pub leader_high_watermark: i64,
    /// On a follower: set when it must ask the leader where their logs
    /// diverge (OffsetForLeaderEpoch) before fetching again.
    pub needs_truncation: bool,
}

impl Replication {
    /// A partition's only replica (single broker, RF 1): leader, ISR of one.
    pub fn single(me: i32) -> Self {
        Self {
            role: Role::Leader,
            me,
            replicas: vec![me],
            isr: vec![me],
            pending_isr: None,
            partition_epoch: 0,
            followers: BTreeMap::new(),
            leader_high_watermark: 0,
            needs_truncation: false,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The members the high watermark waits for: committed ISR plus, while
    /// an expansion is pending, the joiners.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut m = self.isr.clone();
        if let Some(p) = &self.pending_isr {
            for r in p {
                if !m.contains(r) {
                    m.push(*r);
                }
            }
        }
        m
    }

    /// Adopt the leader, replicas and ISR of a new metadata image. Followers'
    /// progress is kept for replicas that stay (so a new image does not
    /// reset their lag) and started fresh for new ones.
    pub fn adopt(&mut self, role: Role, replicas: &[i32], isr: &[i32], partition_epoch: i32) {
        let was_leader = self.is_leader();
        self.role = role;
        self.replicas = replicas.to_vec();
        self.isr = isr.to_vec();
        if self.pending_isr.as_deref() == Some(isr) || partition_epoch != self.partition_epoch {
            self.pending_isr = None;
        }
        self.partition_epoch = partition_epoch;
        if role == Role::Leader {
            if !was_leader {
                self.followers.clear();
            }
            let me = self.me;
            self.followers
                .retain(|r, _| *r != me && replicas.contains(r));
        } else {
            self.followers.clear();
        }
    }

    /// Record a follower's fetch at `offset` when the leader's log ends at
    /// `leader_end` (Kafka's `Replica.updateFetchState`).
    pub fn on_follower_fetch(&mut self, replica: i32, offset: i64, leader_end: i64, now_ms: i64) {
        let p = self.followers.entry(replica).or_insert(FollowerProgress {
            log_end: offset,
            caught_up_ms: 0,
            last_fetch_leader_end: -1,
            last_fetch_ms: 0,
        });
        if offset >= leader_end {
            p.caught_up_ms = p.caught_up_ms.max(now_ms);
        } else if offset >= p.last_fetch_leader_end {
            p.caught_up_ms = p.caught_up_ms.max(p.last_fetch_ms);
        }
        p.log_end = offset;
        p.last_fetch_leader_end = leader_end;
        p.last_fetch_ms = now_ms;
    }

    /// The ISR the leader should ask for now, if it differs from the
    /// committed one: followers that lag more than `lag_max_ms` leave, ones
    /// that reached `high_watermark` (and the start of this leader's epoch)
    /// join. `None` while a change is pending or nothing changes.
    pub fn wanted_isr(
        &self,
        high_watermark: i64,
        epoch_start: i64,
        now_ms: i64,
        lag_max_ms: i64,
        eligible: impl Fn(i32) -> bool,
    ) -> Option<Vec<i32>> {
        if !self.is_leader() || self.pending_isr.is_some() {
            return None;
        }
        let mut isr: Vec<i32> = Vec::new();
        for r in &self.replicas {
            let keep = if *r == self.me {
                true
            } else {
                match self.followers.get(r) {
                    // A member stays while it has caught up recently.
                    Some(p) if self.isr.contains(r) => now_ms - p.caught_up_ms <= lag_max_ms,
                    // A non-member joins once it has everything committed,
                    // if it may (Kafka's isReplicaIsrEligible: a fenced
                    // broker may not, whatever it fetched before).
                    Some(p) => {
                        p.log_end >= high_watermark && p.log_end >= epoch_start && eligible(*r)
                    }
                    // Not heard from since this leader took over: a member
                    // gets `lag_max_ms` from then (see `adopt`), others wait.
                    None => self.isr.contains(r),
                }
            };
            if keep {
                isr.push(*r);
            }
        }
        let same = isr.len() == self.isr.len() && isr.iter().all(|r| self.isr.contains(r));
        (!same).then_some(isr)
    }

    /// The high watermark the ISR allows for a leader whose log ends at
    /// `log_end`: the smallest log end over the (maximal) ISR.
    pub fn leader_high_watermark_for(&self, log_end: i64) -> i64 {
        let mut hw = log_end;
        for r in self.maximal_isr() {
            if r == self.me {
                continue;
            }
            hw = hw.min(self.followers.get(&r).map_or(0, |p| p.log_end));
        }
        hw
    }

    /// Members of the ISR not heard from yet start their lag clock now (a
    /// new leader gives every member `replica.lag.time.max.ms` to fetch).
    pub fn start_clocks(&mut self, log_end: i64, now_ms: i64) {
        for r in self.isr.clone() {
            if r != self.me {
                self.followers.entry(r).or_insert(FollowerProgress {
                    log_end: 0,
                    caught_up_ms: now_ms,
                    last_fetch_leader_end: log_end,
                    last_fetch_ms: now_ms,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader() -> Replication {
        let mut r = Replication::single(1);
        r.adopt(Role::Leader, &[1, 2, 3], &[1, 2, 3], 0);
        r.start_clocks(0, 0);
        r
    }

    #[test]
    fn the_high_watermark_is_the_smallest_log_end_in_the_isr() {
        let mut r = leader();
        assert_eq!(r.leader_high_watermark_for(10), 0);
        r.on_follower_fetch(2, 10, 10, 5);
        assert_eq!(r.leader_high_watermark_for(10), 0, "3 has nothing yet");
        r.on_follower_fetch(3, 7, 10, 5);
        assert_eq!(r.leader_high_watermark_for(10), 7);
        // 3 leaves the ISR: only 2 counts.
        r.adopt(Role::Leader, &[1, 2, 3], &[1, 2], 1);
        assert_eq!(r.leader_high_watermark_for(10), 10);
        // An expansion pending: 3 counts again.
        r.pending_isr = Some(vec![1, 2, 3]);
        assert_eq!(r.leader_high_watermark_for(10), 7);
    }

    #[test]
    fn lagging_followers_leave_and_caught_up_ones_join() {
        let mut r = leader();
        r.on_follower_fetch(2, 10, 10, 1_000);
        r.on_follower_fetch(3, 4, 10, 1_000);
        assert_eq!(r.wanted_isr(4, 0, 20_000, 30_000, |_| true), None);
        // 3 never catches up: out after the lag limit.
        r.on_follower_fetch(2, 10, 10, 40_000);
        r.on_follower_fetch(3, 5, 10, 40_000);
        assert_eq!(
            r.wanted_isr(5, 0, 40_000, 30_000, |_| true),
            Some(vec![1, 2])
        );
        r.adopt(Role::Leader, &[1, 2, 3], &[1, 2], 1);
        // Below the high watermark it may not join; at it, it may.
        r.on_follower_fetch(3, 8, 10, 41_000);
        assert_eq!(r.wanted_isr(10, 0, 41_000, 30_000, |_| true), None);
        r.on_follower_fetch(3, 10, 10, 42_000);
        assert_eq!(
            r.wanted_isr(10, 0, 42_000, 30_000, |_| true),
            Some(vec![1, 2, 3])
        );
        // Not before this leader's epoch began.
        assert_eq!(r.wanted_isr(10, 11, 42_000, 30_000, |_| true), None);
        // A fenced broker does not join on what it fetched before.
        assert_eq!(r.wanted_isr(10, 0, 42_000, 30_000, |b| b != 3), None);
        // While a change is pending nothing else is asked.
        r.pending_isr = Some(vec![1, 2, 3]);
        assert_eq!(r.wanted_isr(10, 0, 42_000, 30_000, |_| true), None);
        r.adopt(Role::Leader, &[1, 2, 3], &[1, 2, 3], 2);
        assert_eq!(r.pending_isr, None);
    }

    #[test]
    fn a_follower_that_keeps_up_with_a_moving_leader_stays_caught_up() {
        let mut r = leader();
        // Each fetch reaches what the leader had at the previous fetch.
        r.on_follower_fetch(2, 10, 20, 1_000);
        r.on_follower_fetch(2, 20, 30, 2_000);
        r.on_follower_fetch(2, 30, 40, 3_000);
        assert_eq!(r.followers[&2].caught_up_ms, 2_000);
        assert_eq!(r.wanted_isr(30, 0, 3_000, 30_000, |_| true), None);
    }
}
