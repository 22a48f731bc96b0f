//! Data-path calls: produce, fetch and list offsets (always to the leader).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::error::{check_code, ClientError, Result};
use super::records::{decode_batches, encode_batch};
use super::{Client, FetchPosition, FetchResult, Target};

/// Highest versions that still address topics by name.
const LAST_NAMED_PRODUCE: i16 = 12;
const LAST_NAMED_FETCH: i16 = 12;
/// Attempts for calls that hit stale metadata (leader moved, topic just created).
const ATTEMPTS: u32 = 8;

fn topic_name(v: &str) -> TopicName {
    TopicName(StrBytes::from_string(v.to_string()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Errors after which refreshing metadata and retrying can help.
fn is_stale(e: &ClientError) -> bool {
    use ResponseError::*;
    matches!(
        e.kafka_code(),
        Some(
            NotLeaderOrFollower
                | LeaderNotAvailable
                | UnknownTopicId
                | FencedLeaderEpoch
                | UnknownLeaderEpoch
                | InconsistentTopicId
        )
    ) || matches!(e, ClientError::Io { .. })
}

impl Client {
    /// Appends `records` to one partition as a single batch and returns the
    /// base offset (-1 with `acks` = 0). `acks`: -1 all, 1 leader, 0 none.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Vec<(Option<Bytes>, Option<Bytes>)>,
        acks: i16,
    ) -> Result<i64> {
        if records.is_empty() {
            return Ok(-1);
        }
        let batch = encode_batch(&records, now_ms())
            .map_err(|e| ClientError::Other(format!("cannot encode record batch: {e}")))?;
        self.with_retry(topic, |c| {
            c.produce_once(topic, partition, batch.clone(), acks)
        })
    }

    fn produce_once(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<i64> {
        let (leader, topic_id) = self.leader_for(topic, partition)?;
        let cap = if topic_id.is_nil() {
            LAST_NAMED_PRODUCE
        } else {
            i16::MAX
        };
        let timeout_ms = self.timeout_ms_i32();
        let build = |_| build_produce(topic, topic_id, partition, batch, acks, timeout_ms);
        if acks == 0 {
            self.call_oneway(Target::Node(leader), ApiKey::Produce, cap, build)?;
            return Ok(-1);
        }
        // Let the broker's own timeout fire before ours.
        let (_, resp) = self.call(Target::Node(leader), ApiKey::Produce, cap, 1_000, build)?;
        let p = resp
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| {
                ClientError::Other(format!("Produce response omits {topic}-{partition}"))
            })?;
        let (code, base_offset) = (p.error_code, p.base_offset);
        let message = p.error_message.as_ref().map(|m| m.to_string());
        if is_stale_code(code) {
            self.invalidate(topic);
        }
        check_code(code, message.as_deref(), || {
            format!("cannot produce to {topic}-{partition}")
        })?;
        Ok(base_offset)
    }

    /// Fetches from one partition starting at `offset`, waiting up to
    /// `max_wait_ms` for data.
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<FetchResult> {
        let pos = FetchPosition {
            topic: topic.to_string(),
            partition,
            offset,
        };
        self.with_retry(topic, |c| {
            let mut out = c.fetch_many(std::slice::from_ref(&pos), max_wait_ms, max_bytes)?;
            out.pop()
                .map(|(_, r)| r)
                .unwrap_or_else(|| Err(ClientError::Other("empty fetch result".into())))
        })
    }

    /// Fetches many partitions at once (one request per leader). Each
    /// position gets its own result; per-partition failures (including an
    /// unreachable leader) do not fail the others.
    pub fn fetch_many(
        &mut self,
        positions: &[FetchPosition],
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<Vec<(FetchPosition, Result<FetchResult>)>> {
        let mut results: Vec<(FetchPosition, Result<FetchResult>)> = Vec::new();
        let mut groups: Vec<(i32, Vec<(FetchPosition, Uuid)>)> = Vec::new();
        for pos in positions {
            match self.leader_for(&pos.topic, pos.partition) {
                Ok((leader, id)) => match groups.iter_mut().find(|(l, _)| *l == leader) {
                    Some((_, items)) => items.push((pos.clone(), id)),
                    None => groups.push((leader, vec![(pos.clone(), id)])),
                },
                Err(e) if e.kafka_code().is_some() => results.push((pos.clone(), Err(e))),
                Err(e) => return Err(e),
            }
        }
        for (leader, items) in groups {
            let cap = if items.iter().any(|(_, id)| id.is_nil()) {
                LAST_NAMED_FETCH
            } else {
                i16::MAX
            };
            let extra = max_wait_ms.max(0) as u64;
            let sent = self.call(Target::Node(leader), ApiKey::Fetch, cap, extra, |_| {
                build_fetch(&items, max_wait_ms, max_bytes)
            });
            match sent {
                Ok((version, resp)) => results.extend(self.split_fetch(version, resp, items)),
                Err(e) => {
                    for (pos, _) in items {
                        self.invalidate(&pos.topic);
                        results.push((pos, Err(e.clone())));
                    }
                }
            }
        }
        Ok(results)
    }

    fn split_fetch(
        &mut self,
        version: i16,
        resp: FetchResponse,
        items: Vec<(FetchPosition, Uuid)>,
    ) -> Vec<(FetchPosition, Result<FetchResult>)> {
        let top = check_code(resp.error_code, None, || "Fetch".into());
        let mut out = Vec::with_capacity(items.len());
        for (pos, id) in items {
            let found = resp
                .responses
                .iter()
                .filter(|t| {
                    if version >= 13 {
                        t.topic_id == id
                    } else {
                        t.topic.0.as_str() == pos.topic
                    }
                })
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == pos.partition);
            let result = match (&top, found) {
                (Err(e), _) => Err(e.clone()),
                (Ok(()), None) => Ok(FetchResult {
                    records: Vec::new(),
                    high_watermark: -1,
                    next_offset: pos.offset,
                }),
                (Ok(()), Some(p)) => {
                    if is_stale_code(p.error_code) {
                        self.invalidate(&pos.topic);
                    }
                    check_code(p.error_code, None, || {
                        format!(
                            "cannot fetch {}-{} at offset {}",
                            pos.topic, pos.partition, pos.offset
                        )
                    })
                    .and_then(|()| {
                        let data = p.records.clone().unwrap_or_default();
                        let decoded = decode_batches(data, pos.offset).map_err(|e| {
                            ClientError::Other(format!(
                                "corrupt records in {}-{}: {e}",
                                pos.topic, pos.partition
                            ))
                        })?;
                        let next = decoded.next_offset.unwrap_or(pos.offset).max(pos.offset);
                        Ok(FetchResult {
                            records: decoded.records,
                            high_watermark: p.high_watermark,
                            next_offset: next,
                        })
                    })
                }
            };
            out.push((pos, result));
        }
        out
    }

    /// Offset for `timestamp` in one partition: -2 earliest, -1 latest
    /// (the log end offset), otherwise the first offset at or after it.
    pub fn list_offsets(&mut self, topic: &str, partition: i32, timestamp: i64) -> Result<i64> {
        let timeout_ms = self.timeout_ms_i32();
        self.with_retry(topic, |c| {
            let (leader, _) = c.leader_for(topic, partition)?;
            let (_, resp) = c.call(
                Target::Node(leader),
                ApiKey::ListOffsets,
                i16::MAX,
                0,
                |_| build_list_offsets(topic, partition, timestamp, timeout_ms),
            )?;
            let p = resp
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| {
                    ClientError::Other(format!("ListOffsets response omits {topic}-{partition}"))
                })?;
            if is_stale_code(p.error_code) {
                c.invalidate(topic);
            }
            check_code(p.error_code, None, || {
                format!("cannot list offsets of {topic}-{partition}")
            })?;
            Ok(p.offset)
        })
    }

    /// Runs `op`, refreshing `topic`'s metadata and retrying on stale errors.
    fn with_retry<T>(
        &mut self,
        topic: &str,
        mut op: impl FnMut(&mut Client) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match op(self) {
                Err(e) if attempt + 1 < ATTEMPTS && is_stale(&e) => {
                    tracing::debug!("retrying after: {e}");
                    self.invalidate(topic);
                    std::thread::sleep(Duration::from_millis((100u64 << attempt).min(1_000)));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

fn is_stale_code(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|c| {
        is_stale(&ClientError::Kafka {
            context: String::new(),
            code: c,
            message: None,
        })
    })
}

pub(super) fn build_produce(
    topic: &str,
    topic_id: Uuid,
    partition: i32,
    batch: Bytes,
    acks: i16,
    timeout_ms: i32,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_topic_id(topic_id)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])])
}

pub(super) fn build_fetch(
    items: &[(FetchPosition, Uuid)],
    max_wait_ms: i32,
    max_bytes: i32,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (pos, id) in items {
        let part = FetchPartition::default()
            .with_partition(pos.partition)
            .with_fetch_offset(pos.offset)
            .with_partition_max_bytes(max_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == pos.topic) {
            Some(t) => t.partitions.push(part),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(topic_name(&pos.topic))
                    .with_topic_id(*id)
                    .with_partitions(vec![part]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_isolation_level(0)
        .with_topics(topics)
}

pub(super) fn build_list_offsets(
    topic: &str,
    partition: i32,
    timestamp: i64,
    timeout_ms: i32,
) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_timeout_ms(timeout_ms)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])])
}
