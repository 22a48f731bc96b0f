//! Group APIs and the group member against the mock coordinator, at the
//! newest versions and at old ones (before MEMBER_ID_REQUIRED, batched
//! LeaveGroup, multi-group OffsetFetch and ListGroups states).

use std::collections::HashMap;

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;

use super::assignor::{decode_assignment, encode_subscription};
use super::group::{
    build_commit, build_heartbeat, build_join, build_leave, build_offset_fetch, build_sync,
};
use super::mock::{MockBroker, MockOptions};
use super::*;

#[test]
fn group_requests_encode_at_every_version() {
    let params = JoinParams {
        group_id: "g".into(),
        member_id: String::new(),
        group_instance_id: Some("i".into()),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 20_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), encode_subscription(&["t".into()]))],
    };
    fn each<R: Encodable>(api: ApiKey, max: i16, build: impl Fn(i16) -> R) {
        let r = api.valid_versions();
        for v in r.min..=r.max.min(max) {
            build(v)
                .encode(&mut BytesMut::new(), v)
                .unwrap_or_else(|e| panic!("{api:?} v{v}: {e}"));
        }
    }
    let static_member = Generation {
        generation_id: 3,
        member_id: "m".into(),
        group_instance_id: Some("i".into()),
    };
    let gen = &static_member;
    each(ApiKey::JoinGroup, i16::MAX, |v| build_join(v, &params, "m"));
    each(ApiKey::SyncGroup, i16::MAX, |v| {
        build_sync(v, "g", gen, "consumer", "range")
    });
    each(ApiKey::Heartbeat, i16::MAX, |v| {
        build_heartbeat(v, "g", gen)
    });
    each(ApiKey::LeaveGroup, i16::MAX, |v| {
        build_leave(v, "g", "m", Some("i"))
    });
    each(ApiKey::OffsetCommit, 9, |v| build_commit(v, "g", gen));
    let parts = [
        ("t".to_string(), 0),
        ("t".to_string(), 3),
        ("u".to_string(), 1),
    ];
    let r = ApiKey::OffsetFetch.valid_versions();
    for v in r.min..=9 {
        for which in [None, Some(&parts[..])] {
            build_offset_fetch(v, "g", which)
                .encode(&mut BytesMut::new(), v)
                .unwrap_or_else(|e| panic!("OffsetFetch v{v}: {e}"));
        }
    }
}

fn member(group: &str) -> GroupMember {
    let mut config = MemberConfig::new(group);
    config.heartbeat_interval_ms = 0; // heartbeat on every call
    GroupMember::new(config)
}

fn offsets(c: &mut Client, group: &str) -> Vec<(String, i32, i64)> {
    c.offset_fetch(group, None)
        .unwrap()
        .into_iter()
        .map(|o| (o.topic, o.partition, o.offset))
        .collect()
}

