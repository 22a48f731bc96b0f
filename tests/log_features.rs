//! Segment rolls on disk, retention advancing the log start offset, and
//! ListOffsets by timestamp through the time index, seen by librdkafka; and
//! Fetch's size limits (KIP-74) over several partitions.

mod common;

use std::time::{Duration, Instant};

use common::{rdk, Broker};
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use rdkafka::{Offset, TopicPartitionList};

const RECORD_BYTES: usize = 1000;

fn produce(b: &str, topic: &str, n: usize, ts_base: i64) {
    let p = rdk::producer(b, &[("linger.ms", "0")]);
    let value = vec![1u8; RECORD_BYTES];
    for i in 0..n {
        let rec = rdkafka::producer::FutureRecord::<[u8], [u8]>::to(topic)
            .partition(0)
            .payload(&value)
            .timestamp(ts_base + i as i64 * 1000);
        let f = p.send_result(rec).map_err(|(e, _)| e).expect("enqueue");
        rdk::wait_delivery(f);
    }
}

/// `sluice topics --alter --config key=value` (the CLI speaks IncrementalAlterConfigs).
fn alter_config(b: &str, topic: &str, kv: &str) {
    let out = std::process::Command::new(common::sluice_bin())
        .args([
            "topics",
            "--bootstrap-server",
            b,
            "--alter",
            "--topic",
            topic,
            "--config",
            kv,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::show_output(&out));
}

fn segment_files(broker: &Broker, topic: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(broker.data_dir().join(format!("{topic}-0")))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".log"))
        .collect();
    v.sort();
    v
}

#[test]
fn segments_roll_and_retention_advances_log_start() {
    let broker = Broker::start(&["log.retention.check.interval.ms=200"]);
    let b = broker.bootstrap();
    let topic = common::unique_topic("ret");
    rdk::create_topic(&b, &topic, 1);
    // ~10 records per segment.
    alter_config(&b, &topic, "segment.bytes=10240");
    // Current timestamps: older ones would be expired by the 7-day default
    // retention.ms as soon as their segment closed (Kafka judges by record time).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    produce(&b, &topic, 60, now - 60_000);
    let files = segment_files(&broker, &topic);
    assert!(files.len() >= 5, "expected several segments, got {files:?}");
    assert_eq!(files[0], "00000000000000000000.log");
    assert!(
        files.iter().all(|f| f.len() == 24),
        "20-digit base offsets: {files:?}"
    );

    alter_config(&b, &topic, "retention.bytes=20000");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (low, high) = loop {
        let (low, high) = rdk::watermarks(&b, &topic, 0);
        if low > 0 || Instant::now() > deadline {
            break (low, high);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(high, 60);
    assert!(
        low >= 30,
        "retention should have deleted old segments; log start {low}"
    );
    assert!(segment_files(&broker, &topic).len() < files.len());

    // Fetching below the log start is OFFSET_OUT_OF_RANGE (with
    // auto.offset.reset=error librdkafka reports it as a consumer error).
    let c = rdk::consumer(&b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(0))
        .unwrap();
    c.assign(&tpl).unwrap();
    let err = loop {
        match c.poll(Duration::from_secs(5)) {
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => continue,
            Some(Err(e)) => break e.to_string(),
            Some(Ok(m)) => panic!("read offset {} below the log start {low}", m.offset()),
        }
    };
    assert!(
        err.contains("out of range") || err.contains("reset"),
        "{err}"
    );
    // Reading from the beginning starts at the new log start offset.
    let c = rdk::consumer(&b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let first = loop {
        match c.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => break m.offset(),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => continue,
            Some(Err(e)) => panic!("{e}"),
        }
    };
    assert_eq!(first, low);
}

#[test]
fn list_offsets_by_timestamp() {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let topic = common::unique_topic("ts");
    rdk::create_topic(&b, &topic, 1);
    let base = 1_700_000_000_000i64;
    produce(&b, &topic, 50, base); // record i has timestamp base + i s
    let c = rdk::consumer(&b);
    for (ts, want) in [
        (base, 0),
        (base + 17_000, 17),
        (base + 17_500, 18),
        (base + 49_000, 49),
        (base + 99_000, -1),
    ] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(ts))
            .unwrap();
        let r = c
            .offsets_for_times(tpl, Duration::from_secs(10))
            .expect("ListOffsets");
        let got = r.find_partition(&topic, 0).unwrap().offset();
        let want = if want < 0 {
            Offset::End
        } else {
            Offset::Offset(want)
        };
        assert_eq!(got, want, "timestamp {ts}");
    }
}

