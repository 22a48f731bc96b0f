//! Group state on disk: writes to and replay of `__consumer_offsets`
//! partitions, through the normal partition log (acks=all durability).

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;

use std::time::Duration;

use super::format::{self, RecordKey};
use crate::broker::state::local;
use crate::storage::log::{await_committed, NotCommitted, SharedLog};
use crate::storage::{now_ms, read, StorageError};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Bytes read per step while replaying a partition.
const REPLAY_READ_BYTES: usize = 4 << 20;

/// One record to write: key and value (None: tombstone).
pub type Entry = (RecordKey, Option<Bytes>);

/// Append `entries` as one batch to partition `partition` of
/// `__consumer_offsets` and wait until it is on stable storage and every
/// in-sync replica holds it (Kafka writes group state with acks=all, so a
/// commit survives the coordinator's broker), at most
/// `offsets.commit.timeout.ms`. The append itself happens before the first
/// await, so callers' writes reach the log in the order they were called.
pub fn write(
    partition: i32,
    entries: Vec<Entry>,
) -> impl std::future::Future<Output = Result<(), ResponseError>> {
    let appended = append(partition, entries);
    async move {
        let (log, end, done) = appended?;
        match done.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(write_error(&e)),
            Err(_) => return Err(ResponseError::CoordinatorNotAvailable),
        }
        let timeout = Duration::from_millis(local().cfg.groups.offsets_commit_timeout_ms);
        // Kafka's mapping (GroupMetadataManager): a lost leadership means
        // "ask the new coordinator", too few replicas "try again".
        match await_committed(&log, end, timeout).await {
            Ok(()) => Ok(()),
            Err(NotCommitted::NotLeader) => Err(ResponseError::NotCoordinator),
            Err(NotCommitted::BelowMinIsr { isr, .. })
                if isr as usize >= min_isr_for_groups(&log.borrow()) =>
            {
                Ok(())
            }
            Err(NotCommitted::BelowMinIsr { .. } | NotCommitted::TimedOut) => {
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }
}

/// The in-sync replicas a group write needs: `min.insync.replicas`, but not
/// more than the partition has (`__consumer_offsets` is created with fewer
/// replicas than `offsets.topic.replication.factor` when fewer brokers
/// were live; its groups must still work).
fn min_isr_for_groups(l: &crate::storage::log::PartitionLog) -> usize {
    (l.config.min_insync_replicas.max(1) as usize).min(l.replication.replicas.len().max(1))
}

type Done = futures::channel::oneshot::Receiver<Result<(), StorageError>>;

fn append(partition: i32, entries: Vec<Entry>) -> Result<(SharedLog, i64, Done), ResponseError> {
    assert!(!entries.is_empty());
    let state = local();
    let log = state
        .log(OFFSETS_TOPIC, partition)
        .ok_or(ResponseError::NotCoordinator)?;
    // As Produce with acks=all: too few in-sync replicas, nothing written
    // (Kafka answers a group write's NOT_ENOUGH_REPLICAS this way).
    if log.borrow().replication.isr.len() < min_isr_for_groups(&log.borrow()) {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    let records: Vec<(Option<Bytes>, Option<Bytes>)> = entries
        .into_iter()
        .map(|(k, v)| (Some(format::encode_key(&k)), v))
        .collect();
    let now = now_ms();
    let batch = crate::client::records::encode_batch(&records, now)
        .map_err(|_| ResponseError::UnknownServerError)?;
    let (_, done) = log
        .borrow_mut()
        .append(&batch, true, now)
        .map_err(|e| write_error(&e))?;
    let end = log.borrow().next_offset;
    state.committer.appended(&log);
    Ok((log, end, done))
}

/// Kafka's mapping of a failed group write (GroupMetadataManager).
fn write_error(e: &StorageError) -> ResponseError {
    match e {
        StorageError::MessageTooLarge { .. } => ResponseError::UnknownServerError,
        StorageError::Closed => ResponseError::NotCoordinator,
        _ => ResponseError::CoordinatorNotAvailable,
    }
}

/// Every record of a partition, oldest first, as (key, value): to the log
/// end, not the high watermark, as Kafka's coordinator loads. A replica that
/// just became leader learns the high watermark from its followers' next
/// fetches; what its old leader acknowledged is already in its log.
pub async fn replay(
    partition: i32,
    mut apply: impl FnMut(RecordKey, Option<Bytes>),
) -> Result<usize, StorageError> {
    let log = local()
        .log(OFFSETS_TOPIC, partition)
        .ok_or(StorageError::Closed)?;
    let mut offset = log.borrow().log_start_offset;
    let mut applied = 0;
    loop {
        let data = read::read_limited(&log, offset, REPLAY_READ_BYTES, true, true).await?;
        if data.chunks.is_empty() {
            return Ok(applied);
        }
        let mut buf = BytesMut::with_capacity(data.bytes());
        for c in &data.chunks {
            buf.extend_from_slice(c.as_slice());
        }
        let decoded = crate::client::records::decode_batches(buf.freeze(), offset)
            .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
        for r in decoded.records {
            let Some(key) = r.key else { continue };
            match format::decode_key(&key) {
                Ok(k) => {
                    apply(k, r.value);
                    applied += 1;
                }
                Err(e) => {
                    tracing::warn!(partition, offset = r.offset, error = %e, "skipping unreadable __consumer_offsets record")
                }
            }
        }
        match decoded.next_offset {
            Some(next) if next > offset => offset = next,
            _ => return Ok(applied),
        }
    }
}
