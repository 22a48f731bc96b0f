//! The comparison client for `perf/run`: the same produce-then-read load as a
//! `sluice bench` run, driven by librdkafka (rdkafka crate, BaseProducer with
//! a delivery callback, BaseConsumer with assign). Prints one JSON line.
//!
//! cargo run --release --example rdkafka_load -- BOOTSTRAP [--duration-s S]
//!   [--size B] [--partitions P] [--acks all|1] [--rate MSG_PER_S] [--linger-ms MS]
//!   [--batch-bytes B] [--backlog-bytes B] [--idempotence true|false]
//!
//! At a fixed rate, latency is measured from each message's intended send
//! time, like sluice bench. `--backlog-bytes` produces that much first and
//! then times a catch-up read of it.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

struct Ctx {
    start: Instant,
    hist: std::sync::Mutex<Histogram<u64>>,
    errors: std::sync::atomic::AtomicU64,
    acked: std::sync::atomic::AtomicU64,
}
impl ClientContext for Ctx {}
impl ProducerContext for Ctx {
    /// Intended send time, ns since `start`.
    type DeliveryOpaque = Box<u64>;
    fn delivery(&self, r: &DeliveryResult<'_>, intended_ns: Box<u64>) {
        use std::sync::atomic::Ordering::Relaxed;
        match r {
            Ok(_) => {
                let now = self.start.elapsed().as_nanos() as u64;
                let us = now.saturating_sub(*intended_ns) / 1000;
                self.hist.lock().unwrap().saturating_record(us.max(1));
                self.acked.fetch_add(1, Relaxed);
            }
            Err(_) => {
                self.errors.fetch_add(1, Relaxed);
            }
        }
    }
}

fn cpu_s() -> f64 {
    sluice::bench::cpu::client_cpu_s()
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("bad value for {name}")))
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args
        .get(1)
        .expect("usage: rdkafka_load BOOTSTRAP [options]")
        .clone();
    let duration_s: f64 = arg(&args, "--duration-s", 15.0);
    let size: usize = arg(&args, "--size", 1024);
    let partitions: i32 = arg(&args, "--partitions", 16);
    let acks: String = arg(&args, "--acks", "all".to_string());
    let rate: f64 = arg(&args, "--rate", 0.0);
    let linger_ms: u64 = arg(&args, "--linger-ms", 1);
    let batch_bytes: usize = arg(&args, "--batch-bytes", 128 << 10);
    let backlog_bytes: u64 = arg(&args, "--backlog-bytes", 0);
    let idempotence: bool = arg(&args, "--idempotence", false);

    let topic = format!(
        "rdkafka-load-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut admin = sluice::client::Client::connect(&bootstrap).expect("connect");
    admin
        .create_topics(&topic, partitions, -1, vec![])
        .expect("create topic");
    std::thread::sleep(Duration::from_millis(500));

    let ctx = Ctx {
        start: Instant::now(),
        hist: std::sync::Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap()),
        errors: Default::default(),
        acked: Default::default(),
    };
    let producer: BaseProducer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", &acks)
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", batch_bytes.to_string())
        .set("queue.buffering.max.kbytes", (32 << 10).to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("max.in.flight.requests.per.connection", "5")
        .set("enable.idempotence", idempotence.to_string())
        .set("message.timeout.ms", "30000")
        .create_with_context(ctx)
        .expect("producer");
    let payload = vec![0x5au8; size];
    let cpu0 = cpu_s();
    let start = producer.context().start;
    let t0 = Instant::now();
    let mut sent: u64 = 0;
    let interval_ns = if rate > 0.0 { 1e9 / rate } else { 0.0 };
    let produce_until = t0 + Duration::from_secs_f64(duration_s);
    loop {
        let now = Instant::now();
        if backlog_bytes > 0 {
            if sent * size as u64 >= backlog_bytes {
                break;
            }
        } else if now >= produce_until {
            break;
        }
        let intended = if interval_ns > 0.0 {
            let due = t0 + Duration::from_nanos((sent as f64 * interval_ns) as u64);
            if due > now {
                producer.poll(Duration::ZERO);
                std::thread::sleep((due - now).min(Duration::from_millis(1)));
                continue;
            }
            due
        } else {
            now
        };
        let opaque = Box::new((intended - start).as_nanos() as u64);
        let p = (sent % partitions as u64) as i32;
        let mut rec = BaseRecord::with_opaque_to(&topic, opaque)
            .payload(&payload[..])
            .partition(p);
        loop {
            match producer.send::<(), [u8]>(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(_), r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
        sent += 1;
        if sent.is_multiple_of(1000) {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    let produce_s = t0.elapsed().as_secs_f64();
    let produce_cpu = cpu_s() - cpu0;
    let ctx = producer.context();
    let acked = ctx.acked.load(std::sync::atomic::Ordering::Relaxed);
    let h = ctx.hist.lock().unwrap().clone();

    // Read everything back (catch-up read when a backlog was asked for).
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "rdkafka-load")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", (50 << 20).to_string())
        .set("max.partition.fetch.bytes", (1 << 20).to_string())
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let cpu1 = cpu_s();
    let c0 = Instant::now();
    let mut got: u64 = 0;
    let mut bytes: u64 = 0;
    while got < acked && c0.elapsed() < Duration::from_secs(300) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            got += 1;
            bytes += m.payload().map_or(0, |p| p.len() as u64);
        }
    }
    let consume_s = c0.elapsed().as_secs_f64();
    let consume_cpu = cpu_s() - cpu1;
    let _ = admin.delete_topics(vec![topic]);
    let q = |p: f64| h.value_at_percentile(p);
    println!(
        "{{\"client\":\"librdkafka {}\",\"acks\":\"{acks}\",\"rate\":{rate},\"produced\":{acked},\"errors\":{},\
         \"produce_s\":{produce_s:.3},\"produce_mb_per_s\":{:.1},\"produce_msgs_per_s\":{:.0},\"produce_cpu_s\":{produce_cpu:.2},\
         \"publish_us\":{{\"p50\":{},\"p99\":{},\"p99.9\":{},\"max\":{}}},\
         \"consumed\":{got},\"consume_s\":{consume_s:.3},\"consume_mb_per_s\":{:.1},\"consume_cpu_s\":{consume_cpu:.2}}}",
        rdkafka::util::get_rdkafka_version().1,
        ctx.errors.load(std::sync::atomic::Ordering::Relaxed),
        acked as f64 * size as f64 / 1e6 / produce_s,
        acked as f64 / produce_s,
        q(50.0),
        q(99.0),
        q(99.9),
        h.max(),
        bytes as f64 / 1e6 / consume_s,
    );
}
