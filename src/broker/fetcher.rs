//! The follower's side of replication. Each shard fetches the partitions it
//! follows, with one stream per (leader broker, fetcher index)
//! (`num.replica.fetchers` per shard): a Kafka Fetch naming this broker as
//! the replica, carrying every partition the stream follows. Fetched
//! batches are appended byte for byte through the normal write path. Before
//! fetching, a replica that has just become a follower asks its leader
//! where their logs part (OffsetForLeaderEpoch, KIP-101/279) and truncates
//! what the leader does not have.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, ListOffsetsResponse, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;

use super::state::ShardState;
use crate::protocol::client::{decode_response_header, encode_request};
use crate::shard::{self, net::Stream};
use crate::storage::log::SharedLog;
use crate::storage::replica::Role;
use crate::storage::{recovery, retention};

/// Fetch v12: topic names, current leader epochs, and replica_id in the
/// request body (v15 moves it to ReplicaState).
const FETCH_VERSION: i16 = 12;
/// OffsetForLeaderEpoch v3: replica_id, current leader epoch.
const EPOCH_VERSION: i16 = 3;
/// ListOffsets v2 (a replica_id, as followers send it).
const LIST_OFFSETS_VERSION: i16 = 2;
/// A partition refused for its leader epoch (the leader or this broker has
/// not adopted the newest metadata yet) is asked again this soon.
const EPOCH_RETRY_MS: u64 = 50;

type Key = (i32, usize);

/// Start and stop fetch streams as the followed partitions change.
pub async fn run(state: Rc<ShardState>) {
    let running: Rc<RefCell<BTreeSet<Key>>> = Rc::default();
    loop {
        let changed = state.replicas_changed.notified();
        for key in streams_wanted(&state) {
            if running.borrow_mut().insert(key) {
                shard::spawn(stream(state.clone(), key, running.clone())).detach();
            }
        }
        // Also woken now and then, should a stream end between two changes.
        let _ = shard::timeout(Duration::from_secs(1), changed).await;
    }
}

fn fetcher_of(topic: &str, partition: i32, n: usize) -> usize {
    shard::table::place(topic, partition, n)
}

fn streams_wanted(state: &ShardState) -> BTreeSet<Key> {
    let n = state.cfg.replication.num_fetchers;
    state
        .logs
        .borrow()
        .iter()
        .filter_map(|(t, p, log)| match log.borrow().replication.role {
            Role::Follower { leader } if leader >= 0 => Some((leader, fetcher_of(t, p, n))),
            _ => None,
        })
        .collect()
}

/// The partitions of one stream, as they are now.
fn followed(state: &ShardState, key: Key) -> Vec<(String, i32, SharedLog)> {
    let n = state.cfg.replication.num_fetchers;
    state
        .logs
        .borrow()
        .iter()
        .filter(|(t, p, log)| {
            log.borrow().replication.role == Role::Follower { leader: key.0 }
                && fetcher_of(t, *p, n) == key.1
        })
        .map(|(t, p, log)| (t.to_string(), p, log.clone()))
        .collect()
}

/// One request/response connection to a leader.
struct Peer {
    stream: Stream,
    correlation_id: i32,
    client_id: StrBytes,
    /// Largest response frame accepted.
    max_frame_bytes: usize,
}

impl Peer {
    async fn connect(
        addr: SocketAddr,
        me: i32,
        timeout: Duration,
        max_frame_bytes: usize,
    ) -> std::io::Result<Self> {
        let stream = Stream::connect(addr, timeout).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            correlation_id: 0,
            client_id: StrBytes::from_string(format!("sluice-replica-fetcher-{me}")),
            max_frame_bytes,
        })
    }

    async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
        timeout: Duration,
    ) -> anyhow::Result<Resp> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let id = self.correlation_id;
        let mut buf = BytesMut::new();
        encode_request(&mut buf, api, version, id, &self.client_id, req)?;
        let exchange = async {
            self.stream.write_all(&buf).await?;
            let mut size = [0u8; 4];
            self.stream.read_exact(&mut size).await?;
            let n = i32::from_be_bytes(size);
            if n < 0 || n as usize > self.max_frame_bytes {
                anyhow::bail!(
                    "response of {n} bytes from the leader exceeds {}",
                    self.max_frame_bytes
                );
            }
            let mut frame = vec![0u8; n as usize];
            self.stream.read_exact(&mut frame).await?;
            Ok::<_, anyhow::Error>(Bytes::from(frame))
        };
        let mut frame = shard::timeout(timeout, exchange)
            .await
            .ok_or_else(|| anyhow::anyhow!("no answer from the leader within {timeout:?}"))??;
        decode_response_header(&mut frame, api, version, id)
            .map_err(|e| anyhow::anyhow!("bad response header: {e:?}"))?;
        Resp::decode(&mut frame, version)
    }
}

