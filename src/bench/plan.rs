//! Before the load starts: create the topics (with the blocking admin client),
//! learn partition leaders, and decide which shard runs which producer and
//! consumer, and which partitions each consumer reads.
//!
//! Consumers do not join consumer groups: each subscription's consumers split
//! the partitions statically (consumer c of n reads partitions p with
//! p % n == c) and fetch them directly. Every subscription reads every record,
//! as a group would, without depending on the broker's group coordinator.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::Bytes;
use uuid::Uuid;

use super::error::BenchError;
use super::workload::{KeyDistributor, Workload};
use crate::cli::murmur2;
use crate::client::{Client, ClientConfig, ClientError};

/// Keys in the pool for keyed workloads (OMB uses a similar fixed pool).
const KEY_POOL_SIZE: usize = 10_000;
/// How long newly created topics may take to get leaders.
const LEADERS_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct TopicPlan {
    pub name: String,
    pub id: Uuid,
    /// Index into `Plan::brokers` of each partition's leader.
    pub leaders: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct ProducerPlan {
    pub id: usize,
    pub topic: usize,
    pub shard: usize,
}

#[derive(Debug, Clone)]
pub struct ConsumerPlan {
    pub id: usize,
    pub topic: usize,
    pub subscription: usize,
    pub partitions: Vec<i32>,
    pub shard: usize,
}

/// Keys as one buffer plus each key's partition (same for every topic, as all
/// topics have the same partition count).
#[derive(Debug, Clone, Default)]
pub struct KeyPool {
    pub bytes: Vec<u8>,
    pub key_len: usize,
    pub partition: Vec<i32>,
}

impl KeyPool {
    pub fn key(&self, i: usize) -> &[u8] {
        &self.bytes[i * self.key_len..(i + 1) * self.key_len]
    }
    pub fn len(&self) -> usize {
        self.partition.len()
    }
    pub fn is_empty(&self) -> bool {
        self.partition.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: Workload,
    pub brokers: Vec<SocketAddr>,
    pub topics: Vec<TopicPlan>,
    pub producers: Vec<ProducerPlan>,
    pub consumers: Vec<ConsumerPlan>,
    pub payload: Bytes,
    pub keys: KeyPool,
    pub shards: usize,
    pub client_id: String,
    pub connect_timeout: Duration,
}

/// Options that are not part of the workload.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    pub bootstrap: String,
    pub topic_prefix: String,
    pub replication_factor: i16,
    pub shards: usize,
    pub connect_timeout: Duration,
}

fn setup_err(e: ClientError) -> BenchError {
    BenchError::Setup(e.to_string())
}

pub fn admin_client(bootstrap: &str, timeout: Duration) -> Result<Client, BenchError> {
    let cfg = ClientConfig {
        client_id: "sluice-bench".into(),
        request_timeout_ms: timeout.as_millis() as u64,
        allow_auto_topic_creation: false,
    };
    Client::connect_with(bootstrap, cfg).map_err(|e| BenchError::Unreachable {
        addr: bootstrap.to_string(),
        reason: e.to_string(),
    })
}

/// Create the topics and build the plan.
pub fn prepare(w: &Workload, o: &SetupOptions) -> Result<Plan, BenchError> {
    let mut client = admin_client(&o.bootstrap, o.connect_timeout)?;
    let names: Vec<String> = (0..w.topics)
        .map(|i| format!("{}-{i}", o.topic_prefix))
        .collect();
    for name in &names {
        client
            .create_topics(
                name,
                w.partitions_per_topic as i32,
                o.replication_factor,
                vec![],
            )
            .map_err(|e| BenchError::Setup(format!("cannot create topic {name}: {e}")))?;
    }
    let (brokers, topics) = wait_for_leaders(&mut client, &names, w.partitions_per_topic)?;
    wait_until_served(&mut client, &topics)?;
    Ok(Plan {
        workload: w.clone(),
        brokers,
        topics,
        producers: assign_producers(w, o.shards),
        consumers: assign_consumers(w, o.shards),
        payload: payload(w)?,
        keys: key_pool(w),
        shards: o.shards,
        client_id: "sluice-bench".into(),
        connect_timeout: o.connect_timeout,
    })
}

/// Delete the run's topics (best effort: the run's results do not depend on it).
pub fn delete_topics(bootstrap: &str, names: Vec<String>, timeout: Duration) {
    match admin_client(bootstrap, timeout)
        .and_then(|mut c| c.delete_topics(names).map_err(setup_err))
    {
        Ok(()) => {}
        Err(e) => tracing::warn!("could not delete the benchmark topics: {e}"),
    }
}

fn wait_for_leaders(
    client: &mut Client,
    names: &[String],
    partitions: usize,
) -> Result<(Vec<SocketAddr>, Vec<TopicPlan>), BenchError> {
    let deadline = Instant::now() + LEADERS_TIMEOUT;
    loop {
        let md = client.metadata(Some(names.to_vec())).map_err(setup_err)?;
        let mut brokers = Vec::new();
        let mut index = std::collections::HashMap::new();
        for b in &md.brokers {
            let addr = b
                .address()
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    BenchError::Setup(format!("cannot resolve broker address {}", b.address()))
                })?;
            index.insert(b.node_id, brokers.len());
            brokers.push(addr);
        }
        let mut topics = Vec::new();
        let mut missing = None;
        for name in names {
            let leaders: Option<Vec<usize>> =
                md.topic(name).filter(|t| t.error.is_none()).and_then(|t| {
                    let mut l = vec![usize::MAX; partitions];
                    for p in &t.partitions {
                        let slot = l.get_mut(p.partition as usize)?;
                        *slot = *index.get(&p.leader)?;
                    }
                    l.iter().all(|&x| x != usize::MAX).then_some(l)
                });
            match leaders {
                Some(leaders) => topics.push(TopicPlan {
                    name: name.clone(),
                    id: md.topic(name).map_or(Uuid::nil(), |t| t.topic_id),
                    leaders,
                }),
                None => missing = Some(name.clone()),
            }
        }
        match missing {
            None => return Ok((brokers, topics)),
            Some(name) if Instant::now() > deadline => {
                return Err(BenchError::Setup(format!(
                    "topic {name} has partitions without a leader after {LEADERS_TIMEOUT:?}"
                )))
            }
            Some(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Wait until every partition's leader serves it. A new topic's metadata
/// can name a leader that has not yet opened the partition's log (it takes
/// up the metadata a moment after the broker that answered), and the load's
/// first produce or fetch would then be refused. ListOffsets is answered by
/// the leader's open log alone.
fn wait_until_served(client: &mut Client, topics: &[TopicPlan]) -> Result<(), BenchError> {
    let deadline = Instant::now() + LEADERS_TIMEOUT;
    for t in topics {
        for p in 0..t.leaders.len() as i32 {
            loop {
                match client.list_offsets(&t.name, p, -1) {
                    Ok(_) => break,
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!(topic = %t.name, partition = p, error = %e,
                            "partition not served yet");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => {
                        return Err(BenchError::Setup(format!(
                            "{}-{p} not served by its leader after {LEADERS_TIMEOUT:?}: {e}",
                            t.name
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

/// Producers first, round-robin over shards; consumers continue the rotation
/// so a shard's load stays even when there are few of each.
fn assign_producers(w: &Workload, shards: usize) -> Vec<ProducerPlan> {
    (0..w.total_producers())
        .map(|id| ProducerPlan {
            id,
            topic: id / w.producers_per_topic,
            shard: id % shards,
        })
        .collect()
}

fn assign_consumers(w: &Workload, shards: usize) -> Vec<ConsumerPlan> {
    let first = w.total_producers();
    let n = w.consumers_per_subscription;
    let mut out = Vec::new();
    for topic in 0..w.topics {
        for subscription in 0..w.subscriptions_per_topic {
            for c in 0..n {
                let partitions: Vec<i32> = (0..w.partitions_per_topic)
                    .filter(|p| p % n == c)
                    .map(|p| p as i32)
                    .collect();
                let id = out.len();
                out.push(ConsumerPlan {
                    id,
                    topic,
                    subscription,
                    partitions,
                    shard: (first + id) % shards,
                });
            }
        }
    }
    out
}

/// The payload file's contents, or `messageSize` bytes of pseudo-random data
/// (so compression ratios are not flattered by a run of zeros).
fn payload(w: &Workload) -> Result<Bytes, BenchError> {
    if let Some(path) = &w.payload_file {
        let data =
            std::fs::read(path).map_err(|e| BenchError::file(std::path::Path::new(path), e))?;
        if data.is_empty() {
            return Err(BenchError::file(
                std::path::Path::new(path),
                "payload file is empty",
            ));
        }
        return Ok(Bytes::from(data));
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    Ok((0..w.message_size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect())
}

fn key_pool(w: &Workload) -> KeyPool {
    if w.key_distributor == KeyDistributor::None {
        return KeyPool::default();
    }
    let key_len = 8;
    let mut pool = KeyPool {
        bytes: Vec::with_capacity(KEY_POOL_SIZE * key_len),
        key_len,
        partition: Vec::with_capacity(KEY_POOL_SIZE),
    };
    for i in 0..KEY_POOL_SIZE {
        let key = format!("{:08x}", (i as u32).wrapping_mul(2_654_435_761));
        let p = (murmur2(key.as_bytes()) & 0x7fff_ffff) as usize % w.partitions_per_topic;
        pool.bytes.extend_from_slice(key.as_bytes());
        pool.partition.push(p as i32);
    }
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscription_covers_every_partition_once() {
        let w = Workload {
            topics: 2,
            partitions_per_topic: 7,
            subscriptions_per_topic: 2,
            consumers_per_subscription: 3,
            ..Workload::default()
        };
        let cs = assign_consumers(&w, 2);
        assert_eq!(cs.len(), 12);
        for t in 0..2 {
            for s in 0..2 {
                let mut all: Vec<i32> = cs
                    .iter()
                    .filter(|c| c.topic == t && c.subscription == s)
                    .flat_map(|c| c.partitions.clone())
                    .collect();
                all.sort();
                assert_eq!(all, (0..7).collect::<Vec<_>>());
            }
        }
    }
}
