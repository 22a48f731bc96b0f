//! Opening a partition at start-up: find its segments, check the tail batch by
//! batch after an unclean shutdown, truncate what is torn, rebuild indexes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::appender::Appender;
use super::commit::create_segment;
use super::epochs::LeaderEpochs;
use super::files::OpenFiles;
use super::format;
use super::index::SegmentIndex;
use super::log::{snapshot_files, LogConfig, PartitionLog, SharedLog};
use super::read::{Scanned, Scanner};
use super::replace::{write_atomically, write_replacing};
use super::segment::{Segment, SegmentWriter};
use super::tail_cache::{TailBudget, TailCache};
use super::{now_ms, StorageError};
use crate::shard::io::DmaFile;
use crate::shard::notify::Notify;

/// How the previous run of the broker on this log dir ended, as far as
/// start-up can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviousStop {
    /// The clean-shutdown marker: logs flushed and closed, indexes complete.
    Clean,
    /// No marker, but that run began in this boot of the machine: its
    /// process died (kill -9, a crash), the kernel did not. Every write it
    /// completed is in the files, fsync'ed or not; only one in flight at the
    /// end may be missing. A tail is checked from its last index entry (an
    /// entry reaches its file only after the batches it points to).
    ProcessOnly,
    /// No marker, and the machine may have restarted since: only what was
    /// fsync'ed is certain, so tails are checked from the recovery point.
    Unknown,
}

const BOOT_ID_SOURCE: &str = "/proc/sys/kernel/random/boot_id";

/// How the last run on `dir` ended: the clean-shutdown marker (removed
/// now), else whether that run began in this boot of the machine. Records
/// this boot for the next start. `fresh`: a new log dir (nothing to say).
pub fn previous_stop(dir: &Path, fresh: bool) -> std::io::Result<PreviousStop> {
    let boot_id = std::fs::read_to_string(BOOT_ID_SOURCE).ok();
    previous_stop_in(dir, fresh, boot_id.as_deref().map(str::trim))
}

fn previous_stop_in(
    dir: &Path,
    fresh: bool,
    boot_id: Option<&str>,
) -> std::io::Result<PreviousStop> {
    let marker = dir.join(format::CLEAN_SHUTDOWN_FILE);
    let boot_file = dir.join(format::BOOT_ID_FILE);
    let last_boot = std::fs::read_to_string(&boot_file).ok();
    let stop = if marker.exists() {
        std::fs::remove_file(&marker)?;
        PreviousStop::Clean
    } else if boot_id
        .is_some_and(|id| !id.is_empty() && last_boot.as_deref().map(str::trim) == Some(id))
    {
        tracing::info!(
            "no clean-shutdown marker, but the last run began in this boot of the machine: \
             its process stopped, the machine did not; partition tails will be checked from \
             their last index entry"
        );
        PreviousStop::ProcessOnly
    } else {
        if !fresh {
            tracing::info!("no clean-shutdown marker: partition tails will be checked from their recovery points");
        }
        PreviousStop::Unknown
    };
    // Before this run writes anything: a record of an older boot must not
    // vouch for writes of this one.
    // Failing that (a full disk), an older record is left: it names this
    // boot only if a run of this boot wrote it, which stays true.
    let recorded = match boot_id {
        Some(id) if !id.is_empty() => write_atomically(&boot_file, format!("{id}\n").as_bytes()),
        _ => match std::fs::remove_file(&boot_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    };
    if let Err(e) = recorded {
        tracing::warn!(file = %boot_file.display(), error = %e, "could not record this boot's id");
    }
    Ok(stop)
}

pub struct OpenParams {
    pub root: PathBuf,
    pub topic: String,
    pub partition: i32,
    pub topic_id: uuid::Uuid,
    pub config: LogConfig,
    pub previous_stop: PreviousStop,
    /// From `recovery-point-offset-checkpoint`: every batch below it was
    /// fsync'ed, so an unclean start checks only the batches from it on.
    pub recovery_point: Option<i64>,
    /// From `replication-offset-checkpoint`: what the ISR was known to hold
    /// when the broker stopped. A replica starts its high watermark there,
    /// not at its log end, so a tail no follower confirmed is not served
    /// to consumers (Kafka's rule); a leader alone in its ISR moves it to
    /// its log end as soon as it adopts the role.
    pub high_watermark: Option<i64>,
    pub tail_budget: Rc<TailBudget>,
    /// The shard's open-file cache.
    pub files: Rc<OpenFiles>,
    /// This broker's id (the replica the log belongs to).
    pub me: i32,
    /// A partition whose directory this call creates: write its files
    /// without fsyncs, for the caller to make durable together with the
    /// other new partitions (one syncfs) before it serves any of them.
    /// False: each file is fsync'd as it is written.
    pub new_files_synced_by_caller: bool,
}

/// An opened partition log.
pub struct Opened {
    pub log: PartitionLog,
    /// Its directory was created here and its files are not yet durable
    /// (`OpenParams::new_files_synced_by_caller`): not to be served before
    /// the caller's syncfs.
    pub needs_sync: bool,
}

/// Read `leader-epoch-checkpoint`; entries starting past the log end (a
/// tail recovery cut) are dropped. A missing or unreadable file: the log
/// was written by a single leader in epoch 0 (as sluice before replication
/// wrote it).
fn load_epochs(log: &mut PartitionLog, durable: bool) -> Result<(), StorageError> {
    let path = log.dir.join(format::LEADER_EPOCH_FILE);
    let read = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| format::decode_leader_epochs(&s));
    let end = log.next_offset;
    let epochs = match read {
        Some(e) => e,
        None => {
            if path.exists() {
                tracing::warn!(file = %path.display(), "unreadable leader-epoch-checkpoint; starting it again at epoch 0");
            }
            vec![(0, log.log_start_offset)]
        }
    };
    let before = epochs.len();
    // Each entry must start a newer epoch, no earlier than the one before
    // (as Kafka's `assign` keeps them): a file edited or damaged otherwise
    // keeps the entries that do.
    let mut ordered: Vec<(i32, i64)> = Vec::with_capacity(epochs.len());
    for (e, s) in epochs {
        if ordered.last().is_none_or(|(le, ls)| e > *le && s >= *ls) {
            ordered.push((e, s));
        }
    }
    if ordered.len() != before {
        tracing::warn!(file = %path.display(), kept = ordered.len(), of = before,
            "leader-epoch-checkpoint entries out of order; keeping those in order");
    }
    let mut epochs = ordered;
    epochs.retain(|(_, start)| *start <= end);
    let rewrite = before != epochs.len() || !path.exists();
    if epochs.is_empty() {
        epochs.push((0, log.log_start_offset));
    }
    log.leader_epoch = epochs.last().map_or(0, |(e, _)| *e);
    if rewrite {
        log.epochs.set(epochs, durable)?;
    } else {
        log.epochs = LeaderEpochs::loaded(path, epochs);
    }
    Ok(())
}

