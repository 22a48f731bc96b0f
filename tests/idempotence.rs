//! The idempotent producer: InitProducerId, and the per-partition sequence
//! checks answered with Kafka's codes, over the wire with batches built by
//! kafka-protocol's encoder (not sluice's), then through restarts (clean,
//! kill -9, snapshots deleted), then librdkafka's idempotent producer writing
//! through two kill -9s.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{rdk, Broker};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;
use rdkafka::producer::Producer;

/// A blocking Kafka connection with the two requests these tests send.
struct Wire {
    s: TcpStream,
}

impl Wire {
    fn connect(addr: SocketAddr) -> Wire {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Wire { s }
    }

    fn init_producer_id(&mut self, transactional_id: Option<&str>) -> InitProducerIdResponse {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(
                transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.into()))),
            )
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        common::call(&mut self.s, 4, &req)
    }

    /// Produce `records` (already encoded batches) to partition 0 with
    /// acks=all; (error code, base offset, log start offset).
    fn produce(&mut self, topic: &str, records: Bytes) -> (i16, i64) {
        let req = common::produce_request(topic, 0, records);
        let resp: ProduceResponse = common::call(&mut self.s, 9, &req);
        let p = &resp.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }
}

/// One batch of `n` records from producer `pid` at `epoch`, starting at
/// sequence `seq`, encoded by kafka-protocol.
fn batch(pid: i64, epoch: i16, seq: i32, n: usize, tag: &str) -> Bytes {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if seq < 0 {
                seq
            } else {
                seq.wrapping_add(i as i32) & i32::MAX
            },
            // Now: producer state expires by its batches' timestamps.
            timestamp: now_ms,
            key: None,
            value: Some(Bytes::from(format!("{tag}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
    buf.freeze()
}

const NONE: i16 = 0;
const OUT_OF_ORDER: i16 = 45;
const INVALID_EPOCH: i16 = 47;
const INVALID_RECORD: i16 = 87;

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn values(bs: &str, topic: &str) -> Vec<String> {
    let all = rdk::consume_all(bs, topic, 1, rdk::TIMEOUT);
    all[&0]
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect()
}

#[test]
fn sequence_checks_answer_with_kafkas_codes() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("idem");
    rdk::create_topic(&bs, &topic, 1);
    let mut w = Wire::connect(broker.addr());

    let a = w.init_producer_id(None);
    assert_eq!(a.error_code, NONE);
    assert_eq!(a.producer_epoch, 0);
    let b = w.init_producer_id(None);
    assert_ne!(a.producer_id, b.producer_id, "producer ids must not repeat");
    let t = w.init_producer_id(Some("txn-1"));
    assert_eq!(
        t.error_code,
        code(ResponseError::TransactionalIdAuthorizationFailed)
    );
    let pid = a.producer_id.0;

    assert_eq!(w.produce(&topic, batch(pid, 0, 0, 3, "a")), (NONE, 0));
    assert_eq!(w.produce(&topic, batch(pid, 0, 3, 2, "b")), (NONE, 3));
    // Retries of either batch: the original offsets, nothing written.
    assert_eq!(w.produce(&topic, batch(pid, 0, 0, 3, "a")), (NONE, 0));
    assert_eq!(w.produce(&topic, batch(pid, 0, 3, 2, "b")), (NONE, 3));
    // A gap.
    assert_eq!(
        w.produce(&topic, batch(pid, 0, 10, 1, "gap")).0,
        OUT_OF_ORDER
    );
    // An epoch bump restarts at 0; the old epoch is then stale; a new epoch
    // that does not start at 0 is out of order.
    assert_eq!(w.produce(&topic, batch(pid, 1, 0, 1, "c")), (NONE, 5));
    assert_eq!(
        w.produce(&topic, batch(pid, 0, 5, 1, "stale")).0,
        INVALID_EPOCH
    );
    assert_eq!(
        w.produce(&topic, batch(pid, 2, 7, 1, "bad-epoch-start")).0,
        OUT_OF_ORDER
    );
    // A producer id the broker has no state for (as after expiry): accepted
    // at any sequence, as Kafka does since KIP-360.
    assert_eq!(
        w.produce(&topic, batch(b.producer_id.0, 0, 42, 1, "d")),
        (NONE, 6)
    );
    // Sequences wrap from i32::MAX to 0.
    let wrap = w.init_producer_id(None).producer_id.0;
    assert_eq!(
        w.produce(&topic, batch(wrap, 0, i32::MAX - 1, 2, "e")),
        (NONE, 7)
    );
    assert_eq!(w.produce(&topic, batch(wrap, 0, 0, 1, "f")), (NONE, 9));
    // A producer id without a sequence, and two batches for one partition.
    assert_eq!(
        w.produce(&topic, batch(pid, 1, -1, 1, "noseq")).0,
        INVALID_RECORD
    );
    let mut two = BytesMut::from(&batch(-1, -1, -1, 1, "x")[..]);
    two.extend_from_slice(&batch(-1, -1, -1, 1, "y"));
    assert_eq!(w.produce(&topic, two.freeze()).0, INVALID_RECORD);
    // The connection survived all of that, and the log holds each batch once.
    assert_eq!(w.produce(&topic, batch(-1, -1, -1, 1, "plain")), (NONE, 10));
    let got = values(&bs, &topic);
    let want: Vec<String> = [
        "a-0", "a-1", "a-2", "b-0", "b-1", "c-0", "d-0", "e-0", "e-1", "f-0", "plain-0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
}

/// The lines the broker logged about rebuilding producer state from the log.
fn rebuild_lines(broker: &Broker, run_marker: usize) -> Vec<String> {
    broker
        .logs()
        .lines()
        .skip(run_marker)
        .filter(|l| l.contains("rebuilt producer state from the log"))
        .map(str::to_string)
        .collect()
}

fn field(line: &str, name: &str) -> i64 {
    let at = line
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("{name} in {line}"));
    line[at + name.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn last_segment_base(dir: &std::path::Path) -> i64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .max()
        .unwrap()
}

fn snapshot_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect();
    v.sort();
    v
}

#[test]
fn producer_state_survives_restarts_through_snapshots_and_the_log() {
    // Small segments: many rolls, each leaving a snapshot.
    let mut broker = Broker::start(&["log.segment.bytes=4096"]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("idem-restart");
    rdk::create_topic(&bs, &topic, 1);
    let dir = broker.data_dir().join(format!("{topic}-0"));
    let mut w = Wire::connect(broker.addr());
    let pid = w.init_producer_id(None).producer_id.0;
    let mut seq = 0;
    let mut next_offset = 0;
    // ~200 batches of 5 records: dozens of segments.
    for i in 0..200 {
        let (c, off) = w.produce(&topic, batch(pid, 0, seq, 5, &format!("r{i}")));
        assert_eq!((c, off), (NONE, next_offset));
        seq += 5;
        next_offset += 5;
    }
    let last = |seq: i32| batch(pid, 0, seq - 5, 5, "r199");
    let segments = common::log_segments(&dir);
    assert!(segments > 5, "expected many segments, got {segments}");
    assert!(
        snapshot_files(&dir).len() >= segments - 1,
        "a snapshot per roll: {:?}",
        snapshot_files(&dir)
    );

    // 1. Clean restart: the snapshot at the log end is read, no batch is.
    assert!(broker.terminate().success());
    let marker = broker.logs().lines().count();
    broker.restart();
    let mut w = Wire::connect(broker.addr());
    assert_eq!(
        w.produce(&topic, last(seq)),
        (NONE, next_offset - 5),
        "duplicate after a clean restart"
    );
    assert!(
        rebuild_lines(&broker, marker).is_empty(),
        "a clean start read the log: {}",
        broker.logs()
    );

    // 2. kill -9: only the batches after the newest snapshot (the active
    // segment) are read, not the whole log.
    let (c, off) = w.produce(&topic, batch(pid, 0, seq, 5, "r200"));
    assert_eq!((c, off), (NONE, next_offset));
    seq += 5;
    next_offset += 5;
    let marker = broker.logs().lines().count();
    broker.kill9();
    broker.restart();
    let mut w = Wire::connect(broker.addr());
    assert_eq!(
        w.produce(&topic, batch(pid, 0, seq - 5, 5, "r200")),
        (NONE, next_offset - 5),
        "duplicate after kill -9"
    );
    let lines = rebuild_lines(&broker, marker);
    assert_eq!(lines.len(), 1, "{}", broker.logs());
    let from = field(&lines[0], "from_offset");
    let last_base = last_segment_base(&dir);
    assert!(
        from >= last_base && last_base > 0,
        "kill -9 recovery read from offset {from}, before the last segment ({last_base})"
    );

    // 3. Every snapshot deleted: the whole log is read, with the same result.
    assert!(broker.terminate().success());
    for f in snapshot_files(&dir) {
        std::fs::remove_file(f).unwrap();
    }
    let marker = broker.logs().lines().count();
    broker.restart();
    let mut w = Wire::connect(broker.addr());
    assert_eq!(
        w.produce(&topic, batch(pid, 0, seq - 5, 5, "r200")),
        (NONE, next_offset - 5),
        "duplicate after a log scan"
    );
    assert_eq!(
        w.produce(&topic, batch(pid, 0, seq + 5, 1, "gap")).0,
        OUT_OF_ORDER
    );
    let lines = rebuild_lines(&broker, marker);
    assert_eq!(lines.len(), 1, "{}", broker.logs());
    assert_eq!(field(&lines[0], "from_offset"), 0);
    assert!(
        !snapshot_files(&dir).is_empty(),
        "the scan leaves a snapshot for next time"
    );

    // 4. A corrupt snapshot is set aside, not trusted.
    assert!(broker.terminate().success());
    let newest = snapshot_files(&dir).pop().unwrap();
    std::fs::write(&newest, b"\x00\x01garbage").unwrap();
    broker.restart();
    let mut w = Wire::connect(broker.addr());
    assert_eq!(
        w.produce(&topic, batch(pid, 0, seq - 5, 5, "r200")),
        (NONE, next_offset - 5),
        "duplicate after a corrupt snapshot"
    );
    assert_eq!(
        w.produce(&topic, batch(pid, 0, seq, 5, "r201")),
        (NONE, next_offset)
    );
    let got = values(&bs, &topic);
    assert_eq!(got.len() as i64, next_offset + 5, "each batch once");
}

/// Bytes in the segment files of `topic`'s partitions.
fn log_bytes(data: &std::path::Path, topic: &str) -> u64 {
    let prefix = format!("{topic}-");
    std::fs::read_dir(data)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten())
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// librdkafka's idempotent producer (acks=all, five requests in flight)
/// writes 100,000 records over 8 partitions while the broker is killed -9
/// and restarted twice: every record is acknowledged, and the log holds each
/// exactly once, in send order per partition.
#[test]
fn rdkafka_idempotent_producer_through_two_kill9s() {
    const PARTITIONS: i32 = 8;
    const RECORDS: usize = 100_000;
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("idem-kill");
    rdk::create_topic(&bs, &topic, PARTITIONS);
    let producer = rdk::producer(
        &bs,
        &[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("linger.ms", "2"),
            ("batch.num.messages", "500"),
            // Long enough to ride out two restarts.
            ("message.timeout.ms", "120000"),
            ("retry.backoff.ms", "50"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "500"),
        ],
    );
    let mut futures = Vec::with_capacity(RECORDS);
    let started = Instant::now();
    // Produce at a pace (~2 s for all of it) while another thread kills the
    // broker twice mid-stream, each time once the log has grown by a quarter
    // of what the run writes, so requests are in flight at each kill:
    // written but not answered, retried by the client after the restart.
    let data = broker.data_dir();
    let logged = || log_bytes(&data, &topic);
    let per_kill = RECORDS as u64 / 4 * 20; // ~20 bytes a record on disk, at least
    std::thread::scope(|s| {
        let killer = s.spawn(|| {
            for round in 1..=2 {
                let deadline = Instant::now() + Duration::from_secs(60);
                while logged() < round * per_kill && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                assert!(
                    logged() >= round * per_kill,
                    "the producer stalled before kill {round}"
                );
                broker.kill9();
                std::thread::sleep(Duration::from_millis(100));
                broker.restart();
            }
        });
        for i in 0..RECORDS {
            let p = (i % PARTITIONS as usize) as i32;
            let v = format!("{p}:{:08}", i / PARTITIONS as usize);
            futures.push(rdk::send(&producer, &topic, p, None, v.as_bytes()));
            if i % 250 == 249 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        killer.join().unwrap();
    });
    producer.flush(Duration::from_secs(180)).expect("flush");
    let mut acked: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (i, f) in futures.into_iter().enumerate() {
        let d = rdk::wait_delivery(f);
        let p = (i % PARTITIONS as usize) as i32;
        assert_eq!(d.partition, p);
        acked
            .entry(p)
            .or_default()
            .push((d.offset, format!("{p}:{:08}", i / PARTITIONS as usize)));
    }
    eprintln!(
        "produced {RECORDS} ({} log bytes) through two kill -9s in {:?}",
        log_bytes(&broker.data_dir(), &topic),
        started.elapsed()
    );
    let all = rdk::consume_all(&bs, &topic, PARTITIONS, Duration::from_secs(120));
    for p in 0..PARTITIONS {
        let got: Vec<String> = all[&p]
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
            .collect();
        let want: Vec<String> = (0..RECORDS / PARTITIONS as usize)
            .map(|i| format!("{p}:{i:08}"))
            .collect();
        if got != want {
            let dups = got.len() as i64 - want.len() as i64;
            let first_bad = got.iter().zip(&want).position(|(a, b)| a != b);
            panic!(
                "partition {p}: {} records for {} sent ({dups:+}); first difference at {first_bad:?}",
                got.len(),
                want.len()
            );
        }
        // The acknowledged offsets are where the records are.
        for (off, v) in &acked[&p] {
            assert_eq!(&got[*off as usize], v, "partition {p} offset {off}");
        }
    }
}
