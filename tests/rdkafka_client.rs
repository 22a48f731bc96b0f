//! librdkafka (via the rdkafka crate) against a real broker: bulk produce with
//! acks=all over many partitions, then read everything back with assign().

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::rdk::{self, Rec};
use common::Broker;

const PARTITIONS: i32 = 8;
const RECORDS: usize = 100_000;

/// Key and per-partition sequence number of an acknowledged record.
type Acked = (Option<Vec<u8>>, usize);

fn value_of(partition: i32, seq: usize) -> Vec<u8> {
    format!("p{partition}-seq{seq:06}-{}", "x".repeat(seq % 50)).into_bytes()
}

#[test]
fn produce_100k_over_8_partitions_and_consume_in_order() {
    produce_and_consume_in_order(&two_shards(&[]), RECORDS);
}

/// The CPUs each `shard-*` thread of `pid` may run on, and the process's.
fn shard_cpus(pid: u32) -> (Vec<String>, String) {
    let allowed = |status: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|v| v.trim().to_string())
            .expect("Cpus_allowed_list")
    };
    let process = allowed(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    let mut shards = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = t.unwrap().path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        // Helper threads carry their shard's name too; a shard's own thread
        // is the first of them (the lowest id), the one glommio places.
        if comm.starts_with("shard-") {
            let id: u32 = t.file_name().unwrap().to_str().unwrap().parse().unwrap();
            shards.push((comm.trim().to_string(), id, t));
        }
    }
    shards.sort();
    shards.dedup_by(|b, a| a.0 == b.0);
    let cpus = shards
        .iter()
        .map(|(_, _, t)| allowed(&std::fs::read_to_string(t.join("status")).unwrap()))
        .collect();
    (cpus, process)
}

/// `--overprovisioned` (`sluice.shard.thread.affinity=false`): the shard
/// threads may run on any CPU the process may, where by default each is
/// pinned to one; and librdkafka's records all come back in order.
#[test]
fn an_overprovisioned_broker_leaves_its_shards_unpinned_and_keeps_every_record() {
    let process_cpus = shard_cpus(std::process::id()).1;
    if !process_cpus.contains(['-', ',']) {
        eprintln!("one CPU ({process_cpus}): pinned and unpinned look the same; skipped");
        return;
    }
    let pinned = two_shards(&[]);
    let (cpus, process) = shard_cpus(pinned.pid().unwrap());
    assert_eq!(cpus.len(), 2, "two shard threads");
    assert!(
        cpus.iter()
            .all(|c| *c != process && c.parse::<usize>().is_ok()),
        "by default each shard is pinned to one CPU: {cpus:?} (process {process})"
    );
    drop(pinned);
    let broker = two_shards(&["--overprovisioned"]);
    let (cpus, process) = shard_cpus(broker.pid().unwrap());
    assert_eq!(
        cpus,
        vec![process.clone(), process],
        "overprovisioned shards are not pinned"
    );
    produce_and_consume_in_order(&broker, RECORDS / 10);
}

/// `queued.max.request.bytes=1`: each shard reads one request at a time
/// (a request larger than the whole budget still goes through alone), and
/// librdkafka's pipelined produce still gets every record in, in order.
#[test]
fn a_request_memory_smaller_than_one_request_serves_pipelined_produce() {
    produce_and_consume_in_order(&two_shards(&["queued.max.request.bytes=1"]), RECORDS / 5);
}

/// `sluice.log.write.max.bytes=4096`: appends queued behind one fsync are
/// written one block at a time (a larger batch alone); offsets, index and
/// order come out as with one large write.
#[test]
fn writes_cut_into_pieces_keep_every_record_in_order() {
    produce_and_consume_in_order(
        &two_shards(&["sluice.log.write.max.bytes=4096"]),
        RECORDS / 5,
    );
}

/// Two shards: partitions are spread over cores, which is what we want to
/// exercise here.
fn two_shards(overrides: &[&str]) -> Broker {
    Broker::start_with_cores(2, overrides)
}

