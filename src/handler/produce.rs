use futures::future::join_all;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{on_partition, storage_error_code};
use crate::broker::state::local;
use crate::broker::State;
use crate::shard::budget::Permit;
use crate::shard::ShardId;
use crate::storage::log::AppendInfo;
use crate::storage::{format, now_ms};

/// A partition's records once stored on its shard: answered, or (acks=all)
/// still to be replicated up to `end`.
enum Stored {
    Done(Outcome),
    Replicating { end: i64, info: AppendInfo },
}

/// Per-partition outcome, owned so it can come back from another shard.
struct Outcome {
    error: Option<ResponseError>,
    message: Option<String>,
    base_offset: i64,
    log_append_time_ms: i64,
    log_start_offset: i64,
}

impl Outcome {
    fn stored(info: AppendInfo) -> Self {
        Outcome {
            error: None,
            message: None,
            base_offset: info.base_offset,
            log_append_time_ms: info.log_append_time_ms,
            log_start_offset: info.log_start_offset,
        }
    }

    fn err(e: ResponseError, message: Option<String>) -> Self {
        Outcome {
            error: Some(e),
            message,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
        }
    }
}

pub async fn handle(
    state: &State,
    req: ProduceRequest,
    version: i16,
    memory: &mut Permit,
) -> Option<ResponseKind> {
    let acks = req.acks;
    let timeout_ms = req.timeout_ms.max(0) as u64;
    if req.transactional_id.is_some() {
        // Transactions are not implemented: refuse rather than store batches
        // whose commit markers would never come.
        return reply_all(
            req,
            version,
            ResponseError::TransactionalIdAuthorizationFailed,
            acks,
        );
    }
    if !matches!(acks, -1..=1) {
        return reply_all(req, version, ResponseError::InvalidRequiredAcks, acks);
    }
    let catalog = state.catalog();
    let table_version = state.table.borrow().version();
    // Partitions are shipped to their shards in one job per shard (not one
    // per partition): a request of many small partitions would otherwise pay
    // a cross-shard message, a wake-up and a reply for each of them.
    let mut layout = Vec::with_capacity(req.topic_data.len());
    let mut outcomes: Vec<Option<Outcome>> = Vec::new();
    let mut indexes: Vec<i32> = Vec::new();
    let mut batches: Vec<ShardBatch> = Vec::new();
    for t in req.topic_data {
        // v13+ names topics by id.
        let name = if version >= 13 {
            catalog.by_id(t.topic_id).map(|m| m.name.clone())
        } else {
            Some(t.name.0.to_string())
        };
        // The request's strings are slices of its frame: the response gets
        // its own copy of the name, so the frame goes once its records do.
        let t_name = TopicName(StrBytes::from_string(t.name.0.as_str().to_owned()));
        layout.push((t_name, t.topic_id, t.partition_data.len()));
        for p in t.partition_data {
            let pos = outcomes.len();
            indexes.push(p.index);
            let routed = match (&name, p.records) {
                (None, _) => Err(Outcome::err(ResponseError::UnknownTopicId, None)),
                (_, None) => Err(Outcome::err(
                    ResponseError::CorruptMessage,
                    Some("no records".into()),
                )),
                // Kafka (ProduceRequest.validateRecords): from v3 on, exactly
                // one batch per partition. Idempotence relies on it: a retry
                // must be the same single batch to be recognised.
                (Some(_), Some(records)) if version >= 3 && !one_batch(&records) => {
                    Err(Outcome::err(
                        ResponseError::InvalidRecord,
                        Some(
                            "a produce request must have exactly one record batch per partition"
                                .into(),
                        ),
                    ))
                }
                (Some(name), Some(records)) => match state.table.borrow().shard_of(name, p.index) {
                    Some(shard) => Ok((name, records, shard)),
                    None => Err(Outcome::err(state.not_served_error(name, p.index), None)),
                },
            };
            let (name, records, shard) = match routed {
                Ok(r) => r,
                Err(o) => {
                    outcomes.push(Some(o));
                    continue;
                }
            };
            outcomes.push(None);
            let share = memory.split(records.len());
            let b = match batches.iter().position(|b| b.shard == shard) {
                Some(i) => &mut batches[i],
                None => {
                    batches.push(ShardBatch::new(shard));
                    batches.last_mut().expect("just pushed")
                }
            };
            b.push(name, pos, p.index, records, share);
        }
    }
    // The rest of the request's bytes (header, names) are held by nothing
    // now: names were copied, records each keep their own share.
    drop(memory.split(usize::MAX));
    // Every shard's partitions run at once, and on a shard every partition
    // at once (as Kafka appends them all, then waits for them all): a
    // partition waiting for followers must not hold back another's records,
    // whose request memory would then stay taken while followers' fetches
    // wait to be read.
    let stored = join_all(
        batches
            .into_iter()
            .map(|b| b.store(state, table_version, acks, timeout_ms)),
    )
    .await;
    for (pos, o) in stored.into_iter().flatten() {
        outcomes[pos] = Some(o);
    }
    let mut results = outcomes
        .into_iter()
        .zip(indexes)
        .map(|(o, index)| (index, o.expect("every partition has an outcome")));
    let topics: Vec<_> = layout
        .into_iter()
        .map(|(name, id, n)| (name, id, results.by_ref().take(n).collect::<Vec<_>>()))
        .collect();
    if acks == 0 {
        return None;
    }
    // KIP-951 (v10+): a partition led elsewhere names its leader, and the
    // response that leader's endpoint, so the client need not ask Metadata.
    let catalog = state.catalog();
    let mut hints = super::LeaderHints::default();
    let responses = topics
        .into_iter()
        .map(|(name, id, parts)| {
            let topic = if version >= 13 {
                catalog.by_id(id).map(|t| t.name.clone())
            } else {
                Some(name.0.to_string())
            };
            TopicProduceResponse::default()
                .with_name(name)
                .with_topic_id(id)
                .with_partition_responses(
                    parts
                        .into_iter()
                        .map(|(index, o)| {
                            let not_leader = o.error == Some(ResponseError::NotLeaderOrFollower);
                            let mut r = partition_response(index, o, version);
                            let leader = topic
                                .as_deref()
                                .filter(|_| not_leader && version >= 10)
                                .and_then(|t| hints.leader(&catalog, t, index));
                            if let Some((id, epoch)) = leader {
                                r = r.with_current_leader(
                                    LeaderIdAndEpoch::default()
                                        .with_leader_id(BrokerId(id))
                                        .with_leader_epoch(epoch),
                                );
                            }
                            r
                        })
                        .collect(),
                )
        })
        .collect();
    let mut resp = ProduceResponse::default().with_responses(responses);
    if version >= 10 {
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
    Some(ResponseKind::Produce(resp))
}

/// Whether `records` hold exactly one batch (a header that does not parse
/// is left to the append's own checks, which name what is wrong).
fn one_batch(records: &bytes::Bytes) -> bool {
    format::parse_header(records).map_or(true, |h| h.size_bytes >= records.len())
}

/// The partitions of one request that one shard owns, shipped there in one
/// job. Their request memory stays here (a permit belongs to the
/// connection's shard) and goes back once the shard has stored them.
struct ShardBatch {
    shard: ShardId,
    /// Topic names, each once; `Part::topic` indexes them.
    topics: Vec<String>,
    parts: Vec<Part>,
    shares: Vec<Permit>,
}

/// One partition's records, owned so they can cross to their shard.
struct Part {
    /// The partition's place in the request (and so in the response).
    pos: usize,
    topic: usize,
    index: i32,
    records: bytes::Bytes,
}

impl ShardBatch {
    fn new(shard: ShardId) -> Self {
        ShardBatch {
            shard,
            topics: Vec::new(),
            parts: Vec::new(),
            shares: Vec::new(),
        }
    }

    fn push(&mut self, topic: &str, pos: usize, index: i32, records: bytes::Bytes, share: Permit) {
        // A request names each topic once, so the last one is the only
        // candidate worth checking.
        let topic = match self.topics.last() {
            Some(t) if t == topic => self.topics.len() - 1,
            _ => {
                self.topics.push(topic.to_owned());
                self.topics.len() - 1
            }
        };
        self.parts.push(Part {
            pos,
            topic,
            index,
            records,
        });
        self.shares.push(share);
    }

    /// Store every part on the shard (written, and fsync'ed for acks=all),
    /// then give their request memory back before any wait for followers
    /// (whose fetches must still be read for it to end), as Kafka releases a
    /// request's buffer before its delayed produce waits. Returns each
    /// part's outcome by its place in the request.
    async fn store(
        self,
        state: &State,
        table_version: u64,
        acks: i16,
        timeout_ms: u64,
    ) -> Vec<(usize, Outcome)> {
        let ShardBatch {
            shard,
            topics,
            parts,
            shares,
        } = self;
        // Where each part belongs, and the names, stay here too: a shard
        // that is gone sends nothing back, and its parts are still answered.
        let keys: Vec<(usize, usize, i32)> =
            parts.iter().map(|p| (p.pos, p.topic, p.index)).collect();
        let job_topics = topics.clone();
        let stored = crate::shard::submit_to(shard, move || async move {
            // Every part appended before any waits, so that one commit
            // round takes them all; then their waits, one after the other
            // (each ends with the round that covers it). A future per part
            // under join_all cost an allocation and a wake-up each.
            let state = local();
            let mut begun = Vec::with_capacity(parts.len());
            for p in parts {
                let log = state
                    .log_at(&job_topics[p.topic], p.index, table_version)
                    .await;
                begun.push(log.map(|log| begin_store(log, p.records, acks)));
            }
            let mut stored = Vec::with_capacity(begun.len());
            for b in begun {
                stored.push(match b {
                    Some(b) => Some(finish_store(b, acks, timeout_ms).await),
                    None => None,
                });
            }
            stored
        })
        .await;
        drop(shares);
        let stored = stored.unwrap_or_else(|_| keys.iter().map(|_| None).collect());
        debug_assert_eq!(stored.len(), keys.len());
        // Most parts are answered already; only those still being
        // replicated wait, together (each with its own timeout).
        let mut answered = Vec::with_capacity(keys.len());
        let mut replicating = Vec::new();
        for ((pos, topic, index), s) in keys.into_iter().zip(stored) {
            let name = &topics[topic];
            match s {
                Some(Stored::Done(o)) => answered.push((pos, o)),
                None => {
                    answered.push((pos, Outcome::err(state.not_served_error(name, index), None)))
                }
                Some(Stored::Replicating { end, info }) => replicating.push(async move {
                    let out = on_partition(state, name, index, move |log| async move {
                        match await_replication(&log, end, timeout_ms).await {
                            Ok(()) => Outcome::stored(info),
                            Err(e) => e,
                        }
                    })
                    .await;
                    (
                        pos,
                        out.unwrap_or_else(|| {
                            Outcome::err(state.not_served_error(name, index), None)
                        }),
                    )
                }),
            }
        }
        answered.extend(join_all(replicating).await);
        answered
    }
}

/// A partition's append on its shard: refused, or queued for the commit
/// round that writes it (and fsyncs it for acks=all).
enum Begun {
    Refused(Outcome),
    Queued {
        log: crate::storage::log::SharedLog,
        done: futures::channel::oneshot::Receiver<Result<(), crate::storage::StorageError>>,
        /// Everything up to here must be replicated for acks=all.
        end: i64,
        info: AppendInfo,
    },
}

/// On the partition's shard: append `records` to `log`, without waiting.
fn begin_store(log: crate::storage::log::SharedLog, records: bytes::Bytes, acks: i16) -> Begun {
    let (isr, min_isr) = {
        let l = log.borrow();
        (l.replication.isr.len() as i32, l.config.min_insync_replicas)
    };
    if acks == -1 && isr < min_isr {
        return Begun::Refused(Outcome::err(
            ResponseError::NotEnoughReplicas,
            Some(format!(
                "the in-sync replicas ({isr}) are fewer than min.insync.replicas ({min_isr})"
            )),
        ));
    }
    let appended = log.borrow_mut().append(&records, acks == -1, now_ms());
    // Stored bytes are a copy: the frame can go.
    drop(records);
    let (info, done) = match appended {
        Ok(x) => x,
        Err(e) => return Begun::Refused(Outcome::err(storage_error_code(&e), Some(e.to_string()))),
    };
    let end = log.borrow().next_offset;
    local().committer.appended(&log);
    Begun::Queued {
        log,
        done,
        end,
        info,
    }
}

/// Wait until a begun append is written (and fsync'ed for acks=all).
async fn finish_store(begun: Begun, acks: i16, timeout_ms: u64) -> Stored {
    let (log, done, end, info) = match begun {
        Begun::Refused(o) => return Stored::Done(o),
        Begun::Queued {
            log,
            done,
            end,
            info,
        } => (log, done, end, info),
    };
    // acks=0 waits too (no answer goes out): its request memory must cover
    // its bytes until they are written, or a client outrunning the disk
    // would queue them unbounded.
    let failed = match done.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(Outcome::err(storage_error_code(&e), Some(e.to_string()))),
        Err(_) => Some(Outcome::err(ResponseError::KafkaStorageError, None)),
    };
    if let Some(o) = failed {
        return Stored::Done(o);
    }
    if acks == -1 {
        if log.borrow().high_watermark < end {
            return Stored::Replicating { end, info };
        }
        // Committed already: the checks (leadership, ISR) only.
        if let Err(e) = await_replication(&log, end, timeout_ms).await {
            return Stored::Done(e);
        }
    }
    Stored::Done(Outcome::stored(info))
}

