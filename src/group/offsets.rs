//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, expiry of empty
//! groups' offsets (`offsets.retention.minutes`) and of deleted topics.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::coordinator::{GroupKind, Shared};
use super::format::{self, OffsetValue, RecordKey};
use super::store::{self, Entry};
use crate::broker::state::local;
use crate::cluster::Catalog;
use crate::shard;
use crate::storage::now_ms;

#[derive(Debug, Clone)]
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// Who commits: a classic member (generation), a KIP-848 member (epoch), or
/// nobody (generation -1: a "simple" commit).
#[derive(Debug, Clone)]
pub struct Committer {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation_or_epoch: i32,
}

pub type PartitionResult = (String, i32, Option<ResponseError>);

pub async fn commit(
    c: &Shared,
    partition: i32,
    group: &str,
    who: Committer,
    parts: Vec<CommitPartition>,
) -> Vec<PartitionResult> {
    let now = now_ms();
    let group_error = {
        let mut co = c.borrow_mut();
        let simple = who.generation_or_epoch < 0;
        match co
            .groups
            .get(group)
            .map(|e| matches!(e.kind, GroupKind::Consumer(_)))
        {
            None if !simple => Some(ResponseError::IllegalGeneration),
            Some(true) => match &mut co.groups.get_mut(group).expect("present").kind {
                GroupKind::Consumer(g) => {
                    g.validate_commit(&who.member_id, who.generation_or_epoch)
                }
                GroupKind::Classic(_) => unreachable!(),
            },
            _ => match co.classic(group, partition, true) {
                Ok(Some(g)) => g.validate_commit(
                    &who.member_id,
                    who.instance_id.as_deref(),
                    who.generation_or_epoch,
                    now,
                ),
                Ok(None) => Some(ResponseError::UnknownServerError),
                Err(e) => Some(e),
            },
        }
    };
    if let Some(e) = group_error {
        return parts
            .into_iter()
            .map(|p| (p.topic, p.partition, Some(e)))
            .collect();
    }
    let catalog = local().catalog();
    let max_metadata = c.borrow().cfg.offset_metadata_max_bytes;
    let mut results = Vec::with_capacity(parts.len());
    let mut accepted: Vec<(String, i32, OffsetValue)> = Vec::new();
    for p in parts {
        let exists = catalog
            .topics
            .get(&p.topic)
            .is_some_and(|t| (0..t.partitions).contains(&p.partition));
        let metadata = p.metadata.unwrap_or_default();
        let error = if !exists {
            Some(ResponseError::UnknownTopicOrPartition)
        } else if metadata.len() > max_metadata {
            Some(ResponseError::OffsetMetadataTooLarge)
        } else {
            accepted.push((
                p.topic.clone(),
                p.partition,
                OffsetValue {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata,
                    commit_timestamp_ms: now,
                },
            ));
            None
        };
        results.push((p.topic, p.partition, error));
    }
    if accepted.is_empty() {
        return results;
    }
    let entries: Vec<Entry> = accepted
        .iter()
        .map(|(t, p, v)| {
            (
                RecordKey::offset(group, t, *p),
                Some(format::encode_offset(v)),
            )
        })
        .collect();
    match store::write(partition, entries).await {
        Ok(()) => {
            let mut co = c.borrow_mut();
            if let Some(e) = co.groups.get_mut(group) {
                for (t, p, v) in accepted {
                    e.offsets.insert((t, p), v);
                }
            }
        }
        Err(e) => {
            for r in results.iter_mut().filter(|r| r.2.is_none()) {
                r.2 = Some(e);
            }
        }
    }
    results
}

/// (partition, offset, leader epoch, metadata) of one topic.
pub type FetchedTopic = (String, Vec<(i32, i64, i32, String)>);

/// Committed offsets of `group`: every one, or those of `topics` (-1 where
/// nothing is committed, as Kafka answers).
pub fn fetch(
    c: &Shared,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<FetchedTopic> {
    let co = c.borrow();
    let empty = BTreeMap::new();
    let offsets = co.groups.get(group).map_or(&empty, |e| &e.offsets);
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(t, parts)| {
                let parts = parts
                    .into_iter()
                    .map(|p| match offsets.get(&(t.clone(), p)) {
                        Some(v) => (p, v.offset, v.leader_epoch, v.metadata.clone()),
                        None => (p, -1, -1, String::new()),
                    })
                    .collect();
                (t, parts)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<(i32, i64, i32, String)>> = BTreeMap::new();
            for ((t, p), v) in offsets {
                by_topic.entry(t.clone()).or_default().push((
                    *p,
                    v.offset,
                    v.leader_epoch,
                    v.metadata.clone(),
                ));
            }
            by_topic.into_iter().collect()
        }
    }
}

