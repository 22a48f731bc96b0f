//! Recently appended batches kept in memory so consumers reading the tail are
//! served without a disk read. `Bytes` are shared, so other shards read them
//! without copying too.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;

/// Shard-wide byte budget shared by every partition's cache on the shard.
#[derive(Debug)]
pub struct TailBudget {
    pub cap_bytes: usize,
    used_bytes: Cell<usize>,
}

impl TailBudget {
    pub fn new(cap_bytes: usize) -> Rc<Self> {
        Rc::new(Self {
            cap_bytes,
            used_bytes: Cell::new(0),
        })
    }
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.get()
    }
}

pub struct TailCache {
    budget: Rc<TailBudget>,
    /// (base offset, next offset, bytes of one or more whole batches), ascending.
    entries: VecDeque<(i64, i64, Bytes)>,
    bytes: usize,
}

impl TailCache {
    pub fn new(budget: Rc<TailBudget>) -> Self {
        Self {
            budget,
            entries: VecDeque::new(),
            bytes: 0,
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

    /// Forget everything at or after `offset` (a failed write was rolled back).
    pub fn truncate_from(&mut self, offset: i64) {
        while self.entries.back().is_some_and(|e| e.1 > offset) {
            let (_, _, b) = self.entries.pop_back().unwrap();
            self.bytes -= b.len();
            self.budget
                .used_bytes
                .set(self.budget.used_bytes.get() - b.len());
        }
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
}
