use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

use super::*;
use crate::cluster::{Catalog, TopicMeta};

fn catalog(topics: &[(&str, i32)]) -> Catalog {
    let mut c = Catalog::default();
    for (t, n) in topics {
        c.topics.insert(
            t.to_string(),
            TopicMeta {
                name: t.to_string(),
                id: uuid::Uuid::new_v4(),
                partitions: *n,
                configs: BTreeMap::new(),
                parts: Vec::new(),
            },
        );
    }
    c
}

fn cfg() -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 500,
        max_size: 10,
    }
}

fn join(id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        topics: Some(vec!["t".into()]),
        ..Default::default()
    }
}

fn beat(id: &str, epoch: i32, owned: &BTreeSet<Tp>) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: id.into(),
        member_epoch: epoch,
        owned: Some(owned.clone()),
        ..Default::default()
    }
}

#[test]
fn second_member_gets_partitions_only_after_the_first_revokes_them() {
    let cat = catalog(&[("t", 4)]);
    let mut g = ConsumerGroup::new("g".into(), 0);
    let a = g.heartbeat(join("a"), &cat, &cfg(), 0).unwrap();
    let a_parts = a.assignment.unwrap();
    assert_eq!(a_parts.len(), 4);
    assert_eq!(a.member_epoch, 1);
    let b = g.heartbeat(join("b"), &cat, &cfg(), 1).unwrap();
    assert_eq!(b.member_epoch, 2);
    assert!(
        b.assignment.unwrap().is_empty(),
        "a still holds every partition"
    );
    assert_eq!(g.state_name(), "Reconciling");
    // a is told to keep two partitions (same epoch: revocation first).
    let a2 = g
        .heartbeat(beat("a", 1, &a_parts), &cat, &cfg(), 2)
        .unwrap();
    assert_eq!(a2.member_epoch, 1);
    let kept = a2.assignment.unwrap();
    assert_eq!(kept.len(), 2);
    // b still waits while a has not acknowledged.
    let b2 = g
        .heartbeat(beat("b", 2, &BTreeSet::new()), &cat, &cfg(), 3)
        .unwrap();
    assert!(b2.assignment.is_none());
    let a3 = g.heartbeat(beat("a", 1, &kept), &cat, &cfg(), 4).unwrap();
    assert_eq!(a3.member_epoch, 2);
    let b3 = g
        .heartbeat(beat("b", 2, &BTreeSet::new()), &cat, &cfg(), 5)
        .unwrap();
    let b_parts = b3.assignment.unwrap();
    assert_eq!(b_parts.len(), 2);
    assert!(b_parts.is_disjoint(&kept));
    assert_eq!(g.state_name(), "Stable");
}

#[test]
fn stale_epochs_are_fenced_and_dead_members_expire() {
    let cat = catalog(&[("t", 2)]);
    let mut g = ConsumerGroup::new("g".into(), 0);
    g.heartbeat(join("a"), &cat, &cfg(), 0).unwrap();
    let err = g
        .heartbeat(beat("a", 7, &BTreeSet::new()), &cat, &cfg(), 1)
        .unwrap_err();
    assert_eq!(err.0, ResponseError::FencedMemberEpoch);
    let err = g
        .heartbeat(beat("zz", 1, &BTreeSet::new()), &cat, &cfg(), 1)
        .unwrap_err();
    assert_eq!(err.0, ResponseError::UnknownMemberId);
    g.heartbeat(join("b"), &cat, &cfg(), 5_000).unwrap();
    g.tick(10_500, &cfg(), &cat);
    assert!(!g.members.contains_key("a"));
    assert_eq!(g.target["b"].len(), 2, "a's partitions go to b");
    let mut bad = join("c");
    bad.server_assignor = Some("nope".into());
    assert_eq!(
        g.heartbeat(bad, &cat, &cfg(), 1).unwrap_err().0,
        ResponseError::UnsupportedAssignor
    );
    let left = g
        .heartbeat(beat("b", -1, &BTreeSet::new()), &cat, &cfg(), 1)
        .unwrap();
    assert_eq!(left.member_epoch, -1);
    assert_eq!(g.state_name(), "Empty");
}

#[test]
fn new_partitions_bump_the_epoch() {
    let mut cat = catalog(&[("t", 2)]);
    let mut g = ConsumerGroup::new("g".into(), 0);
    let a = g.heartbeat(join("a"), &cat, &cfg(), 0).unwrap();
    cat.topics.get_mut("t").unwrap().partitions = 3;
    g.tick(1, &cfg(), &cat);
    let a2 = g
        .heartbeat(
            beat("a", a.member_epoch, &a.assignment.unwrap()),
            &cat,
            &cfg(),
            2,
        )
        .unwrap();
    assert!(a2.member_epoch > a.member_epoch);
    assert_eq!(a2.assignment.unwrap().len(), 3);
}
