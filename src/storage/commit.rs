//! Group commit: every round writes all pending appends of each dirty
//! partition with one DMA write, then makes durable the partitions that need
//! it, and only then answers the producers of that round. Durable means an
//! fdatasync each, all concurrently, or, for a round with many partitions to
//! sync on a file system where that is sound, one syncfs for all of them
//! (`fs_sync`): one device flush instead of one per partition.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::appender::Appender;
use super::files::OpenFiles;
use super::format;
use super::fs_sync::FsSync;
use super::log::{Pending, SharedLog};
use super::segment::{Segment, SegmentWriter};
use super::{now_ms, LogDirHealth, StorageError};
use crate::metrics::ShardMetrics;
use crate::shard::notify::Notify;

/// Index entries are written to their files in chunks of at least this many,
/// so the common round costs one DMA write, not three.
const INDEX_PERSIST_BATCH: usize = 512;

/// ... or once this much log lies past the last entry in the file (large
/// batches make few entries): after a kill -9, recovery checks a tail from
/// its last index entry on (see `PreviousStop::ProcessOnly`), so this bounds
/// that check per partition.
const INDEX_PERSIST_LOG_BYTES: u64 = 32 << 20;

pub struct Committer {
    dirty: RefCell<Vec<SharedLog>>,
    wake: Notify,
    stopping: std::cell::Cell<bool>,
    /// Shared by every shard's committer: a write error on any of them
    /// takes the dir offline for all.
    health: LogDirHealth,
    /// This shard's write and fdatasync latencies go here.
    metrics: Arc<ShardMetrics>,
    /// Rounds with at least `fs_sync_min_partitions` partitions to sync use
    /// this, when the log dir allows it.
    fs_sync: Option<FsSync>,
    fs_sync_min_partitions: usize,
}

impl Committer {
    /// `fs_sync`: a syncfs of the log dir's file system, used for rounds
    /// with at least `fs_sync_min_partitions` (> 0) partitions to sync.
    pub fn new(
        health: LogDirHealth,
        metrics: Arc<ShardMetrics>,
        fs_sync: Option<FsSync>,
        fs_sync_min_partitions: usize,
    ) -> Rc<Self> {
        Rc::new(Committer {
            dirty: Default::default(),
            wake: Notify::new(),
            stopping: Default::default(),
            health,
            metrics,
            fs_sync: fs_sync.filter(|_| fs_sync_min_partitions > 0),
            fs_sync_min_partitions,
        })
    }

    /// Call right after `PartitionLog::append`. The first pending append since
    /// the last round queues the log for the next round; later ones ride along
    /// (each round takes a log's whole pending list), so no duplicate check.
    pub fn appended(&self, log: &SharedLog) {
        if log.borrow().pending.len() == 1 {
            self.dirty.borrow_mut().push(log.clone());
            self.wake.notify_all();
        }
    }

    pub fn stop(&self) {
        self.stopping.set(true);
        self.wake.notify_all();
    }

    /// The commit loop; returns once stopped and drained.
    pub async fn run(self: Rc<Self>) {
        loop {
            let wake = self.wake.notified();
            let round: Vec<SharedLog> = std::mem::take(&mut *self.dirty.borrow_mut());
            if round.is_empty() {
                if self.stopping.get() {
                    return;
                }
                wake.await;
                continue;
            }
            let written: Vec<Written> = join_all(
                round
                    .into_iter()
                    .map(|l| write_partition(l, &self.health, &self.metrics)),
            )
            .await
            .into_iter()
            .flatten()
            .collect();
            let to_sync = written
                .iter()
                .filter(|w| matches!(w.outcome, Ok(true)))
                .count();
            match &self.fs_sync {
                Some(fs) if to_sync >= self.fs_sync_min_partitions => {
                    // Every write of the round has completed, so the flush
                    // at the end of syncfs covers all of them.
                    let synced = self
                        .metrics
                        .log_syncfs
                        .time(fs.sync())
                        .await
                        .map_err(StorageError::from);
                    for w in written {
                        // Written before the syncfs began: durable with it,
                        // whether or not they asked to be.
                        let outcome = match (&w.outcome, &synced) {
                            (Err(e), _) | (Ok(true), Err(e)) => Err(e.clone()),
                            (Ok(_), Ok(())) => Ok(true),
                            (Ok(false), Err(_)) => Ok(false),
                        };
                        answer(w, outcome, &self.health);
                    }
                }
                _ => {
                    join_all(
                        written
                            .into_iter()
                            .map(|w| sync_and_answer(w, &self.health, &self.metrics)),
                    )
                    .await;
                }
            }
        }
    }

