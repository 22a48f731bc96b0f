//! Idempotent producers' state of one partition (Kafka's ProducerStateManager):
//! for each producer id its epoch and its last five batches. Appends are
//! checked against it in memory when they are stamped (before the group
//! commit writes them), so a batch still waiting for its fsync already counts
//! for duplicate detection. It is rebuilt at start-up from the latest
//! `<offset>.snapshot` plus the batches after it.
//!
//! The rules are Kafka's (ProducerAppendInfo, UnifiedLog, KIP-360):
//! - a batch with the epoch and exact sequence range of one of the producer's
//!   last five batches is a duplicate: answered with the first copy's offsets,
//!   not written again;
//! - an epoch older than the producer's is INVALID_PRODUCER_EPOCH;
//! - a newer epoch must start at sequence 0, the same epoch must continue at
//!   last sequence + 1 (wrapping from i32::MAX to 0), else
//!   OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - a producer id with no state (new, expired or never seen here) is accepted
//!   at any sequence: since KIP-360 the broker no longer answers
//!   UNKNOWN_PRODUCER_ID, and clients bump their epoch locally instead.

use std::collections::{HashMap, VecDeque};

use super::format::{self, BatchHeader, SnapshotEntry, NO_SEQUENCE};

/// Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN: a producer has at most
/// five requests in flight per partition, so five batches cover its retries.
pub const BATCHES_TO_RETAIN: usize = 5;
/// Epoch of a producer with no state.
pub const NO_PRODUCER_EPOCH: i16 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp (what Kafka answers a duplicate with).
    pub timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most BATCHES_TO_RETAIN.
    pub batches: VecDeque<BatchMeta>,
    /// Max timestamp of the last batch: drives `producer.id.expiration.ms`.
    pub last_timestamp_ms: i64,
}

impl ProducerEntry {
    fn empty() -> Self {
        ProducerEntry {
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp_ms: -1,
        }
    }

    fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    fn find_duplicate(&self, h: &BatchHeader) -> Option<BatchMeta> {
        if h.producer_epoch != self.epoch {
            return None;
        }
        let (first, last) = (h.base_sequence, h.last_sequence());
        self.batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
            .copied()
    }

    /// Record a batch (already checked, or replayed from the log).
    fn add(&mut self, h: &BatchHeader) {
        if h.producer_epoch != self.epoch {
            // A new epoch restarts the sequence: older batches can no longer
            // be duplicates of anything.
            self.epoch = h.producer_epoch;
            self.batches.clear();
        }
        if h.base_sequence != NO_SEQUENCE {
            if self.batches.len() == BATCHES_TO_RETAIN {
                self.batches.pop_front();
            }
            self.batches.push_back(BatchMeta {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                first_offset: h.base_offset,
                last_offset: h.last_offset(),
                timestamp_ms: h.max_timestamp,
            });
        }
        self.last_timestamp_ms = h.max_timestamp;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("epoch {epoch} of producer {producer_id} is older than its current epoch {current}")]
    InvalidEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error(
        "out of order sequence for producer {producer_id} (epoch {epoch}): got {first_seq}, \
         expected {expected}"
    )]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        /// What would have been in sequence (0 for a new epoch).
        expected: i32,
    },
    #[error("producer {producer_id} sent a batch without a base sequence")]
    NoSequence { producer_id: i64 },
}

/// The outcome of checking an append.
#[derive(Debug)]
pub enum Checked {
    /// Write it; these entries replace the producers' current ones once the
    /// batches are stamped and queued.
    Append(Vec<(i64, ProducerEntry)>),
    /// Already written (or queued) at these offsets.
    Duplicate(BatchMeta),
}

