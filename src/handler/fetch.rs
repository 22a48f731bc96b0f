//! Fetch: read each partition on its shard (tail cache, else disk through the
//! index), long-poll until `min_bytes` or `max_wait_ms`, and hand the record
//! chunks to the response encoder without copying them (see protocol::response).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{storage_error_code, Reply};
use crate::broker::state::local;
use crate::broker::State;
use crate::protocol::response::{records_placeholder, MAX_RECORDS_PER_PARTITION_BYTES};
use crate::shard;
use crate::storage::{self, Chunk, FetchData};

struct Wanted {
    topic: Option<String>,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    /// The leader epoch the fetcher believes in (v9+; -1: unchecked).
    current_leader_epoch: i32,
}

/// Who is fetching: a consumer, or a follower replica (broker id).
#[derive(Clone, Copy)]
struct Fetcher {
    replica: Option<i32>,
}

/// One partition's answer.
struct Got {
    error: Option<ResponseError>,
    data: Option<FetchData>,
}

pub async fn handle(state: &State, req: FetchRequest, version: i16) -> Reply {
    let catalog = state.catalog();
    let mut layout: Vec<(TopicName, uuid::Uuid, Vec<Wanted>)> = Vec::new();
    for t in &req.topics {
        let name = if version >= 13 {
            catalog.by_id(t.topic_id).map(|m| m.name.clone())
        } else {
            Some(t.topic.0.to_string())
        };
        let id = name
            .as_ref()
            .and_then(|n| catalog.topics.get(n))
            .map_or(t.topic_id, |m| m.id);
        let wanted = t
            .partitions
            .iter()
            .map(|p| Wanted {
                topic: name.clone(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                current_leader_epoch: if version >= 9 {
                    p.current_leader_epoch
                } else {
                    -1
                },
            })
            .collect();
        layout.push((t.topic.clone(), id, wanted));
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let max_bytes = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    };
    let min_bytes = req.min_bytes.max(0) as usize;
    // A follower names itself (replica_id before v15, replica_state after).
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let who = Fetcher {
        replica: (replica_id >= 0).then_some(replica_id),
    };
    let results = loop {
        let (results, total, observed) = read_all(state, &layout, max_bytes, who).await;
        let any_error = results.iter().any(|g| g.error.is_some());
        let now = Instant::now();
        if total >= min_bytes.max(1) || any_error || now >= deadline {
            break results;
        }
        wait_for_data(state, observed, deadline - now, who).await;
        if Instant::now() >= deadline {
            // One last read so data that arrived with the deadline is returned.
            break read_all(state, &layout, max_bytes, who).await.0;
        }
    };
    build(layout, results, version, &state.catalog())
}

/// Read every wanted partition in order, filling up to `max_bytes` (the first
/// non-empty partition always gets its first batch, as in Kafka).
///
/// The answer is Kafka's sequential one, but partitions are read together
/// (at most `fetch_reads_in_flight` at once) wherever what the earlier ones
/// return cannot change their budget: while the partitions' own limits,
/// added up, still fit in what is left of the request's. Such a read asks for
/// at least one batch; if an earlier partition turns out to have answered,
/// a first batch over the budget is dropped again, as a sequential read would
/// not have taken it.
async fn read_all(
    state: &State,
    layout: &[(TopicName, uuid::Uuid, Vec<Wanted>)],
    max_bytes: usize,
    who: Fetcher,
) -> (Vec<Got>, usize, Vec<(String, i32, i64)>) {
    let wanted: Vec<&Wanted> = layout.iter().flat_map(|(_, _, parts)| parts).collect();
    let in_flight = state.cfg.fetch_reads_in_flight.max(1);
    let mut out = Vec::with_capacity(wanted.len());
    let mut total = 0usize;
    let mut observed = Vec::new();
    let mut i = 0;
    while i < wanted.len() {
        // The run of partitions from `i` whose budgets are their own limits
        // whatever the earlier ones of the run return.
        let mut room = max_bytes.saturating_sub(total);
        let mut j = i;
        while j < wanted.len() && j - i < in_flight {
            let cap = partition_cap(wanted[j]);
            if cap == 0 || cap > room || wanted[j].topic.is_none() {
                break;
            }
            room -= cap;
            j += 1;
        }
        let run: Vec<usize> = if j > i + 1 { (i..j).collect() } else { vec![i] };
        let plans: Vec<(usize, usize, bool)> = if run.len() == 1 {
            // Alone: exactly the sequential budget.
            let budget = partition_cap(wanted[i]).min(max_bytes.saturating_sub(total));
            vec![(i, budget, total == 0)]
        } else {
            run.iter()
                .map(|&k| (k, partition_cap(wanted[k]), true))
                .collect()
        };
        let reads = plans.iter().map(|&(k, budget, min_one_batch)| {
            let w = wanted[k];
            async move {
                let Some(topic) = &w.topic else {
                    return Err(ResponseError::UnknownTopicId);
                };
                if budget == 0 && !min_one_batch {
                    return Ok(None);
                }
                let at = ReadAt {
                    offset: w.offset,
                    max_bytes: budget,
                    min_one_batch,
                    leader_epoch: w.current_leader_epoch,
                    who,
                };
                read_one(state, topic, w.partition, at).await
            }
        });
        let results = futures::future::join_all(reads).await;
        for (&(k, budget, _), got) in plans.iter().zip(results) {
            let w = wanted[k];
            match got {
                Ok(Some(mut d)) => {
                    // Over budget is only ever the one first batch.
                    if total > 0 && d.bytes() > budget {
                        d.chunks.clear();
                    }
                    total += d.bytes();
                    let topic = w.topic.clone().expect("read only with a topic");
                    observed.push((topic, w.partition, d.read_end));
                    out.push(Got {
                        error: None,
                        data: Some(d),
                    });
                }
                Ok(None) => out.push(Got {
                    error: None,
                    data: None,
                }),
                Err(e) => out.push(Got {
                    error: Some(e),
                    data: None,
                }),
            }
        }
        i = run[run.len() - 1] + 1;
    }
    (out, total, observed)
}

/// A partition's own limit on what it returns: its `max_bytes`, within what
/// one partition's records may be in a response.
fn partition_cap(w: &Wanted) -> usize {
    w.max_bytes.min(MAX_RECORDS_PER_PARTITION_BYTES)
}

/// Where and how one partition is read.
#[derive(Clone, Copy)]
struct ReadAt {
    offset: i64,
    max_bytes: usize,
    min_one_batch: bool,
    leader_epoch: i32,
    who: Fetcher,
}

/// Read one partition on its shard. Local reads keep the DMA buffer; remote
/// reads come back as owned bytes (one copy, counted in the closing note).
async fn read_one(
    state: &State,
    topic: &str,
    partition: i32,
    at: ReadAt,
) -> Result<Option<FetchData>, ResponseError> {
    let Some(shard_id) = state.table.borrow().shard_of(topic, partition) else {
        return Err(state.not_served_error(topic, partition));
    };
    let version = state.table.borrow().version();
    if shard_id == state.id {
        let log = state
            .log_at(topic, partition, version)
            .await
            .ok_or_else(|| state.not_served_error(topic, partition))?;
        return read_led(&log, at).await.map(Some);
    }
    let topic = topic.to_string();
    let r = shard::submit_to(shard_id, move || async move {
        let st = local();
        let log = st
            .log_at(&topic, partition, version)
            .await
            .ok_or_else(|| st.not_served_error(&topic, partition))?;
        let d = read_led(&log, at).await?;
        let owned: Vec<Bytes> = d
            .chunks
            .into_iter()
            .map(|c| match c {
                Chunk::Mem(b) => b,
                Chunk::Disk(b) => Bytes::copy_from_slice(&b),
            })
            .collect();
        Ok::<_, ResponseError>((owned, d.high_watermark, d.log_start_offset, d.read_end))
    })
    .await
    .map_err(|_| ResponseError::NotLeaderOrFollower)??;
    Ok(Some(FetchData {
        chunks: r.0.into_iter().map(Chunk::Mem).collect(),
        high_watermark: r.1,
        log_start_offset: r.2,
        read_end: r.3,
    }))
}

/// Read a partition this broker leads, on its shard. The fetcher's leader
/// epoch is checked as Kafka does (an older one is fenced, a newer one is
/// not known yet). A follower reads up to the log end and its fetch offset
/// tells the leader how far it has come; a consumer reads up to the high
/// watermark.
async fn read_led(
    log: &crate::storage::log::SharedLog,
    at: ReadAt,
) -> Result<FetchData, ResponseError> {
    {
        let l = log.borrow();
        if at.leader_epoch >= 0 && at.leader_epoch != l.leader_epoch {
            return Err(if at.leader_epoch < l.leader_epoch {
                ResponseError::FencedLeaderEpoch
            } else {
                ResponseError::UnknownLeaderEpoch
            });
        }
        if let Some(r) = at.who.replica {
            if !l.replication.replicas.contains(&r) {
                tracing::debug!(topic = %l.topic, partition = l.partition, replica = r,
                    "fetch from a broker that is not a replica of the partition");
                return Err(ResponseError::NotLeaderOrFollower);
            }
        }
    }
    let d = storage::read::read_limited(
        log,
        at.offset,
        at.max_bytes,
        at.min_one_batch,
        at.who.replica.is_some(),
    )
    .await
    .map_err(|e| storage_error_code(&e))?;
    if let Some(r) = at.who.replica {
        crate::broker::replication::on_follower_fetch(log, r, at.offset);
        // The high watermark may have moved with this fetch.
        let hw = log.borrow().high_watermark;
        return Ok(FetchData {
            high_watermark: hw,
            ..d
        });
    }
    Ok(d)
}

/// Wait until any observed partition's high watermark moves, or `timeout`.
async fn wait_for_data(
    state: &State,
    observed: Vec<(String, i32, i64)>,
    timeout: Duration,
    who: Fetcher,
) {
    let replica = who.replica.is_some();
    let mut by_shard: std::collections::HashMap<shard::ShardId, Vec<(String, i32, i64)>> =
        Default::default();
    for (t, p, hw) in observed {
        if let Some(s) = state.table.borrow().shard_of(&t, p) {
            by_shard.entry(s).or_default().push((t, p, hw));
        }
    }
    if by_shard.is_empty() {
        shard::sleep(timeout).await;
        return;
    }
    let waits = by_shard.into_iter().map(|(s, parts)| {
        Box::pin(async move {
            let _ = shard::submit_to(s, move || wait_local(parts, timeout, replica)).await;
        })
    });
    select_all(waits).await;
}

/// `replica`: the fetch reads to the log end (a follower), so the wait is
/// for the log end to move; otherwise for the high watermark.
async fn wait_local(parts: Vec<(String, i32, i64)>, timeout: Duration, replica: bool) {
    let state = local();
    let mut notified = Vec::new();
    for (t, p, seen) in &parts {
        let Some(log) = state.log(t, *p) else { return };
        let l = log.borrow();
        let end = if replica {
            l.written_end
        } else {
            l.high_watermark
        };
        if end != *seen {
            return; // moved between our read and now
        }
        notified.push(Box::pin(l.hw_moved.notified()));
    }
    let _ = shard::timeout(timeout, select_all(notified)).await;
}

fn build(
    layout: Vec<(TopicName, uuid::Uuid, Vec<Wanted>)>,
    results: Vec<Got>,
    version: i16,
    catalog: &crate::cluster::Catalog,
) -> Reply {
    let mut records = VecDeque::new();
    let mut hints = super::LeaderHints::default();
    let mut results = results.into_iter();
    let mut responses = Vec::with_capacity(layout.len());
    for (name, id, parts) in layout {
        let mut partitions = Vec::with_capacity(parts.len());
        for w in parts {
            let g = results.next().expect("one result per partition");
            let mut p = PartitionData::default()
                .with_partition_index(w.partition)
                .with_error_code(super::code(g.error))
                .with_high_watermark(-1)
                .with_last_stable_offset(-1);
            // KIP-951 (v16+): a partition led elsewhere names its leader,
            // and the response that leader's endpoint.
            let moved = matches!(
                g.error,
                Some(ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch)
            );
            let leader = w
                .topic
                .as_deref()
                .filter(|_| moved && version >= 16)
                .and_then(|t| hints.leader(catalog, t, w.partition));
            if let Some((id, epoch)) = leader {
                p = p.with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(id))
                        .with_leader_epoch(epoch),
                );
            }
            if let Some(d) = g.data {
                let len = d.bytes();
                p = p
                    .with_high_watermark(d.high_watermark)
                    .with_last_stable_offset(d.high_watermark);
                if version >= 5 {
                    p = p.with_log_start_offset(d.log_start_offset);
                }
                if len > 0 {
                    p = p.with_records(Some(records_placeholder(len)));
                    records.push_back(d.chunks);
                } else {
                    p = p.with_records(Some(Bytes::new()));
                }
            }
            partitions.push(p);
        }
        // v13+ identifies topics by id only; older versions by name only.
        let t = FetchableTopicResponse::default().with_partitions(partitions);
        responses.push(if version >= 13 {
            t.with_topic_id(id)
        } else {
            t.with_topic(name)
        });
    }
    let mut resp = FetchResponse::default().with_responses(responses);
    if version >= 16 {
        resp = resp.with_node_endpoints(
            hints
                .endpoints
                .into_iter()
                .map(|(id, host, port)| {
                    NodeEndpoint::default()
                        .with_node_id(BrokerId(id))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port as i32)
                })
                .collect(),
        );
    }
    Reply {
        body: ResponseKind::Fetch(resp),
        records,
        version: None,
    }
}