/// acks=all: wait until the records up to `end` are committed, with
/// Kafka's error for each way they may not be.
async fn await_replication(
    log: &crate::storage::log::SharedLog,
    end: i64,
    timeout_ms: u64,
) -> Result<(), Outcome> {
    use crate::storage::log::{await_committed, NotCommitted};
    let timeout = std::time::Duration::from_millis(timeout_ms);
    await_committed(log, end, timeout).await.map_err(|e| match e {
        NotCommitted::NotLeader => Outcome::err(
            ResponseError::NotLeaderOrFollower,
            Some("leadership moved before the records were replicated".into()),
        ),
        NotCommitted::BelowMinIsr { isr, min_isr } => Outcome::err(
            ResponseError::NotEnoughReplicasAfterAppend,
            Some(format!(
                "written, but the in-sync replicas ({isr}) are now fewer than min.insync.replicas ({min_isr})"
            )),
        ),
        NotCommitted::TimedOut => Outcome::err(
            ResponseError::RequestTimedOut,
            Some(format!(
                "the in-sync replicas did not all acknowledge within the request timeout ({timeout_ms} ms)"
            )),
        ),
    })
}

fn partition_response(index: i32, o: Outcome, version: i16) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(super::code(o.error))
        .with_base_offset(o.base_offset)
        .with_log_append_time_ms(o.log_append_time_ms);
    if version >= 5 {
        r = r.with_log_start_offset(o.log_start_offset);
    }
    if version >= 8 {
        r = r.with_error_message(o.message.map(StrBytes::from_string));
    }
    r
}

fn reply_all(
    req: ProduceRequest,
    version: i16,
    e: ResponseError,
    acks: i16,
) -> Option<ResponseKind> {
    if acks == 0 {
        return None;
    }
    let responses = req
        .topic_data
        .into_iter()
        .map(|t| {
            let parts = t
                .partition_data
                .iter()
                .map(|p| partition_response(p.index, Outcome::err(e, None), version))
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partition_responses(parts)
        })
        .collect();
    Some(ResponseKind::Produce(
        ProduceResponse::default().with_responses(responses),
    ))
}