fn exercise(broker: &MockBroker, states_supported: bool) {
    broker.add_topic("t", 3);
    broker.add_topic("u", 1);
    let mut c = Client::connect(&broker.addr).unwrap();
    let coord = c.find_coordinator("g").unwrap();
    assert_eq!((coord.node_id, coord.address()), (1, broker.addr.clone()));

    let mut m = member("g");
    m.subscribe(vec!["t".into(), "u".into()]);
    assert!(m.needs_join());
    let assignment = m.join(&mut c).unwrap();
    let p = |t: &str, n| (t.to_string(), n);
    assert_eq!(assignment, vec![p("t", 0), p("t", 1), p("t", 2), p("u", 0)]);
    assert_eq!(m.generation().generation_id, 1);
    assert!(m.generation().member_id.starts_with("sluice-client-"));
    assert!(!m.heartbeat_if_due(&mut c).unwrap());

    // A simple (generation -1) commit is refused while the group has members.
    let err = c
        .offset_commit("g", &Generation::none(), &[("t".into(), 0, 1)])
        .unwrap_err();
    assert_eq!(err.kafka_code(), Some(ResponseError::UnknownMemberId));
    m.commit(&mut c, &[("t".into(), 0, 5), ("u".into(), 0, 7)])
        .unwrap();
    let err = m.commit(&mut c, &[("t".into(), 9, 1)]).unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(
        offsets(&mut c, "g"),
        vec![("t".into(), 0, 5), ("u".into(), 0, 7)]
    );
    let some = c
        .offset_fetch("g", Some(&[("t".into(), 0), ("t".into(), 2)]))
        .unwrap();
    let got: Vec<_> = some.iter().map(|o| (o.partition, o.offset)).collect();
    assert_eq!(got, vec![(0, 5), (2, -1)]);

    let desc = c.describe_group("g").unwrap();
    assert_eq!(
        (desc.state.as_str(), desc.protocol.as_str()),
        ("Stable", "range")
    );
    assert_eq!(desc.members.len(), 1);
    assert_eq!(desc.members[0].member_id, m.generation().member_id);
    assert_eq!(desc.members[0].client_id, "sluice-client");
    assert_eq!(
        decode_assignment(desc.members[0].assignment.clone()).unwrap(),
        assignment
    );
    let listed = c.list_groups(&[]).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].group_id, "g");
    assert_eq!(
        listed[0].state.as_deref(),
        states_supported.then_some("Stable")
    );
    if states_supported {
        assert!(c.list_groups(&["Empty".into()]).unwrap().is_empty());
    }

    // A rebalance: the heartbeat says so, and rejoining moves the generation.
    broker.force_rebalance("g");
    assert!(m.heartbeat_if_due(&mut c).unwrap());
    assert!(m.needs_join());
    let err = m.commit(&mut c, &[("t".into(), 0, 6)]);
    assert!(
        err.is_ok(),
        "commit during rebalance in the same generation: {err:?}"
    );
    m.join(&mut c).unwrap();
    assert_eq!(m.generation().generation_id, 2);

    let err = c
        .delete_groups(&["g".into()])
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(err, ("g".into(), Some(ResponseError::NonEmptyGroup)));
    m.leave(&mut c).unwrap();
    assert_eq!(c.describe_group("g").unwrap().state, "Empty");
    // Once empty, admin tools may commit with generation -1.
    c.offset_commit("g", &Generation::none(), &[("t".into(), 1, 3)])
        .unwrap();
    assert_eq!(
        offsets(&mut c, "g"),
        vec![("t".into(), 0, 6), ("t".into(), 1, 3), ("u".into(), 0, 7)]
    );
    // A stale member is told so and can start over.
    let stale = Generation {
        generation_id: 1,
        member_id: "gone".into(),
        group_instance_id: None,
    };
    let err = c.heartbeat("g", &stale).unwrap_err();
    assert_eq!(err.kafka_code(), Some(ResponseError::UnknownMemberId));

    assert_eq!(
        c.delete_groups(&["g".into(), "nope".into()]).unwrap(),
        vec![
            ("g".into(), None),
            ("nope".into(), Some(ResponseError::GroupIdNotFound))
        ]
    );
    assert_eq!(c.describe_group("g").unwrap().state, "Dead");
    assert!(c.list_groups(&[]).unwrap().is_empty());
}

#[test]
fn group_end_to_end_latest_versions() {
    exercise(&MockBroker::start(), true);
}

#[test]
fn group_end_to_end_old_versions() {
    let ranges = HashMap::from([
        (ApiKey::FindCoordinator, (0, 3)),
        (ApiKey::JoinGroup, (0, 3)),
        (ApiKey::SyncGroup, (0, 2)),
        (ApiKey::Heartbeat, (0, 2)),
        (ApiKey::LeaveGroup, (0, 2)),
        (ApiKey::OffsetCommit, (2, 7)),
        (ApiKey::OffsetFetch, (1, 7)),
        (ApiKey::ListGroups, (0, 3)),
        (ApiKey::DescribeGroups, (0, 4)),
        (ApiKey::DeleteGroups, (0, 1)),
    ]);
    exercise(
        &MockBroker::start_with(MockOptions {
            ranges,
            ..MockOptions::default()
        }),
        false,
    );
}

#[test]
fn resubscribing_triggers_a_rejoin_only_on_change() {
    let broker = MockBroker::start();
    broker.add_topic("a", 2);
    broker.add_topic("b", 2);
    let mut c = Client::connect(&broker.addr).unwrap();
    let mut m = member("g2");
    m.subscribe(vec!["a".into()]);
    assert_eq!(m.join(&mut c).unwrap().len(), 2);
    m.subscribe(vec!["a".into(), "a".into()]);
    assert!(!m.needs_join());
    m.subscribe(vec!["b".into(), "a".into()]);
    assert!(m.needs_join());
    assert_eq!(m.join(&mut c).unwrap().len(), 4);
    let desc = c.describe_group("g2").unwrap();
    assert_eq!(desc.members.len(), 1);
    assert_eq!(
        decode_assignment(desc.members[0].assignment.clone())
            .unwrap()
            .len(),
        4
    );
}