#[derive(Default, Debug)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Check batches from a client, in order. `headers` carry the offsets they
    /// will be written at. Nothing changes until `apply`.
    pub fn check(&self, headers: &[BatchHeader]) -> Result<Checked, SequenceError> {
        let mut updated: Vec<(i64, ProducerEntry)> = Vec::new();
        for h in headers.iter().filter(|h| h.has_producer_id()) {
            let pid = h.producer_id;
            if h.base_sequence < 0 {
                return Err(SequenceError::NoSequence { producer_id: pid });
            }
            // Duplicates are looked up in what is already accepted, before
            // any other check (a retry of a batch that made it is fine).
            if let Some(dup) = self.producers.get(&pid).and_then(|e| e.find_duplicate(h)) {
                return Ok(Checked::Duplicate(dup));
            }
            let at = match updated.iter().position(|(p, _)| *p == pid) {
                Some(i) => i,
                None => {
                    let e = self
                        .producers
                        .get(&pid)
                        .cloned()
                        .unwrap_or_else(ProducerEntry::empty);
                    updated.push((pid, e));
                    updated.len() - 1
                }
            };
            let entry = &mut updated[at].1;
            check_one(entry, h)?;
            entry.add(h);
        }
        Ok(Checked::Append(updated))
    }

    pub fn apply(&mut self, updated: Vec<(i64, ProducerEntry)>) {
        for (pid, e) in updated {
            self.producers.insert(pid, e);
        }
    }

    /// Replay a batch read back from the log (recovery): no checks, as Kafka
    /// does for batches that are already in the log.
    pub fn replay(&mut self, h: &BatchHeader) {
        if h.has_producer_id() {
            self.producers
                .entry(h.producer_id)
                .or_insert_with(ProducerEntry::empty)
                .add(h);
        }
    }

    /// Forget batches at or after `offset` (a failed write rolled the log end
    /// back). A producer left with no batch is forgotten: its next batch is
    /// accepted at any sequence, as for a producer whose state expired.
    pub fn truncate_from(&mut self, offset: i64) {
        self.producers.retain(|_, e| {
            e.batches.retain(|b| b.last_offset < offset);
            !e.batches.is_empty()
        });
    }

    /// Drop producers idle for `expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`, judged by their last batch's timestamp).
    /// Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms - e.last_timestamp_ms < expiration_ms);
        before - self.producers.len()
    }

    /// The state as of `below` (exclusive): every batch at or after it is
    /// left out, as a snapshot named `below` must hold. Up to five entries
    /// per producer, oldest first (Kafka keeps the last one it reads).
    pub fn snapshot_entries(&self, below: i64) -> Vec<SnapshotEntry> {
        let mut pids: Vec<&i64> = self.producers.keys().collect();
        pids.sort_unstable();
        let mut out = Vec::new();
        for pid in pids {
            let e = &self.producers[pid];
            let entry = |b: Option<&BatchMeta>| SnapshotEntry {
                producer_id: *pid,
                epoch: e.epoch,
                last_sequence: b.map_or(NO_SEQUENCE, |b| b.last_seq),
                last_offset: b.map_or(-1, |b| b.last_offset),
                offset_delta: b.map_or(0, |b| (b.last_offset - b.first_offset) as i32),
                timestamp_ms: b.map_or(e.last_timestamp_ms, |b| b.timestamp_ms),
                coordinator_epoch: -1,
                current_txn_first_offset: -1,
            };
            if e.batches.is_empty() {
                out.push(entry(None));
                continue;
            }
            // Batches at or after `below` come back from the log scan.
            out.extend(
                e.batches
                    .iter()
                    .filter(|b| b.last_offset < below)
                    .map(|b| entry(Some(b))),
            );
        }
        out
    }

    /// Load a snapshot's entries, skipping producers already expired.
    pub fn load(&mut self, entries: &[SnapshotEntry], now_ms: i64, expiration_ms: i64) {
        for s in entries {
            if now_ms - s.timestamp_ms >= expiration_ms {
                continue;
            }
            let e = self
                .producers
                .entry(s.producer_id)
                .or_insert_with(ProducerEntry::empty);
            if e.epoch != s.epoch {
                e.epoch = s.epoch;
                e.batches.clear();
            }
            if s.last_offset >= 0 && s.last_sequence >= 0 && s.offset_delta >= 0 {
                if e.batches.len() == BATCHES_TO_RETAIN {
                    e.batches.pop_front();
                }
                e.batches.push_back(BatchMeta {
                    first_seq: format::decrement_sequence(s.last_sequence, s.offset_delta),
                    last_seq: s.last_sequence,
                    first_offset: s.last_offset - s.offset_delta as i64,
                    last_offset: s.last_offset,
                    timestamp_ms: s.timestamp_ms,
                });
            }
            e.last_timestamp_ms = s.timestamp_ms;
        }
    }
}

