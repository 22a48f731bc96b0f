//! Partition reassignment (KIP-455), as Kafka's controller makes it: moving
//! a partition's replicas to other brokers while it keeps serving.
//!
//! A reassignment to `target` first widens the replica set to `target`
//! followed by the current replicas leaving (`removing`); the new ones
//! (`adding`) start as followers, fetch the log from the leader and join
//! the ISR once caught up. When every target replica is in the ISR the
//! reassignment completes: the replica set becomes `target`, the leaving
//! replicas drop out of the ISR, and if the leader was one of them the
//! first in-sync target replica leads (a new leader epoch). Pure functions
//! of one partition; the controller commits their difference.

use super::catalog::{PartitionMeta, NO_LEADER};

/// Why a reassignment request changed nothing (each a Kafka error code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// INVALID_REPLICA_ASSIGNMENT, with Kafka's message.
    Invalid(String),
    /// INVALID_REPLICATION_FACTOR (v1 with allow_replication_factor_change
    /// false, KIP-860).
    ReplicationFactor(String),
    /// NO_REASSIGNMENT_IN_PROGRESS: a cancel of a partition not moving.
    NoneInProgress,
}

/// Kafka's `validateManualPartitionAssignment`: a non-empty list of
/// distinct registered brokers.
pub fn check_target(target: &[i32], registered: &[i32]) -> Result<(), Refused> {
    if target.is_empty() {
        return Err(Refused::Invalid(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    for (i, b) in target.iter().enumerate() {
        if target[..i].contains(b) {
            return Err(Refused::Invalid(format!(
                "The manual partition assignment includes the broker {b} more than once."
            )));
        }
        if !registered.contains(b) {
            return Err(Refused::Invalid(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            )));
        }
    }
    Ok(())
}

/// Start (or replace) a reassignment of `p` to `target`, completing it at
/// once when the ISR already holds every target replica (a reordering, or
/// dropping replicas). `live`: unfenced brokers, for a leader election.
pub fn start(
    p: &mut PartitionMeta,
    target: &[i32],
    registered: &[i32],
    live: &[i32],
    allow_rf_change: bool,
) -> Result<(), Refused> {
    check_target(target, registered)?;
    if !allow_rf_change {
        // Against the partition's replication factor: its replicas, or
        // during a reassignment its current target's.
        let original = p.replicas.len() - p.removing.len();
        if target.len() != original {
            return Err(Refused::ReplicationFactor(format!(
                "The replication factor is changed from {original} to {} but allowReplicationFactorChange is false",
                target.len()
            )));
        }
    }
    // As Kafka: removing is measured against the current (possibly
    // widened) replica set, so a replica an earlier reassignment was adding
    // and this one does not want is removed now; adding against the
    // replicas the partition had before any reassignment, so submitting
    // the same target again keeps the replicas still being added.
    let current = p.replicas.clone();
    let original: Vec<i32> = current
        .iter()
        .copied()
        .filter(|r| !p.adding.contains(r))
        .collect();
    let removing: Vec<i32> = current
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    let replicas: Vec<i32> = target.iter().chain(&removing).copied().collect();
    if replicas == p.replicas && adding == p.adding && removing == p.removing {
        return Ok(());
    }
    p.replicas = replicas;
    p.adding = adding;
    p.removing = removing;
    p.partition_epoch += 1;
    maybe_complete(p, live);
    Ok(())
}

/// Cancel the reassignment of `p`: back to the replicas it had, the ones
/// being added leave. An ISR that only they made up would need an unclean
/// election, which only `unclean` allows.
pub fn cancel(p: &mut PartitionMeta, live: &[i32], unclean: bool) -> Result<(), Refused> {
    if !p.reassigning() {
        return Err(Refused::NoneInProgress);
    }
    let replicas: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding.contains(r))
        .collect();
    let mut isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| !p.adding.contains(r))
        .collect();
    if isr.is_empty() {
        if !unclean {
            return Err(Refused::Invalid(
                "Unable to revert partition assignment because it would require an unclean leader election.".into(),
            ));
        }
        // An unclean election: the first live original replica leads alone.
        isr.push(
            replicas
                .iter()
                .copied()
                .find(|r| live.contains(r))
                .unwrap_or(replicas[0]),
        );
    }
    let before = std::mem::replace(&mut p.replicas, replicas);
    p.adding.clear();
    p.removing.clear();
    settle(p, &before, isr, live);
    Ok(())
}