fn produce_and_consume_in_order(broker: &Broker, records: usize) {
    let bs = broker.bootstrap();
    let topic = common::unique_topic("bulk");
    rdk::create_topic(&bs, &topic, PARTITIONS);

    let producer = rdk::producer(&bs, &[]);
    let t0 = Instant::now();
    let mut futures = Vec::with_capacity(records);
    for i in 0..records {
        let p = (i % PARTITIONS as usize) as i32;
        let seq = i / PARTITIONS as usize;
        let key = seq
            .is_multiple_of(3)
            .then(|| format!("k{seq}").into_bytes());
        futures.push((
            p,
            key.clone(),
            rdk::send(&producer, &topic, p, key.as_deref(), &value_of(p, seq)),
        ));
    }
    // Everything the broker acknowledged, keyed by where it says it put it.
    let mut acked: BTreeMap<(i32, i64), Acked> = BTreeMap::new();
    for (i, (p, key, f)) in futures.into_iter().enumerate() {
        let d = rdk::wait_delivery(f);
        assert_eq!(
            d.partition, p,
            "record {i} delivered to the wrong partition"
        );
        let prev = acked.insert((p, d.offset), (key, i / PARTITIONS as usize));
        assert!(prev.is_none(), "offset {p}/{} acknowledged twice", d.offset);
    }
    eprintln!("produced {records} records in {:?}", t0.elapsed());

    let got = rdk::consume_all(&bs, &topic, PARTITIONS, Duration::from_secs(120));
    eprintln!("produced+consumed in {:?}", t0.elapsed());
    let mut total = 0;
    for (p, recs) in &got {
        let expected = records / PARTITIONS as usize;
        assert_eq!(recs.len(), expected, "partition {p}: record count");
        for (seq, r) in recs.iter().enumerate() {
            // Offsets are dense from 0 and each record is the one the producer
            // sent as the seq-th record of this partition (order preserved).
            assert_eq!(r.offset, seq as i64, "partition {p}: offset gap/duplicate");
            let (key, sent_seq) = &acked[&(*p, r.offset)];
            assert_eq!(
                *sent_seq, seq,
                "partition {p} offset {}: out of order",
                r.offset
            );
            assert_eq!(
                r.value.as_deref(),
                Some(&value_of(*p, seq)[..]),
                "partition {p} offset {}: value",
                r.offset
            );
            assert_eq!(&r.key, key, "partition {p} offset {}: key", r.offset);
        }
        total += recs.len();
    }
    assert_eq!(total, records);
}

/// Each codec in its own topic. The broker stores batches as sent, so the
/// consumer must decompress exactly what the producer compressed. zstd needs
/// the rdkafka `zstd` feature; without it the producer config fails loudly.
#[test]
fn compressed_batches_round_trip() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = common::unique_topic(&format!("codec-{codec}"));
        rdk::create_topic(&bs, &topic, 2);
        let producer = rdk::producer(
            &bs,
            &[
                ("api.version.request", "true"),
                ("compression.codec", codec),
                // Linger so batches hold many (compressible) records.
                ("linger.ms", "50"),
                ("batch.num.messages", "500"),
            ],
        );
        let n = 3000;
        let sent: Vec<(i32, Vec<u8>)> = (0..n)
            .map(|i| {
                (
                    (i % 2) as i32,
                    format!("{codec} record {i} {}", "abc".repeat(i % 40)).into_bytes(),
                )
            })
            .collect();
        let futs: Vec<_> = sent
            .iter()
            .map(|(p, v)| rdk::send(&producer, &topic, *p, Some(b"k"), v))
            .collect();
        futs.into_iter().for_each(|f| {
            rdk::wait_delivery(f);
        });

        let got = rdk::consume_all(&bs, &topic, 2, Duration::from_secs(60));
        for p in 0..2 {
            let want: Vec<&[u8]> = sent
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, v)| &v[..])
                .collect();
            let have: Vec<&[u8]> = got[&p]
                .iter()
                .map(|r: &Rec| r.value.as_deref().unwrap())
                .collect();
            assert_eq!(have.len(), want.len(), "{codec}: partition {p} count");
            assert!(have == want, "{codec}: partition {p} contents differ");
            assert!(
                got[&p].iter().all(|r| r.key.as_deref() == Some(b"k")),
                "{codec}: keys"
            );
        }
    }
}