    /// Periodic fdatasync for `log.flush.interval.ms`.
    pub async fn run_periodic_sync(
        logs: impl Fn() -> Vec<SharedLog>,
        interval_ms: u64,
        health: LogDirHealth,
        metrics: Arc<ShardMetrics>,
    ) {
        loop {
            crate::shard::sleep(Duration::from_millis(interval_ms)).await;
            for log in logs() {
                let dirty = {
                    let l = log.borrow();
                    l.synced_offset < l.written_end && l.writer.is_some()
                };
                if dirty && health.failure().is_none() {
                    if let Err(e) = sync_log(&log, &metrics).await {
                        health.check(&e);
                    }
                }
            }
        }
    }
}

async fn sync_log(log: &SharedLog, metrics: &ShardMetrics) -> Result<(), StorageError> {
    let Some(mut w) = log.borrow_mut().writer.take() else {
        return Ok(());
    };
    let written = log.borrow().written_end;
    let r = metrics.log_fdatasync.time(w.log.sync()).await;
    let mut l = log.borrow_mut();
    l.writer = Some(w);
    r?;
    l.synced_offset = l.synced_offset.max(written);
    l.unsynced_messages = 0;
    Ok(())
}

/// A partition's part of a round, between its write and its answer.
struct Written {
    log: SharedLog,
    pending: Vec<Pending>,
    writer: SegmentWriter,
    /// Written, and whether it must be synced before the answer.
    outcome: Result<bool, StorageError>,
}

/// Write everything pending on `log`. `None` when there was nothing to
/// write or its waiters are already answered (the dir is offline, the log
/// closed).
async fn write_partition(
    log: SharedLog,
    health: &LogDirHealth,
    metrics: &ShardMetrics,
) -> Option<Written> {
    let (pending, writer) = {
        let mut l = log.borrow_mut();
        (std::mem::take(&mut l.pending), l.writer.take())
    };
    if let Some(cause) = health.failure() {
        let mut l = log.borrow_mut();
        l.writer = writer;
        roll_back(&mut l);
        drop(l);
        fail_all(pending.into(), LogDirHealth::offline_error(&cause));
        return None;
    }
    let Some(mut writer) = writer else {
        // Only one flush per partition runs at a time, so a missing writer
        // means the log was closed under us.
        fail_all(pending.into_iter().collect(), StorageError::Closed);
        return None;
    };
    let pending: Vec<Pending> = pending.into_iter().collect();
    let outcome = write_pending(&log, &mut writer, &pending, metrics)
        .await
        .map(|()| {
            let l = log.borrow();
            pending.iter().any(|p| p.needs_sync)
                || l.unsynced_messages >= l.config.flush_interval_messages
        });
    Some(Written {
        log,
        pending,
        writer,
        outcome,
    })
}

/// fdatasync `w`'s log if it must be, then answer its waiters.
async fn sync_and_answer(mut w: Written, health: &LogDirHealth, metrics: &ShardMetrics) {
    let outcome = match w.outcome {
        Ok(true) => metrics
            .log_fdatasync
            .time(w.writer.log.sync())
            .await
            .map_err(StorageError::from)
            .map(|()| true),
        Ok(false) => Ok(false),
        Err(ref e) => Err(e.clone()),
    };
    answer(w, outcome, health);
}

