//! Direct-I/O files (O_DIRECT through io_uring) and their aligned buffers.

use std::io;
use std::ops::Deref;
use std::path::Path;

/// A file opened with O_DIRECT. Writes must be aligned to `alignment()` in both
/// position and length; reads may be unaligned (aligned internally).
pub struct DmaFile(glommio::io::DmaFile);

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