/// Complete `p`'s reassignment if every target replica is now in sync
/// (Kafka's `maybeCompleteReassignment`); true if it did. Called when the
/// reassignment starts and whenever the ISR changes.
pub fn maybe_complete(p: &mut PartitionMeta, live: &[i32]) -> bool {
    if !p.reassigning() {
        return false;
    }
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| !p.removing.contains(r))
        .collect();
    let target: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.removing.contains(r))
        .collect();
    if isr.is_empty() || !target.iter().all(|r| isr.contains(r)) {
        return false;
    }
    let before = std::mem::replace(&mut p.replicas, target);
    p.adding.clear();
    p.removing.clear();
    settle(p, &before, isr, live);
    true
}

/// Give `p` (its replicas already set, `before` the replicas it had) the
/// ISR `isr`; a leader outside the replicas or the ISR hands over to the
/// first live in-sync replica, or to no one. The leader epoch moves on when
/// the leader changes or any replica was removed, as Kafka's
/// PartitionChangeBuilder does: a removed replica's fetches carry the old
/// epoch and are fenced.
fn settle(p: &mut PartitionMeta, before: &[i32], isr: Vec<i32>, live: &[i32]) {
    let keeps = p.leader != NO_LEADER && p.replicas.contains(&p.leader) && isr.contains(&p.leader);
    if keeps {
        if before.iter().any(|r| !p.replicas.contains(r)) {
            *p = p.with_leader(p.leader, isr);
        } else {
            p.isr = isr;
            p.partition_epoch += 1;
        }
        return;
    }
    let leader = p
        .replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && live.contains(r))
        .unwrap_or(NO_LEADER);
    *p = p.with_leader(leader, isr);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionMeta {
        PartitionMeta {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 3,
            partition_epoch: 5,
            ..Default::default()
        }
    }

    const ALL: &[i32] = &[1, 2, 3, 4, 5];

    #[test]
    fn moving_a_replica_widens_the_set_until_the_new_one_is_in_sync() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[1, 2, 4], ALL, ALL, false).unwrap();
        assert_eq!(p.replicas, vec![1, 2, 4, 3]);
        assert_eq!((p.adding.clone(), p.removing.clone()), (vec![4], vec![3]));
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 3, 6));
        // Not yet in sync: nothing completes.
        assert!(!maybe_complete(&mut p, ALL));
        p.isr = vec![1, 2, 3, 4];
        assert!(maybe_complete(&mut p, ALL));
        assert_eq!(p.replicas, vec![1, 2, 4]);
        assert_eq!(p.isr, vec![1, 2, 4]);
        assert!(!p.reassigning());
        // Replica 3 was removed: a new leader epoch fences its fetches.
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 4, 7));
    }

    #[test]
    fn a_leader_that_is_moved_away_hands_over_with_a_new_epoch() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[4, 2, 3], ALL, ALL, false).unwrap();
        assert_eq!(p.leader, 1, "the old leader leads until the move completes");
        p.isr = vec![1, 2, 3, 4];
        assert!(maybe_complete(&mut p, ALL));
        assert_eq!(p.replicas, vec![4, 2, 3]);
        assert_eq!((p.leader, p.leader_epoch), (4, 4));
        // The first in-sync target replica that is live.
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[4, 2, 3], ALL, ALL, false).unwrap();
        p.isr = vec![1, 2, 3, 4];
        assert!(maybe_complete(&mut p, &[2, 3]));
        assert_eq!(p.leader, 2);
    }

    #[test]
    fn a_reordering_or_a_shrink_completes_at_once() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[3, 2, 1], ALL, ALL, false).unwrap();
        assert_eq!((p.replicas.clone(), p.leader), (vec![3, 2, 1], 1));
        assert!(!p.reassigning());
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[2, 3], ALL, ALL, true).unwrap();
        assert_eq!(p.replicas, vec![2, 3]);
        assert_eq!(
            (p.isr.clone(), p.leader, p.leader_epoch),
            (vec![2, 3], 2, 4)
        );
    }

    #[test]
    fn the_same_target_again_changes_nothing() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[1, 2, 3], ALL, ALL, false).unwrap();
        assert_eq!(p, part(&[1, 2, 3], &[1, 2, 3], 1));
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[1, 2, 4], ALL, ALL, false).unwrap();
        let before = p.clone();
        start(&mut p, &[1, 2, 4], ALL, ALL, false).unwrap();
        assert_eq!(p, before);
    }

    #[test]
    fn a_new_target_replaces_one_in_progress() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[1, 2, 4], ALL, ALL, false).unwrap();
        start(&mut p, &[1, 2, 5], ALL, ALL, false).unwrap();
        // 4 was being added; now it leaves with 3.
        assert_eq!(p.replicas, vec![1, 2, 5, 4, 3]);
        assert_eq!(
            (p.adding.clone(), p.removing.clone()),
            (vec![5], vec![4, 3])
        );
        // Back to where it started: only the half-copied replicas leave,
        // and since 1, 2, 3 are all in sync that is done at once.
        start(&mut p, &[1, 2, 3], ALL, ALL, false).unwrap();
        assert!(!p.reassigning());
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![1, 2, 3], vec![1, 2, 3])
        );
    }

    #[test]
    fn cancelling_goes_back_to_the_original_replicas() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[4, 2, 3], ALL, ALL, false).unwrap();
        p.isr = vec![1, 2, 3, 4];
        p.leader = 4; // say a preferred election made the new one lead
        cancel(&mut p, ALL, false).unwrap();
        // As Kafka: the replicas without the added ones (the order of the
        // widened set, in which the leaving ones came last).
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![2, 3, 1], vec![1, 2, 3])
        );
        assert!(!p.reassigning());
        assert_eq!(p.leader, 2);
        assert_eq!(cancel(&mut p, ALL, false), Err(Refused::NoneInProgress));
    }

    #[test]
    fn a_cancel_that_needs_an_unclean_election_is_refused_unless_allowed() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        start(&mut p, &[4, 2, 3], ALL, ALL, false).unwrap();
        p.isr = vec![4];
        p.leader = 4;
        let before = p.clone();
        assert!(matches!(
            cancel(&mut p, ALL, false),
            Err(Refused::Invalid(_))
        ));
        assert_eq!(p, before);
        let mut q = p.clone();
        cancel(&mut p, ALL, true).unwrap();
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader),
            (vec![2, 3, 1], vec![2], 2)
        );
        // The first original replica that is live, not merely the first.
        cancel(&mut q, &[1, 3, 4], true).unwrap();
        assert_eq!(
            (q.replicas.clone(), q.isr.clone(), q.leader),
            (vec![2, 3, 1], vec![3], 3)
        );
    }

    #[test]
    fn bad_targets_get_kafkas_messages() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        let msg = |r: Result<(), Refused>| match r {
            Err(Refused::Invalid(m)) | Err(Refused::ReplicationFactor(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(msg(start(&mut p, &[], ALL, ALL, true)).contains("empty replica list"));
        assert!(msg(start(&mut p, &[1, 1, 2], ALL, ALL, true)).contains("broker 1 more than once"));
        assert!(
            msg(start(&mut p, &[1, 2, 9], ALL, ALL, true)).contains("broker 9, but no such broker")
        );
        assert!(msg(start(&mut p, &[1, 2], ALL, ALL, false)).contains("from 3 to 2"));
        assert_eq!(p, part(&[1, 2, 3], &[1, 2, 3], 1));
    }
}
