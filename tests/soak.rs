//! Sustained load from a client nobody here wrote: librdkafka (rdkafka
//! crate) producing at its maximum rate to a two-shard broker for a minute
//! with acks=1, then a minute with acks=all, while a consumer reads along.
//! Fails on any abort or panic of the broker and on any acknowledged record
//! missing from the log. (A glommio waker freed on a foreign thread once
//! aborted the broker only after tens of seconds of such load.)
//!
//! SLUICE_SOAK_SECONDS shortens the phases for a quick local run.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{rdk, Broker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

const PARTITIONS: i32 = 8;
const VALUE_BYTES: usize = 200;

fn phase() -> Duration {
    let s = std::env::var("SLUICE_SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(s)
}

/// Acknowledged sequence numbers per partition (value = "p:seq:padding").
#[derive(Default)]
struct Acked {
    seqs: Mutex<BTreeMap<i32, Vec<u64>>>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

struct Ctx(Arc<Acked>);
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(m) => {
                let (p, seq) = parse(m.payload().unwrap());
                self.0.seqs.lock().unwrap().entry(p).or_default().push(seq);
            }
            Err((e, _)) => {
                self.0.errors.fetch_add(1, Ordering::Relaxed);
                self.0
                    .first_error
                    .lock()
                    .unwrap()
                    .get_or_insert(e.to_string());
            }
        }
    }
}

fn value(p: i32, seq: u64) -> Vec<u8> {
    let mut v = format!("{p}:{seq}:").into_bytes();
    v.resize(VALUE_BYTES, b'x');
    v
}

fn parse(v: &[u8]) -> (i32, u64) {
    let s = std::str::from_utf8(v).unwrap();
    let mut it = s.split(':');
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

/// Reads every partition from the start until `stop`, then to the end;
/// returns the sequence numbers seen per partition.
fn consume_along(bs: String, topic: String, stop: Arc<AtomicBool>) -> BTreeMap<i32, Vec<u64>> {
    let c: BaseConsumer = rdk::config(
        &bs,
        &[
            ("group.id", "soak-unused"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "error"),
            ("fetch.max.bytes", "4000000"),
            // librdkafka postpones a partition's next fetch by this much once
            // its local queue is over queued.max.messages.kbytes (64 MB).
            // When the broker fills that faster than this debug-built loop
            // empties it, the default 1 s pause caps the loop far below the
            // producer's rate and it never catches up (seen: 1 s gaps after
            // every ~40 MB in the broker's fetch log, catch-up 20-40 s instead
            // of 2). librdkafka's documentation says to lower it then.
            ("fetch.queue.backoff.ms", "10"),
        ],
    )
    .create()
    .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut seen: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut end: Option<(BTreeMap<i32, i64>, Instant)> = None;
    loop {
        if stop.load(Ordering::SeqCst) && end.is_none() {
            let ends = (0..PARTITIONS)
                .map(|p| (p, c.fetch_watermarks(&topic, p, rdk::TIMEOUT).unwrap().1))
                .collect();
            end = Some((ends, Instant::now() + Duration::from_secs(120)));
        }
        if let Some((ends, deadline)) = &end {
            if ends.iter().all(|(p, e)| next[p] >= *e) {
                return seen;
            }
            assert!(
                Instant::now() < *deadline,
                "consumer stuck at {next:?}, end {ends:?}"
            );
        }
        match c.poll(Duration::from_millis(100)) {
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => panic!("consume error: {e}"),
            Some(Ok(m)) => {
                let (p, seq) = parse(m.payload().unwrap());
                assert_eq!(p, m.partition(), "record in the wrong partition");
                assert_eq!(m.offset(), next[&p], "partition {p}: offsets skip");
                *next.get_mut(&p).unwrap() = m.offset() + 1;
                seen.entry(p).or_default().push(seq);
            }
        }
    }
}

fn soak(broker: &mut Broker, acks: &str) {
    let bs = broker.bootstrap();
    let topic = common::unique_topic(&format!("soak-acks-{acks}"));
    rdk::create_topic(&bs, &topic, PARTITIONS);
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (bs, topic, stop) = (bs.clone(), topic.clone(), stop.clone());
        std::thread::spawn(move || consume_along(bs, topic, stop))
    };
    let acked = Arc::new(Acked::default());
    let producer: BaseProducer<Ctx> = rdk::config(
        &bs,
        &[
            ("acks", acks),
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("queue.buffering.max.messages", "200000"),
            ("message.timeout.ms", "60000"),
        ],
    )
    .create_with_context(Ctx(acked.clone()))
    .unwrap();
    let mut seq = vec![0u64; PARTITIONS as usize];
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < phase() {
        let p = (sent % PARTITIONS as u64) as i32;
        let v = value(p, seq[p as usize]);
        match producer.send(BaseRecord::<(), [u8]>::to(&topic).partition(p).payload(&v)) {
            Ok(()) => {
                seq[p as usize] += 1;
                sent += 1;
            }
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                _,
            )) => {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("enqueue: {e}"),
        }
        if sent.is_multiple_of(1000) {
            producer.poll(Duration::ZERO);
            assert!(
                broker.is_running(),
                "broker died during acks={acks} load:\n{}",
                broker.logs()
            );
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let seen = consumer.join().expect("consumer thread");
    let caught_up = started.elapsed() - elapsed;
    assert!(
        broker.is_running(),
        "broker died during acks={acks} load:\n{}",
        broker.logs()
    );
    let errors = acked.errors.load(Ordering::Relaxed);
    assert_eq!(
        errors,
        0,
        "delivery errors, first: {:?}",
        acked.first_error.lock().unwrap()
    );
    let acked = acked.seqs.lock().unwrap();
    let total: usize = acked.values().map(Vec::len).sum();
    assert_eq!(total as u64, sent, "every record sent was acknowledged");
    for p in 0..PARTITIONS {
        let mut want = acked.get(&p).cloned().unwrap_or_default();
        want.sort_unstable();
        let got = seen.get(&p).cloned().unwrap_or_default();
        // Nothing acknowledged is missing, nothing is there twice, order kept.
        assert_eq!(
            got, want,
            "partition {p}: log differs from what was acknowledged"
        );
    }
    eprintln!(
        "acks={acks}: {sent} records of {VALUE_BYTES} B in {elapsed:.1?} ({:.0} records/s), all read back {caught_up:.1?} later",
        sent as f64 / elapsed.as_secs_f64()
    );
    // A minute at full speed is a few GB: give the disk back before the next.
    use rdkafka::admin::{AdminClient, AdminOptions};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdk::config(&bs, &[]).create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(rdk::TIMEOUT));
    for r in futures::executor::block_on(admin.delete_topics(&[&topic], &opts)).unwrap() {
        r.unwrap_or_else(|(t, e)| panic!("delete {t}: {e:?}"));
    }
}

#[test]
fn librdkafka_at_max_rate_acks_1_then_all_with_a_consumer() {
    let mut broker = Broker::start_with_cores(2, &[]);
    soak(&mut broker, "1");
    soak(&mut broker, "all");
    let log = broker.logs();
    for bad in ["panicked", "double free", "SIGABRT", "shard failed"] {
        assert!(!log.contains(bad), "broker log shows {bad:?}:\n{log}");
    }
    let status = broker.terminate();
    assert!(status.success(), "broker exit after soak: {status}");
}
