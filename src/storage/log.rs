//! One partition's log: segments, offsets, pending appends.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;

use super::epochs::{EpochsAhead, LeaderEpochs};
use super::format::{self, BatchHeader};
use super::producer_state::{BatchMeta, Checked, ProducerStates};
use super::replace::Replacement;
use super::segment::{Segment, SegmentWriter};
use super::tail_cache::TailCache;
use super::StorageError;
use crate::shard::notify::Notify;

/// Per-partition log settings (topic configs resolved against broker defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub index_interval_bytes: u64,
    pub max_message_bytes: usize,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub log_append_time: bool,
    /// fdatasync after this many messages even without acks=all waiters.
    pub flush_interval_messages: u64,
    /// fdatasync dirty data at least this often (None: only as needed).
    pub flush_interval_ms: Option<u64>,
    /// `cleanup.policy=compact`: retention must not delete segments.
    pub compact: bool,
    /// A producer id idle this long is forgotten (broker-wide
    /// `producer.id.expiration.ms`).
    pub producer_id_expiration_ms: i64,
    /// acks=all needs at least this many in-sync replicas.
    pub min_insync_replicas: i32,
    /// CreateTime records older / newer than this relative to the broker's
    /// clock are refused (`message.timestamp.before.max.ms`, `.after.max.ms`).
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `compression.type`: batches in another codec are re-encoded.
    pub compression: super::recompress::TopicCompression,
    /// Largest single write of a partition's pending appends
    /// (`sluice.log.write.max.bytes`, broker-wide): a longer round is
    /// written in several, so its DMA staging stays this small instead of
    /// growing with everything queued behind one fsync (seen: 32 MB writes
    /// pushing the broker's peak RSS from about 120 to 230 MB, at the same
    /// throughput). One append larger than this is still one write.
    pub write_max_bytes: u64,
    /// `sluice.log.preallocate.bytes`: the most zeros a partition keeps
    /// written ahead of its appends (about 8 appends' worth, at least
    /// 64 KiB), so its small appends (and their fdatasyncs) change no
    /// file-system metadata; appends of 64 KiB or more get none. Costs
    /// at most this much disk per active segment (trimmed when it closes);
    /// 0 = off.
    pub preallocate_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            log_append_time: false,
            flush_interval_messages: u64::MAX,
            flush_interval_ms: None,
            compact: false,
            producer_id_expiration_ms: 86_400_000,
            min_insync_replicas: 1,
            timestamp_before_max_ms: i64::MAX,
            // Kafka 4's default (KIP-1030): an hour into the future.
            timestamp_after_max_ms: 3_600_000,
            compression: Default::default(),
            write_max_bytes: 4 << 20,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
        }
    }
}

/// Default of `sluice.log.preallocate.bytes`. Zeros ahead took small-keyed
/// (4 KiB batches over 100 partitions, acks=all) records/s up 1.46x and cut
/// broker CPU per record from 6.5 to 4.4 us
/// (perf/results/2026-12-06T05-55-06Z-small-keyed). Written beside the
/// appends and sized by them, a 1 MiB limit costs a partition only what its
/// appends use; at 100k msg/s (8 writes of zeros in flight per shard at
/// most, then) a 64 KiB one gave a publish p99 of 74-239 ms in 2 of 3 runs,
/// against 4-7 ms with 1 MiB (perf/results/2026-12-06T20-45-00Z-zeros-ahead).
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 1 << 20;

/// Appended batches not yet written; written in order by the committer.
pub struct Pending {
    pub base_offset: i64,
    pub next_offset: i64,
    pub records: u64,
    /// Stamped batches, exactly as they go to disk.
    pub bytes: Bytes,
    pub headers: Vec<BatchHeader>,
    pub needs_sync: bool,
    pub done: Option<oneshot::Sender<Result<(), StorageError>>>,
}

#[derive(Debug, Clone, Copy)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