/// Hand the writer back and answer the round's waiters on `w`'s log;
/// `Ok(true)`: what it wrote is durable now.
fn answer(w: Written, outcome: Result<bool, StorageError>, health: &LogDirHealth) {
    let Written {
        log,
        pending,
        mut writer,
        ..
    } = w;
    // The dir went offline while this round synced (another partition's
    // fdatasync failed): what is on it is no longer trusted, so nothing more
    // is acknowledged from it.
    let outcome = match (outcome, health.failure()) {
        (Ok(_), Some(cause)) => Err(LogDirHealth::offline_error(&cause)),
        (o, _) => o,
    };
    let mut l = log.borrow_mut();
    match outcome {
        Ok(durable) => {
            if durable {
                l.synced_offset = l.written_end;
                l.unsynced_messages = 0;
            }
            // Zeros ahead of the next appends, now that these are answered
            // (see `Appender::start_ahead`).
            writer.log.start_ahead();
            l.writer = Some(writer);
            drop(l);
            for mut p in pending {
                if let Some(tx) = p.done.take() {
                    let _ = tx.send(Ok(()));
                }
            }
        }
        Err(e) => {
            l.writer = Some(writer);
            // Nothing of this round counts. Appends queued behind it were given
            // offsets after the failed ones, so they fail too and the log end
            // goes back to what is on disk.
            tracing::error!(topic = %l.topic, partition = l.partition, error = %e,
                "append failed; rolling back to offset {}", l.written_end);
            health.check(&e);
            roll_back(&mut l);
            let mut all: Vec<Pending> = pending;
            all.extend(std::mem::take(&mut l.pending));
            drop(l);
            fail_all(all, e);
        }
    }
}

/// The log end goes back to what was written.
fn roll_back(l: &mut super::log::PartitionLog) {
    let written = l.written_end;
    l.next_offset = written;
    l.tail.truncate_from(written);
    l.producers.truncate_from(written);
}

fn fail_all(pending: Vec<Pending>, e: StorageError) {
    for mut p in pending {
        if let Some(tx) = p.done.take() {
            let _ = tx.send(Err(e.clone()));
        }
    }
}