pub async fn open_partition(p: OpenParams) -> Result<Opened, StorageError> {
    let dir = format::partition_dir(&p.root, &p.topic, p.partition);
    // A shard alone opens a partition, so nothing creates it in between.
    let created = !dir.exists();
    std::fs::create_dir_all(&dir)?;
    // Why one syncfs for a new topic's partitions, not their own fsyncs:
    // each new partition made five (its partition.metadata and
    // leader-epoch-checkpoint, each file and directory, and the segment's
    // directory), so creating a 10,000-partition topic waited for 50,000
    // journal commits, 8 to 50 s on the 2-core VM.
    let deferred = created && p.new_files_synced_by_caller;
    let meta = dir.join(format::PARTITION_METADATA_FILE);
    // Empty: written and never synced before a crash (a deferred one).
    if std::fs::metadata(&meta).map_or(true, |m| m.len() == 0) {
        let bytes = format::encode_partition_metadata(p.topic_id);
        if deferred {
            write_replacing(&meta, bytes.as_bytes(), false)?;
        } else {
            // Its fsyncs off the shard thread.
            let path = meta.clone();
            crate::shard::run_blocking(move || write_atomically(&path, bytes.as_bytes())).await?;
        }
    }
    let mut bases: Vec<i64> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| format::parse_segment_file(e.file_name().to_str()?))
        .collect();
    bases.sort_unstable();
    let now = now_ms();
    let mut segments = BTreeMap::new();
    let writer;
    if bases.is_empty() {
        let (seg, w) = create_segment(
            &p.files,
            &dir,
            0,
            now,
            p.config.preallocate_bytes,
            !deferred,
        )
        .await?;
        segments.insert(0, seg);
        writer = w;
    } else {
        for (i, &base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let path = format::segment_file(&dir, base, "log");
            let file = p.files.open(&path, false).await?;
            let size_bytes = file.file().await?.file_size().await?;
            let mut seg = Segment::new(&dir, base, file, file_mtime_ms(&path).unwrap_or(now));
            seg.size_bytes = size_bytes;
            seg.next_offset = bases.get(i + 1).copied().unwrap_or(base);
            seg.index_loaded = false;
            if !last && !index_files_usable(&seg) {
                tracing::warn!(segment = %path.display(), "index missing, empty or zero-filled; rebuilding it from the log");
                rebuild_closed_segment_index(&mut seg, p.config.index_interval_bytes).await?;
            }
            segments.insert(base, seg);
        }
        let last_base = *bases.last().unwrap();
        let seg = segments.get_mut(&last_base).unwrap();
        writer = recover_active(
            seg,
            p.config.index_interval_bytes,
            p.previous_stop,
            p.recovery_point,
            p.config.preallocate_bytes,
        )
        .await?;
    }
    let next = segments.values().next_back().unwrap().next_offset;
    let log_start = *segments.keys().next().unwrap();
    let epochs_file = dir.join(format::LEADER_EPOCH_FILE);
    let mut log = PartitionLog {
        topic: p.topic,
        partition: p.partition,
        topic_id: p.topic_id,
        dir,
        config: p.config,
        segments,
        files: p.files.clone(),
        writer: Some(writer),
        log_start_offset: log_start,
        next_offset: next,
        written_end: next,
        high_watermark: p
            .high_watermark
            .map_or(next, |hw| hw.clamp(log_start, next)),
        synced_offset: next,
        leader_epoch: 0,
        replication: super::replica::Replication::single(p.me),
        epochs: LeaderEpochs::loaded(epochs_file, Vec::new()),
        pending: Default::default(),
        unsynced_messages: 0,
        tail: TailCache::new(p.tail_budget),
        hw_moved: Notify::new(),
        closed: false,
        producers: Default::default(),
        snapshot_offset: None,
        snapshot_position: None,
    };
    load_epochs(&mut log, !deferred)?;
    load_producer_state(&mut log).await?;
    Ok(Opened {
        log,
        needs_sync: deferred,
    })
}

