//! A small blocking Kafka client built only on `kafka_protocol` codecs.
//!
//! It speaks plain Kafka, so it works against sluice and Apache Kafka alike.
//! Every call negotiates the highest API version both sides support.

mod admin;
pub use admin::{ElectionResult, OngoingReassignment, QuorumInfo};
pub mod assignor;
mod conn;
mod data;
mod error;
mod group;
#[cfg(test)]
mod group_tests;
mod member;
#[cfg(test)]
pub(crate) mod mock;
#[cfg(test)]
mod mock_group;
pub mod records;
#[cfg(test)]
mod tests;
mod types;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;

use conn::Connection;
pub use error::{error_name, ClientError, Result};
pub use group::{
    CommittedOffset, Generation, GroupDescription, GroupListing, JoinParams, JoinResult,
    JoinedMember, MemberDescription,
};
pub use member::{GroupMember, MemberConfig};
pub use types::*;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Sent as `client_id` in every request header.
    pub client_id: String,
    /// Bound on every connect, write and read (fetches add their max wait).
    pub request_timeout_ms: u64,
    /// Whether Metadata requests may auto-create topics (Metadata v4+).
    pub allow_auto_topic_creation: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            client_id: "sluice-client".to_string(),
            request_timeout_ms: 30_000,
            allow_auto_topic_creation: false,
        }
    }
}

/// Which broker a request should go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Whichever bootstrap broker we are connected to.
    Any,
    /// A specific broker id (e.g. a partition leader).
    Node(i32),
}

/// A blocking client holding one connection per broker.
pub struct Client {
    bootstrap: Vec<String>,
    config: ClientConfig,
    bootstrap_conn: Option<Connection>,
    conns: HashMap<i32, Connection>,
    /// Brokers whose advertised address was unreachable in a one-broker
    /// cluster; we talk to them through the bootstrap connection instead.
    via_bootstrap: HashSet<i32>,
    brokers: HashMap<i32, String>,
    controller_id: i32,
    topics: HashMap<String, TopicMetadata>,
    /// Coordinator broker id per group, from FindCoordinator.
    coordinators: HashMap<String, i32>,
}

impl Client {
    /// Connects to `bootstrap` ("host:port", or a comma-separated list) with defaults.
    pub fn connect(bootstrap: &str) -> Result<Client> {
        Client::connect_with(bootstrap, ClientConfig::default())
    }

