//! Group coordinator storage and protocol errors: committed offsets survive
//! kill -9, `__consumer_offsets` is compacted, deleting a topic deletes its
//! offsets, and bad group requests get Kafka's error codes. Commits come from
//! librdkafka (the rdkafka crate); error cases use raw protocol frames.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{call, rdk, unique_topic, Broker};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    rdk::config(
        bootstrap,
        &[("group.id", group), ("enable.auto.commit", "false")],
    )
    .create()
    .expect("consumer")
}

fn commit(c: &BaseConsumer, topic: &str, partitions: i32, offset: i64) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Offset(offset))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
}

fn committed(c: &BaseConsumer, topic: &str, partitions: i32) -> Vec<Offset> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    (0..partitions)
        .map(|p| got.find_partition(topic, p).unwrap().offset())
        .collect()
}

fn offsets_segments(broker: &Broker) -> usize {
    common::log_segments(&broker.data_dir().join("__consumer_offsets-0"))
}

#[test]
fn commits_survive_kill9_and_offsets_topic_is_compacted() {
    let mut broker = Broker::start(&[
        "offsets.topic.num.partitions=1",
        "offsets.topic.segment.bytes=8192",
        "offsets.retention.check.interval.ms=300",
    ]);
    let bs = broker.bootstrap();
    let topic = unique_topic("committed");
    rdk::create_topic(&bs, &topic, 4);
    let c = group_consumer(&bs, "g-compact");
    for i in 1..=1500 {
        commit(&c, &topic, 4, i);
    }
    assert_eq!(committed(&c, &topic, 4), vec![Offset::Offset(1500); 4]);
    // ~1500 batches of ~250 bytes rolled dozens of 8 KiB segments; the
    // checkpoint leaves the active segment and at most one behind it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while offsets_segments(&broker) > 2 {
        assert!(
            Instant::now() < deadline,
            "__consumer_offsets-0 still has {} segments",
            offsets_segments(&broker)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(broker
        .logs()
        .contains("compacted __consumer_offsets partition"));
    drop(c);
    broker.kill9();
    broker.restart();
    let c = group_consumer(&broker.bootstrap(), "g-compact");
    assert_eq!(committed(&c, &topic, 4), vec![Offset::Offset(1500); 4]);
}

#[test]
fn deleting_a_topic_deletes_its_committed_offsets() {
    let broker = Broker::start(&["offsets.topic.num.partitions=2"]);
    let bs = broker.bootstrap();
    let topic = unique_topic("doomed");
    rdk::create_topic(&bs, &topic, 2);
    let c = group_consumer(&bs, "g-doomed");
    commit(&c, &topic, 2, 7);
    assert_eq!(committed(&c, &topic, 2), vec![Offset::Offset(7); 2]);
    let admin: rdkafka::admin::AdminClient<_> = rdk::config(&bs, &[]).create().unwrap();
    let r =
        futures::executor::block_on(admin.delete_topics(&[&topic], &Default::default())).unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    rdk::create_topic(&bs, &topic, 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while committed(&c, &topic, 2) != vec![Offset::Invalid; 2] {
        assert!(
            Instant::now() < deadline,
            "offsets of the deleted topic are still there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn join_req(member: &str, metadata_bytes: usize) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g-raw")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from(vec![0u8; metadata_bytes]))])
}

