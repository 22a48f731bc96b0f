//! Offline client tests: request encoding at every version, and end-to-end
//! calls against the in-process mock broker.

use std::collections::HashMap;
use std::net::TcpListener;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::admin::{build_create_topics, build_delete_topics};
use super::data::{build_fetch, build_list_offsets, build_produce};
use super::mock::{MockBroker, MockOptions};
use super::records::encode_batch;
use super::*;

fn encodes<R: Encodable>(req: &R, version: i16, what: &str) {
    let mut buf = BytesMut::new();
    if let Err(e) = req.encode(&mut buf, version) {
        panic!("{what} v{version} does not encode: {e}");
    }
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let r = api.valid_versions();
    r.min..=r.max
}

#[test]
fn every_request_encodes_at_every_version() {
    let names = vec!["a".to_string(), "b".to_string()];
    for v in versions(ApiKey::Metadata) {
        encodes(&build_metadata_request(v, None, false), v, "Metadata(all)");
        encodes(
            &build_metadata_request(v, Some(&names), false),
            v,
            "Metadata(named)",
        );
        encodes(
            &build_metadata_request(v, Some(&names), true),
            v,
            "Metadata(auto)",
        );
    }
    let configs = vec![("retention.ms".to_string(), "1".to_string())];
    for v in versions(ApiKey::CreateTopics) {
        encodes(
            &build_create_topics(v, "t", -1, -1, &[], &configs, 1000),
            v,
            "CreateTopics",
        );
    }
    for v in versions(ApiKey::DeleteTopics) {
        encodes(&build_delete_topics(v, &names, 1000), v, "DeleteTopics");
    }
    let batch = encode_batch(&[(None, Some(Bytes::from_static(b"x")))], 1).unwrap();
    for v in versions(ApiKey::Produce) {
        let req = build_produce("t", Uuid::new_v4(), 0, batch.clone(), -1, 1000);
        encodes(&req, v, "Produce");
    }
    let pos = FetchPosition {
        topic: "t".into(),
        partition: 0,
        offset: 5,
    };
    for v in versions(ApiKey::Fetch) {
        encodes(
            &build_fetch(&[(pos.clone(), Uuid::new_v4())], 500, 1 << 20),
            v,
            "Fetch",
        );
    }
    for v in versions(ApiKey::ListOffsets) {
        encodes(&build_list_offsets("t", 0, -2, 1000), v, "ListOffsets");
    }
}

#[test]
fn connection_refused_is_one_line() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Client::connect(&format!("127.0.0.1:{port}")).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("cannot connect to broker at 127.0.0.1:{port}: Connection refused")
    );
}

#[test]
fn silent_broker_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = ClientConfig {
        request_timeout_ms: 200,
        ..ClientConfig::default()
    };
    let err = Client::connect_with(&addr, config).err().unwrap();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("timed out after 200 ms"), "{err}");
    drop(listener);
}

fn exercise(broker: &MockBroker) {
    let mut c = Client::connect(&broker.addr).unwrap();
    c.create_topics("t", 2, 1, vec![("cleanup.policy".into(), "compact".into())])
        .unwrap();
    let err = c.create_topics("t", 2, 1, vec![]).unwrap_err();
    assert_eq!(err.kafka_code(), Some(ResponseError::TopicAlreadyExists));

    let md = c.metadata(None).unwrap();
    let t = md.topic("t").unwrap();
    assert_eq!(t.partitions.len(), 2);
    assert_eq!(t.partitions[1].leader, 1);
    assert_eq!(md.brokers[0].address(), broker.addr);

    let kv = |v: &str| (None, Some(Bytes::copy_from_slice(v.as_bytes())));
    let recs: Vec<_> = (0..7).map(|i| kv(&format!("m{i}"))).collect();
    assert_eq!(c.produce("t", 1, recs, -1).unwrap(), 0);
    assert_eq!(c.produce("t", 1, vec![kv("m7")], 1).unwrap(), 7);
    assert_eq!(c.produce("t", 1, vec![kv("m8")], 0).unwrap(), -1);
    assert_eq!(c.list_offsets("t", 1, EARLIEST_TIMESTAMP).unwrap(), 0);
    // acks=0 has no response; ListOffsets after it proves ordering on the socket.
    assert_eq!(c.list_offsets("t", 1, LATEST_TIMESTAMP).unwrap(), 9);

    let got = c.fetch("t", 1, 2, 100, 1 << 20).unwrap();
    assert_eq!(got.high_watermark, 9);
    assert_eq!(got.next_offset, 9);
    let values: Vec<_> = got
        .records
        .iter()
        .map(|r| r.value.clone().unwrap())
        .collect();
    let expected: Vec<_> = (2..9).map(|i| Bytes::from(format!("m{i}"))).collect();
    assert_eq!(values, expected);
    assert_eq!(got.records[0].offset, 2);

    let empty = c.fetch("t", 0, 0, 10, 1 << 20).unwrap();
    assert!(empty.records.is_empty());
    assert_eq!(empty.high_watermark, 0);
    let err = c.fetch("t", 0, 5, 10, 1 << 20).unwrap_err();
    assert_eq!(err.kafka_code(), Some(ResponseError::OffsetOutOfRange));

    let err = c.fetch("nope", 0, 0, 10, 1 << 20).unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    assert!(
        err.to_string().contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{err}"
    );
    let err = c.produce("t", 5, vec![kv("x")], -1).unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::UnknownTopicOrPartition)
    );

    let configs = c.describe_configs("t").unwrap();
    let overrides: Vec<_> = configs.iter().filter(|e| !e.is_default()).collect();
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].name, "cleanup.policy");
    c.incremental_alter_configs(
        "t",
        vec![("retention.ms".into(), "5".into())],
        vec!["cleanup.policy".into()],
    )
    .unwrap();
    let configs = c.describe_configs("t").unwrap();
    let overrides: Vec<_> = configs
        .iter()
        .filter(|e| !e.is_default())
        .map(|e| (e.name.as_str(), e.value.as_deref()))
        .collect();
    assert_eq!(overrides, vec![("retention.ms", Some("5"))]);

    c.create_partitions("t", 3).unwrap();
    assert_eq!(c.topic_metadata("t").unwrap().partitions.len(), 3);
    let err = c.create_partitions("t", 2).unwrap_err();
    assert_eq!(err.kafka_code(), Some(ResponseError::InvalidPartitions));
    assert!(err
        .kafka_message()
        .unwrap()
        .contains("higher than the requested 2"));

    c.delete_topics(vec!["t".into()]).unwrap();
    let err = c.delete_topics(vec!["t".into()]).unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    assert!(c.metadata(None).unwrap().topics.is_empty());
}

