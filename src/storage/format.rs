//! Every on-disk format in one place: record batch (magic v2) headers, offset
//! and time index entries, file names, and the small checkpoint/metadata files.
//! Each format has a round-trip test at the bottom of this file.

use std::path::{Path, PathBuf};

// ---- record batch, magic v2 (also the wire format) ----

pub const BASE_OFFSET_AT: usize = 0;
pub const BATCH_LENGTH_AT: usize = 8;
pub const LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const BASE_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORDS_COUNT_AT: usize = 57;
/// Size of the fixed header; a batch is at least this long.
pub const BATCH_HEADER_BYTES: usize = 61;
/// baseOffset + batchLength: the part not counted by batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Attribute bit: timestamps are LogAppendTime (set by the broker).
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;
/// Producer id of a batch written without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// Sequence of a batch written without idempotence.
pub const NO_SEQUENCE: i32 = -1;

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().unwrap())
}

/// What a batch header says, read without touching the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Total bytes of the batch including the 12-byte log overhead.
    pub size_bytes: usize,
    pub leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    /// -1 unless the batch comes from an idempotent producer.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Sequence of the batch's last record: sequences wrap from i32::MAX to 0
    /// (Kafka's DefaultRecordBatch.incrementSequence).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("truncated batch: {have} bytes, need {need}")]
    Truncated { have: usize, need: usize },
    #[error("invalid batch length {0}")]
    BadLength(i32),
    #[error("unsupported magic {0} (only v2 record batches are accepted)")]
    BadMagic(i8),
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("inconsistent batch: {0}")]
    Inconsistent(&'static str),
}

/// Parse the header of the batch at the start of `buf`. Needs only the first 61
/// bytes; does not check the CRC.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < BATCH_HEADER_BYTES {
        return Err(BatchError::Truncated {
            have: buf.len(),
            need: BATCH_HEADER_BYTES,
        });
    }
    let batch_length = be_i32(buf, BATCH_LENGTH_AT);
    if batch_length < (BATCH_HEADER_BYTES - LOG_OVERHEAD) as i32 {
        return Err(BatchError::BadLength(batch_length));
    }
    let magic = buf[MAGIC_AT] as i8;
    if magic != 2 {
        return Err(BatchError::BadMagic(magic));
    }
    Ok(BatchHeader {
        base_offset: be_i64(buf, BASE_OFFSET_AT),
        size_bytes: batch_length as usize + LOG_OVERHEAD,
        leader_epoch: be_i32(buf, LEADER_EPOCH_AT),
        magic,
        crc: u32::from_be_bytes(buf[CRC_AT..CRC_AT + 4].try_into().unwrap()),
        attributes: be_i16(buf, ATTRIBUTES_AT),
        last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_AT),
        base_timestamp: be_i64(buf, BASE_TIMESTAMP_AT),
        max_timestamp: be_i64(buf, MAX_TIMESTAMP_AT),
        producer_id: be_i64(buf, PRODUCER_ID_AT),
        producer_epoch: be_i16(buf, PRODUCER_EPOCH_AT),
        base_sequence: be_i32(buf, BASE_SEQUENCE_AT),
        records_count: be_i32(buf, RECORDS_COUNT_AT),
    })
}

/// `sequence + increment`, wrapping past i32::MAX to 0 as Kafka does.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    debug_assert!(sequence >= 0 && increment >= 0);
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// `sequence - decrement`, wrapping below 0 to i32::MAX as Kafka does.
pub fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    debug_assert!(sequence >= 0 && decrement >= 0);
    if sequence < decrement {
        i32::MAX - (decrement - sequence) + 1
    } else {
        sequence - decrement
    }
}

/// Parse and fully validate one batch at the start of `buf` (length, magic,
/// CRC32C over attributes..end).
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = parse_header(buf)?;
    if buf.len() < h.size_bytes {
        return Err(BatchError::Truncated {
            have: buf.len(),
            need: h.size_bytes,
        });
    }
    let computed = crc32c::crc32c(&buf[ATTRIBUTES_AT..h.size_bytes]);
    if computed != h.crc {
        return Err(BatchError::Crc {
            stored: h.crc,
            computed,
        });
    }
    if h.records_count < 0 || h.last_offset_delta < 0 {
        return Err(BatchError::Inconsistent(
            "negative record count or offset delta",
        ));
    }
    Ok(h)
}

