//! Time- and size-based retention: delete whole old segments, advance the log
//! start offset. The active segment is never deleted.

use super::log::SharedLog;

/// Delete expired segments of one log; returns how many went.
pub fn enforce(log: &SharedLog, now_ms: i64) -> usize {
    let mut deleted = 0;
    if log.borrow().config.compact {
        // A compacted topic keeps the latest value of every key for good.
        return 0;
    }
    loop {
        let mut l = log.borrow_mut();
        if l.segments.len() <= 1 {
            break;
        }
        let total = l.size_bytes();
        let (retention_ms, retention_bytes) = (l.config.retention_ms, l.config.retention_bytes);
        let seg = l.segments.values_mut().next().unwrap();
        if !seg.index_loaded {
            seg.load_indexes();
            seg.index_loaded = true;
        }
        // A segment's age is its newest record's timestamp (Kafka's rule), or
        // its file time when it holds no timestamps.
        let newest = if seg.index.max_timestamp_ms >= 0 {
            seg.index.max_timestamp_ms
        } else {
            seg.created_ms
        };
        let expired = retention_ms >= 0 && now_ms - newest > retention_ms;
        let oversize = retention_bytes >= 0 && total - seg.size_bytes >= retention_bytes as u64;
        if !expired && !oversize {
            break;
        }
        drop(l);
        remove_oldest(
            log,
            if expired {
                "retention.ms"
            } else {
                "retention.bytes"
            },
        );
        deleted += 1;
    }
    deleted
}

/// Delete the oldest segments whose records all lie below `offset` (the
/// active segment stays). Returns how many went.
pub fn delete_segments_before(log: &SharedLog, offset: i64, reason: &str) -> usize {
    let mut deleted = 0;
    loop {
        let next_base = {
            let l = log.borrow();
            if l.segments.len() <= 1 {
                break;
            }
            *l.segments.keys().nth(1).expect("two segments")
        };
        if next_base > offset {
            break;
        }
        remove_oldest(log, reason);
        deleted += 1;
    }
    deleted
}

fn remove_oldest(log: &SharedLog, reason: &str) {
    let mut l = log.borrow_mut();
    assert!(l.segments.len() > 1, "the active segment is never deleted");
    let base = *l.segments.keys().next().expect("a segment");
    let seg = l.segments.remove(&base).expect("present");
    l.log_start_offset = *l.segments.keys().next().expect("a segment");
    tracing::info!(topic = %l.topic, partition = l.partition, base_offset = base,
        bytes = seg.size_bytes, new_log_start_offset = l.log_start_offset, reason, "deleted segment");
    drop(l);
    // Open readers keep their file descriptors; unlinking is safe under them.
    for ext in ["log", "index", "timeindex"] {
        let _ = std::fs::remove_file(seg.path(ext));
    }
    // Snapshots below the new start describe deleted batches (the producers
    // themselves stay until they expire, as in Kafka).
    let l = log.borrow();
    l.delete_snapshots_before(l.log_start_offset);
}