/// Index files of closed segments that a crash deleted or zero-filled are
/// rebuilt from the log at start-up; none of it costs a record (a zeroed
/// time index once made retention take its segment for ancient), and
/// ListOffsets by timestamp still answers from the rebuilt index.
#[test]
fn deleted_or_zeroed_index_files_are_rebuilt() {
    let mut broker = Broker::start(&["log.retention.check.interval.ms=200"]);
    let b = broker.bootstrap();
    let topic = common::unique_topic("idx");
    rdk::create_topic(&b, &topic, 1);
    alter_config(&b, &topic, "segment.bytes=10240");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    produce(&b, &topic, 60, now - 60_000);
    let files = segment_files(&broker, &topic);
    assert!(files.len() >= 4, "{files:?}");
    assert!(broker.terminate().success());
    let dir = broker.data_dir().join(format!("{topic}-0"));
    let stem = |f: &str| f.trim_end_matches(".log").to_string();
    // Zero-fill both indexes of the first segment, delete those of the second.
    for ext in ["index", "timeindex"] {
        let p = dir.join(format!("{}.{ext}", stem(&files[0])));
        let len = std::fs::metadata(&p).unwrap().len().max(24);
        std::fs::write(&p, vec![0u8; len as usize]).unwrap();
        std::fs::remove_file(dir.join(format!("{}.{ext}", stem(&files[1])))).unwrap();
    }
    let marker = broker.logs().lines().count();
    broker.restart();
    let log: String = broker
        .logs()
        .lines()
        .skip(marker)
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        log.matches("rebuilding it from the log").count(),
        2,
        "both segments' indexes rebuilt:\n{log}"
    );
    // Retention runs every 200 ms: give it time to (wrongly) act.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rdk::watermarks(&b, &topic, 0), (0, 60), "records lost");
    let got = rdk::consume_all(&b, &topic, 1, Duration::from_secs(30));
    assert_eq!(got[&0].len(), 60);
    // By timestamp, through the rebuilt time index: record 5 of the first segment.
    let c = rdk::consumer(&b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(now - 60_000 + 5_000))
        .unwrap();
    let found = c.offsets_for_times(tpl, rdk::TIMEOUT).unwrap();
    let off = found.elements()[0].offset();
    assert_eq!(off, Offset::Offset(5), "offsets_for_times");
}

/// One batch of `n` records of `RECORD_BYTES` to `partition`, by a raw
/// Produce; returns the batch's size in bytes.
fn produce_batch(s: &mut std::net::TcpStream, topic: &str, partition: i32, n: usize) -> usize {
    let records: Vec<_> = (0..n)
        .map(|_| (None, Some(bytes::Bytes::from(vec![7u8; RECORD_BYTES]))))
        .collect();
    let b = sluice::client::records::encode_batch(&records, 1_700_000_000_000).unwrap();
    let size = b.len();
    let r = common::call(s, 8, &common::produce_request(topic, partition, b));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0, "{r:?}");
    size
}