/// Walk every batch in `buf`, validating each; the slices tile `buf` exactly.
pub fn split_batches(buf: &[u8]) -> Result<Vec<(BatchHeader, std::ops::Range<usize>)>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let h = validate_batch(&buf[at..])?;
        out.push((h, at..at + h.size_bytes));
        at += h.size_bytes;
    }
    Ok(out)
}

/// (leader epoch, base offset) of each whole batch in `buf` whose epoch is
/// newer than `latest` and every batch's before it: where the epochs it
/// brings start. Headers only (no CRC check); it stops at the first that
/// does not parse or is cut short, which the append's own checks report.
pub fn epoch_starts(buf: &[u8], mut latest: i32) -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(h) = parse_header(&buf[at..]) {
        if h.size_bytes > buf.len() - at {
            break;
        }
        if h.leader_epoch > latest {
            latest = h.leader_epoch;
            out.push((h.leader_epoch, h.base_offset));
        }
        at += h.size_bytes;
    }
    out
}

/// Stamp the broker-assigned base offset and leader epoch (neither is covered by
/// the CRC, so the client's CRC stays valid).
pub fn stamp_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Switch a batch to LogAppendTime with `now_ms` as its max timestamp, and fix the
/// CRC (the attributes and timestamp are covered by it).
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attrs = be_i16(batch, ATTRIBUTES_AT) | ATTR_LOG_APPEND_TIME;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

// ---- indexes ----

/// `.index` entry: offset relative to the segment base, byte position in `.log`.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
/// `.timeindex` entry: timestamp, offset relative to the segment base.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

