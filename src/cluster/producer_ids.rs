//! Producer ids for idempotent producers, handed out from blocks that are
//! taken durably (Kafka's ProducerIdManager over AllocateProducerIds): the
//! end of a block is persisted before any id in it is used, so ids never
//! repeat across restarts, even after a kill -9 (a crash wastes at most the
//! rest of one block). One instance, on the controller shard. When the
//! metadata quorum lands, blocks come from its log instead of this file.

use std::io;
use std::path::{Path, PathBuf};

use crate::storage::format;
use crate::storage::log::write_atomically;

/// Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE.
pub const BLOCK_SIZE: i64 = 1000;

pub struct ProducerIdManager {
    path: PathBuf,
    next: i64,
    /// Exclusive end of the block in use; `next == block_end`: none left.
    block_end: i64,
}

impl ProducerIdManager {
    pub fn new(log_dir: &Path) -> Self {
        ProducerIdManager {
            path: log_dir.join(format::PRODUCER_ID_BLOCK_FILE),
            next: 0,
            block_end: 0,
        }
    }

    /// A producer id never handed out before.
    pub fn next_id(&mut self) -> io::Result<i64> {
        if self.next >= self.block_end {
            self.take_block()?;
        }
        let id = self.next;
        self.next += 1;
        debug_assert!(self.next <= self.block_end);
        Ok(id)
    }

    fn take_block(&mut self) -> io::Result<()> {
        let start = match std::fs::read_to_string(&self.path) {
            Ok(text) => format::decode_producer_id_block(&text).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is malformed", self.path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let end = start
            .checked_add(BLOCK_SIZE)
            .ok_or_else(|| io::Error::other("producer ids are exhausted"))?;
        write_atomically(&self.path, format::encode_producer_id_block(end).as_bytes())?;
        tracing::debug!(start, end, "took a block of producer ids");
        self.next = start;
        self.block_end = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_blocks_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerIdManager::new(dir.path());
        let first: Vec<i64> = (0..1500).map(|_| m.next_id().unwrap()).collect();
        assert_eq!(first[0], 0);
        assert_eq!(first[1499], 1499);
        // A restart (or crash) starts after every block ever taken.
        let mut again = ProducerIdManager::new(dir.path());
        assert_eq!(again.next_id().unwrap(), 2000);
        let text = std::fs::read_to_string(dir.path().join(format::PRODUCER_ID_BLOCK_FILE));
        assert_eq!(format::decode_producer_id_block(&text.unwrap()), Some(3000));
    }

    #[test]
    fn a_malformed_block_file_is_an_error_not_a_reuse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format::PRODUCER_ID_BLOCK_FILE), "junk").unwrap();
        let mut m = ProducerIdManager::new(dir.path());
        assert_eq!(m.next_id().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
