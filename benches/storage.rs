//! Storage hot paths: batch validation (CRC32C), sparse index lookup, and
//! appends through the O_DIRECT appender.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::storage::appender::Appender;
use sluice::storage::format::{self, BatchHeader};
use sluice::storage::index::SegmentIndex;

/// A batch of `n` records of `size` bytes, encoded by the client (kafka-protocol).
fn batch(n: usize, size: usize) -> Vec<u8> {
    let value = bytes::Bytes::from(vec![b'x'; size]);
    let records: Vec<_> = (0..n).map(|_| (None, Some(value.clone()))).collect();
    sluice::client::records::encode_batch(&records, 1_700_000_000_000)
        .unwrap()
        .to_vec()
}

fn validate(c: &mut Criterion) {
    let b = batch(1000, 1024);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(b.len() as u64));
    g.bench_function("validate_1MiB_crc32c", |x| {
        x.iter(|| format::validate_batch(std::hint::black_box(&b)).unwrap())
    });
    g.finish();
}

fn index_lookup(c: &mut Criterion) {
    // A full 1 GiB segment of 16 KiB batches: 65,536 batches, ~16k index entries.
    let mut idx = SegmentIndex::new(0);
    for i in 0..65_536i64 {
        let h = BatchHeader {
            base_offset: i * 16,
            size_bytes: 16 << 10,
            leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: 15,
            base_timestamp: i,
            max_timestamp: i,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: 16,
        };
        idx.on_batch(&h, (i as u64) << 14, 4096);
    }
    let mut off = 0i64;
    c.bench_function("index/position_for_1GiB_segment", |x| {
        x.iter(|| {
            off = (off + 7919) % (65_536 * 16);
            idx.position_for(std::hint::black_box(off))
        })
    });
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.log");
    let b = batch(64, 1024); // ~66 KiB per append
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Bytes(b.len() as u64));
    g.sample_size(30);
    // One executor for the whole measurement; each iteration is one append,
    // i.e. one DMA write of the partial tail block plus the new bytes.
    g.bench_function("append_64KiB_dma", |x| {
        x.iter_custom(|iters| {
            sluice::shard::block_on(async {
                let _ = std::fs::remove_file(&path);
                let files = sluice::storage::files::OpenFiles::new(64);
                let mut a = Appender::open(&files, &path, 0).await.unwrap();
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    a.append(&b).await.unwrap();
                }
                let t = start.elapsed();
                a.close().await.unwrap();
                t
            })
        })
    });
    g.finish();
}

/// What idempotence adds to an append: the sequence check against the
/// producer's state and the state update, per batch (100 producers spread
/// over the partition, as many clients would be).
fn producer_state(c: &mut Criterion) {
    use sluice::storage::producer_state::{Checked, ProducerStates};
    let mut states = ProducerStates::default();
    let mut h = format::parse_header(&batch(16, 1024)).unwrap();
    h.producer_epoch = 0;
    h.last_offset_delta = 15;
    let mut seq = vec![0i32; 100];
    let mut offset = 0i64;
    let mut g = c.benchmark_group("producer_state");
    g.throughput(Throughput::Elements(1));
    g.bench_function("check_and_apply_per_batch", |x| {
        x.iter(|| {
            let pid = offset / 16 % 100;
            h.producer_id = pid;
            h.base_sequence = seq[pid as usize];
            h.base_offset = offset;
            match states.check(std::slice::from_ref(&h)).unwrap() {
                Checked::Append(u) => states.apply(u),
                Checked::Duplicate(_) => unreachable!(),
            }
            seq[pid as usize] = format::increment_sequence(seq[pid as usize], 16);
            offset += 16;
        })
    });
    g.finish();
}

criterion_group!(benches, validate, index_lookup, append, producer_state);
criterion_main!(benches);