impl OffsetEntry {
    pub fn encode(&self) -> [u8; OFFSET_INDEX_ENTRY_BYTES] {
        let mut b = [0u8; OFFSET_INDEX_ENTRY_BYTES];
        b[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        b[4..].copy_from_slice(&self.position.to_be_bytes());
        b
    }
    pub fn decode(b: &[u8]) -> Self {
        Self {
            relative_offset: u32::from_be_bytes(b[..4].try_into().unwrap()),
            position: u32::from_be_bytes(b[4..8].try_into().unwrap()),
        }
    }
}

impl TimeEntry {
    pub fn encode(&self) -> [u8; TIME_INDEX_ENTRY_BYTES] {
        let mut b = [0u8; TIME_INDEX_ENTRY_BYTES];
        b[..8].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[8..].copy_from_slice(&self.relative_offset.to_be_bytes());
        b
    }
    pub fn decode(b: &[u8]) -> Self {
        Self {
            timestamp_ms: i64::from_be_bytes(b[..8].try_into().unwrap()),
            relative_offset: u32::from_be_bytes(b[8..12].try_into().unwrap()),
        }
    }
}

// ---- names ----

/// `<topic>-<partition>`, Kafka's partition directory name.
pub fn partition_dir(root: &Path, topic: &str, partition: i32) -> PathBuf {
    root.join(format!("{topic}-{partition}"))
}

/// Split a partition directory name at its last '-' (topics may contain '-').
pub fn parse_partition_dir(name: &str) -> Option<(String, i32)> {
    let (topic, p) = name.rsplit_once('-')?;
    let p: i32 = p.parse().ok()?;
    (p >= 0 && !topic.is_empty()).then(|| (topic.to_string(), p))
}

/// Where a partition directory goes to be deleted, as Kafka names it:
/// `<topic>-<partition>.<uuid>-delete` beside it. The rename is atomic, so a
/// crash mid-delete leaves either the whole directory or one that no
/// partition is opened from (`parse_partition_dir` refuses the name); what
/// is left is removed at the next start.
pub fn delete_dir(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{name}.{}-delete", uuid::Uuid::new_v4().simple()))
}

pub fn is_delete_dir(name: &str) -> bool {
    name.ends_with("-delete")
}

/// `<20-digit base offset>.<ext>`.
pub fn segment_file(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

pub fn parse_segment_file(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

/// Written at clean shutdown, removed at start: its presence means the logs were
/// flushed and closed, so recovery can skip scanning tails (Kafka's name).
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// The kernel's boot id when the broker last started on this log dir
/// (`/proc/sys/kernel/random/boot_id`, one line). A run that ends without a
/// clean shutdown in the same boot lost only its process, not the machine.
pub const BOOT_ID_FILE: &str = ".sluice_boot_id";
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
pub const META_PROPERTIES_FILE: &str = "meta.properties";

/// `partition.metadata`: "version: 0\ntopic_id: <base64 uuid>\n" as Kafka writes it.
pub fn encode_partition_metadata(topic_id: uuid::Uuid) -> String {
    format!(
        "version: 0\ntopic_id: {}\n",
        base64_url(topic_id.as_bytes())
    )
}

pub fn decode_partition_metadata(s: &str) -> Option<uuid::Uuid> {
    let id = s.lines().find_map(|l| l.strip_prefix("topic_id: "))?;
    let bytes = unbase64_url(id.trim())?;
    uuid::Uuid::from_slice(&bytes).ok()
}

/// `leader-epoch-checkpoint`: version line, count line, then "epoch start_offset".
pub fn encode_leader_epochs(entries: &[(i32, i64)]) -> String {
    let mut s = format!("0\n{}\n", entries.len());
    for (epoch, start) in entries {
        s.push_str(&format!("{epoch} {start}\n"));
    }
    s
}

pub fn decode_leader_epochs(s: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = s.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let n: usize = lines.next()?.trim().parse().ok()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut it = lines.next()?.split_whitespace();
        out.push((it.next()?.parse().ok()?, it.next()?.parse().ok()?));
    }
    Some(out)
}

/// `meta.properties` as a KRaft-mode Kafka broker writes it.
pub fn encode_meta_properties(cluster_id: &str, node_id: i32) -> String {
    format!("#\n#sluice\nnode.id={node_id}\nversion=1\ncluster.id={cluster_id}\n")
}

pub fn decode_meta_properties(s: &str) -> Option<(String, i32)> {
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(str::trim)
    };
    Some((
        get("cluster.id")?.to_string(),
        get("node.id")?.parse().ok()?,
    ))
}

// ---- producer state snapshots (`<20-digit offset>.snapshot`) ----

/// Kafka's ProducerSnapshot, version 1: `int16 version`, `uint32 crc`
/// (CRC32C of everything after it), `int32 count`, then fixed-size entries,
/// all big-endian. The file's offset is exclusive: the state covers every
/// batch below it.
pub const PRODUCER_SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_CRC_AT: usize = 2;
const SNAPSHOT_COUNT_AT: usize = 6;
const SNAPSHOT_HEADER_BYTES: usize = 10;
pub const SNAPSHOT_ENTRY_BYTES: usize = 46;

/// One producer's batch in a snapshot. Kafka writes one entry per producer
/// (its last batch); sluice writes up to five, oldest first, so duplicates
/// of any of the last five batches are still caught after a restart. Kafka
/// reading such a file keeps the last entry of each producer, i.e. the same
/// state it would have written itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    /// -1: no batch (the producer is known only by its epoch).
    pub last_offset: i64,
    pub offset_delta: i32,
    pub timestamp_ms: i64,
    pub coordinator_epoch: i32,
    pub current_txn_first_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot too short ({0} bytes)")]
    Truncated(usize),
    #[error("unsupported snapshot version {0}")]
    Version(i16),
    #[error("snapshot CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("snapshot holds {have} bytes of entries for a count of {count}")]
    Count { count: i32, have: usize },
}

