//! Append-only file over O_DIRECT: arbitrary-length appends become aligned DMA
//! writes by rewriting the last partial block together with the new bytes.

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
        })
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
        let mut buf = file.alloc(padded as usize);
        let dst = buf.as_mut_slice();
        dst[..self.tail.len()].copy_from_slice(&self.tail);
        fill(&mut dst[self.tail.len()..used]);
        dst[used..].fill(0);
        let new_tail_start = (used as u64 / self.align * self.align) as usize;
        let new_tail = dst[new_tail_start..used].to_vec();
        let written = file.write_at(buf, start).await?;
        if (written as u64) < padded {
            // A short direct write means the device ran out of room mid-way.
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.len = start + used as u64;
        self.tail = new_tail;
        Ok(())
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
