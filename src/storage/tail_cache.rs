//! Recently appended batches kept in memory so consumers reading the tail are
//! served without a disk read. `Bytes` are shared, so other shards read them
//! without copying too. Beside them, at most one read started ahead of a
//! sequential reader that is catching up from disk.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;

use crate::shard::io::ReadBuf;
use crate::shard::Task;
use std::io;

/// Shard-wide byte budgets shared by every partition on the shard: the
/// tail caches (`sluice.tail.cache.bytes`) and the reads ahead of
/// sequential readers (`sluice.fetch.read.ahead.bytes`).
#[derive(Debug)]
pub struct TailBudget {
    pub cap_bytes: usize,
    used_bytes: Cell<usize>,
    pub read_ahead_cap_bytes: usize,
    read_ahead_used_bytes: Cell<usize>,
}

impl TailBudget {
    pub fn new(cap_bytes: usize) -> Rc<Self> {
        Self::with_read_ahead(cap_bytes, 0)
    }
    pub fn with_read_ahead(cap_bytes: usize, read_ahead_cap_bytes: usize) -> Rc<Self> {
        Rc::new(Self {
            cap_bytes,
            used_bytes: Cell::new(0),
            read_ahead_cap_bytes,
            read_ahead_used_bytes: Cell::new(0),
        })
    }
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.get()
    }
    pub fn read_ahead_used_bytes(&self) -> usize {
        self.read_ahead_used_bytes.get()
    }
}

/// Bytes of a segment as they were read: (position in the file, bytes),
/// ascending and contiguous.
pub type Pieces = Vec<(u64, ReadBuf)>;

/// A read of a segment started for the fetch a sequential reader will make
/// next: the batch at `pos` is the one holding `offset`, and the pieces
/// start there. Its bytes count against the shard's read-ahead budget until
/// it is taken or dropped (dropping it cancels the read).
pub struct ReadAhead {
    pub segment_base: i64,
    pub offset: i64,
    pub pos: u64,
    pub read: Task<io::Result<Pieces>>,
    bytes: usize,
    budget: Rc<TailBudget>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        let used = &self.budget.read_ahead_used_bytes;
        used.set(used.get() - self.bytes);
    }
}

pub struct TailCache {
    budget: Rc<TailBudget>,
    /// At most one read ahead per partition (the latest sequential reader's).
    read_ahead: Option<ReadAhead>,
    /// Moves on at every truncation: a read ahead planned before one (its
    /// fetch awaited across it) is not started.
    generation: u64,
    /// (base offset, next offset, bytes of one or more whole batches), ascending.
    entries: VecDeque<(i64, i64, Bytes)>,
    bytes: usize,
}

