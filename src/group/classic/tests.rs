use bytes::Bytes;
use futures::FutureExt;
use kafka_protocol::ResponseError;

use super::*;

fn req(member: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member.into(),
        instance_id: instance.map(Into::into),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"m"))],
        require_known_member_id: true,
    }
}

fn limits() -> GroupLimits {
    GroupLimits {
        initial_rebalance_delay_ms: 0,
        ..Default::default()
    }
}

/// Join with an empty id, then again with the id MEMBER_ID_REQUIRED gave.
fn join_new(g: &mut ClassicGroup, now: i64) -> Joined {
    let Joined::Now(r) = g.join(req("", None), &limits(), now) else {
        panic!("expected MEMBER_ID_REQUIRED");
    };
    assert_eq!(r.error, Some(ResponseError::MemberIdRequired));
    g.join(req(&r.member_id, None), &limits(), now)
}

fn ready(j: Joined) -> JoinResult {
    match j {
        Joined::Now(r) => r,
        Joined::Wait(mut rx) => rx.try_recv().unwrap().expect("join completed"),
    }
}

fn sync(g: &mut ClassicGroup, member: &str, gen: i32, assignments: Vec<(String, Bytes)>) -> Synced {
    g.sync(
        SyncRequest {
            member_id: member.into(),
            generation: gen,
            instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments,
        },
        0,
    )
}

/// The leader's SyncGroup for generation 1, and its write completing.
fn stabilize(g: &mut ClassicGroup, leader: &str, assignments: Vec<(String, Bytes)>) {
    let Synced::Wait { persist: true, .. } = sync(g, leader, 1, assignments) else {
        panic!("the leader's SyncGroup waits for the write")
    };
    g.assignments_persisted(1, Ok(()), 0);
    assert_eq!(g.state, GroupState::Stable);
}

#[test]
fn first_member_leads_generation_one_and_syncs_to_stable() {
    let mut g = ClassicGroup::new("g".into(), 0);
    let r = ready(join_new(&mut g, 0));
    assert_eq!(r.error, None);
    assert_eq!(r.generation, 1);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let Synced::Wait { mut rx, persist } = sync(
        &mut g,
        &r.member_id,
        1,
        vec![(r.member_id.clone(), Bytes::from_static(b"a"))],
    ) else {
        panic!("leader waits for the write");
    };
    assert!(persist);
    g.assignments_persisted(1, Ok(()), 0);
    let s = rx.try_recv().unwrap().unwrap();
    assert_eq!(s.assignment, Bytes::from_static(b"a"));
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.heartbeat(&r.member_id, None, 1, 1), None);
    assert_eq!(
        g.heartbeat(&r.member_id, None, 0, 1),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat("nobody", None, 1, 1),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn second_member_triggers_rebalance_and_first_must_rejoin() {
    let mut g = ClassicGroup::new("g".into(), 0);
    let a = ready(join_new(&mut g, 0));
    stabilize(&mut g, &a.member_id, vec![]);
    let b = join_new(&mut g, 10);
    let Joined::Wait(mut b_rx) = b else {
        panic!("b waits for a to rejoin")
    };
    assert!(b_rx.try_recv().unwrap().is_none());
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&a.member_id, None, 1, 20),
        Some(ResponseError::RebalanceInProgress)
    );
    let a2 = ready(g.join(req(&a.member_id, None), &limits(), 30));
    let b2 = b_rx.try_recv().unwrap().unwrap();
    assert_eq!(a2.generation, 2);
    assert_eq!(b2.generation, 2);
    assert_eq!(
        a2.leader, a.member_id,
        "the leader stays the earliest member"
    );
    assert_eq!(a2.members.len(), 2);
    assert!(b2.members.is_empty());
}

#[test]
fn member_that_stops_heartbeating_is_evicted_and_group_rebalances() {
    let mut g = ClassicGroup::new("g".into(), 0);
    let a = ready(join_new(&mut g, 0));
    stabilize(&mut g, &a.member_id, vec![]);
    g.tick(5_000);
    assert_eq!(g.state, GroupState::Stable);
    g.tick(10_001);
    assert!(g.members.is_empty());
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(g.generation, 2);
}

#[test]
fn unrejoined_member_is_dropped_at_the_rebalance_deadline() {
    let mut g = ClassicGroup::new("g".into(), 0);
    let a = ready(join_new(&mut g, 0));
    stabilize(&mut g, &a.member_id, vec![]);
    let Joined::Wait(mut b_rx) = join_new(&mut g, 0) else {
        panic!()
    };
    // a keeps heartbeating but never rejoins; the rebalance timeout is 30 s.
    for t in (1_000..30_000).step_by(1_000) {
        assert_eq!(
            g.heartbeat(&a.member_id, None, 1, t),
            Some(ResponseError::RebalanceInProgress)
        );
        g.tick(t);
    }
    g.tick(30_000);
    let b = b_rx.try_recv().unwrap().unwrap();
    assert_eq!(b.generation, 2);
    assert_eq!(b.leader, b.member_id);
    assert!(!g.members.contains_key(&a.member_id));
}