/// acks=all needs min.insync.replicas in-sync replicas: one broker has one,
/// so a topic asking for two refuses acks=all writes with
/// NOT_ENOUGH_REPLICAS (and takes acks=1 writes), as Kafka does.
#[test]
fn acks_all_is_refused_below_min_insync_replicas() {
    use futures::executor::block_on;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    // Broker default 2; one topic overrides it back to 1.
    let broker = Broker::start(&["min.insync.replicas=2"]);
    let bs = broker.bootstrap();
    let strict = common::unique_topic("min-isr-2");
    let relaxed = common::unique_topic("min-isr-1");
    let admin: AdminClient<DefaultClientContext> =
        rdk::config(&bs, &[]).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(rdk::TIMEOUT));
    let topics = [
        NewTopic::new(&strict, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&relaxed, 1, TopicReplication::Fixed(1)).set("min.insync.replicas", "1"),
    ];
    for r in block_on(admin.create_topics(&topics, &opts)).unwrap() {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e:?}"));
    }
    let no_retry = [
        ("message.send.max.retries", "0"),
        ("message.timeout.ms", "10000"),
    ];
    let all = rdk::producer(&bs, &no_retry);
    match block_on(rdk::send(&all, &strict, 0, None, b"refused")).unwrap() {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas), _)) => {}
        other => panic!("acks=all below min.insync.replicas: {other:?}"),
    }
    rdk::wait_delivery(rdk::send(&all, &relaxed, 0, None, b"accepted"));
    let one = rdk::producer(&bs, &[("acks", "1"), no_retry[0], no_retry[1]]);
    rdk::wait_delivery(rdk::send(&one, &strict, 0, None, b"acks=1 is fine"));
    let got = rdk::consume_all(&bs, &strict, 1, rdk::TIMEOUT);
    let values: Vec<&[u8]> = got[&0]
        .iter()
        .map(|r| r.value.as_deref().unwrap())
        .collect();
    assert_eq!(
        values,
        vec![&b"acks=1 is fine"[..]],
        "the refused record was written"
    );
    // Group state is written with acks=all too, but on one broker
    // __consumer_offsets has one replica: commits still work.
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let group: BaseConsumer = rdk::config(
        &bs,
        &[
            ("group.id", "min-isr-group"),
            ("enable.auto.commit", "false"),
        ],
    )
    .create()
    .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&strict, 0, rdkafka::Offset::Offset(1))
        .unwrap();
    group
        .commit(&tpl, CommitMode::Sync)
        .expect("a commit with min.insync.replicas above the offsets topic's replicas");
}

/// Dynamic broker configs (AlterConfigs on the BROKER resource, as
/// `kafka-configs --entity-type brokers` sends them): applied at once to
/// topics without an override, persisted across a restart, and refused for
/// keys that cannot change at run time.
#[test]
fn dynamic_broker_configs_apply_at_once_and_persist() {
    use futures::executor::block_on;
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("dyn");
    rdk::create_topic(&bs, &topic, 1);
    let admin = || -> AdminClient<DefaultClientContext> {
        rdk::config(&bs, &[]).create().expect("admin client")
    };
    let opts = AdminOptions::new().request_timeout(Some(rdk::TIMEOUT));
    let alter = |key: &str, value: &str| {
        let a = AlterConfig::new(ResourceSpecifier::Broker(1)).set(key, value);
        block_on(admin().alter_configs([&a], &opts))
            .unwrap()
            .remove(0)
    };
    let describe = |spec: ResourceSpecifier, key: &str| {
        let r = block_on(admin().describe_configs([&spec], &opts))
            .unwrap()
            .remove(0)
            .unwrap();
        let e = r.get(key).unwrap_or_else(|| panic!("{key} not described"));
        (e.value.clone(), format!("{:?}", e.source))
    };
    // (Refusals are checked with confluent-kafka in tests/clients/confluent_admin.py:
    // the rdkafka crate reports AlterConfigs resource errors as success.)
    // message.max.bytes down to 5000: a 10 KB record is refused at once.
    alter("message.max.bytes", "5000").expect("alter");
    let p = rdk::producer(&bs, &[("message.send.max.retries", "0")]);
    match block_on(rdk::send(&p, &topic, 0, None, &[7u8; 10_000])).unwrap() {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {}
        other => panic!("10 KB over a dynamic message.max.bytes=5000: {other:?}"),
    }
    let (v, source) = describe(ResourceSpecifier::Topic(&topic), "max.message.bytes");
    assert_eq!(v.as_deref(), Some("5000"));
    assert_eq!(source, "DynamicBroker");
    // Persisted: still in force after a restart.
    broker.kill9();
    broker.restart();
    let (v, source) = describe(ResourceSpecifier::Broker(1), "message.max.bytes");
    assert_eq!(
        (v.as_deref(), source),
        (Some("5000"), "DynamicBroker".to_string())
    );
    // AlterConfigs replaces the whole set: back to the defaults.
    let a = AlterConfig::new(ResourceSpecifier::Broker(1));
    block_on(admin().alter_configs([&a], &opts))
        .unwrap()
        .remove(0)
        .expect("reset");
    let p = rdk::producer(&bs, &[("message.send.max.retries", "0")]);
    rdk::wait_delivery(rdk::send(&p, &topic, 0, None, &[7u8; 10_000]));
}