pub struct PartitionLog {
    pub topic: String,
    pub partition: i32,
    pub topic_id: uuid::Uuid,
    pub dir: PathBuf,
    pub config: LogConfig,
    pub segments: BTreeMap<i64, Segment>,
    /// The shard's open-file cache, which every segment file goes through.
    pub files: Rc<super::files::OpenFiles>,
    /// Write handles of the last segment; taken by the committer while it writes.
    pub writer: Option<SegmentWriter>,
    pub log_start_offset: i64,
    /// Offset the next append gets (includes pending appends).
    pub next_offset: i64,
    /// Everything below is written (to the page cache, not necessarily
    /// synced): this replica's log end as replication counts it.
    pub written_end: i64,
    /// Everything below is committed (held by every in-sync replica) and
    /// visible to consumers. On a single replica it follows `written_end`.
    pub high_watermark: i64,
    /// Role, ISR and followers' progress.
    pub replication: super::replica::Replication,
    /// The leader epoch cache (`leader-epoch-checkpoint`): each epoch with
    /// the first offset written in it, oldest first.
    pub epochs: LeaderEpochs,
    /// Everything below is on stable storage (fdatasync).
    pub synced_offset: i64,
    pub leader_epoch: i32,
    pub pending: VecDeque<Pending>,
    pub unsynced_messages: u64,
    pub tail: TailCache,
    /// Fired when the high watermark moves (wakes long-polling fetches).
    pub hw_moved: Notify,
    /// Set while the partition is being deleted; appends fail.
    pub closed: bool,
    /// Idempotent producers' epochs and last batches (includes pending ones).
    pub producers: ProducerStates,
    /// Offset of the newest producer snapshot on disk, if any.
    pub snapshot_offset: Option<i64>,
    /// Where the newest snapshot was taken, when known: its segment's base
    /// offset and that segment's bytes then.
    pub snapshot_position: Option<(i64, u64)>,
}