/// What Kafka answers (KIP-74): partitions in request order, each up to the
/// smaller of its own limit and what is left of the request's, whole batches
/// only, and only the first batch of the first non-empty partition may
/// exceed both. sluice reads partitions of a fetch at once where it can; the
/// answer must still be the sequential one.
#[test]
fn fetch_limits_are_kafkas_whatever_the_reads_run_together() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("fetch-limits");
    rdk::create_topic(&bs, &topic, 3);
    let mut s = std::net::TcpStream::connect(broker.addr()).unwrap();
    // p0 and p1: one batch of 30 records each; p2: three of 5.
    let big0 = produce_batch(&mut s, &topic, 0, 30);
    let big1 = produce_batch(&mut s, &topic, 1, 30);
    let small: Vec<usize> = (0..3)
        .map(|_| produce_batch(&mut s, &topic, 2, 5))
        .collect();
    assert!(small[0] * 2 > 10_000 && small[0] < 10_000 && big0 > 10_000);

    // (request max, [(partition, offset, partition max)]) -> bytes per partition.
    let fetch = |s: &mut std::net::TcpStream, max: i32, parts: &[(i32, i64, i32)]| -> Vec<usize> {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        use kafka_protocol::messages::{FetchRequest, TopicName};
        use kafka_protocol::protocol::StrBytes;
        let req = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(max)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&(p, offset, pmax)| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(pmax)
                        })
                        .collect(),
                )]);
        let r = common::call(s, 4, &req);
        let got = &r.responses[0].partitions;
        parts
            .iter()
            .map(|&(p, _, _)| {
                let d = got.iter().find(|d| d.partition_index == p).unwrap();
                assert_eq!(d.error_code, 0, "{d:?}");
                d.records.as_ref().map_or(0, |b| b.len())
            })
            .collect()
    };
    // Room for every partition's limit (read together): p0's first batch
    // over its limit is taken (nothing came before it), p1's is not, p2
    // gets the batches that fit its limit.
    assert_eq!(
        fetch(
            &mut s,
            1 << 20,
            &[(0, 0, 10_000), (1, 0, 10_000), (2, 0, 10_000)]
        ),
        vec![big0, 0, small[0]]
    );
    // The first partition gets one batch even over its own limit; after it,
    // no partition's first batch may be over.
    assert_eq!(
        fetch(
            &mut s,
            1 << 20,
            &[(2, 0, 1), (1, 0, 10_000), (0, 0, 10_000)]
        ),
        vec![small[0], 0, 0]
    );
    // A partition with nothing to give does not count as "before": the first
    // non-empty one still gets its oversize batch.
    assert_eq!(
        fetch(
            &mut s,
            1 << 20,
            &[(2, 15, 10_000), (1, 0, 10_000), (0, 0, 10_000)]
        ),
        vec![0, big1, 0]
    );
    // No room for the limits added up (read one after another): the
    // request's max ends the answer after p0.
    assert_eq!(
        fetch(
            &mut s,
            20_000,
            &[(0, 0, 1 << 20), (1, 0, 1 << 20), (2, 0, 1 << 20)]
        ),
        vec![big0, 0, 0]
    );
    // Everything fits.
    assert_eq!(
        fetch(
            &mut s,
            1 << 20,
            &[(2, 0, 40_000), (0, 0, 40_000), (1, 0, 40_000)]
        ),
        vec![small.iter().sum::<usize>(), big0, big1]
    );
}

