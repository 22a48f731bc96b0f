//! Kafka's offset checkpoint files in the log dir, kept current while the
//! broker runs and written last at clean shutdown:
//! `recovery-point-offset-checkpoint` (everything below was fsync'ed: an
//! unclean start checks only what lies past it), `log-start-offset-checkpoint`,
//! `replication-offset-checkpoint` (the high watermark; one replica here) and
//! `cleaner-offset-checkpoint` (empty: no log cleaner runs on user topics).
//! Shard 0 gathers every shard's figures and writes each file atomically
//! when it changed and its interval has passed.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use super::state::{local, ShardState};
use crate::shard;
use crate::storage::format;
use crate::storage::replace::write_atomically;

/// One partition's offsets, owned so they can cross shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: i32,
    pub recovery_point: i64,
    pub log_start: i64,
    pub high_watermark: i64,
}

/// This shard's partitions.
pub fn local_offsets(state: &ShardState) -> Vec<PartitionOffsets> {
    state
        .logs
        .borrow()
        .iter()
        .map(|(t, p, log)| {
            let l = log.borrow();
            PartitionOffsets {
                topic: t.to_string(),
                partition: p,
                recovery_point: l.synced_offset,
                log_start: l.log_start_offset,
                high_watermark: l.high_watermark,
            }
        })
        .collect()
}

async fn gather() -> Vec<PartitionOffsets> {
    let mut all = Vec::new();
    for s in 0..shard::count() {
        if let Ok(mut v) = shard::submit_to(s, || async { local_offsets(&local()) }).await {
            all.append(&mut v);
        }
    }
    all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    all
}

/// The figure of a partition a file records.
type Figure = fn(&PartitionOffsets) -> i64;

/// Which file, and the figure it records.
const FILES: [(&str, Figure); 3] = [
    (format::RECOVERY_POINT_FILE, |o| o.recovery_point),
    (format::LOG_START_OFFSET_FILE, |o| o.log_start),
    (format::REPLICATION_OFFSET_FILE, |o| o.high_watermark),
];

fn encode(offsets: &[PartitionOffsets], figure: Figure) -> String {
    let entries: Vec<(String, i32, i64)> = offsets
        .iter()
        .map(|o| (o.topic.clone(), o.partition, figure(o)))
        .collect();
    format::encode_offset_checkpoint(&entries)
}

/// Write every checkpoint file now (clean shutdown).
pub fn write_all(dir: &Path, offsets: &[PartitionOffsets]) -> std::io::Result<()> {
    for (file, figure) in FILES {
        write_atomically(&dir.join(file), encode(offsets, figure).as_bytes())?;
    }
    write_atomically(
        &dir.join(format::CLEANER_OFFSET_FILE),
        format::encode_offset_checkpoint(&[]).as_bytes(),
    )
}

/// The recovery points of the last run, by partition (empty if none).
pub fn read_recovery_points(dir: &Path) -> HashMap<(String, i32), i64> {
    read_offsets(dir, format::RECOVERY_POINT_FILE)
}

/// The high watermarks of the last run (`replication-offset-checkpoint`).
pub fn read_high_watermarks(dir: &Path) -> HashMap<(String, i32), i64> {
    read_offsets(dir, format::REPLICATION_OFFSET_FILE)
}

fn read_offsets(dir: &Path, file: &str) -> HashMap<(String, i32), i64> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|t| format::decode_offset_checkpoint(&t))
        .unwrap_or_default()
        .into_iter()
        .map(|(t, p, o)| ((t, p), o))
        .collect()
}

/// On the controller shard: keep the files current, each at its interval
/// (Kafka's `log.flush.offset.checkpoint.interval.ms`,
/// `log.flush.start.offset.checkpoint.interval.ms`,
/// `replica.high.watermark.checkpoint.interval.ms`).
pub async fn checkpoint_loop(state: Rc<ShardState>) {
    let dir = state.cfg.log_dir.clone();
    let intervals = [
        state.cfg.recovery_point_checkpoint_interval_ms,
        state.cfg.log_start_offset_checkpoint_interval_ms,
        state.cfg.high_watermark_checkpoint_interval_ms,
    ];
    let tick = *intervals.iter().min().expect("three intervals");
    let mut last_written: [Option<String>; 3] = Default::default();
    let mut since = [0u64; 3];
    if !dir.join(format::CLEANER_OFFSET_FILE).exists() {
        let _ = write_atomically(
            &dir.join(format::CLEANER_OFFSET_FILE),
            format::encode_offset_checkpoint(&[]).as_bytes(),
        );
    }
    loop {
        shard::sleep(Duration::from_millis(tick)).await;
        let offsets = gather().await;
        for (i, (file, figure)) in FILES.iter().enumerate() {
            since[i] += tick;
            if since[i] < intervals[i] {
                continue;
            }
            since[i] = 0;
            let text = encode(&offsets, *figure);
            if last_written[i].as_deref() == Some(text.as_str()) {
                continue;
            }
            match write_atomically(&dir.join(file), text.as_bytes()) {
                Ok(()) => last_written[i] = Some(text),
                Err(e) => tracing::warn!(file, error = %e, "could not write a checkpoint file"),
            }
        }
    }
}