/// Rebuild the idempotent producers' state: the newest valid snapshot at or
/// below the log end, then every batch after it. Snapshots are written at
/// each segment roll and at clean shutdown, so a clean start reads no batch
/// and an unclean one reads about one segment, however long the log.
async fn load_producer_state(log: &mut PartitionLog) -> Result<(), StorageError> {
    let end = log.next_offset;
    let now = now_ms();
    let expiration_ms = log.config.producer_id_expiration_ms;
    let mut from = log.log_start_offset;
    for (at, path) in snapshot_files(&log.dir).into_iter().rev() {
        if at > end {
            // Written before recovery cut the tail it describes.
            tracing::info!(snapshot = %path.display(), log_end_offset = end,
                "deleting a producer snapshot past the log end");
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let decoded = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| format::decode_producer_snapshot(&b).map_err(|e| e.to_string()));
        match decoded {
            Ok(entries) => {
                log.producers.load(&entries, now, expiration_ms);
                log.snapshot_offset = Some(at);
                from = from.max(at);
                break;
            }
            Err(e) => {
                tracing::warn!(snapshot = %path.display(), error = %e,
                    "deleting an unreadable producer snapshot; an older one and the log take its place");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if from >= end {
        return Ok(());
    }
    let mut batches = 0u64;
    let first_base = log.segment_for(from).map_or(from, |s| s.base_offset);
    for seg in log.segments.range(first_base..).map(|(_, s)| s) {
        let file = seg.file.file().await?;
        // From the index entry at or below `from` in its segment (a
        // snapshot taken inside the active segment), else the start.
        let start = if seg.base_offset == first_base && seg.index_loaded {
            seg.index.position_for(from).min(seg.size_bytes)
        } else {
            0
        };
        // Headers are all the replay needs: the records are not read.
        let mut scan = super::read::Scanner::headers(&file, start, seg.size_bytes);
        while let Some((_, header)) = scan.next_header().await? {
            if header.last_offset() >= from && header.base_offset < end {
                log.producers.replay(&header);
                batches += 1;
            }
        }
    }
    log.producers.remove_expired(now, expiration_ms);
    tracing::info!(topic = %log.topic, partition = log.partition, from_offset = from,
        to_offset = end, batches, producers = log.producers.len(),
        "rebuilt producer state from the log");
    // The next start reads none of this again.
    if let Err(e) = log.write_producer_snapshot(end) {
        tracing::warn!(topic = %log.topic, partition = log.partition, error = %e,
            "could not write the producer snapshot");
    }
    Ok(())
}

fn file_mtime_ms(path: &Path) -> Option<i64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64)
}

/// Both index files are there, and a segment holding batches has a time
/// index that starts with a real entry (a sealed segment always has one; a
/// zero-filled file, as a crash of the filesystem can leave, does not).
fn index_files_usable(seg: &Segment) -> bool {
    if !seg.path("index").exists() {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(seg.path("timeindex")) else {
        return false;
    };
    if seg.size_bytes == 0 {
        return true;
    }
    let mut first = [0u8; format::TIME_INDEX_ENTRY_BYTES];
    std::io::Read::read_exact(&mut f, &mut first).is_ok() && first.iter().any(|b| *b != 0)
}

/// Bring the last segment to a consistent state and open its writer.
async fn recover_active(
    seg: &mut Segment,
    interval: u64,
    previous: PreviousStop,
    recovery_point: Option<i64>,
    preallocate_bytes: u64,
) -> Result<SegmentWriter, StorageError> {
    let file_len = seg.size_bytes;
    // Clean restart: the indexes are complete, so only the bytes after the last
    // index entry (about one index interval) are read. Unclean restart with a
    // recovery point: the index up to the recovery point is kept and the scan
    // starts at its last entry below it (after only the process died: at its
    // last entry, checked against the log). Otherwise scan it all.
    let trusted = previous == PreviousStop::Clean && seg.load_indexes();
    let check_below = match previous {
        PreviousStop::ProcessOnly => Some(i64::MAX),
        _ => recovery_point,
    };
    let mut resume = None;
    if !trusted {
        if let Some(r) = check_below.filter(|r| *r > seg.base_offset) {
            if seg.load_indexes() {
                let base = seg.base_offset;
                let i = seg
                    .index
                    .offsets
                    .partition_point(|e| base + e.relative_offset as i64 <= r);
                if i > 0 {
                    let e = seg.index.offsets[i - 1];
                    seg.index.truncate_to_entry(i - 1);
                    resume = Some((e.position as u64, base + e.relative_offset as i64));
                }
            }
        }
    }
    let (valid_end, next_offset, cut) = match scan_tail(seg, trusted, resume, file_len, interval)
        .await?
    {
        Some(found) => found,
        None => {
            // The index disagreed with the log: check all of it.
            tracing::warn!(segment = %seg.path("log").display(),
                    "index does not match the log below the recovery point; scanning the whole segment");
            resume = None;
            scan_tail(seg, false, None, file_len, interval)
                .await?
                .expect("a scan from the start has nothing to disagree with")
        }
    };
    if let Some((pos, offset)) = resume {
        let segment = seg.path("log");
        let bytes_checked = file_len - pos;
        if previous == PreviousStop::ProcessOnly {
            tracing::info!(segment = %segment.display(), from_offset = offset, bytes_checked,
                "checked the segment from its last index entry (the process stopped, not the machine)");
        } else {
            tracing::info!(segment = %segment.display(), from_offset = offset, bytes_checked,
                "checked the segment from its recovery point");
        }
    }
    seg.size_bytes = valid_end;
    seg.next_offset = next_offset;
    let mut log = Appender::over(seg.file.clone(), valid_end)
        .await?
        .preallocating(preallocate_bytes);
    if file_len > valid_end {
        let padding_only = all_zero(&*seg.file.file().await?, valid_end, file_len).await?;
        let (pos, error) = cut.expect("a shorter valid length comes from an invalid batch");
        if padding_only {
            tracing::info!(segment = %seg.path("log").display(), bytes = file_len - valid_end,
                "trimmed zeros after the last batch (block padding, or space written ahead)");
        } else {
            tracing::warn!(segment = %seg.path("log").display(), position = pos, bytes_cut = file_len - valid_end,
                first_lost_offset = next_offset, %error,
                "recovery truncated a torn or corrupt tail; the log now ends at offset {next_offset}");
        }
        log.truncate(valid_end).await?;
    }
    // Trusted index files keep their entries (up to the recovery point when
    // resuming from it); rebuilt ones start empty.
    let keep_index = trusted || resume.is_some();
    let (index_len, time_len) = if keep_index {
        (
            (seg.index.offsets_persisted * format::OFFSET_INDEX_ENTRY_BYTES) as u64,
            (seg.index.times_persisted * format::TIME_INDEX_ENTRY_BYTES) as u64,
        )
    } else {
        seg.index.offsets_persisted = 0;
        seg.index.times_persisted = 0;
        (0, 0)
    };
    let files = seg.file.files().clone();
    let mut index = Appender::open(&files, &seg.path("index"), index_len).await?;
    let mut time_index = Appender::open(&files, &seg.path("timeindex"), time_len).await?;
    if !trusted {
        // Cut what lies past the kept entries, so a crash before the next
        // clean close cannot leave stale entries to be read back.
        index.truncate(index_len).await?;
        time_index.truncate(time_len).await?;
    }
    let mut w = SegmentWriter {
        log,
        index,
        time_index,
    };
    let new = seg.index.unpersisted();
    match new.write(&mut w).await {
        Ok(()) => seg.index.mark_persisted(&new),
        Err(e) => {
            // The index is complete in memory; only its files are behind. A
            // full disk must not keep the partition offline: serve it, and
            // leave empty index files that the next start rebuilds.
            tracing::warn!(segment = %seg.path("log").display(), error = %e,
                "could not write the rebuilt index; serving from memory");
            w.index.truncate(0).await?;
            w.time_index.truncate(0).await?;
            seg.index.offsets_persisted = 0;
            seg.index.times_persisted = 0;
        }
    }
    Ok(w)
}

/// How long a truncation waits for the committer to hand the writer back.
const TRUNCATE_WAIT_MS: u64 = 10_000;

/// Wait until nothing is queued or being written, then take the writer.
async fn quiesce(log: &SharedLog) -> Result<SegmentWriter, StorageError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(TRUNCATE_WAIT_MS);
    loop {
        {
            let mut l = log.borrow_mut();
            if l.closed {
                return Err(StorageError::Closed);
            }
            if l.pending.is_empty() {
                if let Some(w) = l.writer.take() {
                    return Ok(w);
                }
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(StorageError::Io(std::io::Error::other(
                "the log stayed busy; truncation not done",
            )));
        }
        crate::shard::sleep(std::time::Duration::from_millis(1)).await;
    }
}

fn delete_segment_files(seg: &Segment) {
    for ext in ["log", "index", "timeindex"] {
        let path = seg.path(ext);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), error = %e, "could not delete a truncated segment file");
            }
        }
    }
}

