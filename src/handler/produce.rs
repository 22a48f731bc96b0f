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
    // Every partition of every topic runs at once (as Kafka appends them
    // all, then waits for them all): a partition waiting for followers must
    // not hold back another's records, whose request memory would then stay
    // taken while followers' fetches wait to be read.
    let mut layout = Vec::with_capacity(req.topic_data.len());
    let mut futures = Vec::new();
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
            let name = name.clone();
            let share = memory.split(p.records.as_ref().map_or(0, |r| r.len()));
            futures.push(async move {
                let index = p.index;
                let Some(name) = name else {
                    return (index, Outcome::err(ResponseError::UnknownTopicId, None));
                };
                let Some(records) = p.records else {
                    return (
                        index,
                        Outcome::err(ResponseError::CorruptMessage, Some("no records".into())),
                    );
                };
                // Kafka (ProduceRequest.validateRecords): from v3 on, exactly
                // one batch per partition. Idempotence relies on it: a retry
                // must be the same single batch to be recognised.
                if version >= 3 {
                    if let Ok(h) = format::parse_header(&records) {
                        if h.size_bytes < records.len() {
                            return (
                                index,
                                Outcome::err(
                                    ResponseError::InvalidRecord,
                                    Some("a produce request must have exactly one record batch per partition".into()),
                                ),
                            );
                        }
                    }
                }
                // Stored first (written, and fsync'ed for acks=all); then the
                // records' share of the request memory goes back, before any
                // wait for followers (whose fetches must still be read for it
                // to end), as Kafka releases a request's buffer before its
                // delayed produce waits.
                let stored = on_partition(state, &name, index, move |log| async move {
                    let (isr, min_isr) = {
                        let l = log.borrow();
                        (l.replication.isr.len() as i32, l.config.min_insync_replicas)
                    };
                    if acks == -1 && isr < min_isr {
                        return Stored::Done(Outcome::err(
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
                        Err(e) => {
                            return Stored::Done(Outcome::err(
                                storage_error_code(&e),
                                Some(e.to_string()),
                            ))
                        }
                    };
                    // Everything up to here must be replicated for acks=all.
                    let end = log.borrow().next_offset;
                    local().committer.appended(&log);
                    // acks=0 waits too (no answer goes out): its request
                    // memory must cover its bytes until they are written, or
                    // a client outrunning the disk would queue them unbounded.
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
                })
                .await;
                drop(share);
                let out = match stored {
                    None => None,
                    Some(Stored::Done(o)) => Some(o),
                    Some(Stored::Replicating { end, info }) => {
                        on_partition(state, &name, index, move |log| async move {
                            match await_replication(&log, end, timeout_ms).await {
                                Ok(()) => Outcome::stored(info),
                                Err(e) => e,
                            }
                        })
                        .await
                    }
                };
                (
                    index,
                    out.unwrap_or_else(|| Outcome::err(state.not_served_error(&name, index), None)),
                )
            });
        }
    }
    // The rest of the request's bytes (header, names) are held by nothing
    // now: names were copied, records each keep their own share.
    drop(memory.split(usize::MAX));
    let mut results = join_all(futures).await.into_iter();
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
