//! Append-only file over O_DIRECT: arbitrary-length appends become aligned DMA
//! writes by rewriting the last partial block together with the new bytes.
//!
//! Small appends keep zeros written ahead of themselves (`preallocating`):
//! the next ones then overwrite blocks the file system has already allocated,
//! so their fdatasync has no allocation or file size to write, only the
//! device's cache to flush. Measured on ext4 (perf/results, small-keyed):
//! each appending fdatasync also wrote the block bitmap, the group
//! descriptor and the inode, one synchronous write after the other.
//!
//! The zeros are written (and fdatasync'd) by a task beside the appends, not
//! by an append: written inline, a unit of zeros sat on one produce's path
//! and raised the produce p99 (perf/results/2026-12-06T08-50-00Z-broker-latency,
//! 1 MiB unit at 50k msg/s: log write p99 0.3 -> 0.9 ms). An append waits for
//! them only when it reaches them before they are done. They start once the
//! append that wants them is durable (the committer calls `start_ahead`), so
//! that append's fdatasync does not run beside theirs.
//! The task fdatasyncs them so that no append's fdatasync carries their
//! allocation: left to the next append's, it raised the fdatasync p99 from
//! 0.8-1.0 to 1.2-1.5 ms at 50k msg/s (perf/results/2026-12-06T20-45-00Z-zeros-ahead).

use std::cell::Cell;
use std::io;
use std::path::Path;
use std::rc::Rc;

use futures::FutureExt;

use super::files::{FileHandle, OpenFiles};
use crate::shard::io::DmaFile;
use crate::shard::Task;

/// Zeros are written ahead for about this many more appends of the size just
/// made (bounded by `sluice.log.preallocate.bytes`), so a partition's
/// preallocation follows its traffic: an idle or trickling partition keeps
/// `AHEAD_MIN_BYTES`, not the maximum, of zeros on disk.
const AHEAD_APPENDS: u64 = 8;

/// Least written ahead at a time.
const AHEAD_MIN_BYTES: u64 = 64 << 10;

/// A partition that uses up half of its zeros ahead within this long gets
/// twice as many the next time (up to `sluice.log.preallocate.bytes`); one
/// that takes longer gets half as many (down to what its appends want). So
/// a busy partition of small appends writes its zeros, and fdatasyncs them,
/// in a few large pieces instead of many 64 KiB ones: small-keyed's 100
/// partitions wrote about 2,000 pieces a second, each with its own device
/// flush.
const AHEAD_GROW_WITHIN_MS: u64 = 1000;

/// Only appends smaller than this keep zeros ahead: a larger one has little
/// allocation to save per byte, and when it reaches zeros still in flight it
/// waits for their write and fdatasync; the zeros ahead of it are also
/// written twice, which a disk-bound producer of large batches pays for.
/// (The version without this bound made W1 0.87x of the 64 KiB inline
/// zeros, perf/results/2026-12-06T20-48-43Z-peer; with it 0.91x,
/// 2026-12-06T21-00-29Z-peer; one binary against itself 0.82-0.88x: the
/// harness cannot tell them apart, so this bound is a precaution.)
const AHEAD_APPEND_MAX_BYTES: u64 = 64 << 10;

/// Zeros ahead go to the disk in writes of at most this size, one after the
/// other, then one fdatasync for them all: an append's write queued behind
/// one 1 MiB write of zeros waited for all of it (fixed rate 50k msg/s: log
/// write p99 0.29-0.38 ms with 64 KiB pieces, 0.58-0.83 ms with 1 MiB ones,
/// perf/results/2026-12-07T01-40-00Z-small-keyed-cpu).
const AHEAD_WRITE_BYTES: u64 = 64 << 10;