/// One produce request over partitions of both shards, with partitions and a
/// topic that do not exist among them: sluice ships each shard's partitions
/// in one job, and every partition must still be answered in request order
/// with its own outcome, and its records land in it alone (read back by
/// librdkafka).
#[test]
fn a_produce_over_both_shards_answers_every_partition_in_request_order() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::start_with_cores(2, &[]);
    let bs = broker.bootstrap();
    let a = common::unique_topic("both-shards-a");
    let c = common::unique_topic("both-shards-c");
    rdk::create_topic(&bs, &a, 8);
    rdk::create_topic(&bs, &c, 2);
    let missing = common::unique_topic("both-shards-missing");
    // (topic, partition, records: each value names its partition).
    let batch = |tag: &str, n: usize| {
        let records: Vec<_> = (0..n)
            .map(|i| (None, Some(bytes::Bytes::from(format!("{tag}/{i}")))))
            .collect();
        sluice::client::records::encode_batch(&records, 1_700_000_000_000).unwrap()
    };
    let plan: Vec<(&str, Vec<i32>)> = vec![
        (a.as_str(), vec![5, 0, 99, 3, 1, 7, 2]),
        (missing.as_str(), vec![0]),
        (c.as_str(), vec![1, 0]),
    ];
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(
            plan.iter()
                .map(|(t, parts)| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partition_data(
                            parts
                                .iter()
                                .map(|&p| {
                                    PartitionProduceData::default().with_index(p).with_records(
                                        Some(batch(&format!("{t}-{p}"), 1 + p as usize % 4)),
                                    )
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let mut s = std::net::TcpStream::connect(broker.addr()).unwrap();
    let r = common::call(&mut s, 8, &req);
    // Per topic: (partition, error code, base offset).
    type Answer = Vec<(String, Vec<(i32, i16, i64)>)>;
    let got: Answer = r
        .responses
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partition_responses
                    .iter()
                    .map(|p| (p.index, p.error_code, p.base_offset))
                    .collect(),
            )
        })
        .collect();
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    let want: Answer = plan
        .iter()
        .map(|(t, parts)| {
            let exists = |p: i32| (*t == a && p < 8) || (*t == c && p < 2);
            (
                t.to_string(),
                parts
                    .iter()
                    .map(|&p| match exists(p) {
                        true => (p, 0, 0),
                        false => (p, UNKNOWN_TOPIC_OR_PARTITION, -1),
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(got, want);
    for (t, n) in [(&a, 8), (&c, 2)] {
        let read = rdk::consume_all(&bs, t, n, Duration::from_secs(30));
        for (p, recs) in read {
            let sent = plan
                .iter()
                .any(|(pt, parts)| *pt == t.as_str() && parts.contains(&p));
            let want: Vec<Vec<u8>> = match sent {
                true => (0..1 + p as usize % 4)
                    .map(|i| format!("{t}-{p}/{i}").into_bytes())
                    .collect(),
                false => Vec::new(),
            };
            let values: Vec<Vec<u8>> = recs.into_iter().map(|r| r.value.unwrap()).collect();
            assert_eq!(values, want, "{t}-{p}");
        }
    }
}

/// A topic created with many partitions on a shard (at least
/// `sluice.log.sync.filesystem.min.partitions`, 8) has its new files written
/// without fsyncs and made durable by one syncfs before any partition is
/// served; one with a few keeps each file's own fsyncs. Either way every
/// partition has Kafka's files, takes records, and keeps them across a
/// restart.
#[test]
fn a_topic_of_many_partitions_is_made_durable_with_one_syncfs_and_serves_like_any_other() {
    let mut broker = Broker::start_with_cores(1, &[]);
    let bs = broker.bootstrap();
    let many = common::unique_topic("many");
    let few = common::unique_topic("few");
    rdk::create_topic(&bs, &many, 24);
    rdk::create_topic(&bs, &few, 2);
    let log = broker.logs();
    let synced: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("new partitions' files made durable with one syncfs"))
        .collect();
    if log.contains("commit rounds fdatasync each partition (no syncfs)") {
        // Not ext4, or an older kernel: every file fsync'd as before.
        assert!(synced.is_empty(), "{log}");
    } else {
        assert_eq!(synced.len(), 1, "one syncfs, for the 24 only:\n{log}");
        assert!(synced[0].contains("partitions=24"), "{}", synced[0]);
    }
    let p = rdk::producer(&bs, &[("linger.ms", "0")]);
    for (topic, n) in [(&many, 24), (&few, 2)] {
        for part in 0..n {
            let dir = broker.data_dir().join(format!("{topic}-{part}"));
            for f in [
                "partition.metadata",
                "leader-epoch-checkpoint",
                "00000000000000000000.log",
                "00000000000000000000.index",
                "00000000000000000000.timeindex",
            ] {
                assert!(dir.join(f).exists(), "{}/{f}", dir.display());
            }
            let meta = std::fs::read_to_string(dir.join("partition.metadata")).unwrap();
            assert!(meta.contains("topic_id: "), "{meta:?}");
            let d = rdk::wait_delivery(rdk::send(
                &p,
                topic,
                part,
                None,
                format!("{topic}/{part}").as_bytes(),
            ));
            assert_eq!((d.partition, d.offset), (part, 0));
        }
    }
    drop(p);
    broker.restart();
    let bs = broker.bootstrap();
    for (topic, n) in [(&many, 24), (&few, 2)] {
        let got = rdk::consume_all(&bs, topic, n, Duration::from_secs(60));
        for part in 0..n {
            let values: Vec<Vec<u8>> = got
                .get(&part)
                .map(|rs| rs.iter().filter_map(|r| r.value.clone()).collect())
                .unwrap_or_default();
            assert_eq!(
                values,
                vec![format!("{topic}/{part}").into_bytes()],
                "{topic}-{part}"
            );
        }
    }
}