#[test]
fn static_member_rejoining_takes_over_and_old_id_is_fenced() {
    let mut g = ClassicGroup::new("g".into(), 0);
    let a = ready(g.join(req("", Some("i1")), &limits(), 0));
    assert_eq!(a.error, None, "static members skip MEMBER_ID_REQUIRED");
    stabilize(
        &mut g,
        &a.member_id,
        vec![(a.member_id.clone(), Bytes::from_static(b"x"))],
    );
    let again = ready(g.join(req("", Some("i1")), &limits(), 5));
    assert_eq!(again.error, None);
    assert_ne!(again.member_id, a.member_id);
    assert_eq!(again.generation, 1, "same subscription: no rebalance");
    assert!(again.skip_assignment);
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(
        g.heartbeat(&a.member_id, Some("i1"), 1, 6),
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(g.heartbeat(&again.member_id, Some("i1"), 1, 6), None);
}

#[test]
fn errors_for_bad_joins_and_commits() {
    let mut g = ClassicGroup::new("g".into(), 0);
    let mut r = req("", None);
    r.session_timeout_ms = 1;
    assert!(matches!(
        g.join(r, &limits(), 0),
        Joined::Now(JoinResult {
            error: Some(ResponseError::InvalidSessionTimeout),
            ..
        })
    ));
    let a = ready(join_new(&mut g, 0));
    let mut other = req("", None);
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    assert!(matches!(
        g.join(other, &limits(), 0),
        Joined::Now(JoinResult {
            error: Some(ResponseError::InconsistentGroupProtocol),
            ..
        })
    ));
    let mut big = req("", None);
    big.protocols = vec![("range".into(), Bytes::from(vec![0u8; (1 << 20) + 1]))];
    assert!(matches!(
        g.join(big, &limits(), 0),
        Joined::Now(JoinResult {
            error: Some(ResponseError::InvalidRequest),
            ..
        })
    ));
    // CompletingRebalance: commits wait for the assignment.
    assert_eq!(
        g.validate_commit(&a.member_id, None, 1, 0),
        Some(ResponseError::RebalanceInProgress)
    );
    stabilize(&mut g, &a.member_id, vec![]);
    assert_eq!(g.validate_commit(&a.member_id, None, 1, 0), None);
    assert_eq!(
        g.validate_commit(&a.member_id, None, 7, 0),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        g.validate_commit("", None, -1, 0),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(g.leave(&a.member_id, None, 0), None);
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(
        g.validate_commit("", None, -1, 0),
        None,
        "simple commits once empty"
    );
    assert_eq!(
        g.leave(&a.member_id, None, 0),
        Some(ResponseError::UnknownMemberId)
    );
    let _ = futures::future::ready(()).now_or_never();
}

#[test]
fn persisted_group_round_trips() {
    let mut g = ClassicGroup::new("g".into(), 0);
    let a = ready(join_new(&mut g, 0));
    let Synced::Wait { .. } = sync(
        &mut g,
        &a.member_id,
        1,
        vec![(a.member_id.clone(), Bytes::from_static(b"x"))],
    ) else {
        panic!()
    };
    let v = g.to_value();
    assert_eq!(
        v.members[0].assignment,
        Bytes::from_static(b"x"),
        "staged assignment is what gets written"
    );
    let back = ClassicGroup::from_value("g".into(), v, 100);
    assert_eq!(back.generation, 1);
    assert_eq!(back.state, GroupState::Stable);
    assert_eq!(
        back.members[&a.member_id].assignment,
        Bytes::from_static(b"x")
    );
}

#[test]
fn a_session_ends_exactly_at_its_deadline() {
    let mut g = ClassicGroup::new("g".into(), 0);
    let r = ready(join_new(&mut g, 0));
    stabilize(
        &mut g,
        &r.member_id,
        vec![(r.member_id.clone(), Bytes::new())],
    );
    // Session 10 s from the last heartbeat (the join at 0): the timer is
    // asked to wake at 10,000 and the member goes then, not a tick later.
    assert_eq!(g.next_deadline_ms(), Some(10_000));
    g.tick(9_999);
    assert_eq!(g.members.len(), 1, "evicted before its deadline");
    g.tick(10_000);
    assert!(
        g.members.is_empty(),
        "still a member at its session deadline"
    );
}
