//! Protocol and runtime hot paths: record-batch encoding (the load
//! generator's builder and the kafka-protocol encoder the client uses),
//! produce request decoding, fetch response encoding (zero-copy placeholders),
//! and a cross-shard round trip.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchResponse, ProduceRequest, RequestHeader, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice::bench::batch::BatchBuilder;
use sluice::bench::workload::Compression;
use sluice::protocol::{request, response};
use sluice::storage::Chunk;

const RECORDS: usize = 1000;
const VALUE_BYTES: usize = 1024;

fn batch_encode(c: &mut Criterion) {
    let value = vec![b'x'; VALUE_BYTES];
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes((RECORDS * VALUE_BYTES) as u64));
    let mut spare = Some(BytesMut::new());
    let mut b = BatchBuilder::default();
    g.bench_function("encode_1000x1KiB_bench_builder", |x| {
        x.iter(|| {
            for i in 0..RECORDS {
                b.append(1_700_000_000_000 + i as i64, None, &value);
            }
            let out = b
                .finish(Compression::None, spare.take().unwrap_or_default())
                .unwrap();
            // Recycle like the producer does once the request is encoded.
            spare = out.try_into_mut().ok();
        })
    });
    let vb = Bytes::from(value.clone());
    let records: Vec<_> = (0..RECORDS).map(|_| (None, Some(vb.clone()))).collect();
    g.bench_function("encode_1000x1KiB_kafka_protocol", |x| {
        x.iter(|| sluice::client::records::encode_batch(&records, 1_700_000_000_000).unwrap())
    });
    g.finish();
}

fn one_batch() -> Bytes {
    let mut b = BatchBuilder::default();
    for _ in 0..64 {
        b.append(1_700_000_000_000, None, &[b'y'; VALUE_BYTES]);
    }
    b.finish(Compression::None, BytesMut::new()).unwrap()
}

fn produce_decode(c: &mut Criterion) {
    // 16 partitions × one 64 KiB batch, as a client's request frame.
    let batch = one_batch();
    let version = 9;
    let parts = (0..16)
        .map(|p| {
            PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(batch.clone()))
        })
        .collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench")))
            .with_partition_data(parts)]);
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .encode(&mut frame, ApiKey::Produce.request_header_version(version))
        .unwrap();
    req.encode(&mut frame, version).unwrap();
    let frame = frame.freeze();
    let mut g = c.benchmark_group("produce_request");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("decode_16x64KiB", |x| {
        x.iter(|| {
            let mut p = request::parse_header(frame.clone()).unwrap();
            request::decode_body(&mut p).unwrap()
        })
    });
    g.finish();
}

fn fetch_encode(c: &mut Criterion) {
    // 16 partitions of 64 KiB from memory: the records are not copied.
    let batch = one_batch();
    let version = 12;
    let parts: Vec<PartitionData> = (0..16)
        .map(|p| {
            PartitionData::default()
                .with_partition_index(p)
                .with_high_watermark(1_000)
                .with_records(Some(response::records_placeholder(batch.len())))
        })
        .collect();
    let body = ResponseKind::Fetch(FetchResponse::default().with_responses(vec![
        FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("bench")))
            .with_partitions(parts),
    ]));
    let mut g = c.benchmark_group("fetch_response");
    g.throughput(Throughput::Bytes((16 * batch.len()) as u64));
    g.bench_function("encode_16x64KiB_zero_copy", |x| {
        x.iter(|| {
            let chunks: VecDeque<Vec<Chunk>> =
                (0..16).map(|_| vec![Chunk::Mem(batch.clone())]).collect();
            response::encode(ApiKey::Fetch, version, 7, &body, chunks).unwrap()
        })
    });
    g.finish();
}

fn cross_shard(c: &mut Criterion) {
    let mut g = c.benchmark_group("shard");
    g.sample_size(20);
    g.bench_function("submit_to_round_trip", |x| {
        x.iter_custom(|iters| {
            let took = Arc::new(Mutex::new(Duration::ZERO));
            let out = took.clone();
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let cfg = sluice::shard::RuntimeConfig {
                cpus: sluice::shard::available_cpus(),
                pin: true,
                nr_shards: 2,
                cross_shard_queue_depth: 64,
                io_memory_bytes: 1 << 20,
                sched_slice_us: None,
            };
            sluice::shard::run(cfg, move |id| {
                let (out, done) = (out.clone(), done.clone());
                async move {
                    use std::sync::atomic::Ordering::Relaxed;
                    if id != 0 {
                        // A shard serves calls only while its main runs.
                        while !done.load(Relaxed) {
                            sluice::shard::sleep(Duration::from_millis(1)).await;
                        }
                        return;
                    }
                    let start = Instant::now();
                    for i in 0..iters {
                        let v = sluice::shard::submit_to(1, move || async move { i + 1 })
                            .await
                            .unwrap();
                        std::hint::black_box(v);
                    }
                    *out.lock().unwrap() = start.elapsed();
                    done.store(true, Relaxed);
                }
            })
            .unwrap();
            let d = *took.lock().unwrap();
            d
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    batch_encode,
    produce_decode,
    fetch_encode,
    cross_shard
);
criterion_main!(benches);