/// Kafka's checkProducerEpoch and checkSequence for a client's batch.
fn check_one(entry: &ProducerEntry, h: &BatchHeader) -> Result<(), SequenceError> {
    let pid = h.producer_id;
    if h.producer_epoch < entry.epoch {
        return Err(SequenceError::InvalidEpoch {
            producer_id: pid,
            epoch: h.producer_epoch,
            current: entry.epoch,
        });
    }
    if entry.epoch == NO_PRODUCER_EPOCH {
        // No state here: accept any sequence (KIP-360).
        return Ok(());
    }
    if h.producer_epoch != entry.epoch {
        if h.base_sequence != 0 {
            return Err(SequenceError::OutOfOrder {
                producer_id: pid,
                epoch: h.producer_epoch,
                first_seq: h.base_sequence,
                expected: 0,
            });
        }
        return Ok(());
    }
    let last = entry.last_seq();
    if !in_sequence(last, h.base_sequence) {
        return Err(SequenceError::OutOfOrder {
            producer_id: pid,
            epoch: h.producer_epoch,
            first_seq: h.base_sequence,
            expected: if last == NO_SEQUENCE {
                0
            } else {
                format::increment_sequence(last, 1)
            },
        });
    }
    Ok(())
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq as i64 == last_seq as i64 + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, records: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            size_bytes: 100,
            leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000 + offset,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: records,
        }
    }

    /// Check and apply one batch, as an append does.
    fn append(s: &mut ProducerStates, h: BatchHeader) -> Result<Checked, SequenceError> {
        match s.check(&[h])? {
            Checked::Append(u) => {
                s.apply(u);
                Ok(Checked::Append(Vec::new()))
            }
            d => Ok(d),
        }
    }

    fn is_append(r: Result<Checked, SequenceError>) -> bool {
        matches!(r, Ok(Checked::Append(_)))
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut s = ProducerStates::default();
        assert!(is_append(append(&mut s, batch(7, 0, 0, 5, 0))));
        assert!(is_append(append(&mut s, batch(7, 0, 5, 5, 5))));
        // A retry of the first batch: found with its original offsets.
        match append(&mut s, batch(7, 0, 0, 5, 99)) {
            Ok(Checked::Duplicate(b)) => assert_eq!((b.first_offset, b.last_offset), (0, 4)),
            other => panic!("{other:?}"),
        }
        // Same first sequence, different range: not a duplicate, out of order.
        assert!(matches!(
            append(&mut s, batch(7, 0, 0, 3, 10)),
            Err(SequenceError::OutOfOrder { expected: 10, .. })
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            assert!(is_append(append(&mut s, batch(1, 0, i, 1, i as i64))));
        }
        assert!(matches!(
            append(&mut s, batch(1, 0, 1, 1, 50)),
            Ok(Checked::Duplicate(_))
        ));
        // The first batch fell out: a late retry of it is out of order.
        assert!(matches!(
            append(&mut s, batch(1, 0, 0, 1, 50)),
            Err(SequenceError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn gaps_epochs_and_unknown_producers() {
        let mut s = ProducerStates::default();
        // Unknown producer: any sequence is accepted (KIP-360).
        assert!(is_append(append(&mut s, batch(3, 2, 40, 2, 0))));
        // Gap.
        assert!(matches!(
            append(&mut s, batch(3, 2, 43, 1, 2)),
            Err(SequenceError::OutOfOrder { expected: 42, .. })
        ));
        // Older epoch.
        assert!(matches!(
            append(&mut s, batch(3, 1, 42, 1, 2)),
            Err(SequenceError::InvalidEpoch { current: 2, .. })
        ));
        // New epoch must restart at 0.
        assert!(matches!(
            append(&mut s, batch(3, 3, 42, 1, 2)),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        assert!(is_append(append(&mut s, batch(3, 3, 0, 1, 2))));
        // The old epoch's batches are gone: its retry is a stale epoch.
        assert!(matches!(
            append(&mut s, batch(3, 2, 40, 2, 3)),
            Err(SequenceError::InvalidEpoch { .. })
        ));
        // A batch with a producer id must carry a sequence.
        assert!(matches!(
            append(&mut s, batch(4, 0, -1, 1, 3)),
            Err(SequenceError::NoSequence { .. })
        ));
        // Batches without a producer id are not looked at.
        assert!(is_append(append(&mut s, batch(-1, -1, -1, 1, 3))));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStates::default();
        assert!(is_append(append(&mut s, batch(1, 0, i32::MAX - 1, 2, 0))));
        assert!(is_append(append(&mut s, batch(1, 0, 0, 3, 2))));
        // A batch spanning the wrap.
        let mut s = ProducerStates::default();
        assert!(is_append(append(&mut s, batch(1, 0, i32::MAX - 1, 4, 0))));
        assert_eq!(s.get(1).unwrap().last_seq(), 1);
        assert!(matches!(
            append(&mut s, batch(1, 0, i32::MAX - 1, 4, 9)),
            Ok(Checked::Duplicate(_))
        ));
        assert!(is_append(append(&mut s, batch(1, 0, 2, 1, 4))));
    }

    #[test]
    fn several_batches_in_one_append_are_checked_in_order() {
        let s = ProducerStates::default();
        let ok = s
            .check(&[batch(1, 0, 0, 2, 0), batch(1, 0, 2, 2, 2)])
            .unwrap();
        assert!(matches!(ok, Checked::Append(ref u) if u.len() == 1 && u[0].1.batches.len() == 2));
        assert!(s
            .check(&[batch(1, 0, 0, 2, 0), batch(1, 0, 5, 2, 2)])
            .is_err());
        assert!(s.is_empty(), "a failed check changes nothing");
    }

    #[test]
    fn truncation_forgets_unwritten_batches() {
        let mut s = ProducerStates::default();
        append(&mut s, batch(1, 0, 0, 2, 0)).unwrap();
        append(&mut s, batch(1, 0, 2, 2, 2)).unwrap();
        append(&mut s, batch(2, 0, 0, 1, 4)).unwrap();
        s.truncate_from(2);
        assert_eq!(s.get(1).unwrap().last_seq(), 1);
        assert!(s.get(2).is_none());
        // The retried second batch is written again, not a duplicate.
        assert!(is_append(append(&mut s, batch(1, 0, 2, 2, 2))));
    }

    #[test]
    fn expiry_by_last_timestamp() {
        let mut s = ProducerStates::default();
        append(&mut s, batch(1, 0, 0, 1, 0)).unwrap(); // timestamp 1000
        append(&mut s, batch(2, 0, 0, 1, 500)).unwrap(); // timestamp 1500
        assert_eq!(s.remove_expired(2_000, 1_000), 1);
        assert!(s.get(1).is_none() && s.get(2).is_some());
    }

    #[test]
    fn snapshot_round_trip_keeps_five_batches_and_leaves_out_later_ones() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            append(&mut s, batch(9, 1, i * 2, 2, i as i64 * 2)).unwrap();
        }
        append(&mut s, batch(4, 0, 0, 1, 20)).unwrap();
        let all = s.snapshot_entries(i64::MAX);
        assert_eq!(all.len(), 6);
        let mut back = ProducerStates::default();
        back.load(&all, 0, i64::MAX);
        assert_eq!(back.get(9), s.get(9));
        assert_eq!(back.get(4), s.get(4));
        // Through the file format.
        let bytes = format::encode_producer_snapshot(&all);
        let mut again = ProducerStates::default();
        again.load(
            &format::decode_producer_snapshot(&bytes).unwrap(),
            0,
            i64::MAX,
        );
        assert_eq!(again.get(9), s.get(9));
        // A snapshot at offset 10 holds only batches below it.
        let early = s.snapshot_entries(10);
        assert!(early.iter().all(|e| e.last_offset < 10));
        assert!(!early.iter().any(|e| e.producer_id == 4));
        // Expired producers are not loaded.
        let mut none = ProducerStates::default();
        none.load(&all, 1_000_000, 10);
        assert!(none.is_empty());
    }
}