impl TailCache {
    pub fn new(budget: Rc<TailBudget>) -> Self {
        Self {
            budget,
            read_ahead: None,
            generation: 0,
            entries: VecDeque::new(),
            bytes: 0,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Drop the read ahead for `offset`: its reader found it in the cache
    /// (it caught up), so it would only hold budget.
    pub fn drop_read_ahead_at(&mut self, offset: i64) {
        if self.read_ahead.as_ref().is_some_and(|r| r.offset == offset) {
            self.read_ahead = None;
        }
    }

    /// Start `read` (of `bytes` from `pos` of segment `segment_base`, where
    /// the batch holding `offset` begins) for the next fetch, if the log was
    /// not truncated since `generation` and the shard's read-ahead budget
    /// has room; it replaces any earlier one.
    pub fn read_ahead(
        &mut self,
        generation: u64,
        segment_base: i64,
        offset: i64,
        pos: u64,
        bytes: usize,
        read: impl FnOnce() -> Task<io::Result<Pieces>>,
    ) {
        if generation != self.generation {
            return;
        }
        self.read_ahead = None;
        let used = &self.budget.read_ahead_used_bytes;
        if used.get() + bytes > self.budget.read_ahead_cap_bytes {
            return;
        }
        used.set(used.get() + bytes);
        self.read_ahead = Some(ReadAhead {
            segment_base,
            offset,
            pos,
            read: read(),
            bytes,
            budget: self.budget.clone(),
        });
    }

    /// The read ahead for a fetch of `offset` in segment `segment_base`, if
    /// one was started for exactly that.
    pub fn take_read_ahead(&mut self, segment_base: i64, offset: i64) -> Option<ReadAhead> {
        let matches = self
            .read_ahead
            .as_ref()
            .is_some_and(|r| r.segment_base == segment_base && r.offset == offset);
        if matches {
            self.read_ahead.take()
        } else {
            None
        }
    }

    pub fn insert(&mut self, base: i64, next: i64, data: Bytes) {
        debug_assert!(
            self.entries.back().is_none_or(|e| e.1 == base),
            "cache must stay contiguous"
        );
        let len = data.len();
        // Make room from our own oldest entries; if the shard is still full,
        // do not cache (readers fall back to disk).
        while self.budget.used_bytes.get() + len > self.budget.cap_bytes && !self.entries.is_empty()
        {
            self.pop_front();
        }
        if self.budget.used_bytes.get() + len > self.budget.cap_bytes {
            self.clear();
            return;
        }
        self.bytes += len;
        self.budget
            .used_bytes
            .set(self.budget.used_bytes.get() + len);
        self.entries.push_back((base, next, data));
    }

    fn pop_front(&mut self) {
        if let Some((_, _, b)) = self.entries.pop_front() {
            self.bytes -= b.len();
            self.budget
                .used_bytes
                .set(self.budget.used_bytes.get() - b.len());
        }
    }

    pub fn clear(&mut self) {
        while !self.entries.is_empty() {
            self.pop_front();
        }
    }

    /// Forget everything at or after `offset` (a failed write was rolled back,
    /// or the log truncated): a read ahead may hold bytes about to change.
    pub fn truncate_from(&mut self, offset: i64) {
        self.read_ahead = None;
        self.generation += 1;
        while self.entries.back().is_some_and(|e| e.1 > offset) {
            let (_, _, b) = self.entries.pop_back().unwrap();
            self.bytes -= b.len();
            self.budget
                .used_bytes
                .set(self.budget.used_bytes.get() - b.len());
        }
    }

    /// Whether a read of `offset` would be answered from the cache.
    pub fn holds(&self, offset: i64) -> bool {
        self.entries
            .front()
            .is_some_and(|f| f.0 <= offset && self.entries.back().is_some_and(|b| offset < b.1))
    }

    /// Whole cached entries covering `offset` up to `limit` (exclusive next
    /// offset), at most `max_bytes` (the first entry is always returned).
    /// `None` when `offset` is older than the cache.
    pub fn read(&self, offset: i64, limit: i64, max_bytes: usize) -> Option<Vec<Bytes>> {
        let first = self.entries.front()?;
        if offset < first.0 {
            return None;
        }
        let i = self.entries.partition_point(|e| e.1 <= offset);
        let mut out = Vec::new();
        let mut total = 0;
        for (_, next, b) in self.entries.iter().skip(i) {
            if *next > limit || (!out.is_empty() && total + b.len() > max_bytes) {
                break;
            }
            total += b.len();
            out.push(b.clone());
        }
        Some(out)
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_tail_within_budget() {
        let budget = TailBudget::new(100);
        let mut c = TailCache::new(budget.clone());
        c.insert(0, 10, Bytes::from(vec![0u8; 40]));
        c.insert(10, 20, Bytes::from(vec![1u8; 40]));
        c.insert(20, 30, Bytes::from(vec![2u8; 40])); // evicts the first
        assert_eq!(budget.used_bytes(), 80);
        assert!(c.read(5, 30, 1000).is_none());
        assert_eq!(c.read(15, 30, 1000).unwrap().len(), 2);
        assert_eq!(
            c.read(15, 20, 1000).unwrap().len(),
            1,
            "limit (high watermark) respected"
        );
        assert_eq!(
            c.read(15, 30, 10).unwrap().len(),
            1,
            "first entry even if over max_bytes"
        );
        c.truncate_from(20);
        assert_eq!(budget.used_bytes(), 40);
        drop(c);
        assert_eq!(budget.used_bytes(), 0);
    }

    #[test]
    fn read_aheads_are_bounded_matched_and_dropped() {
        crate::shard::block_on(async {
            let budget = TailBudget::with_read_ahead(100, 1000);
            let mut c = TailCache::new(budget.clone());
            let task = || crate::shard::spawn(async { Err(io::Error::other("not read")) });
            c.read_ahead(0, 0, 10, 500, 600, task);
            assert_eq!(budget.read_ahead_used_bytes(), 600);
            // Another partition of the shard gets none past the budget.
            let mut d = TailCache::new(budget.clone());
            d.read_ahead(0, 0, 5, 0, 600, task);
            assert!(d.take_read_ahead(0, 5).is_none());
            assert_eq!(budget.read_ahead_used_bytes(), 600);
            // Only the exact (segment, offset) takes it; taken and dropped,
            // its bytes are free again.
            assert!(c.take_read_ahead(0, 11).is_none());
            assert!(c.take_read_ahead(1, 10).is_none());
            let ra = c.take_read_ahead(0, 10).expect("the read ahead");
            assert_eq!((ra.pos, ra.offset), (500, 10));
            drop(ra);
            assert_eq!(budget.read_ahead_used_bytes(), 0);
            // Planned before a truncation: not started.
            let planned = c.generation();
            c.truncate_from(0);
            c.read_ahead(planned, 0, 10, 500, 600, task);
            assert!(c.take_read_ahead(0, 10).is_none());
            assert_eq!(budget.read_ahead_used_bytes(), 0);
            // A truncation drops one in place; so does its reader being
            // served from the cache; so does the cache itself going.
            let now = c.generation();
            c.read_ahead(now, 0, 10, 500, 600, task);
            c.truncate_from(20);
            assert_eq!(budget.read_ahead_used_bytes(), 0);
            let now = c.generation();
            c.read_ahead(now, 0, 10, 500, 600, task);
            c.drop_read_ahead_at(9);
            assert_eq!(budget.read_ahead_used_bytes(), 600);
            c.drop_read_ahead_at(10);
            assert_eq!(budget.read_ahead_used_bytes(), 0);
            c.read_ahead(now, 0, 10, 500, 600, task);
            drop(c);
            assert_eq!(budget.read_ahead_used_bytes(), 0);
        });
    }
}