/// Per-partition pause after an error, so one bad partition does not stop
/// the others.
type Backoff = HashMap<(String, i32), Instant>;

async fn stream(state: Rc<ShardState>, key: Key, running: Rc<RefCell<BTreeSet<Key>>>) {
    let (leader, _) = key;
    let cfg = state.cfg.replication.clone();
    let me = state.cfg.broker_id;
    let backoff_ms = Duration::from_millis(cfg.fetch_backoff_ms);
    let call_timeout = Duration::from_millis(cfg.socket_timeout_ms + cfg.fetch_wait_max_ms);
    let max_frame = cfg.fetch_response_max_bytes.max(cfg.fetch_max_bytes) * 2 + (1 << 20);
    let mut peer: Option<(SocketAddr, Peer)> = None;
    let mut paused: Backoff = HashMap::new();
    tracing::debug!(leader, fetcher = key.1, "replica fetcher started");
    loop {
        let parts = followed(&state, key);
        if parts.is_empty() {
            break;
        }
        let now = Instant::now();
        paused.retain(|_, until| *until > now);
        // Where the leader listens (it may have restarted elsewhere).
        let addr = state.catalog().brokers.get(&leader).and_then(|b| {
            (b.host.as_str(), b.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
        });
        let Some(addr) = addr else {
            shard::sleep(backoff_ms).await;
            continue;
        };
        if peer.as_ref().is_none_or(|(a, _)| *a != addr) {
            match Peer::connect(
                addr,
                me,
                Duration::from_millis(cfg.socket_timeout_ms),
                max_frame,
            )
            .await
            {
                Ok(p) => peer = Some((addr, p)),
                Err(e) => {
                    tracing::debug!(leader, %addr, error = %e, "cannot reach the leader; retrying");
                    shard::sleep(backoff_ms).await;
                    continue;
                }
            }
        }
        let conn = &mut peer.as_mut().unwrap().1;
        let result = round(&state, conn, me, &cfg, &parts, &mut paused, call_timeout).await;
        if let Err(e) = result {
            tracing::debug!(leader, error = %e, "replica fetch failed; reconnecting");
            peer = None;
            shard::sleep(backoff_ms).await;
            continue;
        }
        if !paused.is_empty()
            && parts
                .iter()
                .all(|(t, p, _)| paused.contains_key(&(t.clone(), *p)))
        {
            let until = paused.values().min().copied().unwrap();
            shard::sleep(until.saturating_duration_since(Instant::now())).await;
        }
    }
    running.borrow_mut().remove(&key);
    tracing::debug!(
        leader,
        fetcher = key.1,
        "replica fetcher stopped: nothing left to follow"
    );
}

/// One round: reconcile the partitions that need it, then one fetch.
async fn round(
    state: &ShardState,
    conn: &mut Peer,
    me: i32,
    cfg: &crate::config::ReplicationSettings,
    parts: &[(String, i32, SharedLog)],
    paused: &mut Backoff,
    call_timeout: Duration,
) -> anyhow::Result<()> {
    let active: Vec<&(String, i32, SharedLog)> = parts
        .iter()
        .filter(|(t, p, _)| !paused.contains_key(&(t.clone(), *p)))
        .collect();
    let (diverged, ready): (Vec<_>, Vec<_>) = active
        .into_iter()
        .partition(|(_, _, log)| log.borrow().replication.needs_truncation);
    if !diverged.is_empty() {
        reconcile(conn, me, &diverged, paused, call_timeout).await?;
    }
    let ready: Vec<_> = ready
        .into_iter()
        .filter(|(_, _, log)| !log.borrow().closed)
        .collect();
    if ready.is_empty() {
        return Ok(());
    }
    // The request, and what each partition was asked at (to drop answers
    // that a leadership change made stale while the fetch was out).
    let mut topics: Vec<FetchTopic> = Vec::new();
    let mut asked: HashMap<(String, i32), (i32, i64)> = HashMap::new();
    for (t, p, log) in &ready {
        let l = log.borrow();
        let part = FetchPartition::default()
            .with_partition(*p)
            .with_current_leader_epoch(l.leader_epoch)
            .with_fetch_offset(l.next_offset)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(l.log_start_offset)
            .with_partition_max_bytes(cfg.fetch_max_bytes as i32);
        asked.insert((t.clone(), *p), (l.leader_epoch, l.next_offset));
        match topics.iter_mut().find(|x| x.topic.0.as_str() == t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(me))
        .with_max_wait_ms(cfg.fetch_wait_max_ms as i32)
        .with_min_bytes(cfg.fetch_min_bytes as i32)
        .with_max_bytes(cfg.fetch_response_max_bytes as i32)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let resp: FetchResponse = conn
        .call(ApiKey::Fetch, FETCH_VERSION, &req, call_timeout)
        .await?;
    if resp.error_code != 0 {
        anyhow::bail!("fetch refused with error {}", resp.error_code);
    }
    let (ahead_logs, ahead, durable) = write_epochs_ahead(state, &resp, &asked).await;
    let mut written = Vec::new();
    let mut out_of_range = Vec::new();
    for t in resp.responses {
        let topic = t.topic.0.to_string();
        for pd in t.partitions {
            let k = (topic.clone(), pd.partition_index);
            let Some((epoch, offset)) = asked.get(&k).copied() else {
                continue;
            };
            let Some(log) = state.replica_log(&topic, pd.partition_index) else {
                continue;
            };
            if stale(&log.borrow(), epoch, offset) {
                continue;
            }
            match ResponseError::try_from_code(pd.error_code) {
                None => {}
                Some(ResponseError::OffsetOutOfRange) => {
                    out_of_range.push((k.0, k.1, log));
                    continue;
                }
                Some(e) => {
                    let wait = match e {
                        ResponseError::FencedLeaderEpoch
                        | ResponseError::UnknownLeaderEpoch
                        | ResponseError::NotLeaderOrFollower => {
                            Duration::from_millis(EPOCH_RETRY_MS.min(cfg.fetch_backoff_ms))
                        }
                        _ => Duration::from_millis(cfg.fetch_backoff_ms),
                    };
                    tracing::debug!(topic = %k.0, partition = k.1, error = ?e, "replica fetch of a partition refused");
                    paused.insert(k, Instant::now() + wait);
                    continue;
                }
            }
            if let Some(records) = pd.records.filter(|r| !r.is_empty()) {
                // Its newer epochs, if written ahead and durable.
                let epochs = ahead_logs
                    .iter()
                    .zip(ahead.iter().zip(&durable))
                    .find(|(l, (_, ok))| **ok && Rc::ptr_eq(l, &log))
                    .map(|(_, (a, _))| a);
                let appended = log
                    .borrow_mut()
                    .append_replicated(records, cfg.fetch_fsync, epochs);
                match appended {
                    Ok(done) => {
                        state.committer.appended(&log);
                        written.push((k, done));
                    }
                    Err(e) => {
                        tracing::warn!(topic = %k.0, partition = k.1, error = %e,
                            "fetched records do not continue this replica; reconciling with the leader");
                        log.borrow_mut().replication.needs_truncation = true;
                        continue;
                    }
                }
            }
            let mut l = log.borrow_mut();
            l.replication.leader_high_watermark = pd.high_watermark;
            l.update_high_watermark();
            let leader_start = pd.log_start_offset;
            if leader_start > l.log_start_offset {
                drop(l);
                retention::delete_segments_before(&log, leader_start, "the leader's log start");
            }
        }
    }
    // Epochs written ahead whose records were not appended (the answer went
    // stale, or the records did not check out) leave the file as the cache
    // holds it; those taken need nothing.
    for (log, a) in ahead_logs.iter().zip(ahead.iter()) {
        log.borrow_mut().forget_epochs_ahead(a);
    }
    // The next fetch offset must be written (it tells the leader what this
    // replica holds).
    for (k, done) in written {
        match done.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(topic = %k.0, partition = k.1, error = %e, "writing fetched records failed");
                paused.insert(
                    k,
                    Instant::now() + Duration::from_millis(cfg.fetch_backoff_ms),
                );
            }
            Err(_) => {}
        }
    }
    for (t, p, log) in out_of_range {
        if let Err(e) = reset_out_of_range(conn, me, &t, p, &log, call_timeout).await {
            tracing::warn!(topic = %t, partition = p, error = %e, "cannot reset an out-of-range replica");
            paused.insert(
                (t, p),
                Instant::now() + Duration::from_millis(cfg.fetch_backoff_ms),
            );
        }
    }
    Ok(())
}

