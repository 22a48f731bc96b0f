//! Producer ids for idempotent producers, handed out from blocks that the
//! quorum leader allocates in the metadata log (Kafka's ProducerIdsRecord
//! over AllocateProducerIds): a block is committed before any id in it is
//! used, so no two brokers and no two runs ever hand out the same id (a
//! crash wastes at most the rest of one block). One holder per broker, on
//! the controller shard. The `producer-id-block` file of earlier sluice is
//! read once, when a data dir is migrated, so ids go on past it.

use std::path::Path;

use crate::storage::format;

/// Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE.
pub const BLOCK_SIZE: i64 = 1000;

/// The block this broker hands ids out of.
#[derive(Debug, Default)]
pub struct ProducerIdBlock {
    next: i64,
    /// Exclusive end; `next == end`: none left.
    end: i64,
}

impl ProducerIdBlock {
    /// The next id of the block, if any is left.
    pub fn take(&mut self) -> Option<i64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Use the block `[start, start + BLOCK_SIZE)` from now on.
    pub fn install(&mut self, start: i64) {
        self.next = start;
        self.end = start + BLOCK_SIZE;
    }
}

/// Where the legacy `producer-id-block` file says ids may start (0 without
/// one); None if it is unreadable.
pub fn legacy_next_id(log_dir: &Path) -> Option<i64> {
    match std::fs::read_to_string(log_dir.join(format::PRODUCER_ID_BLOCK_FILE)) {
        Ok(text) => format::decode_producer_id_block(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_hands_out_each_id_once() {
        let mut b = ProducerIdBlock::default();
        assert_eq!(b.take(), None, "no block yet");
        b.install(2000);
        let ids: Vec<i64> = std::iter::from_fn(|| b.take()).collect();
        assert_eq!(ids.len() as i64, BLOCK_SIZE);
        assert_eq!((ids[0], ids[999]), (2000, 2999));
        assert_eq!(b.take(), None);
    }

    #[test]
    fn the_legacy_file_is_read_for_migration() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(legacy_next_id(dir.path()), Some(0));
        std::fs::write(
            dir.path().join(format::PRODUCER_ID_BLOCK_FILE),
            format::encode_producer_id_block(3000),
        )
        .unwrap();
        assert_eq!(legacy_next_id(dir.path()), Some(3000));
        std::fs::write(dir.path().join(format::PRODUCER_ID_BLOCK_FILE), "junk").unwrap();
        assert_eq!(legacy_next_id(dir.path()), None);
    }
}
