//! The metadata log (`__cluster_metadata-0`, raft-rs): a new data dir is
//! formatted on first start, topics and configs survive restarts and kill -9
//! through it, a torn tail is cut, snapshots compact it, the catalogue file of
//! earlier sluice is migrated into it, and a data dir of another cluster is
//! refused. Clients are librdkafka (rdkafka crate) and raw kafka-protocol.

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{call, rdk, sluice_bin, Broker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeClusterRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const METADATA_DIR: &str = "__cluster_metadata-0";

fn cluster_id(b: &Broker) -> String {
    let mut s = TcpStream::connect(b.addr()).unwrap();
    let r = call(&mut s, 0, &DescribeClusterRequest::default());
    assert_eq!(r.error_code, 0);
    r.cluster_id.to_string()
}

pub fn producer_id(b: &Broker) -> i64 {
    let mut s = TcpStream::connect(b.addr()).unwrap();
    let r = call(
        &mut s,
        4,
        &kafka_protocol::messages::InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(kafka_protocol::messages::ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(r.error_code, 0);
    r.producer_id.0
}

fn topics(b: &Broker) -> Vec<(String, usize)> {
    let mut s = TcpStream::connect(b.addr()).unwrap();
    let r = call(&mut s, 12, &MetadataRequest::default().with_topics(None));
    let mut v: Vec<(String, usize)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().to_string(), t.partitions.len()))
        .filter(|(n, _)| !n.starts_with("__"))
        .collect();
    v.sort();
    v
}

fn produce_and_count(b: &Broker, topic: &str, n: usize) {
    let p = rdk::producer(&b.bootstrap(), &[]);
    for i in 0..n {
        rdk::wait_delivery(rdk::send(&p, topic, 0, None, format!("m{i}").as_bytes()));
    }
}

fn stored_records(b: &Broker, topic: &str, partitions: i32) -> usize {
    rdk::consume_all(&b.bootstrap(), topic, partitions, rdk::TIMEOUT)
        .values()
        .map(Vec::len)
        .sum()
}

#[test]
fn topics_survive_restarts_and_kill9_through_the_metadata_log() {
    let mut b = Broker::start(&[]);
    assert!(
        b.data_dir().join(METADATA_DIR).join("raft-state").exists(),
        "a new data dir is formatted on first start:\n{}",
        b.logs()
    );
    let id = cluster_id(&b);
    assert!(!id.is_empty());
    rdk::create_topic(&b.bootstrap(), "alpha", 3);
    rdk::create_topic(&b.bootstrap(), "beta", 1);
    produce_and_count(&b, "alpha", 5);
    b.terminate();
    b.restart();
    assert_eq!(topics(&b), vec![("alpha".into(), 3), ("beta".into(), 1)]);
    assert_eq!(cluster_id(&b), id, "the cluster id is kept");
    // A change after a restart, then kill -9: it was committed (fsync'ed)
    // before the client heard of it.
    rdk::create_topic(&b.bootstrap(), "gamma", 2);
    b.kill9();
    b.restart();
    assert_eq!(
        topics(&b),
        vec![("alpha".into(), 3), ("beta".into(), 1), ("gamma".into(), 2)],
        "{}",
        b.logs()
    );
    assert_eq!(stored_records(&b, "alpha", 3), 5);
    assert!(
        !b.data_dir().join("cluster.metadata").exists(),
        "no catalogue file beside the log"
    );
}

#[test]
fn a_torn_metadata_tail_is_cut_and_said_so() {
    let mut b = Broker::start(&[]);
    rdk::create_topic(&b.bootstrap(), "kept", 2);
    b.terminate();
    // Half a frame after the last entry, as a crash mid-append leaves it.
    let entries = b.data_dir().join(METADATA_DIR).join("raft-entries.log");
    let mut bytes = std::fs::read(&entries).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 40, 1, 2, 3]);
    std::fs::write(&entries, bytes).unwrap();
    b.restart();
    assert_eq!(topics(&b), vec![("kept".into(), 2)]);
    assert!(
        b.logs().contains("cut a torn or corrupt tail"),
        "{}",
        b.logs()
    );
    // And it goes on taking changes.
    rdk::create_topic(&b.bootstrap(), "after", 1);
    b.restart();
    assert_eq!(topics(&b), vec![("after".into(), 1), ("kept".into(), 2)]);
}

#[test]
fn snapshots_compact_the_log_and_rebuild_the_image() {
    // A snapshot after every ~200 bytes of records.
    let mut b = Broker::start(&["metadata.log.max.record.bytes.between.snapshots=200"]);
    for i in 0..12 {
        rdk::create_topic(&b.bootstrap(), &format!("t{i:02}"), 1);
    }
    let dir = b.data_dir().join(METADATA_DIR);
    let snapshots: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".checkpoint"))
        .collect();
    assert_eq!(
        snapshots.len(),
        1,
        "older snapshots are deleted: {snapshots:?}"
    );
    assert_ne!(
        snapshots[0],
        "00000000000000000001-0000000001.checkpoint",
        "a snapshot was taken beyond the bootstrap one:\n{}",
        b.logs()
    );
    b.kill9();
    b.restart();
    let want: Vec<(String, usize)> = (0..12).map(|i| (format!("t{i:02}"), 1)).collect();
    assert_eq!(topics(&b), want, "{}", b.logs());
}