/// Write the pending appends in order, rolling segments where needed.
async fn write_pending(
    log: &SharedLog,
    writer: &mut SegmentWriter,
    pending: &[Pending],
    metrics: &ShardMetrics,
) -> Result<(), StorageError> {
    let mut i = 0;
    while i < pending.len() {
        // Roll before the first append that does not fit the active segment.
        let now = now_ms();
        // (An empty entry, a duplicate waiting for its first copy, never rolls.)
        let roll = !pending[i].bytes.is_empty() && {
            let l = log.borrow();
            l.should_roll(pending[i].bytes.len() as u64, pending[i].next_offset, now)
        };
        if roll {
            roll_segment(log, writer, pending[i].base_offset, now).await?;
        }
        // Take the longest run that fits the active segment without a roll
        // and one write's bound.
        let mut j = i + 1;
        let mut run_bytes = pending[i].bytes.len() as u64;
        {
            let l = log.borrow();
            while j < pending.len() {
                let with_next = run_bytes + pending[j].bytes.len() as u64;
                if with_next > l.config.write_max_bytes
                    || l.should_roll(with_next, pending[j].next_offset, now)
                {
                    break;
                }
                run_bytes = with_next;
                j += 1;
            }
        }
        let run = &pending[i..j];
        let start = writer.log.len();
        let before = { log.borrow().written_end };
        let res = metrics
            .log_write
            .time(writer.log.append_with(run_bytes as usize, |dst| {
                let mut at = 0;
                for p in run {
                    dst[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
                    at += p.bytes.len();
                }
            }))
            .await;
        if let Err(e) = res {
            // The failed write may have left bytes past the logical end; cut them
            // so a restart finds nothing of this append.
            let _ = writer.log.truncate(start).await;
            return Err(e.into());
        }
        let persist = {
            let mut l = log.borrow_mut();
            assert_eq!(before, l.written_end, "one flush per partition at a time");
            let interval = l.config.index_interval_bytes;
            let mut pos = start;
            let mut records = 0;
            let seg = l.segments.values_mut().next_back().unwrap();
            for p in run {
                for h in &p.headers {
                    seg.index.on_batch(h, pos, interval);
                    pos += h.size_bytes as u64;
                    seg.next_offset = h.next_offset();
                }
                records += p.records;
            }
            seg.size_bytes = pos;
            assert_eq!(seg.size_bytes, writer.log.len());
            let unpersisted = seg.index.offsets.len() - seg.index.offsets_persisted;
            let persisted_to = match seg.index.offsets_persisted {
                0 => 0,
                n => seg.index.offsets[n - 1].position as u64,
            };
            let persist = unpersisted >= INDEX_PERSIST_BATCH
                || (unpersisted > 0 && pos - persisted_to >= INDEX_PERSIST_LOG_BYTES);
            l.written_end = run.last().unwrap().next_offset;
            l.unsynced_messages += records;
            // Replica fetches wait on the log end, consumers on the high
            // watermark; both are woken.
            l.update_high_watermark();
            l.hw_moved.notify_all();
            persist
        };
        if persist {
            // Index files are rebuilt on unclean restart, so a failure here
            // costs only a rebuild.
            if let Err(e) = persist_active_index(log, writer, false).await {
                tracing::warn!(error = %e, "index write failed; it will be rebuilt on restart");
            }
        }
        i = j;
    }
    Ok(())
}

/// Write the active segment's new index entries.
pub async fn persist_active_index(
    log: &SharedLog,
    writer: &mut SegmentWriter,
    seal: bool,
) -> std::io::Result<()> {
    let base = log.borrow().active().base_offset;
    if seal {
        log.borrow_mut()
            .segments
            .get_mut(&base)
            .unwrap()
            .index
            .seal();
    }
    let new = log.borrow().active().index.unpersisted();
    new.write(writer).await?;
    if let Some(seg) = log.borrow_mut().segments.get_mut(&base) {
        seg.index.mark_persisted(&new);
    }
    Ok(())
}

/// Close the active segment and start a new one at `base_offset`.
///
/// The partition's appends wait for the whole roll (the committer holds the
/// writer), so its independent steps overlap: the new segment's files are
/// created (and their names fsync'd) while the old index's last entries are
/// written; then the old segment's three files are trimmed and fdatasync'd
/// side by side, while the producer snapshot is written. Done one after
/// another they took 2-12 ms a roll on W4 with 4 MiB segments
/// (perf/results/2026-12-07T11-30-00Z-roll). The old segment is closed
/// before the round's acks: writes of this round may lie in it, and its
/// fdatasync is what makes them durable.
pub async fn roll_segment(
    log: &SharedLog,
    writer: &mut SegmentWriter,
    base_offset: i64,
    now: i64,
) -> Result<(), StorageError> {
    let started = std::time::Instant::now();
    let (dir, files, preallocate_bytes) = {
        let l = log.borrow();
        (l.dir.clone(), l.files.clone(), l.config.preallocate_bytes)
    };
    let (created, sealed) = futures::future::join(
        create_segment(&files, &dir, base_offset, now, preallocate_bytes, true),
        persist_active_index(log, writer, true),
    )
    .await;
    let (seg, new_writer) = created?;
    sealed?;
    let old = std::mem::replace(writer, new_writer);
    log.borrow_mut().segments.insert(base_offset, seg);
    // Everything below the new segment is written: snapshot the producer
    // state there (Kafka does at every roll), so start-up reads the log only
    // from the newest segment on. Its write and two fsyncs run off the shard
    // thread, which meanwhile serves the shard's other partitions (this one's
    // appends wait for the writer, held here; no truncation can run either,
    // as it takes the writer first). Taken after the new segment is in the
    // log: it notes its position there.
    let snapshot = log.borrow().producer_snapshot(base_offset);
    let (closed, written) = futures::future::join(
        close_writer(old),
        crate::shard::run_blocking(move || snapshot.file.write(true).map(|()| snapshot)),
    )
    .await;
    match written {
        Ok(snapshot) => log.borrow_mut().note_producer_snapshot(&snapshot),
        Err(e) => tracing::warn!(dir = %dir.display(), base_offset, error = %e,
            "could not write the producer snapshot; start-up will read more of the log"),
    }
    closed?;
    tracing::debug!(dir = %dir.display(), base_offset,
        roll_us = started.elapsed().as_micros() as u64, "rolled segment");
    Ok(())
}

/// Create the three files of a new segment and, if `durable`, make their
/// names durable (false: the caller's syncfs does, for a new partition's
/// files made durable together with many others).
pub async fn create_segment(
    files: &Rc<OpenFiles>,
    dir: &std::path::Path,
    base_offset: i64,
    now: i64,
    preallocate_bytes: u64,
    durable: bool,
) -> Result<(Segment, SegmentWriter), StorageError> {
    let log = files
        .open(&format::segment_file(dir, base_offset, "log"), true)
        .await?;
    let index = format::segment_file(dir, base_offset, "index");
    let time_index = format::segment_file(dir, base_offset, "timeindex");
    let w = SegmentWriter {
        log: Appender::over(log.clone(), 0)
            .await?
            .preallocating(preallocate_bytes),
        index: Appender::open(files, &index, 0).await?,
        time_index: Appender::open(files, &time_index, 0).await?,
    };
    // The new files' names made durable, off the shard thread (a roll
    // happens while the partition takes appends).
    if durable {
        let d = dir.to_path_buf();
        crate::shard::run_blocking(move || std::fs::File::open(d)?.sync_all()).await?;
    }
    Ok((Segment::new(dir, base_offset, log, now), w))
}

/// Trim padding, flush and close a writer's three files, side by side (their
/// fdatasyncs then often share one journal commit).
pub async fn close_writer(w: SegmentWriter) -> Result<(), StorageError> {
    let (log, index, time_index) =
        futures::future::join3(w.log.close(), w.index.close(), w.time_index.close()).await;
    log?;
    index?;
    time_index?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::recovery::{open_partition, OpenParams, PreviousStop};
    use crate::storage::tail_cache::TailBudget;

    /// Append one acks=all batch to each of `partitions` logs, run the
    /// committer with syncfs from `min_partitions` on, and return the
    /// (syncfs, fdatasync) counts once every append is answered.
    fn round_of(partitions: i32, min_partitions: usize) -> (u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        crate::shard::block_on(async move {
            let metrics = Arc::new(ShardMetrics::default());
            let committer = Committer::new(
                LogDirHealth::default(),
                metrics.clone(),
                Some(FsSync::of_any_file_system(&root)),
                min_partitions,
            );
            let files = OpenFiles::new(64);
            let budget = TailBudget::new(1 << 20);
            let mut logs = Vec::new();
            for p in 0..partitions {
                let log = open_partition(OpenParams {
                    root: root.clone(),
                    topic: "t".into(),
                    partition: p,
                    topic_id: uuid::Uuid::new_v4(),
                    config: Default::default(),
                    previous_stop: PreviousStop::Clean,
                    recovery_point: None,
                    high_watermark: None,
                    tail_budget: budget.clone(),
                    files: files.clone(),
                    me: 0,
                    new_files_synced_by_caller: false,
                })
                .await
                .unwrap()
                .log;
                logs.push(Rc::new(RefCell::new(log)));
            }
            let batch = crate::client::records::encode_batch(
                &[(None, Some(bytes::Bytes::from_static(b"v")))],
                1_700_000_000_000,
            )
            .unwrap();
            // All queued before the committer first runs: one round.
            let mut acks = Vec::new();
            for log in &logs {
                let (_, ack) = log.borrow_mut().append(&batch, true, now_ms()).unwrap();
                committer.appended(log);
                acks.push(ack);
            }
            let run = crate::shard::spawn(committer.clone().run());
            for ack in acks {
                ack.await.unwrap().unwrap();
            }
            for log in &logs {
                let l = log.borrow();
                assert_eq!(
                    (l.written_end, l.synced_offset),
                    (1, 1),
                    "written and synced"
                );
            }
            committer.stop();
            run.await;
            let count = |h: &crate::metrics::Histogram| {
                let mut c = crate::metrics::Counts::default();
                h.add_to(&mut c);
                c.count()
            };
            (count(&metrics.log_syncfs), count(&metrics.log_fdatasync))
        })
    }

    /// An idempotent producer's batch at `sequence` (CRC fixed after).
    fn idempotent_batch(producer_id: i64, sequence: i32) -> bytes::Bytes {
        use crate::storage::format::{
            ATTRIBUTES_AT, BASE_SEQUENCE_AT, CRC_AT, PRODUCER_EPOCH_AT, PRODUCER_ID_AT,
        };
        let mut b = bytes::BytesMut::from(
            &crate::client::records::encode_batch(
                &[(None, Some(bytes::Bytes::from(vec![1u8; 600])))],
                1_700_000_000_000,
            )
            .unwrap()[..],
        );
        b[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
        b[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&0i16.to_be_bytes());
        b[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&sequence.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    }

    /// A roll snapshots the producers at the new segment's base (its write
    /// and fsyncs on a blocking thread), and the log notes where it was
    /// taken: at the new segment's start, even though the shard ran on
    /// while it was written.
    #[test]
    fn a_roll_writes_the_producer_snapshot_at_the_new_base_and_notes_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        crate::shard::block_on(async move {
            let metrics = Arc::new(ShardMetrics::default());
            let committer = Committer::new(LogDirHealth::default(), metrics, None, 0);
            let config = crate::storage::LogConfig {
                segment_bytes: 1024,
                ..Default::default()
            };
            let log = open_partition(OpenParams {
                root: root.clone(),
                topic: "t".into(),
                partition: 0,
                topic_id: uuid::Uuid::new_v4(),
                config,
                previous_stop: PreviousStop::Clean,
                recovery_point: None,
                high_watermark: None,
                tail_budget: TailBudget::new(1 << 20),
                files: OpenFiles::new(64),
                me: 0,
                new_files_synced_by_caller: false,
            })
            .await
            .unwrap()
            .log;
            let log = Rc::new(RefCell::new(log));
            let run = crate::shard::spawn(committer.clone().run());
            // Two batches of about 700 bytes: the second rolls at offset 1.
            for sequence in 0..2 {
                let batch = idempotent_batch(42, sequence);
                let (_, ack) = log.borrow_mut().append(&batch, true, now_ms()).unwrap();
                committer.appended(&log);
                ack.await.unwrap().unwrap();
            }
            committer.stop();
            run.await;
            let l = log.borrow();
            assert_eq!(l.segments.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
            assert_eq!(l.snapshot_offset, Some(1));
            assert_eq!(l.snapshot_position, Some((1, 0)));
            let file = crate::storage::format::segment_file(&l.dir, 1, "snapshot");
            let entries =
                crate::storage::format::decode_producer_snapshot(&std::fs::read(&file).unwrap())
                    .unwrap();
            assert_eq!(entries.len(), 1, "{entries:?}");
            assert_eq!((entries[0].producer_id, entries[0].last_sequence), (42, 0));
            assert!(!file.with_extension("tmp").exists());
        })
    }

    #[test]
    fn a_round_with_enough_partitions_to_sync_takes_one_syncfs() {
        assert_eq!(round_of(5, 3), (1, 0));
        // Below the threshold (or with it at 0, never): an fdatasync each.
        assert_eq!(round_of(2, 3), (0, 2));
        assert_eq!(round_of(5, 0), (0, 5));
    }
}