/// Descriptors the broker holds on files under `dir` (its partitions'
/// segment files, when `dir` is one topic's partitions' parent and `prefix`
/// names the topic).
fn segment_fds(pid: u32, dir: &std::path::Path, topic: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|t| {
                    t.starts_with(dir)
                        && t.strip_prefix(dir)
                            .ok()
                            .and_then(|r| r.iter().next())
                            .is_some_and(|d| d.to_string_lossy().starts_with(&format!("{topic}-")))
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn more_partitions_than_open_files_all_take_writes_and_serve_reads() {
    // 200 partitions whose segments roll every two 4 KiB records: about
    // 1,800 segment files behind a limit of 48 open ones (24 per shard).
    const OPEN_FILES: usize = 48;
    const PARTS: i32 = 200;
    const PER_PARTITION: usize = 5;
    let mut broker = Broker::start_with_cores(
        2,
        &["sluice.log.open.files.max=48", "log.segment.bytes=10000"],
    );
    let bs = broker.bootstrap();
    let topic = common::unique_topic("many");
    rdk::create_topic(&bs, &topic, PARTS);
    let value = |p: i32, seq: usize| format!("p{p}-{seq}-{}", "v".repeat(4000)).into_bytes();
    let producer = rdk::producer(&bs, &[]);
    for seq in 0..PER_PARTITION {
        let sent: Vec<_> = (0..PARTS)
            .map(|p| (p, rdk::send(&producer, &topic, p, None, &value(p, seq))))
            .collect();
        for (p, f) in sent {
            let d = rdk::wait_delivery(f);
            assert_eq!((d.partition, d.offset), (p, seq as i64));
        }
    }
    let check = |broker: &Broker, when: &str| {
        let parts = (0..PARTS).map(|p| (p, (0, PER_PARTITION as i64))).collect();
        let got = rdk::consume_range(
            &broker.bootstrap(),
            &topic,
            &parts,
            Duration::from_secs(120),
        );
        for p in 0..PARTS {
            let values: Vec<_> = got[&p].iter().map(|r| r.value.clone().unwrap()).collect();
            let want: Vec<_> = (0..PER_PARTITION).map(|s| value(p, s)).collect();
            assert!(values == want, "{when}: partition {p} read back wrong");
        }
        let segments = common::log_segments(&broker.data_dir().join(format!("{topic}-0")));
        assert!(segments >= 2, "{when}: segments did not roll ({segments})");
        let held = segment_fds(broker.pid().unwrap(), &broker.data_dir(), &topic);
        eprintln!("{when}: {held} descriptors on the topic's segment files");
        assert!(
            held <= OPEN_FILES,
            "{when}: {held} segment files open, limit {OPEN_FILES}"
        );
    };
    check(&broker, "after producing");
    broker.restart();
    check(&broker, "after a restart");
}