pub fn encode_producer_snapshot(entries: &[SnapshotEntry]) -> Vec<u8> {
    let mut b = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + entries.len() * SNAPSHOT_ENTRY_BYTES);
    b.extend_from_slice(&PRODUCER_SNAPSHOT_VERSION.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for e in entries {
        b.extend_from_slice(&e.producer_id.to_be_bytes());
        b.extend_from_slice(&e.epoch.to_be_bytes());
        b.extend_from_slice(&e.last_sequence.to_be_bytes());
        b.extend_from_slice(&e.last_offset.to_be_bytes());
        b.extend_from_slice(&e.offset_delta.to_be_bytes());
        b.extend_from_slice(&e.timestamp_ms.to_be_bytes());
        b.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        b.extend_from_slice(&e.current_txn_first_offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&b[SNAPSHOT_COUNT_AT..]);
    b[SNAPSHOT_CRC_AT..SNAPSHOT_COUNT_AT].copy_from_slice(&crc.to_be_bytes());
    b
}

pub fn decode_producer_snapshot(b: &[u8]) -> Result<Vec<SnapshotEntry>, SnapshotError> {
    if b.len() < SNAPSHOT_HEADER_BYTES {
        return Err(SnapshotError::Truncated(b.len()));
    }
    let version = be_i16(b, 0);
    if version != PRODUCER_SNAPSHOT_VERSION {
        return Err(SnapshotError::Version(version));
    }
    let stored = u32::from_be_bytes(b[SNAPSHOT_CRC_AT..SNAPSHOT_COUNT_AT].try_into().unwrap());
    let computed = crc32c::crc32c(&b[SNAPSHOT_COUNT_AT..]);
    if stored != computed {
        return Err(SnapshotError::Crc { stored, computed });
    }
    let count = be_i32(b, SNAPSHOT_COUNT_AT);
    let body = &b[SNAPSHOT_HEADER_BYTES..];
    if count < 0 || body.len() != count as usize * SNAPSHOT_ENTRY_BYTES {
        return Err(SnapshotError::Count {
            count,
            have: body.len(),
        });
    }
    Ok(body
        .chunks(SNAPSHOT_ENTRY_BYTES)
        .map(|e| SnapshotEntry {
            producer_id: be_i64(e, 0),
            epoch: be_i16(e, 8),
            last_sequence: be_i32(e, 10),
            last_offset: be_i64(e, 14),
            offset_delta: be_i32(e, 22),
            timestamp_ms: be_i64(e, 26),
            coordinator_epoch: be_i32(e, 34),
            current_txn_first_offset: be_i64(e, 38),
        })
        .collect())
}

pub fn parse_snapshot_file(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".snapshot")?;
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

// ---- offset checkpoints (Kafka's OffsetCheckpointFile) ----

/// Everything below this offset was fsync'ed (recovery reads only past it).
pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
/// The log start offset of each partition.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
/// The high watermark of each partition.
pub const REPLICATION_OFFSET_FILE: &str = "replication-offset-checkpoint";
/// How far the log cleaner has compacted each partition.
pub const CLEANER_OFFSET_FILE: &str = "cleaner-offset-checkpoint";

/// "0\n<count>\n" then "<topic> <partition> <offset>" lines, as Kafka writes
/// them (topic names cannot hold spaces).
pub fn encode_offset_checkpoint(entries: &[(String, i32, i64)]) -> String {
    let mut s = format!("0\n{}\n", entries.len());
    for (t, p, o) in entries {
        s.push_str(&format!("{t} {p} {o}\n"));
    }
    s
}

pub fn decode_offset_checkpoint(s: &str) -> Option<Vec<(String, i32, i64)>> {
    let mut lines = s.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let n: usize = lines.next()?.trim().parse().ok()?;
    let mut out = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let mut it = lines.next()?.split_whitespace();
        let (t, p, o) = (
            it.next()?,
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
        );
        if it.next().is_some() {
            return None;
        }
        out.push((t.to_string(), p, o));
    }
    lines.next().is_none().then_some(out)
}

// ---- producer id blocks ----