/// At most this many bytes of zeros are being written ahead by a shard at
/// once (each write holds a DMA buffer of its size, at most
/// `AHEAD_WRITE_BYTES`): 128 partitions' pieces at once. An appender
/// finding no room tries again after its next append. Counted in bytes, not
/// writes: with a limit of 8 writes, most of a shard's 50 small-keyed
/// partitions appended past their zeros, and its records/s fell below what
/// it was with zeros written inline (median 291k vs 313k,
/// perf/results/2026-12-06T20-45-00Z-zeros-ahead).
pub const AHEAD_IN_FLIGHT_BYTES_MAX: u64 = 8 << 20;

thread_local! {
    /// Bytes of zeros being written ahead on this thread (a shard is a thread).
    static AHEAD_IN_FLIGHT_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// Room for one write ahead in the shard's `AHEAD_IN_FLIGHT_BYTES_MAX`,
/// given back when dropped (also when its task is cancelled).
struct AheadSlot(u64);

impl AheadSlot {
    fn take(bytes: u64) -> Option<Self> {
        AHEAD_IN_FLIGHT_BYTES.with(|n| {
            (n.get() + bytes <= AHEAD_IN_FLIGHT_BYTES_MAX).then(|| {
                n.set(n.get() + bytes);
                AheadSlot(bytes)
            })
        })
    }
}

impl Drop for AheadSlot {
    fn drop(&mut self) {
        AHEAD_IN_FLIGHT_BYTES.with(|n| {
            assert!(n.get() >= self.0, "write-ahead room given back twice");
            n.set(n.get() - self.0)
        });
    }
}

/// What a write of zeros ahead did.
struct AheadDone {
    /// End of the zeros it wrote (its start when it wrote none).
    reached: u64,
    /// Why it stopped short of what it meant to write (no room is no harm:
    /// the appends allocate as they go).
    unwritten: Option<io::Error>,
    /// Its fdatasync, when it wrote any.
    synced: io::Result<()>,
}

pub struct Appender {
    /// Through the shard's open-file cache: an idle appender holds no
    /// descriptor (its tail block is kept here, so reopening reads nothing).
    file: FileHandle,
    align: u64,
    /// Logical length: bytes that belong to the file. The file on disk may be
    /// longer (zero padding up to the next block) until `close` trims it.
    len: u64,
    /// Copy of the bytes in [align_down(len), len): the partial last block,
    /// rewritten in front of the next append.
    tail: Vec<u8>,
    /// End of what this appender has written to the file: zeros lie in
    /// [len, written_to) when zeros were written ahead. Appends that end
    /// below it overwrite allocated blocks.
    written_to: u64,
    /// Most zeros kept written ahead (a multiple of `align`); 0 = never.
    preallocate_bytes: u64,
    /// Zeros being written from `written_to` on, beside the appends.
    ahead: Option<Task<AheadDone>>,
    /// Zeros the last append wants kept ahead of appends its size, for
    /// `start_ahead` (`None` when it wants none: too large, or off).
    ahead_wanted: Option<u64>,
    /// Size of the last write of zeros ahead, and when it started
    /// (`AHEAD_GROW_WITHIN_MS`).
    ahead_last: Option<(u64, std::time::Instant)>,
    /// The fdatasync of zeros written ahead failed. The next `sync` reports
    /// it: the kernel reports a write-back error once per open file, and
    /// that report may have gone to the write ahead instead.
    ahead_error: Option<io::Error>,
}

impl Appender {
    /// Open (or create) `path`, treating its first `len` bytes as its content.
    pub async fn open(files: &Rc<OpenFiles>, path: &Path, len: u64) -> io::Result<Self> {
        Self::over(files.open(path, true).await?, len).await
    }

    /// Append to the file of `handle` (shared with the segment's readers),
    /// treating its first `len` bytes as its content.
    pub async fn over(handle: FileHandle, len: u64) -> io::Result<Self> {
        let file = handle.file().await?;
        let align = file.alignment();
        let tail_start = len - len % align;
        let tail = if tail_start < len {
            file.read_at(tail_start, (len - tail_start) as usize)
                .await?
                .to_vec()
        } else {
            Vec::new()
        };
        assert_eq!(
            tail.len() as u64,
            len - tail_start,
            "short read of the tail block"
        );
        Ok(Self {
            file: handle,
            align,
            len,
            tail,
            written_to: len,
            preallocate_bytes: 0,
            ahead: None,
            ahead_wanted: None,
            ahead_last: None,
            ahead_error: None,
        })
    }

    /// Keep up to `bytes` of zeros written ahead of small appends
    /// (`sluice.log.preallocate.bytes`; 0 = off). The zeros lie past the
    /// logical length: `close` trims them, and recovery after a crash cuts
    /// them as it cuts block padding.
    pub fn preallocating(mut self, bytes: u64) -> Self {
        self.preallocate_bytes = bytes.div_ceil(self.align) * self.align;
        self
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `n` bytes produced by `fill` in one DMA write. On error the logical
    /// length is unchanged, so a failed append leaves nothing behind that counts.
    pub async fn append_with(&mut self, n: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        let start = self.len - self.tail.len() as u64;
        let used = self.tail.len() + n;
        let padded = (used as u64).div_ceil(self.align) * self.align;
        if start + padded > self.written_to {
            // Zeros on their way cover (some of) this write: let them land
            // first, so this write overwrites them instead of racing them.
            self.wait_ahead().await;
        }
        let file = self.file.file().await?;
        let mut buf = file.alloc(padded as usize);
        let dst = buf.as_mut_slice();
        dst[..self.tail.len()].copy_from_slice(&self.tail);
        fill(&mut dst[self.tail.len()..used]);
        dst[used..].fill(0);
        let new_tail_start = (used as u64 / self.align * self.align) as usize;
        let new_tail = dst[new_tail_start..used].to_vec();
        let written = file.write_at(buf, start).await? as u64;
        if written < padded {
            // A short direct write means the device ran out of room mid-way.
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.len = start + used as u64;
        self.written_to = self.written_to.max(start + written);
        self.tail = new_tail;
        self.ahead_wanted = self.ahead_bytes(n as u64);
        Ok(())
    }

    /// After an append is durable (or needs not be): keep zeros written
    /// ahead of appends its size. Not right after its write: the zeros'
    /// write and fdatasync then ran beside the append's own fdatasync, which
    /// waited for them (fdatasync p99 0.22-0.32 ms without zeros, 0.64-1.02
    /// ms with; perf/results/2026-12-06T23-00-00Z-syncfs/w4-zeros).
    /// Nothing is opened for them: a file the cache has closed meanwhile
    /// gets its zeros after a later append.
    pub fn start_ahead(&mut self) {
        let Some(bytes) = self.ahead_wanted.take() else {
            return;
        };
        if let Some(file) = self.file.file_if_open() {
            self.write_ahead(&file, bytes);
        }
    }

    /// Zeros to keep ahead of appends of `n` bytes, or `None` when such
    /// appends should not have any (off, too large, or too large for two to
    /// fit).
    fn ahead_bytes(&self, n: u64) -> Option<u64> {
        if n >= AHEAD_APPEND_MAX_BYTES {
            return None;
        }
        let max = self.preallocate_bytes;
        let one = n.div_ceil(self.align) * self.align;
        // All three are multiples of `align` (`preallocating` rounds max).
        let want = (one * AHEAD_APPENDS).max(AHEAD_MIN_BYTES).min(max);
        debug_assert_eq!(want % self.align, 0);
        (max > 0 && want >= 2 * one).then_some(want)
    }

    /// When less than half of the zeros wanted is left ahead, start writing
    /// more beside the appends: `wanted` (what appends of this size want),
    /// or more for a partition that used its last zeros up quickly
    /// (`AHEAD_GROW_WITHIN_MS`).
    fn write_ahead(&mut self, file: &Rc<DmaFile>, wanted: u64) {
        self.collect_ahead();
        if self.ahead.is_some() {
            return;
        }
        let end = self.len.div_ceil(self.align) * self.align;
        let last = self.ahead_last.map_or(0, |(bytes, _)| bytes);
        if self.written_to.saturating_sub(end) >= wanted.max(last) / 2 {
            return;
        }
        let now = std::time::Instant::now();
        let bytes = match self.ahead_last {
            Some((last, at)) => {
                let quick = now.duration_since(at).as_millis() < u128::from(AHEAD_GROW_WITHIN_MS);
                let next = if quick { last * 2 } else { last / 2 };
                // Both bounds are multiples of `align` (`preallocating`
                // rounds the upper one).
                (next / self.align * self.align).clamp(wanted, self.preallocate_bytes.max(wanted))
            }
            None => wanted,
        };
        debug_assert_eq!(bytes % self.align, 0);
        let piece = bytes.min(AHEAD_WRITE_BYTES);
        let Some(slot) = AheadSlot::take(piece) else {
            return;
        };
        self.ahead_last = Some((bytes, now));
        let (file, at) = (file.clone(), self.written_to);
        self.ahead = Some(crate::shard::spawn(async move {
            let _slot = slot;
            let align = file.alignment();
            debug_assert_eq!(piece % align, 0);
            let (mut reached, mut unwritten) = (at, None);
            while reached < at + bytes {
                let n = (at + bytes - reached).min(piece);
                match file.write_zeros_at(reached, n as usize).await {
                    Ok(w) => {
                        reached += w as u64 / align * align;
                        if (w as u64) < n {
                            // A short direct write: the device is full.
                            unwritten = Some(io::Error::from_raw_os_error(libc::ENOSPC));
                            break;
                        }
                    }
                    Err(e) => {
                        unwritten = Some(e);
                        break;
                    }
                }
            }
            AheadDone {
                reached,
                unwritten,
                synced: if reached > at {
                    file.fdatasync().await
                } else {
                    Ok(())
                },
            }
        }));
    }

    /// Take in the zeros written ahead if their task is done, without
    /// waiting.
    fn collect_ahead(&mut self) {
        if let Some(done) = self.ahead.as_mut().and_then(|t| t.now_or_never()) {
            self.ahead = None;
            self.landed(done);
        }
    }

    /// Wait for the zeros being written ahead, if any.
    pub async fn wait_ahead(&mut self) {
        if let Some(task) = self.ahead.take() {
            let done = task.await;
            self.landed(done);
        }
    }

    fn landed(&mut self, done: AheadDone) {
        assert!(
            done.reached >= self.written_to,
            "nothing writes past zeros in flight"
        );
        self.written_to = done.reached;
        if let Some(e) = done.unwritten {
            tracing::debug!(path = %self.file.path().display(), error = %e,
                "could not write zeros ahead");
        }
        if let Err(e) = done.synced {
            tracing::warn!(path = %self.file.path().display(), error = %e,
                "fdatasync of zeros written ahead failed; the next sync fails");
            self.ahead_error.get_or_insert(e);
        }
    }

    pub async fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.append_with(bytes.len(), |d| d.copy_from_slice(bytes))
            .await
    }

    pub async fn sync(&mut self) -> io::Result<()> {
        // fdatasync flushes the inode, whichever descriptor asks: one opened
        // again after the write's was closed syncs that write too (a direct
        // write reports its own errors when it completes).
        self.file.file().await?.fdatasync().await?;
        // A write ahead whose fdatasync ran beside this one may have been
        // told of a failure this one was not: count it here too.
        self.collect_ahead();
        match self.ahead_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Cut the file back to `len` bytes (recovery, or undoing a failed append).
    pub async fn truncate(&mut self, len: u64) -> io::Result<()> {
        assert!(len <= self.len);
        // Zeros landing after the cut would lengthen the file again.
        self.wait_ahead().await;
        self.ahead_wanted = None;
        let file = self.file.file().await?;
        file.truncate(len).await?;
        self.written_to = len;
        let tail_start = len - len % self.align;
        self.tail = if tail_start < len {
            file.read_at(tail_start, (len - tail_start) as usize)
                .await?
                .to_vec()
        } else {
            Vec::new()
        };
        self.len = len;
        Ok(())
    }

    /// Trim the block padding, flush and close the descriptor (the handle
    /// lives on in the segment's readers, which open it again when used).
    pub async fn close(mut self) -> io::Result<()> {
        self.wait_ahead().await;
        if let Some(e) = self.ahead_error.take() {
            return Err(e);
        }
        let file = self.file.file().await?;
        file.truncate(self.len).await?;
        file.fdatasync().await?;
        self.file.close();
        Ok(())
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        // Dropped without `close` (the log deleted, the shard stopping): let
        // the zeros land rather than cancel an I/O in flight; they lie past
        // the content, where recovery cuts them.
        if let Some(task) = self.ahead.take() {
            task.detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::files::MIN_OPEN_FILES_PER_SHARD;
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    /// (length, 512-byte blocks allocated) of the file on disk.
    fn on_disk(path: &Path) -> (u64, u64) {
        let m = std::fs::metadata(path).unwrap();
        (m.len(), m.blocks())
    }

    /// A temp dir, the shard's file cache, and an appender on a new file in
    /// it (after priming glommio's device probe, as the broker does, so an
    /// empty first file does not turn on polled reads).
    async fn new_file(preallocate: u64) -> (tempfile::TempDir, PathBuf, Appender) {
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, [1; 4096]).unwrap();
        crate::shard::io::prime_device_probe(&probe).await.unwrap();
        let files = OpenFiles::new(MIN_OPEN_FILES_PER_SHARD);
        let path = dir.path().join("a.log");
        let a = Appender::open(&files, &path, 0)
            .await
            .unwrap()
            .preallocating(preallocate);
        (dir, path, a)
    }

    /// An append, then its zeros ahead started, as the committer starts
    /// them once the append is durable.
    async fn append(a: &mut Appender, bytes: &[u8]) {
        a.append(bytes).await.unwrap();
        a.start_ahead();
    }

    /// Block-padded end of `len` bytes.
    fn padded(a: &Appender, len: usize) -> u64 {
        (len as u64).div_ceil(a.align) * a.align
    }

    #[test]
    fn small_appends_keep_zeros_ahead_and_overwrite_them_in_place() {
        crate::shard::block_on(async {
            let max = 64 << 10;
            let (_dir, path, mut a) = new_file(max).await;
            let mut want = Vec::new();
            // The append itself starts no zeros: its sync must not wait for
            // theirs.
            a.append(&[1; 300]).await.unwrap();
            assert!(a.ahead.is_none());
            assert_eq!(on_disk(&path).0, a.align);
            a.start_ahead();
            assert!(a.ahead.is_some());
            want.extend([1; 300]);
            a.wait_ahead().await;
            let first = on_disk(&path);
            assert_eq!(
                first.0,
                a.align + max,
                "the first small append is followed by a unit of zeros"
            );
            assert!(first.1 * 512 >= first.0, "and their blocks are allocated");
            // The next appends overwrite the zeros; more are written only
            // when less than half a unit is left, not at every append.
            let mut lengths = vec![first.0];
            for i in 2..=250u8 {
                append(&mut a, &[i; 300]).await;
                want.extend([i; 300]);
                a.wait_ahead().await;
                let (len, blocks) = on_disk(&path);
                let ahead = len - padded(&a, want.len());
                assert!(
                    ahead >= max / 2 && ahead < max + max / 2,
                    "{ahead} bytes ahead after {} bytes",
                    want.len()
                );
                assert!(blocks * 512 >= len, "zeros ahead are allocated");
                if lengths.last() != Some(&len) {
                    lengths.push(len);
                }
            }
            // 75,000 bytes took the first unit and one more.
            assert_eq!(lengths.len(), 2, "{lengths:?}");
            assert_eq!(a.len(), want.len() as u64);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&bytes[..want.len()], &want[..]);
            assert!(bytes[want.len()..].iter().all(|b| *b == 0));
            // An append too large for two to fit in a unit writes none ahead.
            let big = (max / 2 + 1) as usize;
            append(&mut a, &vec![9; big]).await;
            want.extend(vec![9; big]);
            assert!(a.ahead.is_none());
            assert_eq!(on_disk(&path).0, *lengths.last().unwrap());
            // Closing trims whatever lies past the content.
            a.close().await.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), want);
        });
    }

    #[test]
    fn zeros_ahead_follow_the_append_size_up_to_the_limit() {
        crate::shard::block_on(async {
            let max = 1 << 20;
            let (_dir, path, mut a) = new_file(max).await;
            // 4 KiB appends keep the least, 64 KiB.
            append(&mut a, &[1; 4096]).await;
            a.wait_ahead().await;
            assert_eq!(on_disk(&path).0, padded(&a, 4096) + AHEAD_MIN_BYTES);
            // A 60 KB append wants eight of itself ahead, 480 KB (in
            // blocks), written after the 64 KiB it leaves too little of.
            append(&mut a, &vec![2; 60_000]).await;
            a.wait_ahead().await;
            assert_eq!(
                on_disk(&path).0,
                padded(&a, 4096) + AHEAD_MIN_BYTES + 8 * padded(&a, 60_000)
            );
            // A 600 KB append is too large for zeros ahead: it goes past
            // them and writes none.
            append(&mut a, &vec![3; 600_000]).await;
            assert!(a.ahead.is_none());
            assert_eq!(on_disk(&path).0, padded(&a, 664_096));
            let len = a.len();
            a.close().await.unwrap();
            assert_eq!(on_disk(&path).0, len);
        });
    }

    #[test]
    fn a_partition_using_its_zeros_quickly_gets_more_each_time_and_a_slow_one_fewer() {
        crate::shard::block_on(async {
            let max = 1 << 20;
            let (_dir, path, mut a) = new_file(max).await;
            // 4 KiB appends want the least, 64 KiB; each piece used up
            // within AHEAD_GROW_WITHIN_MS doubles the next, up to the limit.
            let mut pieces = Vec::new();
            let mut len = 0;
            for i in 0..400u32 {
                // Quick whatever this machine's speed: the last piece
                // started just now.
                if let Some((bytes, _)) = a.ahead_last {
                    a.ahead_last = Some((bytes, std::time::Instant::now()));
                }
                append(&mut a, &[i as u8; 4096]).await;
                a.wait_ahead().await;
                let now = on_disk(&path).0;
                if now > padded(&a, 4096 * (i as usize + 1)) && now != len {
                    if len > 0 {
                        pieces.push(now - len);
                    }
                    len = now;
                }
            }
            let k = 1 << 10;
            assert_eq!(
                pieces[..4],
                [128 * k, 256 * k, 512 * k, 1024 * k],
                "after the first 64 KiB: {pieces:?}"
            );
            assert!(pieces[4..].iter().all(|p| *p == max), "{pieces:?}");
            // A partition that took longer than that to use half of them
            // gets half as many next time.
            let (last, at) = a.ahead_last.unwrap();
            a.ahead_last = Some((
                last,
                at - std::time::Duration::from_millis(2 * AHEAD_GROW_WITHIN_MS),
            ));
            let before = on_disk(&path).0;
            let mut i = 0;
            while on_disk(&path).0 == before {
                assert!(i < 300, "no zeros written ahead");
                append(&mut a, &[7; 4096]).await;
                a.wait_ahead().await;
                i += 1;
            }
            assert_eq!(on_disk(&path).0 - before, max / 2);
            let len = a.len();
            a.close().await.unwrap();
            assert_eq!(on_disk(&path).0, len);
        });
    }

    #[test]
    fn an_append_that_reaches_zeros_in_flight_waits_for_them() {
        crate::shard::block_on(async {
            let max = 64 << 10;
            let (_dir, path, mut a) = new_file(max).await;
            let mut want = Vec::new();
            // Each append starts the next zeros and the one after it runs
            // into them at once: whatever lands last, the bytes must be ours.
            for i in 1..=40u8 {
                let n = 1000 * i as usize;
                append(&mut a, &vec![i; n]).await;
                want.extend(vec![i; n]);
            }
            a.close().await.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), want);
        });
    }

    #[test]
    fn a_shard_writes_a_bounded_number_of_bytes_ahead_at_once() {
        crate::shard::block_on(async {
            let unit = 64 << 10;
            let slots: Vec<AheadSlot> = (0..AHEAD_IN_FLIGHT_BYTES_MAX / unit)
                .map(|_| AheadSlot::take(unit).expect("room"))
                .collect();
            assert!(AheadSlot::take(unit).is_none(), "all room taken");
            // An append finding no room writes none ahead, and is whole.
            let (_dir, path, mut a) = new_file(64 << 10).await;
            append(&mut a, &[7; 300]).await;
            assert!(a.ahead.is_none());
            a.wait_ahead().await;
            assert_eq!(on_disk(&path).0, a.align);
            drop(slots);
            append(&mut a, &[8; 300]).await;
            assert!(a.ahead.is_some(), "there is room again");
            a.wait_ahead().await;
            assert_eq!(
                AHEAD_IN_FLIGHT_BYTES.with(Cell::get),
                0,
                "its room came back"
            );
            a.close().await.unwrap();
            let mut want = vec![7; 300];
            want.extend([8; 300]);
            assert_eq!(std::fs::read(&path).unwrap(), want);
        });
    }

    #[test]
    fn without_preallocation_a_write_ends_at_the_next_block() {
        crate::shard::block_on(async {
            let (_dir, path, mut a) = new_file(0).await;
            let block = a.align;
            append(&mut a, &[1; 300]).await;
            a.wait_ahead().await;
            assert_eq!(on_disk(&path).0, 300u64.div_ceil(block) * block);
            append(&mut a, &[2; 4000]).await;
            a.wait_ahead().await;
            assert_eq!(on_disk(&path).0, 4300u64.div_ceil(block) * block);
            a.close().await.unwrap();
            assert_eq!(on_disk(&path).0, 4300);
        });
    }

    #[test]
    fn a_truncation_forgets_the_zeros_written_ahead() {
        crate::shard::block_on(async {
            let (_dir, path, mut a) = new_file(64 << 10).await;
            append(&mut a, &[1; 300]).await;
            // Without waiting: the truncation lets the zeros land first, so
            // they cannot lengthen the file after the cut.
            a.truncate(100).await.unwrap();
            assert_eq!(on_disk(&path).0, 100);
            // The next small append writes a unit ahead again.
            append(&mut a, &[2; 10]).await;
            a.wait_ahead().await;
            assert_eq!(on_disk(&path).0, a.align + (64 << 10));
            a.close().await.unwrap();
            let mut want = vec![1; 100];
            want.extend([2; 10]);
            assert_eq!(std::fs::read(&path).unwrap(), want);
        });
    }

    #[test]
    fn a_failed_fdatasync_of_zeros_ahead_fails_the_next_sync_once() {
        crate::shard::block_on(async {
            let (_dir, _path, mut a) = new_file(64 << 10).await;
            append(&mut a, &[1; 300]).await;
            a.wait_ahead().await;
            // As the task reports a device that failed its flush (the kernel
            // tells only one of the descriptors' fdatasyncs).
            a.landed(AheadDone {
                reached: a.written_to,
                unwritten: None,
                synced: Err(io::Error::from_raw_os_error(libc::EIO)),
            });
            let e = a.sync().await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EIO));
            a.sync().await.unwrap();
            a.landed(AheadDone {
                reached: a.written_to,
                unwritten: None,
                synced: Err(io::Error::from_raw_os_error(libc::EIO)),
            });
            let e = a.close().await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EIO), "close reports it too");
        });
    }
}