    /// Connects to the first reachable bootstrap address and negotiates versions.
    pub fn connect_with(bootstrap: &str, config: ClientConfig) -> Result<Client> {
        let bootstrap: Vec<String> = bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if bootstrap.is_empty() {
            return Err(ClientError::Other("no bootstrap server given".into()));
        }
        let mut client = Client {
            bootstrap,
            config,
            bootstrap_conn: None,
            conns: HashMap::new(),
            via_bootstrap: HashSet::new(),
            brokers: HashMap::new(),
            controller_id: -1,
            topics: HashMap::new(),
            coordinators: HashMap::new(),
        };
        client.ensure_bootstrap()?;
        Ok(client)
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Fetches metadata for `topics` (`None` = all topics) and refreshes the cache.
    pub fn metadata(&mut self, topics: Option<Vec<String>>) -> Result<Metadata> {
        let auto_create = self.config.allow_auto_topic_creation;
        let (version, resp) = self.call(Target::Any, ApiKey::Metadata, i16::MAX, 0, |v| {
            build_metadata_request(v, topics.as_deref(), auto_create)
        })?;
        if version >= 13 {
            error::check_code(resp.error_code, None, || "Metadata".into())?;
        }
        let md = convert_metadata(resp);
        self.brokers = md
            .brokers
            .iter()
            .map(|b| (b.node_id, b.address()))
            .collect();
        self.controller_id = md.controller_id;
        for t in &md.topics {
            if t.error.is_none() {
                self.topics.insert(t.name.clone(), t.clone());
            } else {
                self.topics.remove(&t.name);
            }
        }
        Ok(md)
    }

    /// Cached metadata for `topic`, fetching it if needed; errors if unknown.
    pub fn topic_metadata(&mut self, topic: &str) -> Result<TopicMetadata> {
        if let Some(t) = self.topics.get(topic) {
            return Ok(t.clone());
        }
        let md = self.metadata(Some(vec![topic.to_string()]))?;
        let t = md.topic(topic).ok_or_else(|| ClientError::Kafka {
            context: format!("topic '{topic}'"),
            code: ResponseError::UnknownTopicOrPartition,
            message: None,
        })?;
        if let Some(code) = t.error {
            return Err(ClientError::Kafka {
                context: format!("topic '{topic}'"),
                code,
                message: None,
            });
        }
        Ok(t.clone())
    }

    /// Forgets cached metadata for `topic` (after a stale-leader error).
    fn invalidate(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    /// Leader broker id and topic id for a partition.
    fn leader_for(&mut self, topic: &str, partition: i32) -> Result<(i32, uuid::Uuid)> {
        let t = self.topic_metadata(topic)?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| ClientError::Kafka {
                context: format!("partition {topic}-{partition}"),
                code: ResponseError::UnknownTopicOrPartition,
                message: Some(format!(
                    "topic '{topic}' has {} partitions",
                    t.partitions.len()
                )),
            })?;
        if p.leader < 0 {
            return Err(ClientError::Kafka {
                context: format!("partition {topic}-{partition}"),
                code: ResponseError::LeaderNotAvailable,
                message: None,
            });
        }
        Ok((p.leader, t.topic_id))
    }

    /// Sends one request built by `build(version)` to `target`, at the highest
    /// version both sides support (never above `cap`). `extra_ms` extends the
    /// timeout. Broken connections are dropped so the next call reconnects.
    fn call<R: Request>(
        &mut self,
        target: Target,
        api: ApiKey,
        cap: i16,
        extra_ms: u64,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response)> {
        let target = self.resolve(target)?;
        let conn = self.conn_mut(target)?;
        let result = conn.negotiate_capped(api, cap).and_then(|version| {
            let req = build(version);
            conn.send(&req, version, Duration::from_millis(extra_ms))
                .map(|resp| (version, resp))
        });
        self.drop_if_broken(target, &result);
        result
    }

    /// Like [`call`](Self::call) for requests that get no response.
    fn call_oneway<R: Request>(
        &mut self,
        target: Target,
        api: ApiKey,
        cap: i16,
        build: impl FnOnce(i16) -> R,
    ) -> Result<()> {
        let target = self.resolve(target)?;
        let conn = self.conn_mut(target)?;
        let result = conn
            .negotiate_capped(api, cap)
            .and_then(|version| conn.send_oneway(&build(version), version));
        self.drop_if_broken(target, &result);
        result
    }

    fn drop_if_broken<T>(&mut self, target: Target, result: &Result<T>) {
        if matches!(result, Err(e) if e.breaks_connection()) {
            match target {
                Target::Any => self.bootstrap_conn = None,
                Target::Node(id) => {
                    self.conns.remove(&id);
                }
            }
        }
    }

    /// Opens the connection for `target` if needed and says where it lives.
    fn resolve(&mut self, target: Target) -> Result<Target> {
        let id = match target {
            Target::Any => {
                self.ensure_bootstrap()?;
                return Ok(Target::Any);
            }
            Target::Node(id) => id,
        };
        if self.conns.contains_key(&id) {
            return Ok(target);
        }
        if self.via_bootstrap.contains(&id) {
            return self.resolve(Target::Any);
        }
        let addr = match self.brokers.get(&id) {
            Some(addr) => addr.clone(),
            None => {
                return Err(ClientError::Other(format!(
                    "broker {id} is not in the cluster metadata"
                )))
            }
        };
        let opened = Connection::open(&addr, &self.config.client_id, self.timeout());
        match opened {
            Ok(conn) => {
                self.conns.insert(id, conn);
                Ok(target)
            }
            Err(e) if self.brokers.len() == 1 => {
                tracing::debug!(
                    "broker {id} unreachable at advertised {addr} ({e}); using bootstrap"
                );
                self.via_bootstrap.insert(id);
                self.resolve(Target::Any)
            }
            Err(e) => Err(e),
        }
    }

    fn conn_mut(&mut self, target: Target) -> Result<&mut Connection> {
        let conn = match target {
            Target::Any => self.bootstrap_conn.as_mut(),
            Target::Node(id) => self.conns.get_mut(&id),
        };
        conn.ok_or_else(|| ClientError::Other("connection unexpectedly missing".into()))
    }

    fn ensure_bootstrap(&mut self) -> Result<()> {
        if self.bootstrap_conn.is_some() {
            return Ok(());
        }
        let mut last = None;
        for addr in &self.bootstrap {
            match Connection::open(addr, &self.config.client_id, self.timeout()) {
                Ok(conn) => {
                    tracing::debug!("connected to bootstrap broker {}", conn.addr());
                    self.bootstrap_conn = Some(conn);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Other("no bootstrap server given".into())))
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    fn timeout_ms_i32(&self) -> i32 {
        self.config.request_timeout_ms.min(i32::MAX as u64) as i32
    }
}

fn build_metadata_request(
    version: i16,
    topics: Option<&[String]>,
    auto_create: bool,
) -> MetadataRequest {
    let topics = match topics {
        // v0 cannot express "all topics" as null; an empty list means all.
        None if version == 0 => Some(Vec::new()),
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(StrBytes::from_string(n.clone()).into()))
                })
                .collect(),
        ),
    };
    MetadataRequest::default()
        .with_topics(topics)
        // Before v4 the field does not exist and brokers always auto-create.
        .with_allow_auto_topic_creation(auto_create || version < 4)
}

fn convert_metadata(resp: MetadataResponse) -> Metadata {
    let code = ResponseError::try_from_code;
    Metadata {
        cluster_id: resp.cluster_id.map(|s| s.to_string()),
        controller_id: resp.controller_id.0,
        brokers: resp
            .brokers
            .into_iter()
            .map(|b| BrokerMetadata {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
            })
            .collect(),
        topics: resp
            .topics
            .into_iter()
            .map(|t| TopicMetadata {
                name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                error: code(t.error_code),
                partitions: {
                    let mut ps: Vec<_> = t
                        .partitions
                        .into_iter()
                        .map(|p| PartitionMetadata {
                            partition: p.partition_index,
                            leader: p.leader_id.0,
                            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                            error: code(p.error_code),
                        })
                        .collect();
                    ps.sort_by_key(|p| p.partition);
                    ps
                },
            })
            .collect(),
    }
}