impl PartitionLog {
    pub fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }

    /// Validate, stamp offsets on and queue `records` (one or more batches).
    /// Offsets are assigned now; the returned receiver resolves once the
    /// committer has written (and, with `needs_sync`, fdatasync'ed) them.
    pub fn append(
        &mut self,
        records: &[u8],
        needs_sync: bool,
        now_ms: i64,
    ) -> Result<(AppendInfo, oneshot::Receiver<Result<(), StorageError>>), StorageError> {
        if self.closed {
            return Err(StorageError::Closed);
        }
        let mut batches = format::split_batches(records)?;
        // compression.type other than `producer`: re-encode batches in
        // another codec (the copy below then starts from the new bytes).
        let recompressed: Vec<u8>;
        let mut records = records;
        if batches
            .iter()
            .any(|(h, _)| self.config.compression.differs(h.attributes))
        {
            let super::recompress::TopicCompression::Codec(codec) = self.config.compression else {
                unreachable!("only a codec differs")
            };
            let mut out = Vec::with_capacity(records.len());
            for (h, range) in &batches {
                if self.config.compression.differs(h.attributes) {
                    let b = super::recompress::recompress(&records[range.clone()], h, codec)
                        .map_err(StorageError::InvalidRecord)?;
                    out.extend_from_slice(&b);
                } else {
                    out.extend_from_slice(&records[range.clone()]);
                }
            }
            recompressed = out;
            records = &recompressed;
            batches = format::split_batches(records)?;
        }
        if batches.is_empty() {
            return Err(StorageError::Corrupt(format::BatchError::Truncated {
                have: 0,
                need: 61,
            }));
        }
        for (h, _) in &batches {
            if h.size_bytes > self.config.max_message_bytes {
                return Err(StorageError::MessageTooLarge {
                    size: h.size_bytes,
                    max: self.config.max_message_bytes,
                });
            }
            if !self.config.log_append_time {
                self.check_timestamps(h, now_ms)?;
            }
        }
        // Idempotent producers: sequence and epoch checks against the state
        // including batches still queued, with the offsets they will get.
        let mut updated = Vec::new();
        if batches.iter().any(|(h, _)| h.has_producer_id()) {
            let mut at = self.next_offset;
            let planned: Vec<BatchHeader> = batches
                .iter()
                .map(|(h, _)| {
                    let mut h = *h;
                    h.base_offset = at;
                    at = h.next_offset();
                    h
                })
                .collect();
            for h in &planned {
                if h.is_transactional() {
                    return Err(StorageError::InvalidRecord(format!(
                        "transactional batch from producer {} (transactions are not supported)",
                        h.producer_id
                    )));
                }
            }
            match self.producers.check(&planned)? {
                Checked::Append(u) => updated = u,
                Checked::Duplicate(meta) => return Ok(self.duplicate(meta, needs_sync)),
            }
        }
        // One copy out of the request frame: batches get stamped, and the copy is
        // shared by the tail cache and the DMA write staging.
        let mut buf = BytesMut::from(records);
        let base_offset = self.next_offset;
        let mut next = base_offset;
        let mut headers = Vec::with_capacity(batches.len());
        let mut count = 0u64;
        for (h, range) in &batches {
            let b = &mut buf[range.clone()];
            format::stamp_offset_and_epoch(b, next, self.leader_epoch);
            if self.config.log_append_time {
                format::stamp_log_append_time(b, now_ms);
            }
            let stamped = format::parse_header(b).expect("validated above");
            next = stamped.next_offset();
            count += h.records_count.max(0) as u64;
            headers.push(stamped);
        }
        if self.config.log_append_time {
            // The batches' max timestamps were just replaced by the broker's.
            for (_, e) in &mut updated {
                for b in e
                    .batches
                    .iter_mut()
                    .filter(|b| b.first_offset >= base_offset)
                {
                    b.timestamp_ms = now_ms;
                }
                e.last_timestamp_ms = now_ms;
            }
        }
        debug_assert!(updated
            .iter()
            .all(|(_, e)| e.batches.back().is_none_or(|b| b.last_offset < next)));
        self.producers.apply(updated);
        let bytes = buf.freeze();
        self.tail.insert(base_offset, next, bytes.clone());
        let (tx, rx) = oneshot::channel();
        self.pending.push_back(Pending {
            base_offset,
            next_offset: next,
            records: count,
            bytes,
            headers,
            needs_sync,
            done: Some(tx),
        });
        self.next_offset = next;
        let info = AppendInfo {
            base_offset,
            log_append_time_ms: if self.config.log_append_time {
                now_ms
            } else {
                -1
            },
            log_start_offset: self.log_start_offset,
        };
        Ok((info, rx))
    }

    /// Kafka's `message.timestamp.{before,after}.max.ms` for CreateTime
    /// topics. Kafka checks every record; the header bounds them (the first
    /// record's timestamp and the largest), which is what is checked here.
    fn check_timestamps(&self, h: &BatchHeader, now_ms: i64) -> Result<(), StorageError> {
        let (before, after) = (
            self.config.timestamp_before_max_ms,
            self.config.timestamp_after_max_ms,
        );
        let oldest = h.base_timestamp.min(h.max_timestamp);
        if now_ms.saturating_sub(oldest) > before {
            return Err(StorageError::InvalidTimestamp(format!(
                "timestamp {oldest} is more than message.timestamp.before.max.ms={before} before the broker's time {now_ms}"
            )));
        }
        if h.max_timestamp.saturating_sub(now_ms) > after {
            return Err(StorageError::InvalidTimestamp(format!(
                "timestamp {} is more than message.timestamp.after.max.ms={after} after the broker's time {now_ms}",
                h.max_timestamp
            )));
        }
        Ok(())
    }

    /// Answer a retried batch with its first copy's offsets. If that copy is
    /// still queued (or, for acks=all, not yet fsync'ed) the answer waits for
    /// it: an empty entry in the queue resolves once everything before it is
    /// written (and synced, if asked), or fails with it.
    fn duplicate(
        &mut self,
        meta: BatchMeta,
        needs_sync: bool,
    ) -> (AppendInfo, oneshot::Receiver<Result<(), StorageError>>) {
        tracing::debug!(topic = %self.topic, partition = self.partition,
            first_offset = meta.first_offset, first_seq = meta.first_seq,
            "duplicate batch: answered with its first copy's offsets");
        let (tx, rx) = oneshot::channel();
        let durable = meta.last_offset < self.written_end
            && (!needs_sync || meta.last_offset < self.synced_offset);
        if durable {
            let _ = tx.send(Ok(()));
        } else {
            self.pending.push_back(Pending {
                base_offset: self.next_offset,
                next_offset: self.next_offset,
                records: 0,
                bytes: Bytes::new(),
                headers: Vec::new(),
                needs_sync,
                done: Some(tx),
            });
        }
        let info = AppendInfo {
            base_offset: meta.first_offset,
            // Kafka answers a duplicate with the first copy's max timestamp.
            log_append_time_ms: meta.timestamp_ms,
            log_start_offset: self.log_start_offset,
        };
        (info, rx)
    }

    /// Does appending `bytes` more to the active segment need a new segment?
    pub fn should_roll(&self, incoming_bytes: u64, next_offset: i64, now_ms: i64) -> bool {
        let a = self.active();
        if a.size_bytes == 0 {
            return false;
        }
        a.size_bytes + incoming_bytes > self.config.segment_bytes
            || now_ms - a.created_ms >= self.config.segment_ms
            || next_offset - a.base_offset > i32::MAX as i64
            || a.size_bytes + incoming_bytes > u32::MAX as u64
    }

    /// The segment holding `offset` (the last one whose base is <= offset).
    pub fn segment_for(&self, offset: i64) -> Option<&Segment> {
        self.segments.range(..=offset).next_back().map(|(_, s)| s)
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size_bytes).sum()
    }

    /// Write the producer state as of `offset` (exclusive) to
    /// `<offset>.snapshot`, so start-up reads it instead of the log below.
    pub fn write_producer_snapshot(&mut self, offset: i64) -> std::io::Result<()> {
        self.write_producer_snapshot_durably(offset, true)
    }

    fn write_producer_snapshot_durably(
        &mut self,
        offset: i64,
        durable: bool,
    ) -> std::io::Result<()> {
        let snapshot = self.producer_snapshot(offset);
        snapshot.file.write(durable)?;
        self.note_producer_snapshot(&snapshot);
        Ok(())
    }

    /// The producer state as of `offset` (exclusive), encoded, to be written
    /// with [`Replacement::write`] (off the shard thread where it is
    /// durable: a roll) and then noted with [`Self::note_producer_snapshot`].
    pub fn producer_snapshot(&self, offset: i64) -> ProducerSnapshot {
        let entries = self.producers.snapshot_entries(offset);
        ProducerSnapshot {
            file: Replacement {
                path: format::segment_file(&self.dir, offset, "snapshot"),
                data: format::encode_producer_snapshot(&entries),
            },
            offset,
            // Where it is taken, if at the written end now (taken here, not
            // when noted: appends may follow while it is written).
            position: (offset == self.written_end)
                .then(|| self.segments.iter().next_back())
                .flatten()
                .map(|(base, seg)| (*base, seg.size_bytes)),
        }
    }

    /// `snapshot` is on disk: start-up and the periodic snapshot go from it,
    /// unless a newer one was noted meanwhile.
    pub fn note_producer_snapshot(&mut self, snapshot: &ProducerSnapshot) {
        if self.snapshot_offset.is_none_or(|o| o <= snapshot.offset) {
            self.snapshot_offset = Some(snapshot.offset);
            self.snapshot_position = snapshot.position;
        }
    }

    /// Snapshot the producer state at the written end once at least
    /// `min_bytes` were written to the active segment after the newest
    /// snapshot, so that a start after an unclean stop rebuilds it from
    /// here, not from the segment's start (the rebuild reads every batch
    /// header after the snapshot: about 0.5 s per 264 MB of 16 KB batches,
    /// perf/results/2026-12-07T05-10-00Z-replay). Without fsyncs: a snapshot
    /// a crash loses or tears is deleted at start and an older one used.
    /// The older ones it supersedes are deleted, but for those at segment
    /// bases (Kafka's, written at each roll), kept for a truncation below
    /// this one. True when one was written.
    pub fn write_periodic_producer_snapshot(&mut self, min_bytes: u64) -> std::io::Result<bool> {
        let end = self.written_end;
        let Some((&base, active)) = self.segments.iter().next_back() else {
            return Ok(false);
        };
        if self.closed || end <= self.snapshot_offset.unwrap_or(self.log_start_offset) {
            return Ok(false);
        }
        let written_since = match self.snapshot_position {
            Some((at_base, at_bytes)) if at_base == base => {
                active.size_bytes.saturating_sub(at_bytes)
            }
            _ => active.size_bytes,
        };
        if written_since < min_bytes {
            return Ok(false);
        }
        self.write_producer_snapshot_durably(end, false)?;
        for (at, path) in snapshot_files(&self.dir) {
            if at < end && !self.segments.contains_key(&at) {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "could not delete producer snapshot");
                }
            }
        }
        Ok(true)
    }

    /// Delete producer snapshots below `offset` (their segments are gone).
    pub fn delete_snapshots_before(&self, offset: i64) {
        for (at, path) in snapshot_files(&self.dir) {
            if at < offset {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "could not delete producer snapshot");
                }
            }
        }
    }

    /// Entries of newer epochs for this log's `leader-epoch-checkpoint`, to
    /// be written ahead (off the shard thread, many partitions' together)
    /// and then taken with [`Self::take_epochs_ahead`]: a new leader's epoch
    /// from the log end ([`Self::become_leader`]), or the epochs of fetched
    /// batches that continue the log ([`Self::append_replicated`]). None if
    /// none is newer than the epochs known.
    pub fn epochs_ahead(&self, added: impl IntoIterator<Item = (i32, i64)>) -> Option<EpochsAhead> {
        self.epochs.ahead(added, self.next_offset)
    }

    /// `ahead` was written (`written`: its write said so, and it is
    /// durable): the epoch cache takes its entries, so that leading or
    /// appending the batches writes nothing. Not if the log moved on
    /// meanwhile (a follower's fetch appended, or an older epoch's leader
    /// did, or the epochs changed): then their starts may be stale, the file
    /// is put back as the cache holds it, and `become_leader` or
    /// `append_replicated` writes the right entries itself. True when taken.
    pub fn take_epochs_ahead(&mut self, ahead: &EpochsAhead, written: bool) -> bool {
        if written && self.next_offset == ahead.at && self.epochs.take_ahead(ahead) {
            return true;
        }
        self.forget_epochs_ahead(ahead);
        false
    }

    /// Epochs written ahead that were not taken (or were: then nothing
    /// happens): the file is put back as the cache holds it, so that it
    /// never holds an epoch the cache lacks.
    pub fn forget_epochs_ahead(&mut self, ahead: &EpochsAhead) {
        if let Err(e) = self.epochs.forget_ahead(ahead) {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                "could not write leader-epoch-checkpoint");
        }
    }

    /// Record that `epoch` starts at `offset` (a new leader's first offset,
    /// or the first replicated batch of a newer epoch), durably.
    fn note_epoch(&mut self, epoch: i32, offset: i64) {
        if let Err(e) = self.epochs.assign(epoch, offset) {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                "could not write leader-epoch-checkpoint");
        }
    }

    /// Where `epoch` ends in this log (Kafka's `LeaderEpochFileCache.endOffsetFor`):
    /// (the largest epoch <= `epoch` known here, the start of the next one
    /// or the log end). (-1, -1) if the log knows no epoch that old.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let Some(i) = self.epochs.iter().rposition(|(e, _)| *e <= epoch) else {
            return (-1, -1);
        };
        let end = self
            .epochs
            .get(i + 1)
            .map_or(self.next_offset, |(_, start)| *start);
        (self.epochs[i].0, end)
    }

    /// The latest epoch this log holds records of (or was led in).
    pub fn latest_epoch(&self) -> i32 {
        self.epochs.latest()
    }

    /// Recompute the high watermark from the ISR's progress; it only moves
    /// forward. Wakes fetches waiting on it.
    pub fn update_high_watermark(&mut self) {
        use super::replica::Role;
        let hw = match self.replication.role {
            Role::Leader => self.replication.leader_high_watermark_for(self.written_end),
            Role::Follower { .. } => self.replication.leader_high_watermark.min(self.written_end),
        };
        if hw > self.high_watermark {
            self.high_watermark = hw;
            self.hw_moved.notify_all();
        }
    }

    /// Lead at `epoch` (from the metadata image): batches appended from now
    /// on carry it, and the epoch cache records where it starts.
    pub fn become_leader(&mut self, epoch: i32) {
        self.leader_epoch = epoch;
        let end = self.next_offset;
        self.note_epoch(epoch, end);
        self.replication.needs_truncation = false;
    }

    /// Follow at `epoch`: nothing is appended by producers any more, and
    /// the fetcher first reconciles this log with the leader's.
    pub fn become_follower(&mut self, epoch: i32) {
        if self.leader_epoch != epoch || self.replication.is_leader() {
            self.replication.needs_truncation = true;
        }
        self.leader_epoch = epoch;
        // acks=all waiters and long-polling fetches look again: they are
        // no longer served by a leader.
        self.hw_moved.notify_all();
    }

    /// Append batches fetched from the leader exactly as they are (same
    /// offsets, same CRCs). They must continue this log; their CRCs are
    /// checked, since they crossed the network. `ahead`: their newer epochs,
    /// already written durably ([`Self::epochs_ahead`]); taken only once
    /// every batch checks out, so that the cache never holds an epoch for
    /// records it does not have. Epochs not taken are written here.
    pub fn append_replicated(
        &mut self,
        records: Bytes,
        needs_sync: bool,
        ahead: Option<&EpochsAhead>,
    ) -> Result<oneshot::Receiver<Result<(), StorageError>>, StorageError> {
        if self.closed {
            return Err(StorageError::Closed);
        }
        let batches = format::split_batches(&records)?;
        let Some((first, _)) = batches.first() else {
            return Err(StorageError::Corrupt(format::BatchError::Truncated {
                have: 0,
                need: 61,
            }));
        };
        let base_offset = first.base_offset;
        let mut next = self.next_offset;
        let mut headers = Vec::with_capacity(batches.len());
        let mut count = 0u64;
        for (h, range) in &batches {
            if h.base_offset != next {
                return Err(StorageError::InvalidRecord(format!(
                    "replicated batch at offset {} does not continue the log at {next}",
                    h.base_offset
                )));
            }
            format::validate_batch(&records[range.clone()]).map_err(StorageError::Corrupt)?;
            next = h.next_offset();
            count += h.records_count.max(0) as u64;
            headers.push(*h);
        }
        if let Some(a) = ahead.filter(|a| a.at == self.next_offset) {
            self.epochs.take_ahead(a);
        }
        for h in &headers {
            if h.leader_epoch > self.latest_epoch() {
                self.note_epoch(h.leader_epoch, h.base_offset);
            }
            self.producers.replay(h);
        }
        self.tail.insert(base_offset, next, records.clone());
        let (tx, rx) = oneshot::channel();
        self.pending.push_back(Pending {
            base_offset,
            next_offset: next,
            records: count,
            bytes: records,
            headers,
            needs_sync,
            done: Some(tx),
        });
        self.next_offset = next;
        Ok(rx)
    }
}