/// Ask the leader where each diverged partition's latest epoch ends there,
/// and cut this replica's log to it (KIP-279's rule: when the leader knows
/// only an older epoch, cut to where that epoch ends here or there,
/// whichever is first).
async fn reconcile(
    conn: &mut Peer,
    me: i32,
    parts: &[&(String, i32, SharedLog)],
    paused: &mut Backoff,
    call_timeout: Duration,
) -> anyhow::Result<()> {
    let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
    let mut asked: HashMap<(String, i32), (i32, i32)> = HashMap::new();
    for (t, p, log) in parts {
        let l = log.borrow();
        let latest = l.latest_epoch();
        asked.insert((t.clone(), *p), (l.leader_epoch, latest));
        let part = OffsetForLeaderPartition::default()
            .with_partition(*p)
            .with_current_leader_epoch(l.leader_epoch)
            .with_leader_epoch(latest);
        match topics.iter_mut().find(|x| x.topic.0.as_str() == t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(me))
        .with_topics(topics);
    let resp: OffsetForLeaderEpochResponse = conn
        .call(
            ApiKey::OffsetForLeaderEpoch,
            EPOCH_VERSION,
            &req,
            call_timeout,
        )
        .await?;
    for t in resp.topics {
        let topic = t.topic.0.to_string();
        for r in t.partitions {
            let k = (topic.clone(), r.partition);
            let Some((current, requested)) = asked.get(&k).copied() else {
                continue;
            };
            let Some((_, _, log)) = parts
                .iter()
                .find(|(t, p, _)| *t == topic && *p == r.partition)
            else {
                continue;
            };
            if log.borrow().leader_epoch != current || log.borrow().replication.is_leader() {
                continue;
            }
            if r.error_code != 0 {
                tracing::debug!(
                    topic,
                    partition = r.partition,
                    error = r.error_code,
                    "the leader cannot say where the logs part yet"
                );
                paused.insert(k, Instant::now() + Duration::from_millis(EPOCH_RETRY_MS));
                continue;
            }
            let target = {
                let l = log.borrow();
                if r.leader_epoch < 0 || r.end_offset < 0 {
                    // The leader knows no epoch this old: keep what is
                    // committed, as Kafka does.
                    l.high_watermark
                } else if r.leader_epoch == requested {
                    r.end_offset.min(l.next_offset)
                } else {
                    let (_, mine) = l.end_offset_for_epoch(r.leader_epoch);
                    r.end_offset.min(mine).min(l.next_offset)
                }
            };
            let (end, committed) = {
                let l = log.borrow();
                (l.next_offset, l.high_watermark)
            };
            if target < committed {
                // Only an unclean election makes a leader that lacks what
                // this replica knew was committed.
                tracing::warn!(
                    topic,
                    partition = r.partition,
                    from = end,
                    to = target,
                    lost_committed_offsets = committed - target,
                    leader_epoch = r.leader_epoch,
                    "the new leader lacks committed records (unclean leader election): truncating, {} acknowledged offsets are lost",
                    committed - target
                );
            }
            if target < end {
                tracing::info!(
                    topic,
                    partition = r.partition,
                    from = end,
                    to = target,
                    offsets = end - target,
                    leader_epoch = r.leader_epoch,
                    "this replica has records its leader lacks; truncating"
                );
                recovery::truncate_to(log, target).await?;
            }
            log.borrow_mut().replication.needs_truncation = false;
        }
    }
    Ok(())
}

/// The leader says this replica's fetch offset is out of its range: start
/// over at its log start if this replica is behind it, cut back to its log
/// end if ahead.
async fn reset_out_of_range(
    conn: &mut Peer,
    me: i32,
    topic: &str,
    partition: i32,
    log: &SharedLog,
    call_timeout: Duration,
) -> anyhow::Result<()> {
    let mut bounds = [0i64; 2];
    for (i, ts) in [-2i64, -1].into_iter().enumerate() {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(me))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(ts)])]);
        let resp: ListOffsetsResponse = conn
            .call(
                ApiKey::ListOffsets,
                LIST_OFFSETS_VERSION,
                &req,
                call_timeout,
            )
            .await?;
        let p = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| anyhow::anyhow!("empty ListOffsets answer"))?;
        if p.error_code != 0 {
            anyhow::bail!("ListOffsets refused with error {}", p.error_code);
        }
        bounds[i] = p.offset;
    }
    let [start, end] = bounds;
    let mine = log.borrow().next_offset;
    if mine < start {
        tracing::info!(
            topic,
            partition,
            offset = mine,
            leader_log_start = start,
            "this replica is behind its leader's log start; starting over there"
        );
        recovery::truncate_fully_and_start_at(log, start).await?;
    } else if mine > end {
        recovery::truncate_to(log, end).await?;
    } else {
        log.borrow_mut().replication.needs_truncation = true;
    }
    Ok(())
}