/// Cut the log back to `offset` (a follower removing records its leader
/// does not have, KIP-101): later segments are deleted, the segment holding
/// `offset` is cut at the batch starting there and becomes the active one
/// again, and the offsets, caches, producer state and epoch cache follow.
/// A batch straddling `offset` goes too (leaders' epoch boundaries are batch
/// boundaries, so this does not happen in practice).
pub async fn truncate_to(log: &SharedLog, offset: i64) -> Result<i64, StorageError> {
    let writer = quiesce(log).await?;
    let (end, start) = {
        let l = log.borrow();
        (l.next_offset, l.log_start_offset)
    };
    if offset >= end {
        log.borrow_mut().writer = Some(writer);
        return Ok(end);
    }
    if offset <= start {
        log.borrow_mut().writer = Some(writer);
        return truncate_fully_and_start_at(log, start)
            .await
            .map(|()| start);
    }
    close_writer_quietly(writer).await;
    let (interval, preallocate_bytes, base) = {
        let mut l = log.borrow_mut();
        let base = *l
            .segments
            .range(..=offset)
            .next_back()
            .expect("offset is above the log start")
            .0;
        let later: Vec<i64> = l.segments.range(base + 1..).map(|(b, _)| *b).collect();
        for b in later {
            let seg = l.segments.remove(&b).unwrap();
            delete_segment_files(&seg);
        }
        (
            l.config.index_interval_bytes,
            l.config.preallocate_bytes,
            base,
        )
    };
    // The position of the first batch at or past `offset`.
    let (file, from, size) = {
        let mut l = log.borrow_mut();
        let seg = l.segments.get_mut(&base).unwrap();
        if !seg.index_loaded {
            seg.load_indexes();
            seg.index_loaded = true;
        }
        (
            seg.file.clone(),
            seg.index.position_for(offset),
            seg.size_bytes,
        )
    };
    let file = file.file().await?;
    let mut scan = Scanner::headers(&file, from, size);
    // Cut at the first batch reaching `offset`, or at bytes that are not a
    // batch (the walk stops on them), or nowhere (the end).
    let cut_at = loop {
        match scan.next_header().await? {
            Some((pos, header)) if header.next_offset() > offset => break pos,
            Some(_) => {}
            None => break scan.pos,
        }
    };
    let writer = {
        let mut l = log.borrow_mut();
        let seg = l.segments.get_mut(&base).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(seg.path("log"))?
            .set_len(cut_at)?;
        seg.size_bytes = cut_at;
        // Indexes are rebuilt from the cut segment.
        for ext in ["index", "timeindex"] {
            std::fs::OpenOptions::new()
                .write(true)
                .open(seg.path(ext))?
                .set_len(0)?;
        }
        // Detach the segment while it is rebuilt (it is awaited on).
        l.segments.remove(&base).unwrap()
    };
    let mut seg = writer;
    let w = recover_active(
        &mut seg,
        interval,
        PreviousStop::Unknown,
        None,
        preallocate_bytes,
    )
    .await;
    let new_end = seg.next_offset;
    let mut l = log.borrow_mut();
    l.segments.insert(base, seg);
    // Whatever happens next, nothing cached from before the cut is served.
    l.tail.truncate_from(new_end);
    let w = w?;
    l.writer = Some(w);
    l.next_offset = new_end;
    l.written_end = new_end;
    l.synced_offset = l.synced_offset.min(new_end);
    l.high_watermark = l.high_watermark.min(new_end);
    l.tail.truncate_from(new_end);
    l.producers.truncate_from(new_end);
    if let Err(e) = l.epochs.truncate_from_end(new_end) {
        tracing::warn!(error = %e, "could not write leader-epoch-checkpoint");
    }
    for (at, path) in snapshot_files(&l.dir) {
        if at > new_end {
            let _ = std::fs::remove_file(path);
        }
    }
    if l.snapshot_offset.is_some_and(|s| s > new_end) {
        l.snapshot_offset = None;
        l.snapshot_position = None;
    }
    tracing::info!(topic = %l.topic, partition = l.partition, from = end, to = new_end,
        "truncated the log to match its leader");
    Ok(new_end)
}

