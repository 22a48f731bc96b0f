//! A cluster of real brokers on one host (one metadata quorum of all of
//! them), and the helpers the cluster and replication tests share.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{call, rdk, sluice_bin, Broker};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

/// Fast sessions so fencing is seen within seconds.
pub const FAST_SESSIONS: &[&str] = &[
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
];
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Cluster {
    /// Node id i + 1 at index i.
    pub brokers: Vec<Broker>,
    /// The `controller.quorum.voters` value they share.
    pub voters: String,
    pub controller_ports: Vec<u16>,
}

impl Cluster {
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with_setup(n, extra, |_, _| {})
    }

    /// `start`, after `setup(node id, data dir)` prepared each broker's
    /// (empty) data directory.
    pub fn start_with_setup(
        n: usize,
        extra: &[&str],
        mut setup: impl FnMut(i32, &std::path::Path),
    ) -> Cluster {
        let cports: Vec<u16> = (0..n).map(|_| super::free_port()).collect();
        let voters = Cluster::voters(cports.iter().map(|p| format!("127.0.0.1:{p}")));
        Cluster::launch(n, voters, cports, extra, |id, o| {
            Broker::launch_with_setup(
                super::DEFAULT_CORES,
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                super::free_port(),
                None,
                o,
                |dir| setup(id, dir),
            )
        })
    }

    /// `n` brokers, broker i in namespace i of `net` on its own address
    /// (ports 9092, controller 9093).
    pub fn start_in(net: &super::netns::Net, n: usize, extra: &[&str]) -> Cluster {
        let voters = Cluster::voters((1..=n).map(|i| format!("{}:9093", net.broker_addr(i))));
        Cluster::launch(n, voters, vec![9093; n], extra, |id, o| {
            let i = id as usize;
            Broker::launch_at(
                super::DEFAULT_CORES,
                net.broker_addr(i),
                9092,
                Some(net.broker_ns(i)),
                o,
            )
        })
    }

    /// `controller.quorum.voters` for node ids 1.. at these addresses.
    fn voters(addrs: impl Iterator<Item = String>) -> String {
        addrs
            .enumerate()
            .map(|(i, a)| format!("{}@{a}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Launch node ids 1..=n with `launch(id, overrides)`, all before any is
    /// waited for (a quorum must be up before any listens).
    fn launch(
        n: usize,
        voters: String,
        controller_ports: Vec<u16>,
        extra: &[&str],
        mut launch: impl FnMut(i32, &[String]) -> Broker,
    ) -> Cluster {
        let mut brokers: Vec<Broker> = (1..=n as i32)
            .map(|id| {
                let mut o = vec![
                    format!("node.id={id}"),
                    format!("controller.quorum.voters={voters}"),
                ];
                o.extend(extra.iter().map(|s| s.to_string()));
                launch(id, &o)
            })
            .collect();
        for b in brokers.iter_mut() {
            b.wait_until_ready();
        }
        Cluster {
            brokers,
            voters,
            controller_ports,
        }
    }

    pub fn broker(&self, id: i32) -> &Broker {
        &self.brokers[id as usize - 1]
    }

    pub fn bootstrap_all(&self) -> String {
        self.brokers
            .iter()
            .map(Broker::bootstrap)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node that most recently said it leads the quorum.
    pub fn quorum_leader(&self) -> i32 {
        let mut latest: Option<(String, i32)> = None;
        for b in &self.brokers {
            for line in b.logs().lines() {
                if let Some(rest) = line
                    .split("this node leads the metadata quorum node=")
                    .nth(1)
                {
                    let id: i32 = rest.split_whitespace().next().unwrap().parse().unwrap();
                    let ts = line.split_whitespace().next().unwrap().to_string();
                    if latest.as_ref().is_none_or(|(t, _)| ts > *t) {
                        latest = Some((ts, id));
                    }
                }
            }
        }
        latest.expect("a quorum leader in the logs").1
    }
}

pub fn one_record_produce(topic: &str, partition: i32) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let r = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(bytes::Bytes::from_static(b"kip-951")),
        headers: Default::default(),
    };
    let mut b = bytes::BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut b, &[r], &opts).unwrap();
    super::produce_request(topic, partition, b.freeze())
}

pub fn init_producer_id(bootstrap: &str) -> i64 {
    let mut s = TcpStream::connect(bootstrap).unwrap();
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

pub fn metadata(b: &Broker) -> MetadataResponse {
    let mut s = TcpStream::connect(b.addr()).unwrap();
    call(&mut s, 12, &MetadataRequest::default().with_topics(None))
}

/// topic → partition → (leader, replicas, isr, error code).
pub type Layout = BTreeMap<String, BTreeMap<i32, (i32, Vec<i32>, Vec<i32>, i16)>>;

pub fn layout(m: &MetadataResponse) -> Layout {
    m.topics
        .iter()
        .filter(|t| !t.name.as_ref().unwrap().starts_with("__"))
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
                    (
                        p.partition_index,
                        (
                            p.leader_id.0,
                            ids(&p.replica_nodes),
                            ids(&p.isr_nodes),
                            p.error_code,
                        ),
                    )
                })
                .collect();
            (t.name.as_ref().unwrap().to_string(), parts)
        })
        .collect()
}

pub fn brokers_of(m: &MetadataResponse) -> Vec<(i32, u16)> {
    let mut v: Vec<(i32, u16)> = m
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.port as u16))
        .collect();
    v.sort();
    v
}

pub fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn cli(args: &[&str]) -> (bool, String) {
    let out = super::run_with_timeout(
        Command::new(sluice_bin()).args(args),
        None,
        Duration::from_secs(60),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

pub fn produce(bootstrap: &str, topic: &str, partitions: i32, n: usize) {
    let p = rdk::producer(bootstrap, &[]);
    let futures: Vec<_> = (0..n)
        .map(|i| {
            rdk::send(
                &p,
                topic,
                i as i32 % partitions,
                None,
                format!("r{i}").as_bytes(),
            )
        })
        .collect();
    for f in futures {
        rdk::wait_delivery(f);
    }
}

pub fn consumed(bootstrap: &str, topic: &str, partitions: i32) -> usize {
    rdk::consume_all(bootstrap, topic, partitions, rdk::TIMEOUT)
        .values()
        .map(Vec::len)
        .sum()
}