#[test]
fn bad_group_requests_get_kafka_error_codes() {
    let broker = Broker::start(&[
        "group.initial.rebalance.delay.ms=0",
        "group.max.member.metadata.bytes=1024",
    ]);
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let code = |c: i16| ResponseError::try_from_code(c);

    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g-raw")))
        .with_generation_id(1)
        .with_member_id(StrBytes::from_static_str("ghost"));
    assert_eq!(
        code(call(&mut s, 4, &hb).error_code),
        Some(ResponseError::UnknownMemberId)
    );

    let big = call(&mut s, 9, &join_req("", 4096));
    assert_eq!(
        code(big.error_code),
        Some(ResponseError::InvalidRequest),
        "oversized metadata"
    );

    // v4+: the first join only hands out a member id (KIP-394).
    let first = call(&mut s, 9, &join_req("", 16));
    assert_eq!(
        code(first.error_code),
        Some(ResponseError::MemberIdRequired)
    );
    let member = first.member_id.to_string();
    let joined = call(&mut s, 9, &join_req(&member, 16));
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader.as_str(), member);

    let stale = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g-raw")))
        .with_generation_id(0)
        .with_member_id(StrBytes::from_string(member.clone()));
    assert_eq!(
        code(call(&mut s, 5, &stale).error_code),
        Some(ResponseError::IllegalGeneration)
    );

    let bad_commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g-raw")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(StrBytes::from_static_str("no-such-topic").into())
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(3)
                .with_committed_offset(1)])]);
    let member_commit = bad_commit
        .clone()
        .with_generation_id_or_member_epoch(1)
        .with_member_id(StrBytes::from_string(member.clone()));
    let r = call(&mut s, 8, &member_commit);
    // CompletingRebalance until SyncGroup: Kafka refuses commits meanwhile.
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        Some(ResponseError::RebalanceInProgress)
    );
    let sync = stale.with_generation_id(1);
    assert_eq!(call(&mut s, 5, &sync).error_code, 0);
    let r = call(&mut s, 8, &member_commit);
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    // The group has a member, so a commit without one is refused.
    let r = call(&mut s, 8, &bad_commit);
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn offsets_of_an_empty_group_expire_after_offsets_retention_minutes() {
    // One minute is Kafka's smallest unit for this setting.
    let broker = Broker::start(&[
        "offsets.retention.minutes=1",
        "offsets.retention.check.interval.ms=500",
    ]);
    let bs = broker.bootstrap();
    let topic = unique_topic("expiring");
    rdk::create_topic(&bs, &topic, 1);
    let c = group_consumer(&bs, "g-expiring");
    commit(&c, &topic, 1, 5);
    let committed_at = Instant::now();
    assert_eq!(committed(&c, &topic, 1), vec![Offset::Offset(5)]);
    while committed(&c, &topic, 1) != vec![Offset::Invalid] {
        assert!(
            committed_at.elapsed() < Duration::from_secs(90),
            "offset still committed after 90 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let expired_after = committed_at.elapsed();
    assert!(
        expired_after >= Duration::from_secs(59),
        "expired early: {expired_after:?}"
    );
    assert!(broker.logs().contains("group expired"));
}

/// KIP-848 group configs (IncrementalAlterConfigs / DescribeConfigs on GROUP
/// resources, type 32): checked against the broker's bounds, described with
/// their source, kept across a restart, and in force at once: a member's
/// heartbeat response carries the group's own heartbeat interval.
#[test]
fn group_configs_are_checked_stored_and_applied() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        ConsumerGroupHeartbeatRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    };
    let mut broker = Broker::start(&[]);
    let group = "g-configs";
    let alter = |s: &mut TcpStream, key: &str, value: &str| {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(StrBytes::from_static_str(group))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.into()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.into())))]),
        ]);
        let r = call(s, 1, &req);
        (
            r.responses[0].error_code,
            r.responses[0].error_message.as_ref().map(|m| m.to_string()),
        )
    };
    let describe = |s: &mut TcpStream| {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(StrBytes::from_static_str(group))
                .with_configuration_keys(None),
        ]);
        let r = call(s, 4, &req);
        assert_eq!(
            r.results[0].error_code, 0,
            "{:?}",
            r.results[0].error_message
        );
        r.results[0]
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    (c.value.as_ref().map(|v| v.to_string()), c.config_source),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    // Out of the broker's bounds (session 45..60 s, heartbeat 5..15 s),
    // unknown, or a heartbeat not under the session: INVALID_CONFIG.
    for (k, v) in [
        ("consumer.session.timeout.ms", "1000"),
        ("consumer.heartbeat.interval.ms", "999999"),
        ("consumer.nonsense", "1"),
    ] {
        let (code, msg) = alter(&mut s, k, v);
        assert_eq!(
            code,
            ResponseError::InvalidConfig.code(),
            "{k}={v}: {msg:?}"
        );
    }
    assert_eq!(alter(&mut s, "consumer.heartbeat.interval.ms", "6000").0, 0);
    let d = describe(&mut s);
    assert_eq!(
        d["consumer.heartbeat.interval.ms"],
        (Some("6000".into()), 8)
    );
    assert_eq!(d["consumer.session.timeout.ms"], (Some("45000".into()), 5));
    broker.kill9();
    broker.restart();
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    assert_eq!(
        describe(&mut s)["consumer.heartbeat.interval.ms"]
            .0
            .as_deref(),
        Some("6000")
    );
    // A member joining the group is told the group's interval.
    let topic = unique_topic("g-configs");
    rdk::create_topic(&broker.bootstrap(), &topic, 1);
    let hb = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(group)))
        .with_member_id(StrBytes::from_static_str("m-1234567890123456789"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![kafka_protocol::messages::TopicName(
            StrBytes::from_string(topic),
        )]));
    // FindCoordinator first, as clients do (it creates __consumer_offsets).
    let fc = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![StrBytes::from_static_str(group)]);
    let _ = call(&mut s, 4, &fc);
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = call(&mut s, 0, &hb);
        if r.error_code != ResponseError::CoordinatorLoadInProgress.code()
            && r.error_code != ResponseError::CoordinatorNotAvailable.code()
        {
            break r;
        }
        assert!(Instant::now() < deadline, "coordinator never loaded");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(r.heartbeat_interval_ms, 6000);
}
