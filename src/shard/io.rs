//! Direct-I/O files (O_DIRECT through io_uring) and their aligned buffers.

use std::cell::RefCell;
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::rc::Rc;

/// A file opened with O_DIRECT. Writes must be aligned to `alignment()` in both
/// position and length; reads may be unaligned (aligned internally).
pub struct DmaFile(glommio::io::DmaFile);

thread_local! {
    /// `DmaFile::write_zeros_at`'s zeros: (executor id, buffer).
    static ZEROS: RefCell<Option<(usize, Rc<glommio::io::DmaBuffer>)>> = const { RefCell::new(None) };
}

/// A buffer suitable for DMA writes to a `DmaFile`.
pub struct AlignedBuf(glommio::io::DmaBuffer);

/// Bytes read from a `DmaFile`, still in the DMA buffer they landed in.
#[derive(Clone)]
pub struct ReadBuf(glommio::io::ReadResult);

fn to_io(e: glommio::GlommioError<()>) -> io::Error {
    e.into()
}

impl DmaFile {
    /// Open for reading and writing, creating the file if asked.
    pub async fn open_rw(path: &Path, create: bool) -> io::Result<Self> {
        glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await
            .map(Self)
            .map_err(to_io)
    }

    pub async fn open_read(path: &Path) -> io::Result<Self> {
        glommio::io::DmaFile::open(path)
            .await
            .map(Self)
            .map_err(to_io)
    }

    pub fn alignment(&self) -> u64 {
        self.0.alignment()
    }

    pub fn alloc(&self, len: usize) -> AlignedBuf {
        AlignedBuf(self.0.alloc_dma_buffer(len))
    }

    pub async fn write_at(&self, buf: AlignedBuf, pos: u64) -> io::Result<usize> {
        debug_assert_eq!(pos % self.alignment(), 0);
        debug_assert_eq!(buf.0.len() as u64 % self.alignment(), 0);
        self.0.write_at(buf.0, pos).await.map_err(to_io)
    }

    /// Write `len` bytes of zeros at `pos` (both aligned). Writes of one
    /// length share one buffer of zeros per executor, written again and
    /// again (a shared DMA write only reads it): filling a fresh 64 KiB
    /// buffer for each piece of zeros ahead was 3% of the broker's CPU on
    /// small-keyed (perf/results/2026-12-07T07-10-00Z-zeros-shared).
    pub async fn write_zeros_at(&self, pos: u64, len: usize) -> io::Result<usize> {
        debug_assert_eq!(pos % self.alignment(), 0);
        debug_assert_eq!(len as u64 % self.alignment(), 0);
        let zeros = self.shared_zeros(len);
        self.0.write_rc_at(zeros, pos).await.map_err(to_io)
    }

    /// This executor's buffer of `len` zeros, made (and the previous one
    /// let go) when the length changes. Keyed by executor: a registered DMA
    /// buffer belongs to its executor's ring, and tests run one executor
    /// after another on a thread.
    fn shared_zeros(&self, len: usize) -> Rc<glommio::io::DmaBuffer> {
        let executor = glommio::executor().id();
        ZEROS.with(|z| {
            let mut z = z.borrow_mut();
            match &*z {
                Some((id, buf)) if *id == executor && buf.len() == len => buf.clone(),
                _ => {
                    let mut buf = self.0.alloc_dma_buffer(len);
                    buf.as_bytes_mut().fill(0);
                    let buf = Rc::new(buf);
                    *z = Some((executor, buf.clone()));
                    buf
                }
            }
        })
    }

    pub async fn read_at(&self, pos: u64, len: usize) -> io::Result<ReadBuf> {
        self.0.read_at(pos, len).await.map(ReadBuf).map_err(to_io)
    }

    pub async fn fdatasync(&self) -> io::Result<()> {
        self.0.fdatasync().await.map_err(to_io)
    }

    pub async fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.truncate(len).await.map_err(to_io)
    }

    pub async fn file_size(&self) -> io::Result<u64> {
        self.0.file_size().await.map_err(to_io)
    }

    pub async fn close(self) -> io::Result<()> {
        self.0.close().await.map_err(to_io)
    }
}

impl AlignedBuf {
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.0.as_bytes_mut()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

impl Deref for ReadBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl ReadBuf {
    /// A sub-range sharing the same DMA buffer (no copy).
    pub fn slice(&self, offset: usize, len: usize) -> Option<ReadBuf> {
        glommio::io::ReadResult::slice(&self.0, offset, len).map(ReadBuf)
    }
}

/// glommio caches, per thread and per block device, whether the device supports
/// polled I/O. It probes by reading the first file opened; if that file is empty
/// the read succeeds trivially and polled I/O is wrongly enabled, after which
/// every read on a device without poll queues (virtio, most cloud disks) fails
/// with EOPNOTSUPP. Opening a non-empty file first makes the probe honest; an
/// existing file is used so this works on a full disk too.
pub async fn prime_device_probe(non_empty_file: &Path) -> io::Result<()> {
    DmaFile::open_read(non_empty_file).await?.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zeros written by one executor, then by others on the same thread,
    /// land as zeros over a file of 0xff and nowhere else: a buffer of
    /// zeros is shared within an executor, never carried to the next one's
    /// ring (where its registration means nothing).
    #[test]
    fn zeros_from_executors_one_after_another_land_where_asked() {
        const K64: usize = 64 << 10;
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, [1; 4096]).unwrap();
        let path = dir.path().join("z");
        std::fs::write(&path, vec![0xff; 6 * K64]).unwrap();
        // (position, length of each of two writes), one executor each.
        let rounds = [(0, K64), (2 * K64, K64), (4 * K64, 8192)];
        for (at, len) in rounds {
            let (probe, path) = (probe.clone(), path.clone());
            crate::shard::block_on(async move {
                prime_device_probe(&probe).await.unwrap();
                let f = DmaFile::open_rw(&path, false).await.unwrap();
                for i in 0..2 {
                    let pos = (at + i * len) as u64;
                    assert_eq!(f.write_zeros_at(pos, len).await.unwrap(), len);
                }
                f.close().await.unwrap();
            });
        }
        let bytes = std::fs::read(&path).unwrap();
        for (i, b) in bytes.iter().enumerate() {
            let zeroed = rounds
                .iter()
                .any(|&(at, len)| (at..at + 2 * len).contains(&i));
            assert_eq!(*b, if zeroed { 0 } else { 0xff }, "byte {i}");
        }
    }
}