/// Drop the whole log and start it empty at `offset` (a follower whose log
/// ends before its leader's log start, or is ahead of all of it).
pub async fn truncate_fully_and_start_at(log: &SharedLog, offset: i64) -> Result<(), StorageError> {
    let writer = quiesce(log).await?;
    close_writer_quietly(writer).await;
    let dir = {
        let mut l = log.borrow_mut();
        for seg in std::mem::take(&mut l.segments).into_values() {
            delete_segment_files(&seg);
        }
        for (_, path) in snapshot_files(&l.dir) {
            let _ = std::fs::remove_file(path);
        }
        l.dir.clone()
    };
    let files = log.borrow().files.clone();
    let preallocate_bytes = log.borrow().config.preallocate_bytes;
    let created = create_segment(&files, &dir, offset, now_ms(), preallocate_bytes, true).await;
    let mut l = log.borrow_mut();
    let (seg, w) = match created {
        Ok(x) => x,
        Err(e) => {
            // Nothing to write to: the log refuses appends until reopened.
            l.closed = true;
            return Err(e);
        }
    };
    l.segments.insert(offset, seg);
    l.writer = Some(w);
    l.log_start_offset = offset;
    l.next_offset = offset;
    l.written_end = offset;
    l.synced_offset = offset;
    l.high_watermark = offset;
    l.tail.truncate_from(i64::MIN);
    l.producers = Default::default();
    l.snapshot_offset = None;
    l.snapshot_position = None;
    let epoch = l.latest_epoch().max(0);
    if let Err(e) = l.epochs.set(vec![(epoch, offset)], true) {
        tracing::warn!(error = %e, "could not write leader-epoch-checkpoint");
    }
    tracing::info!(topic = %l.topic, partition = l.partition, offset,
        "emptied the log; it starts again at the leader's offset");
    Ok(())
}

