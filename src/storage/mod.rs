//! Partition logs on disk in Kafka's layout. Knows nothing of the network.

pub mod appender;
pub mod commit;
pub mod dir_lock;
pub mod epochs;
pub mod files;
pub mod format;
pub mod fs_sync;
pub mod index;
pub mod log;
pub mod producer_state;
pub mod read;
pub mod recompress;
pub mod recovery;
pub mod replace;
pub mod replica;
pub mod retention;
pub mod segment;
pub mod tail_cache;

pub use log::{AppendInfo, LogConfig, PartitionLog};
pub use read::{Chunk, FetchData};

/// Kafka's LogDirFailureChannel. The first I/O error on the write path of a
/// log (a failed write or fsync; a full disk is not one: it passes when
/// space is freed) takes the log dir offline for good. After a failed fsync
/// the kernel may have dropped the dirty pages, so what is on disk is no
/// longer known: nothing more is written there, appends fail with an I/O
/// error at once, and the broker shuts down as Kafka does when its last log
/// dir fails. The next start recovers the dir from what reached the disk.
#[derive(Clone, Default)]
pub struct LogDirHealth(std::sync::Arc<std::sync::OnceLock<String>>);

impl LogDirHealth {
    /// Take the dir offline for `cause`; the first cause is kept.
    pub fn fail(&self, cause: &str) {
        if self.0.set(cause.to_string()).is_ok() {
            tracing::error!(
                cause,
                "log dir failed: it is offline until the broker restarts"
            );
        }
    }

    /// Why the dir is offline, if it is.
    pub fn failure(&self) -> Option<String> {
        self.0.get().cloned()
    }

    /// Note `e` if it means the dir failed.
    pub fn check(&self, e: &StorageError) {
        if let StorageError::Io(io) = e {
            self.fail(&io.to_string());
        }
    }

    /// The error an append gets once the dir is offline.
    pub fn offline_error(cause: &str) -> StorageError {
        StorageError::Io(std::io::Error::other(format!("log dir offline: {cause}")))
    }
}

use format::BatchError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("corrupt record batch: {0}")]
    Corrupt(#[from] BatchError),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("disk full: {0}")]
    DiskFull(std::io::Error),
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    #[error("partition is being deleted")]
    Closed,
    #[error("{0}")]
    Sequence(#[from] producer_state::SequenceError),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("{0}")]
    InvalidTimestamp(String),
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
            StorageError::DiskFull(e)
        } else {
            StorageError::Io(e)
        }
    }
}

impl Clone for StorageError {
    fn clone(&self) -> Self {
        match self {
            StorageError::Corrupt(e) => StorageError::Corrupt(e.clone()),
            StorageError::MessageTooLarge { size, max } => StorageError::MessageTooLarge {
                size: *size,
                max: *max,
            },
            StorageError::OffsetOutOfRange { offset, start, end } => {
                StorageError::OffsetOutOfRange {
                    offset: *offset,
                    start: *start,
                    end: *end,
                }
            }
            StorageError::DiskFull(e) => {
                StorageError::DiskFull(std::io::Error::new(e.kind(), e.to_string()))
            }
            StorageError::Io(e) => StorageError::Io(std::io::Error::new(e.kind(), e.to_string())),
            StorageError::Closed => StorageError::Closed,
            StorageError::Sequence(e) => StorageError::Sequence(e.clone()),
            StorageError::InvalidRecord(m) => StorageError::InvalidRecord(m.clone()),
            StorageError::InvalidTimestamp(m) => StorageError::InvalidTimestamp(m.clone()),
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
