//! One consumer: fetches its statically assigned partitions (see plan.rs) from
//! their leaders, one fetch in flight per leader connection, and records
//! end-to-end latency (record timestamp → fetched) for every record.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::error::BenchError;
use super::plan::ConsumerPlan;
use super::scan::scan;
use super::wire::{self, check_header, error_name};
use super::ShardCtx;
use crate::shard;

/// How often a held-back consumer (catch-up runs) checks whether it may start.
const HOLD_POLL: Duration = Duration::from_millis(10);

/// After a fetch that a partition's leader refused with a retriable error,
/// the next one waits this long (Kafka's `retry.backoff.ms`).
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Errors a leader answers while it is still taking up a partition the
/// cluster's metadata already names it leader of (a new topic's metadata
/// reaches the broker the plan asked before the leader has opened its log):
/// a Kafka consumer retries them, and so does this one, for up to the
/// request timeout.
fn retriable(code: i16) -> bool {
    use kafka_protocol::ResponseError as E;
    matches!(
        E::try_from_code(code),
        Some(
            E::NotLeaderOrFollower
                | E::UnknownTopicOrPartition
                | E::UnknownTopicId
                | E::LeaderNotAvailable
                | E::ReplicaNotAvailable
        )
    )
}

pub async fn run(ctx: Rc<ShardCtx>, plan: ConsumerPlan) {
    let shared = ctx.shared.clone();
    let id = plan.id;
    // Partitions grouped by leader: one connection and fetch loop per leader.
    let mut by_leader: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
    for &p in &plan.partitions {
        let leader = ctx.plan.topics[plan.topic].leaders[p as usize];
        by_leader.entry(leader).or_default().push(p);
    }
    let plan = Rc::new(plan);
    // Each loop fails the run as soon as it fails: awaited in turn, a loop
    // that failed at the start was told only when the loops before it
    // ended, and the run reported only that consumers fell behind.
    let tasks: Vec<_> = by_leader
        .into_iter()
        .map(|(broker, partitions)| {
            let ctx = ctx.clone();
            let plan = plan.clone();
            shard::spawn(async move {
                if let Err(e) = fetch_loop(&ctx, &plan, broker, partitions).await {
                    ctx.shared.fail(format!("consumer {id}: {e}"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
    shared.consumers_done.add(1);
}

async fn fetch_loop(
    ctx: &ShardCtx,
    plan: &ConsumerPlan,
    broker: usize,
    partitions: Vec<i32>,
) -> Result<(), BenchError> {
    let shared = &ctx.shared;
    let w = &ctx.plan.workload;
    let topic = &ctx.plan.topics[plan.topic];
    let addr: SocketAddr = ctx.plan.brokers[broker];
    let (mut writer, mut reader, versions) =
        wire::connect(addr, &ctx.plan.client_id, ctx.plan.connect_timeout).await?;
    let version = versions
        .pick(ApiKey::Fetch, i16::MAX)
        .ok_or_else(|| BenchError::Broker {
            addr: addr.to_string(),
            api: "Fetch",
            reason: "no Fetch version in common with the broker".into(),
        })?;
    // Fresh topics: every record from offset 0 belongs to this run.
    let mut offsets: Vec<(i32, i64)> = partitions.iter().map(|&p| (p, 0)).collect();
    let slot_of: std::collections::HashMap<i32, usize> = partitions
        .iter()
        .enumerate()
        .map(|(i, &p)| (p, i))
        .collect();
    let timeout =
        Duration::from_millis(w.producer.request_timeout_ms + w.consumer.fetch_max_wait_ms);
    let sub_counter = &shared.consumed_per_subscription
        [plan.topic * w.subscriptions_per_topic + plan.subscription];
    let name = TopicName(StrBytes::from_string(topic.name.clone()));
    // Since when a partition's fetches have been refused with retriable
    // errors only.
    let mut refused_since: Option<std::time::Instant> = None;
    while !shared.stop_all.is_set() {
        if !shared.consumers_go.is_set() {
            shard::sleep(HOLD_POLL).await;
            continue;
        }
        let parts = offsets
            .iter()
            .map(|&(p, o)| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(o)
                    .with_partition_max_bytes(w.consumer.partition_max_bytes as i32)
            })
            .collect();
        let mut ft = FetchTopic::default().with_partitions(parts);
        if version >= 13 {
            ft.topic_id = topic.id;
        } else {
            ft.topic = name.clone();
        }
        let req = FetchRequest::default()
            .with_max_wait_ms(w.consumer.fetch_max_wait_ms as i32)
            .with_min_bytes(1)
            .with_max_bytes(w.consumer.fetch_max_bytes as i32)
            .with_topics(vec![ft]);
        let corr = writer.send(ApiKey::Fetch, version, &req).await?;
        let frame =
            shard::timeout(timeout, reader.next_frame())
                .await
                .ok_or(BenchError::Timeout {
                    addr: addr.to_string(),
                    api: "Fetch",
                    timeout_ms: timeout.as_millis() as u64,
                })??;
        let now_us = shared.wall_us(shared.now_ns());
        let mut body = check_header(frame, ApiKey::Fetch, version, corr, addr)?;
        let resp = FetchResponse::decode(&mut body, version).map_err(|e| BenchError::Broker {
            addr: addr.to_string(),
            api: "Fetch",
            reason: format!("undecodable response: {e}"),
        })?;
        if resp.error_code != 0 {
            return Err(BenchError::Broker {
                addr: addr.to_string(),
                api: "Fetch",
                reason: error_name(resp.error_code),
            });
        }
        let mut records = 0;
        let mut bytes = 0;
        let mut refused = false;
        for pd in resp.responses.iter().flat_map(|t| t.partitions.iter()) {
            let Some(slot) = slot_of.get(&pd.partition_index).map(|&i| &mut offsets[i]) else {
                continue; // not ours: ignore rather than trust it
            };
            let retry =
                retriable(pd.error_code) && refused_since.is_none_or(|t| t.elapsed() < timeout);
            if retry {
                tracing::debug!(topic = %topic.name, partition = pd.partition_index,
                    error = %error_name(pd.error_code), "fetch refused; retrying");
                refused = true;
                continue;
            }
            if pd.error_code != 0 {
                return Err(BenchError::Broker {
                    addr: addr.to_string(),
                    api: "Fetch",
                    reason: format!(
                        "{}-{} (id {}, fetch v{version}): {}",
                        topic.name,
                        pd.partition_index,
                        topic.id,
                        error_name(pd.error_code)
                    ),
                });
            }
            let Some(data) = &pd.records else { continue };
            // Borrowed per partition: nothing may hold it across the
            // back-off's await below.
            let mut lat = ctx.latency.borrow_mut();
            let s = scan(data, slot.1, |ts_ms| {
                lat.record_e2e_us(now_us - ts_ms * 1000)
            })
            .map_err(|e| BenchError::Broker {
                addr: addr.to_string(),
                api: "Fetch",
                reason: format!(
                    "{}-{}: bad record batch: {e}",
                    topic.name, pd.partition_index
                ),
            })?;
            if let Some(next) = s.next_offset {
                slot.1 = slot.1.max(next);
            }
            records += s.records;
            bytes += s.value_bytes;
        }
        shared.consumed_msgs.add(records);
        shared.consumed_bytes.add(bytes);
        sub_counter.add(records);
        if refused {
            refused_since.get_or_insert_with(std::time::Instant::now);
            shard::sleep(RETRY_BACKOFF).await;
        } else {
            refused_since = None;
        }
    }
    Ok(())
}