async fn close_writer_quietly(w: SegmentWriter) {
    if let Err(e) = super::commit::close_writer(w).await {
        tracing::warn!(error = %e, "closing a segment writer before truncation failed");
    }
}

/// Scan the active segment's tail: from the last index entry (`trusted`),
/// from `resume` (position, offset of a kept index entry), or from the start
/// with a fresh index. Returns (valid end, next offset, first invalid batch),
/// or `None` when the batch at `resume` is not the one the index promised.
async fn scan_tail(
    seg: &mut Segment,
    trusted: bool,
    resume: Option<(u64, i64)>,
    file_len: u64,
    interval: u64,
) -> Result<Option<(u64, i64, Option<(u64, format::BatchError)>)>, StorageError> {
    let scan_from = if let Some((pos, _)) = resume {
        pos
    } else if trusted {
        seg.index.offsets.last().map_or(0, |e| e.position as u64)
    } else {
        0
    };
    if !trusted && resume.is_none() {
        seg.index = SegmentIndex::new(seg.base_offset);
        seg.index_loaded = true;
    }
    let mut valid_end = scan_from;
    let mut next_offset = match resume {
        Some((_, offset)) => offset,
        None => seg.base_offset,
    };
    if trusted {
        if let Some(e) = seg.index.offsets.last() {
            next_offset = seg.base_offset + e.relative_offset as i64;
        }
    }
    let mut cut = None;
    let file = seg.file.file().await?;
    let mut scan = Scanner::new(&file, scan_from, file_len, true);
    let mut first = true;
    while let Some(item) = scan.next().await? {
        match item {
            Scanned::Batch { pos, header, .. } => {
                if first {
                    if let Some((_, offset)) = resume {
                        if header.base_offset != offset {
                            return Ok(None);
                        }
                    }
                }
                if !(trusted && first) {
                    seg.index.on_batch(&header, pos, interval);
                }
                first = false;
                valid_end = pos + header.size_bytes as u64;
                next_offset = header.next_offset();
            }
            Scanned::Invalid { pos, error } => {
                if first && resume.is_some() {
                    return Ok(None);
                }
                cut = Some((pos, error));
                break;
            }
        }
    }
    Ok(Some((valid_end, next_offset, cut)))
}

async fn all_zero(file: &DmaFile, from: u64, to: u64) -> Result<bool, StorageError> {
    let b = file
        .read_at(from, (to - from).min(1 << 20) as usize)
        .await?;
    Ok(to - from <= 1 << 20 && b.iter().all(|x| *x == 0))
}

