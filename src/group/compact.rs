//! Compaction of `__consumer_offsets` by checkpoint: the coordinator holds the
//! live value of every key of its partitions, so once a partition's log is
//! mostly dead records it rewrites the live state at the log end and deletes
//! the whole segments that state supersedes. Replay reads oldest first, so
//! the rewritten values win; keys deleted earlier vanish with their segments.

use bytes::Bytes;

use super::coordinator::{GroupKind, Shared};
use super::format::{self, RecordKey};
use super::store::{self, Entry, OFFSETS_TOPIC};
use crate::broker::state::local;
use crate::storage::retention;

/// Bytes of records per rewritten batch (well under `max.message.bytes`).
const CHECKPOINT_BATCH_BYTES: usize = 256 << 10;
/// Compact once the log is this many times larger than its live state.
const DEAD_TO_LIVE_RATIO: u64 = 2;

/// Live records of one partition, as they would be written now.
fn live_entries(c: &Shared, partition: i32) -> Vec<(Entry, usize)> {
    let co = c.borrow();
    let mut out = Vec::new();
    for (name, e) in co.groups.iter().filter(|(_, e)| e.partition == partition) {
        if let GroupKind::Classic(g) = &e.kind {
            if g.protocol_type.is_some() {
                let record = g.record();
                let len = record.1.as_ref().map_or(0, |v| v.len()) + name.len();
                out.push((record, len));
            }
        }
        for ((t, p), v) in &e.offsets {
            let key = RecordKey::offset(name, t, *p);
            let v: Bytes = format::encode_offset(v);
            let len = v.len() + name.len() + t.len() + 8;
            out.push(((key, Some(v)), len));
        }
    }
    out
}

/// Compact `partition` if it has closed segments and mostly dead records.
/// Returns the number of segments deleted.
pub async fn maybe_compact(c: &Shared, partition: i32) -> usize {
    let Some(log) = local().log(OFFSETS_TOPIC, partition) else {
        return 0;
    };
    let (segments, log_bytes) = {
        let l = log.borrow();
        (l.segments.len(), l.size_bytes())
    };
    if segments < 2 {
        return 0;
    }
    let entries = live_entries(c, partition);
    let live_bytes: usize = entries.iter().map(|(_, n)| n).sum();
    if log_bytes < DEAD_TO_LIVE_RATIO * live_bytes as u64 {
        return 0;
    }
    let checkpoint_start = log.borrow().next_offset;
    let mut batches: Vec<Vec<Entry>> = vec![Vec::new()];
    let mut batch_bytes = 0;
    for (entry, len) in entries {
        if batch_bytes + len > CHECKPOINT_BATCH_BYTES && !batches.last().expect("one").is_empty() {
            batches.push(Vec::new());
            batch_bytes = 0;
        }
        batch_bytes += len;
        batches.last_mut().expect("one").push(entry);
    }
    // Appends happen in call order, so the checkpoint is contiguous.
    let writes: Vec<_> = batches
        .into_iter()
        .filter(|b| !b.is_empty())
        .map(|b| store::write(partition, b))
        .collect();
    for w in writes {
        if let Err(e) = w.await {
            tracing::warn!(partition, error = ?e, "compaction checkpoint failed; old segments kept");
            return 0;
        }
    }
    let deleted = retention::delete_segments_before(&log, checkpoint_start, "compaction");
    if deleted > 0 {
        tracing::info!(
            partition,
            log_bytes,
            live_bytes,
            segments_deleted = deleted,
            "compacted __consumer_offsets partition"
        );
    }
    deleted
}