/// What the last sluice before the metadata log left behind: partition
/// directories, `meta.properties` and the text catalogue `cluster.metadata`.
#[test]
fn a_data_dir_of_the_previous_format_is_migrated_losing_nothing() {
    let mut b = Broker::start(&[]);
    rdk::create_topic(&b.bootstrap(), "orders", 2);
    produce_and_count(&b, "orders", 7);
    b.terminate();
    let data = b.data_dir();
    // Turn it into the previous format: no metadata log, a catalogue file
    // naming the topic (with its id from partition.metadata), a config
    // override, a cluster-wide broker config, and a cluster id.
    std::fs::remove_dir_all(data.join(METADATA_DIR)).unwrap();
    let pm = std::fs::read_to_string(data.join("orders-0/partition.metadata")).unwrap();
    let topic_id = pm.split("topic_id:").nth(1).unwrap().trim().to_string();
    std::fs::write(
        data.join("cluster.metadata"),
        format!(
            "version 9\ntopic orders {topic_id} 2\nconfig orders retention.ms 86400000\n\
             brokerconfig - log.retention.ms 172800000\n"
        ),
    )
    .unwrap();
    std::fs::write(
        data.join("meta.properties"),
        "#\n#sluice\nnode.id=1\nversion=1\ncluster.id=legacy-cluster-id\n",
    )
    .unwrap();
    // Producer ids below 5000 were handed out by the old broker.
    std::fs::write(
        data.join("producer-id-block"),
        "version: 0\nnext_block_start: 5000\n",
    )
    .unwrap();
    b.restart();
    assert!(b.logs().contains("migrating"), "{}", b.logs());
    assert!(
        !data.join("cluster.metadata").exists(),
        "migrated and removed"
    );
    assert_eq!(cluster_id(&b), "legacy-cluster-id");
    assert_eq!(topics(&b), vec![("orders".into(), 2)]);
    assert_eq!(stored_records(&b, "orders", 2), 7);
    assert!(
        producer_id(&b) >= 5000,
        "producer ids go on past the old file's"
    );
    let describe = Command::new(sluice_bin())
        .args(["topics", "--bootstrap-server", &b.bootstrap()])
        .args(["--describe", "--topic", "orders"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&describe.stdout);
    assert!(out.contains("retention.ms=86400000"), "{out}");
    // The topic id is the one on disk: the partitions were kept, not recreated.
    let pm_after = std::fs::read_to_string(data.join("orders-0/partition.metadata")).unwrap();
    assert_eq!(pm, pm_after);
    // And once more: the log alone now carries it.
    b.restart();
    assert_eq!(topics(&b), vec![("orders".into(), 2)]);
    assert_eq!(cluster_id(&b), "legacy-cluster-id");
}

#[test]
fn a_data_dir_of_another_cluster_is_refused() {
    let mut b = Broker::start(&[]);
    // A clean exit: this broker formatted the dir whose cluster id we change.
    assert!(b.terminate().success(), "{}", b.logs());
    std::fs::write(
        b.data_dir().join("meta.properties"),
        "#\nnode.id=1\nversion=1\ncluster.id=some-other-cluster\n",
    )
    .unwrap();
    let out = common::run_with_timeout(
        Command::new(sluice_bin())
            .arg("broker")
            .arg("--log-dirs")
            .arg(b.data_dir())
            .arg("--listeners")
            .arg(format!("PLAINTEXT://127.0.0.1:{}", common::free_port())),
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("some-other-cluster") && err.contains("cluster"),
        "{err}"
    );
}

#[test]
fn the_metadata_topic_name_cannot_be_taken() {
    let b = Broker::start(&[]);
    let mut s = TcpStream::connect(b.addr()).unwrap();
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let r = call(&mut s, 5, &req);
    assert_eq!(r.topics[0].error_code, 42, "INVALID_REQUEST");
    assert_eq!(
        r.topics[0].error_message.as_deref().map(|m| m.to_string()),
        Some("Creation of internal topic __cluster_metadata is prohibited.".into())
    );
    assert!(topics(&b).is_empty());
}

/// Kafka 4's combined-mode sample keys, with this test's ports.
#[test]
fn a_kraft_combined_config_runs() {
    let (port, cport) = (common::free_port(), common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.properties");
    std::fs::write(
        &cfg,
        format!(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{cport}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n\
             inter.broker.listener.name=PLAINTEXT\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
             log.dirs={}\n",
            dir.path().join("kraft-combined-logs").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
    let mut child = Command::new(sluice_bin())
        .arg("broker")
        .arg(&cfg)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stderr(log.try_clone().unwrap())
        .stdout(log)
        .spawn()
        .unwrap();
    let bootstrap = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Up means this broker says it listens and the port answers: another
    // process may have taken the free port meanwhile.
    // (Whatever address it binds: `listeners` may name none.)
    let on_port = format!(":{port} ");
    let up = || {
        let log = std::fs::read_to_string(dir.path().join("broker.log")).unwrap_or_default();
        log.lines()
            .any(|l| l.contains("broker listening on ") && l.contains(&on_port))
            && TcpStream::connect(&bootstrap).is_ok()
    };
    while !up() {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!(
                "broker not up:\n{}",
                std::fs::read_to_string(dir.path().join("broker.log")).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    rdk::create_topic(&bootstrap, "kraft", 1);
    let p = rdk::producer(&bootstrap, &[]);
    rdk::wait_delivery(rdk::send(&p, "kraft", 0, None, b"x"));
    common::signal(&child, libc::SIGTERM);
    let st = common::wait_timeout(&mut child, Duration::from_secs(30));
    let text = std::fs::read_to_string(dir.path().join("broker.log")).unwrap();
    assert!(st.is_some_and(|s| s.success()), "{text}");
    assert!(
        text.contains("quorum_leader=Some(1)") && text.contains("node_id=1"),
        "the start-up log names the node and the quorum leader:\n{text}"
    );
    assert!(!text.contains("unknown configuration key"), "{text}");
}