/// Rebuild and rewrite both index files of a closed segment by scanning it.
async fn rebuild_closed_segment_index(
    seg: &mut Segment,
    interval: u64,
) -> Result<(), StorageError> {
    seg.index = SegmentIndex::new(seg.base_offset);
    let file = seg.file.file().await?;
    let mut scan = Scanner::headers(&file, 0, seg.size_bytes);
    while let Some((pos, header)) = scan.next_header().await? {
        seg.index.on_batch(&header, pos, interval);
    }
    drop(file);
    seg.index.seal();
    let files = seg.file.files().clone();
    let mut w = SegmentWriter {
        log: Appender::over(seg.file.clone(), seg.size_bytes).await?,
        index: Appender::open(&files, &seg.path("index"), 0).await?,
        time_index: Appender::open(&files, &seg.path("timeindex"), 0).await?,
    };
    w.index.truncate(0).await?;
    w.time_index.truncate(0).await?;
    let new = seg.index.unpersisted();
    new.write(&mut w).await?;
    seg.index.mark_persisted(&new);
    seg.index_loaded = true;
    super::commit::close_writer(w).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::files::OpenFiles;

    #[test]
    fn the_previous_stop_is_told_by_the_marker_then_by_the_boot_the_last_run_began_in() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let boot = d.join(format::BOOT_ID_FILE);
        let stop = |fresh, id| previous_stop_in(d, fresh, id).unwrap();
        // A new dir: nothing to go by; this boot is recorded.
        assert_eq!(stop(true, Some("boot-a")), PreviousStop::Unknown);
        assert_eq!(std::fs::read_to_string(&boot).unwrap(), "boot-a\n");
        // Stopped without the marker, machine up since: only the process died.
        assert_eq!(stop(false, Some("boot-a")), PreviousStop::ProcessOnly);
        // The machine restarted in between: only fsync'ed data is certain.
        assert_eq!(stop(false, Some("boot-b")), PreviousStop::Unknown);
        assert_eq!(std::fs::read_to_string(&boot).unwrap(), "boot-b\n");
        // The marker wins, and is used up.
        std::fs::write(d.join(format::CLEAN_SHUTDOWN_FILE), b"").unwrap();
        assert_eq!(stop(false, Some("boot-c")), PreviousStop::Clean);
        assert!(!d.join(format::CLEAN_SHUTDOWN_FILE).exists());
        // No boot id to be had: never ProcessOnly, and no stale record left.
        assert_eq!(stop(false, None), PreviousStop::Unknown);
        assert!(!boot.exists());
        assert_eq!(stop(false, None), PreviousStop::Unknown);
    }

    fn new_partition(root: &Path, partition: i32, id: uuid::Uuid, by_caller: bool) -> OpenParams {
        OpenParams {
            root: root.to_path_buf(),
            topic: "t".into(),
            partition,
            topic_id: id,
            config: Default::default(),
            previous_stop: PreviousStop::Clean,
            recovery_point: None,
            high_watermark: None,
            tail_budget: TailBudget::new(1 << 20),
            files: OpenFiles::new(16),
            me: 0,
            new_files_synced_by_caller: by_caller,
        }
    }

    /// Partition 0 of a new topic under `root`, opened.
    async fn open_new(root: &Path, id: uuid::Uuid) -> PartitionLog {
        open_partition(new_partition(root, 0, id, false))
            .await
            .unwrap()
            .log
    }

    /// The entries of the `leader-epoch-checkpoint` in `dir`.
    fn epochs_on_disk(dir: &Path) -> Option<Vec<(i32, i64)>> {
        format::decode_leader_epochs(
            &std::fs::read_to_string(dir.join(format::LEADER_EPOCH_FILE)).unwrap(),
        )
    }

    /// A new leader epoch written ahead (many partitions' together) is taken
    /// only while the log still ends where it was taken; otherwise leading
    /// writes the entry at the log's real end itself.
    #[test]
    fn a_leader_epoch_written_ahead_is_taken_only_if_the_log_did_not_move() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        crate::shard::block_on(async move {
            let mut log = open_new(&root, uuid::Uuid::new_v4()).await;
            let read = |log: &PartitionLog| epochs_on_disk(&log.dir).unwrap();
            assert!(log.epochs_ahead([(0, 0)]).is_none(), "epoch 0 is known");
            let c = log.epochs_ahead([(3, log.next_offset)]).unwrap();
            assert!(c.write(true).unwrap());
            assert!(log.take_epochs_ahead(&c, true));
            assert_eq!(read(&log), vec![(0, 0), (3, 0)]);
            log.become_leader(3);
            assert_eq!(&*log.epochs, &[(0, 0), (3, 0)], "nothing more to write");

            // Taken at offset 0, but a record arrives before it is noted.
            let c = log.epochs_ahead([(5, log.next_offset)]).unwrap();
            assert!(c.write(true).unwrap());
            let batch = crate::client::records::encode_batch(
                &[(None, Some(bytes::Bytes::from_static(b"v")))],
                now_ms(),
            )
            .unwrap();
            let _ack = log.append(&batch, false, now_ms()).unwrap();
            assert!(!log.take_epochs_ahead(&c, true));
            log.become_leader(5);
            assert_eq!(&*log.epochs, &[(0, 0), (3, 0), (5, 1)]);
            assert_eq!(
                read(&log),
                vec![(0, 0), (3, 0), (5, 1)],
                "rewritten at the real end"
            );
        });
    }

    /// A follower's epochs written ahead of fetched records are taken only
    /// with records that check out; otherwise the file goes back to what
    /// the cache holds.
    #[test]
    fn epochs_written_ahead_are_taken_only_with_records_that_check_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        crate::shard::block_on(async move {
            let mut log = open_new(&root, uuid::Uuid::new_v4()).await;
            let pdir = log.dir.clone();
            let read = || epochs_on_disk(&pdir);
            let mut batch = crate::client::records::encode_batch(
                &[(None, Some(bytes::Bytes::from_static(b"v")))],
                now_ms(),
            )
            .unwrap()
            .to_vec();
            format::stamp_offset_and_epoch(&mut batch, 0, 5);
            let starts = format::epoch_starts(&batch, log.latest_epoch());
            assert_eq!(starts, vec![(5, 0)]);
            let a = log.epochs_ahead(starts).unwrap();
            assert!(a.write(true).unwrap());
            // Damaged on the way: refused, nothing taken, the file put back.
            let mut bad = batch.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0xff;
            assert!(log
                .append_replicated(bytes::Bytes::from(bad), false, Some(&a))
                .is_err());
            assert_eq!(&*log.epochs, &[(0, 0)]);
            log.forget_epochs_ahead(&a);
            assert_eq!(read(), Some(vec![(0, 0)]));
            // Written ahead again, then appended with records that check out.
            let a = log.epochs_ahead([(5, 0)]).unwrap();
            assert!(a.write(true).unwrap());
            let _done = log
                .append_replicated(bytes::Bytes::from(batch), false, Some(&a))
                .unwrap();
            assert_eq!(&*log.epochs, &[(0, 0), (5, 0)]);
            log.forget_epochs_ahead(&a);
            assert_eq!(
                read(),
                Some(vec![(0, 0), (5, 0)]),
                "taken: nothing to put back"
            );
        });
    }

    /// A checkpoint whose entries are out of order (edited, or damaged) is
    /// no reason to refuse the partition: the entries in order are kept and
    /// written back.
    #[test]
    fn a_leader_epoch_file_out_of_order_keeps_the_entries_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        crate::shard::block_on(async move {
            let id = uuid::Uuid::new_v4();
            let pdir = open_new(&root, id).await.dir.clone();
            std::fs::write(
                pdir.join(format::LEADER_EPOCH_FILE),
                format::encode_leader_epochs(&[(0, 0), (5, 0), (3, 0)]),
            )
            .unwrap();
            let log = open_new(&root, id).await;
            assert_eq!(&*log.epochs, &[(0, 0), (5, 0)]);
            assert_eq!(log.leader_epoch, 5);
            assert_eq!(epochs_on_disk(&pdir), Some(vec![(0, 0), (5, 0)]));
        });
    }

    #[test]
    fn a_new_partition_left_to_the_callers_syncfs_says_so_and_an_empty_metadata_file_is_rewritten()
    {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        crate::shard::block_on(async move {
            let id = uuid::Uuid::new_v4();
            let meta_of = |dir: &Path| {
                std::fs::read_to_string(dir.join(format::PARTITION_METADATA_FILE))
                    .ok()
                    .and_then(|s| format::decode_partition_metadata(&s))
            };
            // Created here and left to the caller: it says so, with every
            // file in place.
            let o = open_partition(new_partition(&root, 0, id, true))
                .await
                .unwrap();
            assert!(o.needs_sync);
            let pdir = o.log.dir.clone();
            assert_eq!(meta_of(&pdir), Some(id));
            assert_eq!(epochs_on_disk(&pdir), Some(vec![(0, 0)]));
            for ext in ["log", "index", "timeindex"] {
                assert!(format::segment_file(&pdir, 0, ext).exists(), "{ext}");
            }
            drop(o);
            // A crash before that syncfs can leave partition.metadata empty:
            // the next open writes it again. An existing partition has
            // nothing left to the caller.
            std::fs::write(pdir.join(format::PARTITION_METADATA_FILE), b"").unwrap();
            let o = open_partition(new_partition(&root, 0, id, true))
                .await
                .unwrap();
            assert!(!o.needs_sync);
            assert_eq!(meta_of(&pdir), Some(id));
            // Not left to the caller: its own fsyncs, nothing to say.
            let o = open_partition(new_partition(&root, 1, id, false))
                .await
                .unwrap();
            assert!(!o.needs_sync);
            assert_eq!(meta_of(&o.log.dir), Some(id));
        });
    }

    #[test]
    fn this_machine_has_a_boot_id() {
        // ProcessOnly depends on it; on a kernel without it every unclean
        // start would check from the recovery point (safe, but slower).
        let id = std::fs::read_to_string(BOOT_ID_SOURCE).unwrap();
        assert_eq!(id.trim().len(), 36, "{id:?}");
    }
}
