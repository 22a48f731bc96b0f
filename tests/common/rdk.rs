//! rdkafka (librdkafka, built from source by rdkafka-sys) helpers shared by the
//! rdkafka and crash-recovery tests. No consumer groups: the broker has no
//! group coordinator yet, so consumers use `assign` with explicit offsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A consumed (or acknowledged) record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

pub fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        // Fail fast instead of retrying forever against a broken broker.
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        config(bootstrap, &[]).create().expect("admin client");
    let opts = AdminOptions::new()
        .operation_timeout(Some(TIMEOUT))
        .request_timeout(Some(TIMEOUT));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = block_on(admin.create_topics([&new], &opts)).expect("CreateTopics request");
    for r in results {
        if let Err((name, code)) = r {
            panic!("creating topic {name}: {code:?}");
        }
    }
    // Metadata may lag creation by a moment (leader election in Kafka); wait
    // until all partitions are visible so producers don't race it.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5));
        if let Ok(md) = md {
            if md.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
            }) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} not visible in metadata after creation"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// acks=all producer; `extra` overrides/adds settings (compression etc.).
pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = config(bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().unwrap_or_else(|e| {
        // rdkafka-sys only compiles libzstd in with the `zstd` feature.
        let hint = if e.to_string().contains("zstd") {
            " (enable the `zstd` feature of the rdkafka dev-dependency)"
        } else {
            ""
        };
        panic!("creating producer with {extra:?}: {e}{hint}")
    })
}

/// Enqueue one record, waiting while librdkafka's local queue is full.
pub fn send(
    p: &FutureProducer,
    topic: &str,
    partition: i32,
    key: Option<&[u8]>,
    value: &[u8],
) -> DeliveryFuture {
    let mut rec = FutureRecord::<[u8], [u8]>::to(topic)
        .partition(partition)
        .payload(value);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    loop {
        match p.send_result(rec) {
            Ok(f) => return f,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("enqueue to {topic}/{partition}: {e}"),
        }
    }
}

/// Wait for a delivery report; panics on a delivery error.
pub fn wait_delivery(f: DeliveryFuture) -> Delivery {
    match block_on(f) {
        Ok(Ok(d)) => d,
        Ok(Err((e, m))) => panic!("delivery failed for {}/{}: {e}", m.topic(), m.partition()),
        Err(_) => panic!("producer dropped the delivery future"),
    }
}

pub fn consumer(bootstrap: &str) -> BaseConsumer {
    config(
        bootstrap,
        &[
            // librdkafka insists on a group.id for consumers even when only
            // assign() is used; with auto commit off it never talks to a
            // group coordinator.
            ("group.id", "sluice-test-unused"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "error"),
        ],
    )
    .create()
    .expect("consumer")
}

/// (low, high) watermarks of one partition.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    consumer(bootstrap)
        .fetch_watermarks(topic, partition, TIMEOUT)
        .expect("ListOffsets")
}

/// Read every partition in `parts` from `from` up to (excluding) the given end
/// offset. Panics on errors or if the end is not reached within `timeout`.
pub fn consume_range(
    bootstrap: &str,
    topic: &str,
    parts: &BTreeMap<i32, (i64, i64)>,
    timeout: Duration,
) -> BTreeMap<i32, Vec<Rec>> {
    let c = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for (&p, &(from, _)) in parts {
        tpl.add_partition_offset(topic, p, Offset::Offset(from))
            .unwrap();
    }
    c.assign(&tpl).expect("assign");
    let mut out: BTreeMap<i32, Vec<Rec>> = parts.keys().map(|&p| (p, Vec::new())).collect();
    let mut next: BTreeMap<i32, i64> = parts.iter().map(|(&p, &(from, _))| (p, from)).collect();
    let done = |next: &BTreeMap<i32, i64>| parts.iter().all(|(p, &(_, end))| next[p] >= end);
    let deadline = Instant::now() + timeout;
    while !done(&next) {
        assert!(
            Instant::now() < deadline,
            "consume timed out; position {next:?}, wanted {parts:?}"
        );
        let m = match c.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Ok(m)) => m,
            Some(Err(KafkaError::PartitionEOF(_))) => continue,
            Some(Err(e)) => panic!("consume error: {e}"),
        };
        let p = m.partition();
        let Some(&(_, end)) = parts.get(&p) else {
            panic!("record from unassigned partition {p}")
        };
        if m.offset() >= end {
            continue; // produced after we took the snapshot
        }
        out.get_mut(&p).unwrap().push(Rec {
            partition: p,
            offset: m.offset(),
            key: m.key().map(|k| k.to_vec()),
            value: m.payload().map(|v| v.to_vec()),
        });
        *next.get_mut(&p).unwrap() = m.offset() + 1;
    }
    out
}

/// Read partitions 0..n from the beginning up to their current high watermark.
pub fn consume_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> BTreeMap<i32, Vec<Rec>> {
    let parts = (0..partitions)
        .map(|p| {
            let (low, high) = watermarks(bootstrap, topic, p);
            (p, (low, high))
        })
        .collect();
    consume_range(bootstrap, topic, &parts, timeout)
}