/// `producer-id-block` in the log dir: the first producer id not yet handed
/// to any block. A block is taken by writing its end here before any id of
/// it is used, so ids never repeat across restarts.
pub const PRODUCER_ID_BLOCK_FILE: &str = "producer-id-block";

pub fn encode_producer_id_block(next_block_start: i64) -> String {
    format!("version: 0\nnext_block_start: {next_block_start}\n")
}

pub fn decode_producer_id_block(s: &str) -> Option<i64> {
    if s.lines().next()?.trim() != "version: 0" {
        return None;
    }
    let v = s
        .lines()
        .find_map(|l| l.strip_prefix("next_block_start: "))?
        .trim()
        .parse()
        .ok()?;
    (v >= 0).then_some(v)
}

/// Kafka prints UUIDs (topic and cluster ids) as URL-safe base64 without padding.
pub fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

pub fn unbase64_url(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    for chunk in s.trim_end_matches('=').as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid batch built by the client's encoder (kafka-protocol), i.e. not
    /// by this file.
    pub(crate) fn sample_batch(n: usize) -> Vec<u8> {
        let records: Vec<_> = (0..n)
            .map(|i| (None, Some(bytes::Bytes::from(format!("value-{i}")))))
            .collect();
        crate::client::records::encode_batch(&records, 1_700_000_000_000)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn batch_header_and_crc() {
        let b = sample_batch(3);
        let h = validate_batch(&b).unwrap();
        assert_eq!(
            (h.size_bytes, h.records_count, h.last_offset_delta),
            (b.len(), 3, 2)
        );
        let mut bad = b.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(validate_batch(&bad), Err(BatchError::Crc { .. })));
        assert!(matches!(
            validate_batch(&b[..b.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn stamping_keeps_crc_valid() {
        let mut b = sample_batch(2);
        stamp_offset_and_epoch(&mut b, 1234, 7);
        let h = validate_batch(&b).unwrap();
        assert_eq!(
            (h.base_offset, h.leader_epoch, h.last_offset()),
            (1234, 7, 1235)
        );
        stamp_log_append_time(&mut b, 42);
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.max_timestamp, 42);
        assert_ne!(h.attributes & ATTR_LOG_APPEND_TIME, 0);
    }

    #[test]
    fn epoch_starts_are_the_batches_of_newer_epochs_that_fit() {
        let batch = |offset: i64, epoch: i32| {
            let mut b = sample_batch(2);
            stamp_offset_and_epoch(&mut b, offset, epoch);
            b
        };
        let buf = [
            batch(10, 1),
            batch(12, 3),
            batch(14, 3),
            batch(16, 2),
            batch(18, 4),
        ]
        .concat();
        assert_eq!(epoch_starts(&buf, 1), vec![(3, 12), (4, 18)]);
        assert_eq!(epoch_starts(&buf, 0), vec![(1, 10), (3, 12), (4, 18)]);
        assert_eq!(epoch_starts(&buf, 4), vec![]);
        // A batch cut short brings nothing.
        assert_eq!(epoch_starts(&buf[..buf.len() - 1], 1), vec![(3, 12)]);
        assert_eq!(epoch_starts(&[], 0), vec![]);
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 4), 2);
        assert_eq!(decrement_sequence(2, 4), i32::MAX - 1);
        assert_eq!(decrement_sequence(8, 3), 5);
        let mut b = sample_batch(3);
        b[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        let h = parse_header(&b).unwrap();
        assert_eq!(h.last_sequence(), 0);
    }

    #[test]
    fn producer_snapshot_round_trip_and_crc() {
        let e = |pid: i64, off: i64| SnapshotEntry {
            producer_id: pid,
            epoch: 3,
            last_sequence: 41,
            last_offset: off,
            offset_delta: 4,
            timestamp_ms: 1_700_000_000_000,
            coordinator_epoch: -1,
            current_txn_first_offset: -1,
        };
        let entries = vec![e(7, 100), e(7, 105), e(9, -1)];
        let b = encode_producer_snapshot(&entries);
        assert_eq!(b.len(), 10 + 3 * SNAPSHOT_ENTRY_BYTES);
        assert_eq!(decode_producer_snapshot(&b).unwrap(), entries);
        assert_eq!(
            decode_producer_snapshot(&encode_producer_snapshot(&[])).unwrap(),
            vec![]
        );
        let mut bad = b.clone();
        bad[20] ^= 1;
        assert!(matches!(
            decode_producer_snapshot(&bad),
            Err(SnapshotError::Crc { .. })
        ));
        assert!(matches!(
            decode_producer_snapshot(&b[..b.len() - 1]),
            Err(SnapshotError::Crc { .. } | SnapshotError::Count { .. })
        ));
        assert!(matches!(
            decode_producer_snapshot(&b[..4]),
            Err(SnapshotError::Truncated(4))
        ));
        assert_eq!(
            parse_snapshot_file("00000000000000000042.snapshot"),
            Some(42)
        );
        assert_eq!(parse_snapshot_file("00000000000000000042.log"), None);
    }

    #[test]
    fn offset_checkpoint_round_trip() {
        let e = vec![
            ("orders".to_string(), 0, 42),
            ("my-topic".to_string(), 11, 0),
        ];
        let text = encode_offset_checkpoint(&e);
        assert_eq!(text, "0\n2\norders 0 42\nmy-topic 11 0\n");
        assert_eq!(decode_offset_checkpoint(&text), Some(e));
        assert_eq!(decode_offset_checkpoint("0\n0\n"), Some(vec![]));
        assert_eq!(
            decode_offset_checkpoint("0\n2\norders 0 42\n"),
            None,
            "short"
        );
        assert_eq!(decode_offset_checkpoint("1\n0\n"), None, "version");
    }

    #[test]
    fn producer_id_block_round_trip() {
        assert_eq!(
            decode_producer_id_block(&encode_producer_id_block(3000)),
            Some(3000)
        );
        assert_eq!(decode_producer_id_block("garbage"), None);
    }

    #[test]
    fn split_tiles_the_buffer() {
        let mut b = sample_batch(2);
        b.extend(sample_batch(5));
        let parts = split_batches(&b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].1.end, b.len());
    }

    #[test]
    fn index_entries_round_trip() {
        let o = OffsetEntry {
            relative_offset: 17,
            position: 4096,
        };
        assert_eq!(OffsetEntry::decode(&o.encode()), o);
        let t = TimeEntry {
            timestamp_ms: -5,
            relative_offset: 9,
        };
        assert_eq!(TimeEntry::decode(&t.encode()), t);
    }

    #[test]
    fn names_round_trip() {
        let d = partition_dir(Path::new("/d"), "my-topic", 12);
        let name = d.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_partition_dir(name), Some(("my-topic".into(), 12)));
        let gone = delete_dir(Path::new("/data/my-topic-12"));
        let gone_name = gone.file_name().unwrap().to_str().unwrap();
        assert_eq!(gone.parent(), Some(Path::new("/data")));
        assert!(gone_name.starts_with("my-topic-12.") && is_delete_dir(gone_name));
        assert_eq!(
            parse_partition_dir(gone_name),
            None,
            "never opened as a partition"
        );
        let f = segment_file(&d, 42, "log");
        assert_eq!(f.file_name().unwrap(), "00000000000000000042.log");
        assert_eq!(parse_segment_file("00000000000000000042.log"), Some(42));
        assert_eq!(parse_segment_file("42.log"), None);
    }

    #[test]
    fn small_files_round_trip() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            decode_partition_metadata(&encode_partition_metadata(id)),
            Some(id)
        );
        let e = vec![(0, 0), (3, 1500)];
        assert_eq!(decode_leader_epochs(&encode_leader_epochs(&e)), Some(e));
        let m = encode_meta_properties("abc", 1);
        assert_eq!(decode_meta_properties(&m), Some(("abc".into(), 1)));
        for n in 0..20 {
            let v: Vec<u8> = (0..n as u8).collect();
            assert_eq!(unbase64_url(&base64_url(&v)).unwrap(), v);
        }
    }
}