/// Leadership or epoch moved since a fetch asked at (`epoch`, `offset`):
/// its answer is stale.
fn stale(l: &crate::storage::log::PartitionLog, epoch: i32, offset: i64) -> bool {
    l.leader_epoch != epoch
        || l.replication.is_leader()
        || l.replication.needs_truncation
        || l.next_offset != offset
}

/// Fetched records of a newer leader epoch than their replica knows need
/// that epoch durable in its `leader-epoch-checkpoint` before they are
/// appended (KIP-101: after a failover, followers truncate by it). Write
/// every such partition's together, off the shard thread
/// (`ShardState::write_epochs_ahead`), instead of a file and a directory
/// fsync each, one after another on the shard thread, in
/// `append_replicated`: after a failover a follower meets a new epoch on
/// every partition that moved, and its shard served nothing meanwhile.
/// Returns the logs, their entries written ahead, and which are durable:
/// `append_replicated` takes them only with records that check out.
async fn write_epochs_ahead(
    state: &ShardState,
    resp: &FetchResponse,
    asked: &HashMap<(String, i32), (i32, i64)>,
) -> (
    Vec<SharedLog>,
    Arc<Vec<crate::storage::epochs::EpochsAhead>>,
    Vec<bool>,
) {
    let mut ahead = Vec::new();
    for t in &resp.responses {
        for pd in &t.partitions {
            let Some(records) = pd.records.as_ref().filter(|r| !r.is_empty()) else {
                continue;
            };
            if pd.error_code != 0 {
                continue;
            }
            let topic = t.topic.0.as_str();
            let Some(log) = state.replica_log(topic, pd.partition_index) else {
                continue;
            };
            let l = log.borrow();
            let starts = crate::storage::format::epoch_starts(records, l.latest_epoch());
            if starts.is_empty() {
                continue;
            }
            let Some(&(epoch, offset)) = asked.get(&(topic.to_owned(), pd.partition_index)) else {
                continue;
            };
            if stale(&l, epoch, offset) {
                continue;
            }
            if let Some(a) = l.epochs_ahead(starts) {
                drop(l);
                ahead.push((log, a));
            }
        }
    }
    let (logs, ahead): (Vec<_>, Vec<_>) = ahead.into_iter().unzip();
    let ahead = Arc::new(ahead);
    let durable = state
        .write_epochs_ahead(&ahead, "appending fetched records")
        .await;
    (logs, ahead, durable)
}