#[test]
fn end_to_end_latest_versions() {
    exercise(&MockBroker::start());
}

#[test]
fn end_to_end_old_versions() {
    let ranges = HashMap::from([
        (ApiKey::ApiVersions, (0, 2)),
        (ApiKey::Metadata, (0, 9)),
        (ApiKey::Produce, (3, 8)),
        (ApiKey::Fetch, (4, 12)),
        (ApiKey::ListOffsets, (1, 3)),
        (ApiKey::CreateTopics, (2, 3)),
        (ApiKey::DeleteTopics, (1, 3)),
        (ApiKey::DescribeConfigs, (1, 1)),
        (ApiKey::CreatePartitions, (0, 1)),
        (ApiKey::IncrementalAlterConfigs, (0, 0)),
    ]);
    exercise(&MockBroker::start_with(MockOptions {
        ranges,
        ..MockOptions::default()
    }));
}

#[test]
fn no_common_version_is_a_clear_error() {
    let broker = MockBroker::start_with(MockOptions {
        ranges: HashMap::from([(ApiKey::Produce, (0, 2))]),
        ..MockOptions::default()
    });
    broker.add_topic("t", 1);
    let mut c = Client::connect(&broker.addr).unwrap();
    let err = c.produce("t", 0, vec![(None, None)], -1).unwrap_err();
    assert!(matches!(err, ClientError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("Produce"), "{err}");
    assert!(err.to_string().contains("broker supports 0..2"), "{err}");
}

#[test]
fn unreachable_advertised_host_falls_back_to_bootstrap() {
    let broker = MockBroker::start_with(MockOptions {
        advertised_host: Some("unresolvable.invalid".into()),
        ..MockOptions::default()
    });
    broker.add_topic("t", 1);
    let mut c = Client::connect(&broker.addr).unwrap();
    assert_eq!(
        c.produce("t", 0, vec![(None, Some(Bytes::from_static(b"v")))], -1)
            .unwrap(),
        0
    );
    assert_eq!(broker.values("t", 0), vec!["v"]);
}

#[test]
fn fetch_many_spans_topics_and_reports_per_partition() {
    let broker = MockBroker::start();
    broker.add_topic("a", 2);
    broker.add_topic("b", 1);
    let mut c = Client::connect(&broker.addr).unwrap();
    c.produce("a", 1, vec![(None, Some(Bytes::from_static(b"x")))], -1)
        .unwrap();
    c.produce("b", 0, vec![(None, Some(Bytes::from_static(b"y")))], -1)
        .unwrap();
    let pos = |t: &str, p, o| FetchPosition {
        topic: t.into(),
        partition: p,
        offset: o,
    };
    let out = c
        .fetch_many(
            &[pos("a", 0, 3), pos("a", 1, 0), pos("b", 0, 0)],
            10,
            1 << 20,
        )
        .unwrap();
    assert_eq!(out.len(), 3);
    for (p, r) in out {
        match (p.topic.as_str(), p.partition) {
            ("a", 0) => assert_eq!(
                r.unwrap_err().kafka_code(),
                Some(ResponseError::OffsetOutOfRange)
            ),
            ("a", 1) => assert_eq!(r.unwrap().records[0].value.as_deref(), Some(&b"x"[..])),
            ("b", 0) => assert_eq!(r.unwrap().records[0].value.as_deref(), Some(&b"y"[..])),
            other => panic!("unexpected {other:?}"),
        }
    }
}
