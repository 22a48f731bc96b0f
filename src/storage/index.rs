//! A segment's sparse offset index and time index, in memory. Pure data: the
//! files are written by `Segment::persist_indexes`.

use super::format::{BatchHeader, OffsetEntry, TimeEntry};

#[derive(Debug)]
pub struct SegmentIndex {
    pub base_offset: i64,
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    /// How many entries of each are already in their files.
    pub offsets_persisted: usize,
    pub times_persisted: usize,
    bytes_since_entry: u64,
    pub max_timestamp_ms: i64,
    /// Relative offset of the batch holding `max_timestamp_ms`.
    rel_offset_of_max_ts: u32,
}

impl SegmentIndex {
    /// Last offset of the batch that holds `max_timestamp_ms`.
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.base_offset + self.rel_offset_of_max_ts as i64
    }

    pub fn new(base_offset: i64) -> Self {
        Self {
            base_offset,
            offsets: Vec::new(),
            times: Vec::new(),
            offsets_persisted: 0,
            times_persisted: 0,
            bytes_since_entry: 0,
            max_timestamp_ms: -1,
            rel_offset_of_max_ts: 0,
        }
    }

    /// Account for a batch at `position`, adding entries every
    /// `interval_bytes` of log as Kafka does (`index.interval.bytes`).
    pub fn on_batch(&mut self, h: &BatchHeader, position: u64, interval_bytes: u64) {
        let due = self.bytes_since_entry >= interval_bytes;
        if due {
            // Point at the batch start, so a lookup for any offset in or after
            // this batch lands at or before it.
            let rel = (h.base_offset - self.base_offset) as u32;
            self.offsets.push(OffsetEntry {
                relative_offset: rel,
                position: position as u32,
            });
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += h.size_bytes as u64;
        if h.max_timestamp > self.max_timestamp_ms {
            self.max_timestamp_ms = h.max_timestamp;
            self.rel_offset_of_max_ts = (h.last_offset() - self.base_offset) as u32;
            if due || self.times.is_empty() {
                self.push_time_entry();
            }
        }
    }

    fn push_time_entry(&mut self) {
        if self
            .times
            .last()
            .is_none_or(|t| t.timestamp_ms < self.max_timestamp_ms)
        {
            self.times.push(TimeEntry {
                timestamp_ms: self.max_timestamp_ms,
                relative_offset: self.rel_offset_of_max_ts,
            });
        }
    }

    /// Before a segment is closed: make the last time entry carry the
    /// segment's largest timestamp, so a reloaded index knows it exactly.
    pub fn seal(&mut self) {
        if self.max_timestamp_ms >= 0 {
            self.push_time_entry();
        }
    }

    /// Keep the entries before offset entry `i` (dropping it and all after,
    /// and the time entries from its offset on), so a scan from entry `i`'s
    /// position rebuilds the rest exactly as appends built it.
    pub fn truncate_to_entry(&mut self, i: usize) {
        let cut = self.offsets[i].relative_offset;
        self.offsets.truncate(i);
        self.times.retain(|t| t.relative_offset < cut);
        self.offsets_persisted = self.offsets_persisted.min(self.offsets.len());
        self.times_persisted = self.times_persisted.min(self.times.len());
        self.max_timestamp_ms = self.times.last().map_or(-1, |t| t.timestamp_ms);
        self.rel_offset_of_max_ts = self.times.last().map_or(0, |t| t.relative_offset);
        // The next batch scanned gets an entry, as entry `i` was.
        self.bytes_since_entry = u64::MAX;
    }

    /// Byte position to start scanning from to find `offset`.
    pub fn position_for(&self, offset: i64) -> u64 {
        let rel = (offset - self.base_offset).max(0) as u32;
        let i = self.offsets.partition_point(|e| e.relative_offset <= rel);
        if i == 0 {
            0
        } else {
            self.offsets[i - 1].position as u64
        }
    }

    /// Offset to start scanning from for the first record with timestamp >= ts.
    pub fn time_scan_start(&self, ts: i64) -> i64 {
        let i = self.times.partition_point(|e| e.timestamp_ms < ts);
        if i == 0 {
            self.base_offset
        } else {
            self.base_offset + self.times[i - 1].relative_offset as i64
        }
    }

    /// Adopt entries loaded from files; false if they are not well ordered or
    /// point past `log_bytes`.
    pub fn adopt(
        &mut self,
        offsets: Vec<OffsetEntry>,
        times: Vec<TimeEntry>,
        log_bytes: u64,
    ) -> bool {
        let ordered = offsets
            .windows(2)
            .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position)
            && times
                .windows(2)
                .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms);
        if !ordered
            || offsets
                .last()
                .is_some_and(|e| e.position as u64 >= log_bytes)
        {
            return false;
        }
        self.offsets_persisted = offsets.len();
        self.times_persisted = times.len();
        self.max_timestamp_ms = times.last().map_or(-1, |t| t.timestamp_ms);
        self.rel_offset_of_max_ts = times.last().map_or(0, |t| t.relative_offset);
        self.offsets = offsets;
        self.times = times;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base: i64, n: i32, size: usize, ts: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            size_bytes: size,
            leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: n - 1,
            base_timestamp: ts,
            max_timestamp: ts,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: n,
        }
    }

    #[test]
    fn sparse_offset_lookup_lands_within_one_interval() {
        let mut idx = SegmentIndex::new(100);
        for b in 0..100i64 {
            idx.on_batch(&header(100 + b * 10, 10, 1000, b), (b * 1000) as u64, 4096);
        }
        assert!(
            idx.offsets.len() >= 15 && idx.offsets.len() <= 25,
            "{}",
            idx.offsets.len()
        );
        assert_eq!(idx.position_for(100), 0);
        assert_eq!(idx.position_for(50), 0);
        for off in 100..1100 {
            let batch_pos = ((off - 100) / 10 * 1000) as u64;
            let p = idx.position_for(off);
            assert!(
                p <= batch_pos && batch_pos - p <= 4096 + 1000,
                "{off}: {p} vs {batch_pos}"
            );
        }
    }

    #[test]
    fn time_lookup_starts_at_or_before_target() {
        let mut idx = SegmentIndex::new(0);
        for b in 0..50i64 {
            idx.on_batch(
                &header(b * 10, 10, 1000, 1000 + b * 100),
                (b * 1000) as u64,
                4096,
            );
        }
        assert_eq!(idx.time_scan_start(0), 0);
        for b in 0..50i64 {
            let start = idx.time_scan_start(1000 + b * 100);
            assert!(start <= b * 10 + 9, "batch {b}: start {start}");
        }
        assert_eq!(idx.max_timestamp_ms, 1000 + 49 * 100);
    }

    #[test]
    fn adopt_rejects_disorder() {
        let mut idx = SegmentIndex::new(0);
        let bad = vec![
            OffsetEntry {
                relative_offset: 5,
                position: 100,
            },
            OffsetEntry {
                relative_offset: 4,
                position: 200,
            },
        ];
        assert!(!idx.adopt(bad, vec![], 1000));
        let good = vec![OffsetEntry {
            relative_offset: 5,
            position: 100,
        }];
        assert!(idx.adopt(good.clone(), vec![], 1000));
        assert!(!SegmentIndex::new(0).adopt(good, vec![], 50));
    }
}