/// OffsetDelete: remove committed offsets of topics nobody in the group is
/// subscribed to. `Err` is the group-level error.
pub async fn delete(
    c: &Shared,
    group: &str,
    topics: Vec<(String, Vec<i32>)>,
) -> Result<Vec<PartitionResult>, ResponseError> {
    let (partition, results, entries) = {
        let mut co = c.borrow_mut();
        let e = co
            .groups
            .get_mut(group)
            .ok_or(ResponseError::GroupIdNotFound)?;
        let subscribed = |t: &str| match &e.kind {
            GroupKind::Classic(g) => g.is_subscribed_to(t),
            GroupKind::Consumer(g) => g.is_subscribed_to(t),
        };
        if let GroupKind::Classic(g) = &e.kind {
            if g.state != super::classic::GroupState::Empty
                && g.protocol_type.as_deref() != Some("consumer")
            {
                return Err(ResponseError::NonEmptyGroup);
            }
        }
        let mut results = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for (t, parts) in topics {
            let blocked = subscribed(&t);
            for p in parts {
                if blocked {
                    results.push((t.clone(), p, Some(ResponseError::GroupSubscribedToTopic)));
                } else {
                    if e.offsets.remove(&(t.clone(), p)).is_some() {
                        entries.push((RecordKey::offset(group, &t, p), None));
                    }
                    results.push((t.clone(), p, None));
                }
            }
        }
        (e.partition, results, entries)
    };
    if !entries.is_empty() {
        store::write(partition, entries).await?;
    }
    Ok(results)
}

/// Tombstones for `entries`, written in the background (the in-memory state
/// already dropped them; a failed write leaves them to the next expiry).
fn write_tombstones(partition: i32, entries: Vec<Entry>) {
    if entries.is_empty() {
        return;
    }
    let write = store::write(partition, entries);
    shard::spawn(async move {
        if let Err(e) = write.await {
            tracing::warn!(partition, error = ?e, "could not write offset tombstones");
        }
    })
    .detach();
}

/// Committed offsets of topics that no longer exist, or were deleted and
/// created again in between (a new topic id), are deleted with them.
pub fn drop_deleted_topics(c: &Shared, old: &Catalog, catalog: &Catalog) {
    let gone = |t: &str| match (old.topics.get(t), catalog.topics.get(t)) {
        (_, None) => true,
        (Some(o), Some(n)) => o.id != n.id,
        (None, Some(_)) => false,
    };
    let mut co = c.borrow_mut();
    let mut by_partition: BTreeMap<i32, Vec<Entry>> = BTreeMap::new();
    for (name, e) in co.groups.iter_mut() {
        let gone: Vec<(String, i32)> = e.offsets.keys().filter(|(t, _)| gone(t)).cloned().collect();
        for (t, p) in gone {
            e.offsets.remove(&(t.clone(), p));
            by_partition
                .entry(e.partition)
                .or_default()
                .push((RecordKey::offset(name, &t, p), None));
        }
    }
    for (p, entries) in by_partition {
        tracing::info!(
            partition = p,
            offsets = entries.len(),
            "deleting committed offsets of deleted topics"
        );
        write_tombstones(p, entries);
    }
}

/// `offsets.retention.minutes`: offsets of a group that has been empty that
/// long expire (KIP-211); a group left with nothing is deleted.
pub fn expire(c: &Shared, now_ms: i64) {
    let mut co = c.borrow_mut();
    let retention_ms = co.cfg.offsets_retention_ms;
    let mut by_partition: BTreeMap<i32, Vec<Entry>> = BTreeMap::new();
    let mut dead = Vec::new();
    for (name, e) in co.groups.iter_mut() {
        if !e.is_empty() {
            continue;
        }
        let (managed, empty_since) = match &e.kind {
            GroupKind::Classic(g) => (g.protocol_type.is_some(), g.state_timestamp_ms),
            GroupKind::Consumer(g) => (true, g.empty_since_ms),
        };
        let expired: Vec<(String, i32)> = e
            .offsets
            .iter()
            .filter(|(_, v)| {
                // Simple (unmanaged) groups expire offset by offset.
                let base = if managed {
                    empty_since
                } else {
                    v.commit_timestamp_ms
                };
                now_ms - base >= retention_ms
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (t, p) in expired {
            e.offsets.remove(&(t.clone(), p));
            by_partition
                .entry(e.partition)
                .or_default()
                .push((RecordKey::offset(name, &t, p), None));
        }
        if e.offsets.is_empty() {
            dead.push(name.clone());
            by_partition
                .entry(e.partition)
                .or_default()
                .push((RecordKey::group(name), None));
        }
    }
    for name in dead {
        tracing::info!(group = %name, "group expired: empty, and its offsets are past offsets.retention.minutes");
        co.groups.remove(&name);
    }
    drop(co);
    for (p, entries) in by_partition {
        write_tombstones(p, entries);
    }
}
