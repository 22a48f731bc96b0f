//! Append-only file over O_DIRECT: arbitrary-length appends become aligned DMA
//! writes by rewriting the last partial block together with the new bytes.
//!
//! Small appends can write zeros ahead of themselves (`preallocating`): the
//! next ones then overwrite blocks the file system has already allocated, so
//! their fdatasync has no allocation or file size to write, only the
//! device's cache to flush. Measured on ext4 (perf/results, small-keyed):
//! each appending fdatasync also wrote the block bitmap, the group
//! descriptor and the inode, one synchronous write after the other.

use std::io;
use std::path::Path;
use std::rc::Rc;

use super::files::{FileHandle, OpenFiles};

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
    /// [len, written_to) when an append wrote ahead. Appends that end below
    /// it overwrite allocated blocks.
    written_to: u64,
    /// Write zeros up to the next multiple of this (a multiple of `align`)
    /// when an append smaller than it goes past `written_to`; 0 = never.
    preallocate_bytes: u64,
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
        })
    }

    /// Let appends smaller than `bytes` write zeros ahead of themselves up
    /// to the next multiple of `bytes` (`sluice.log.preallocate.bytes`; 0 =
    /// off). The zeros lie past the logical length: `close` trims them, and
    /// recovery after a crash cuts them as it cuts block padding.
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
        let file = self.file.file().await?;
        let start = self.len - self.tail.len() as u64;
        let used = self.tail.len() + n;
        let padded = (used as u64).div_ceil(self.align) * self.align;
        let to = self.write_ahead_to(start + padded, n);
        let mut buf = file.alloc((to - start) as usize);
        let dst = buf.as_mut_slice();
        dst[..self.tail.len()].copy_from_slice(&self.tail);
        fill(&mut dst[self.tail.len()..used]);
        dst[used..].fill(0);
        let new_tail_start = (used as u64 / self.align * self.align) as usize;
        let new_tail = dst[new_tail_start..used].to_vec();
        // Zeros ahead are an optimisation: without room for them, the append
        // alone may still fit (kept for that case, at most one preallocation
        // unit, once per unit).
        let alone = (to > start + padded).then(|| dst[..padded as usize].to_vec());
        let mut written = file.write_at(buf, start).await;
        if let Some(alone) = alone {
            if !matches!(written, Ok(w) if w as u64 == to - start) {
                tracing::debug!(path = %self.file.path().display(), result = ?written,
                    "no room to write zeros ahead; appending alone");
                let mut buf = file.alloc(padded as usize);
                buf.as_mut_slice().copy_from_slice(&alone);
                written = file.write_at(buf, start).await;
            }
        }
        let written = written? as u64;
        if written < padded {
            // A short direct write means the device ran out of room mid-way.
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.len = start + used as u64;
        self.written_to = self.written_to.max(start + written);
        self.tail = new_tail;
        Ok(())
    }

    /// Where the write of an `n`-byte append ending (block-padded) at `end`
    /// stops: `end`, or the next multiple of the preallocation unit when the
    /// append is smaller than the unit and goes past what was written.
    fn write_ahead_to(&self, end: u64, n: usize) -> u64 {
        let unit = self.preallocate_bytes;
        if unit == 0 || n as u64 >= unit || end <= self.written_to {
            return end;
        }
        let to = end.div_ceil(unit) * unit;
        debug_assert_eq!(
            to % self.align,
            0,
            "the unit is a multiple of the alignment"
        );
        to
    }

    pub async fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.append_with(bytes.len(), |d| d.copy_from_slice(bytes))
            .await
    }

    pub async fn sync(&self) -> io::Result<()> {
        // fdatasync flushes the inode, whichever descriptor asks: one opened
        // again after the write's was closed syncs that write too (a direct
        // write reports its own errors when it completes).
        self.file.file().await?.fdatasync().await
    }

    /// Cut the file back to `len` bytes (recovery, or undoing a failed append).
    pub async fn truncate(&mut self, len: u64) -> io::Result<()> {
        assert!(len <= self.len);
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
    pub async fn close(self) -> io::Result<()> {
        let file = self.file.file().await?;
        file.truncate(self.len).await?;
        file.fdatasync().await?;
        self.file.close();
        Ok(())
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

    #[test]
    fn small_appends_write_zeros_ahead_then_overwrite_them_in_place() {
        crate::shard::block_on(async {
            let unit = 64 << 10;
            let (_dir, path, mut a) = new_file(unit).await;
            let mut want = Vec::new();
            a.append(&[1; 300]).await.unwrap();
            want.extend([1; 300]);
            let first = on_disk(&path);
            assert_eq!(first.0, unit, "the first small append writes a unit");
            assert!(first.1 * 512 >= unit, "and its blocks are allocated");
            // The next appends of the unit change neither the length nor the
            // allocation: they overwrite the zeros.
            for i in 2..=250u8 {
                a.append(&[i; 300]).await.unwrap();
                want.extend([i; 300]);
                if want.len() as u64 <= unit - a.align {
                    assert_eq!(on_disk(&path), first, "after {} bytes", want.len());
                }
            }
            // 75,000 bytes: past the first unit, into the second.
            assert_eq!(a.len(), want.len() as u64);
            assert_eq!(on_disk(&path).0, 2 * unit);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&bytes[..want.len()], &want[..]);
            assert!(bytes[want.len()..].iter().all(|b| *b == 0));
            // An append of a whole unit or more writes no zeros ahead.
            a.append(&vec![9; unit as usize]).await.unwrap();
            want.extend(vec![9; unit as usize]);
            assert_eq!(
                on_disk(&path).0,
                (want.len() as u64).div_ceil(a.align) * a.align
            );
            // Closing trims whatever lies past the content.
            a.close().await.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), want);
        });
    }

    #[test]
    fn without_preallocation_a_write_ends_at_the_next_block() {
        crate::shard::block_on(async {
            let (_dir, path, mut a) = new_file(0).await;
            let block = a.align;
            a.append(&[1; 300]).await.unwrap();
            assert_eq!(on_disk(&path).0, 300u64.div_ceil(block) * block);
            a.append(&[2; 4000]).await.unwrap();
            assert_eq!(on_disk(&path).0, 4300u64.div_ceil(block) * block);
            a.close().await.unwrap();
            assert_eq!(on_disk(&path).0, 4300);
        });
    }

    #[test]
    fn a_truncation_forgets_the_zeros_written_ahead() {
        crate::shard::block_on(async {
            let (_dir, path, mut a) = new_file(64 << 10).await;
            a.append(&[1; 300]).await.unwrap();
            a.truncate(100).await.unwrap();
            assert_eq!(on_disk(&path).0, 100);
            // The next small append writes the unit again.
            a.append(&[2; 10]).await.unwrap();
            assert_eq!(on_disk(&path).0, 64 << 10);
            a.close().await.unwrap();
            let mut want = vec![1; 100];
            want.extend([2; 10]);
            assert_eq!(std::fs::read(&path).unwrap(), want);
        });
    }
}