pub type SharedLog = Rc<std::cell::RefCell<PartitionLog>>;

/// Why records a leader wrote are not acknowledged as committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotCommitted {
    /// This replica no longer leads (or its log closed) before they were.
    NotLeader,
    /// Committed, but the ISR shrank below `min.insync.replicas` meanwhile
    /// (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    BelowMinIsr { isr: i32, min_isr: i32 },
    /// Not every in-sync replica held them within the wait.
    TimedOut,
}

/// acks=all: wait until every in-sync replica holds `log` up to `end` (the
/// high watermark reaches it), at most `timeout`, then check the ISR is
/// still as large as `min.insync.replicas`.
pub async fn await_committed(
    log: &SharedLog,
    end: i64,
    timeout: std::time::Duration,
) -> Result<(), NotCommitted> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let moved = {
            let l = log.borrow();
            if !l.replication.is_leader() || l.closed {
                return Err(NotCommitted::NotLeader);
            }
            if l.high_watermark >= end {
                let (isr, min_isr) = (l.replication.isr.len() as i32, l.config.min_insync_replicas);
                if isr < min_isr {
                    return Err(NotCommitted::BelowMinIsr { isr, min_isr });
                }
                return Ok(());
            }
            l.hw_moved.notified()
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || crate::shard::timeout(left, moved).await.is_none() {
            if log.borrow().high_watermark >= end {
                continue;
            }
            return Err(NotCommitted::TimedOut);
        }
    }
}

/// The producer snapshots in `dir`, by offset, oldest first.
pub fn snapshot_files(dir: &std::path::Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let at = format::parse_snapshot_file(e.file_name().to_str()?)?;
            Some((at, e.path()))
        })
        .collect();
    out.sort_unstable();
    out
}

/// A producer snapshot taken by [`PartitionLog::producer_snapshot`].
pub struct ProducerSnapshot {
    pub file: Replacement,
    pub offset: i64,
    /// (segment base, bytes into it) where it was taken, if at the written end.
    pub position: Option<(i64, u64)>,
}
