//! Broker configuration: Kafka's `server.properties` key names, defaults that
//! run with no file, flags that override the file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::storage::LogConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid value for {key}: {value:?} ({why})")]
    Invalid {
        key: String,
        value: String,
        why: String,
    },
}

/// Each shard's budget for request bytes when `queued.max.request.bytes` is
/// unset: about thirty 1 MB produce requests in flight per core, which keeps
/// the disk busy (group commit) while bounding the broker's memory.
pub const DEFAULT_REQUEST_MEMORY_BYTES_PER_SHARD: usize = 32 << 20;

/// Default of `sluice.shard.sched.slice.us`: the kernel's shortest. Measured
/// on 2 cores with a client spinning on one (W4, perf/results): a shard's
/// mean wait to run after a wake-up went from 0.28 to 0.13-0.18 ms.
pub const DEFAULT_SHARD_SCHED_SLICE_US: u64 = 100;

/// Default of `sluice.log.sync.filesystem.min.partitions`. small-keyed
/// (50 partitions a shard) made twice the records/s with one syncfs a
/// round; with 2 partitions a shard the difference was within the spread
/// (perf/results/2026-12-06T23-00-00Z-syncfs), so a round that small keeps
/// its fdatasyncs and does not write other programs' data.
pub const DEFAULT_SYNC_FILESYSTEM_MIN_PARTITIONS: usize = 8;

/// Upper bound of `sluice.log.preallocate.bytes`: a segment's worth.
const MAX_PREALLOCATE_BYTES: u64 = 1 << 30;

/// `queued.max.request.bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestMemory {
    /// Unset: `DEFAULT_REQUEST_MEMORY_BYTES_PER_SHARD` on each shard.
    Default,
    /// -1, Kafka's default: no byte limit (`queued.max.requests` still is one).
    Unlimited,
    /// For the whole broker, split evenly between its shards.
    Bytes(usize),
}

impl RequestMemory {
    /// One shard's budget, `None` for no limit.
    pub fn per_shard(self, shards: usize) -> Option<usize> {
        match self {
            RequestMemory::Default => Some(DEFAULT_REQUEST_MEMORY_BYTES_PER_SHARD),
            RequestMemory::Unlimited => None,
            RequestMemory::Bytes(n) => Some((n / shards.max(1)).max(1)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub broker_id: i32,
    pub listener: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub min_insync_replicas: i32,
    pub socket_request_max_bytes: usize,
    pub log_retention_check_interval_ms: u64,
    /// How often `recovery-point-offset-checkpoint` is written
    /// (`log.flush.offset.checkpoint.interval.ms`).
    pub recovery_point_checkpoint_interval_ms: u64,
    /// `log.flush.start.offset.checkpoint.interval.ms`.
    pub log_start_offset_checkpoint_interval_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms`.
    pub high_watermark_checkpoint_interval_ms: u64,
    /// How often idle producer ids are looked for
    /// (`producer.id.expiration.check.interval.ms`).
    pub producer_id_expiration_check_interval_ms: u64,
    pub log: LogConfig,
    /// Shards (cores) to run; 0 = every CPU the process may use.
    pub smp: usize,
    /// Open connections per shard before new ones are refused.
    pub max_connections_per_shard: usize,
    /// A connection with no request for this long is closed
    /// (`connections.max.idle.ms`, Kafka's 10 minutes).
    pub connections_max_idle_ms: u64,
    /// Once a request has begun to arrive, all of it must within this long
    /// (`sluice.request.read.timeout.ms`): a client that sends a size prefix
    /// and stops does not hold a connection and its buffer forever.
    pub request_read_timeout_ms: u64,
    /// Requests one connection may have in flight before reading pauses.
    pub max_inflight_requests_per_connection: usize,
    /// `queued.max.request.bytes` (Kafka's KIP-72 key): bytes of requests
    /// read and not yet done with, for the whole broker, shared evenly by the
    /// shards; once used up, no shard reads another request until some come
    /// back. Unset: `DEFAULT_REQUEST_MEMORY_BYTES_PER_SHARD` per shard
    /// (Kafka's default is -1, no limit, which is accepted as such).
    pub queued_max_request_bytes: RequestMemory,
    /// Tail cache budget per shard.
    pub tail_cache_bytes_per_shard: usize,
    /// `sluice.fetch.read.ahead.bytes`: memory per shard for reads started
    /// ahead of sequential readers catching up from disk (one window per
    /// partition at most; 0 turns read-ahead off).
    pub read_ahead_bytes_per_shard: usize,
    /// `sluice.log.open.files.max`: segment files (log, index, time index)
    /// the broker keeps open at once, shared evenly by its shards; the least
    /// recently used is closed when another is needed. Unset: three
    /// quarters of RLIMIT_NOFILE (the rest is for connections); set above
    /// that, it is lowered to it at start-up with a warning.
    pub log_open_files_max: Option<usize>,
    /// `sluice.log.sync.filesystem.min.partitions`: a commit round with at
    /// least this many partitions to sync makes them durable with one
    /// syncfs of the log dir's file system instead of an fdatasync each
    /// (ext4 on Linux 5.8 or later only; see `storage::fs_sync`). So does
    /// a metadata change that creates at least this many partitions on a
    /// shard (a new topic's): their files are written without fsyncs, then
    /// synced together before they are served; and one that makes this
    /// many partitions of a shard lead at a new epoch (a failover), or a
    /// follower's fetch that brings a newer epoch for this many, for their
    /// `leader-epoch-checkpoint`s. 0: never.
    pub log_sync_filesystem_min_partitions: usize,
    /// Partition reads one fetch request runs at once
    /// (`sluice.fetch.reads.in.flight`): each holds up to its partition's
    /// `max_bytes` of DMA memory while it reads.
    pub fetch_reads_in_flight: usize,
    pub cross_shard_queue_depth: usize,
    pub io_memory_bytes_per_shard: usize,
    /// `sluice.shard.sched.slice.us`: the CPU scheduler slice each shard
    /// thread asks for (Linux 6.12+; 0 = the kernel's default). A short
    /// slice lets a shard that wakes preempt whatever runs on its core.
    pub shard_sched_slice_us: u64,
    /// `sluice.shard.thread.affinity`: pin each shard's thread to its core
    /// (true, the default), or let the kernel place it (false, what
    /// `--overprovisioned` sets): for machines where other programs share
    /// the broker's cores, as Seastar's `--thread-affinity` and Redpanda's
    /// `--overprovisioned`.
    pub shard_thread_affinity: bool,
    /// `sluice.metrics.listener` (`host:port`): where `GET /metrics` serves
    /// the broker's latency histograms in Prometheus' format. Off (`None`)
    /// by default, so no port is taken that the user did not name.
    pub metrics_listener: Option<SocketAddr>,
    /// Group coordinator and `__consumer_offsets` settings.
    pub groups: crate::group::CoordinatorConfig,
    /// The metadata quorum (KRaft's keys).
    pub quorum: QuorumSettings,
    /// Followers fetching from leaders.
    pub replication: ReplicationSettings,
}

/// Replication between brokers, by Kafka's keys.
#[derive(Clone, Debug)]
pub struct ReplicationSettings {
    /// `replica.fetch.max.bytes`: per partition in one replica fetch.
    pub fetch_max_bytes: usize,
    /// `replica.fetch.response.max.bytes`: per replica fetch response.
    pub fetch_response_max_bytes: usize,
    /// `replica.fetch.wait.max.ms`: how long a leader holds a replica
    /// fetch that has nothing new.
    pub fetch_wait_max_ms: u64,
    /// `replica.fetch.min.bytes`.
    pub fetch_min_bytes: usize,
    /// `replica.fetch.backoff.ms`: pause after a failed fetch.
    pub fetch_backoff_ms: u64,
    /// `replica.socket.timeout.ms`: a fetch not answered in this long
    /// (plus the wait) drops its connection.
    pub socket_timeout_ms: u64,
    /// `replica.lag.time.max.ms`: a follower that has not caught up with
    /// its leader for this long leaves the ISR.
    pub lag_time_max_ms: u64,
    /// `num.replica.fetchers`: fetch streams per leader, per shard.
    pub num_fetchers: usize,
    /// `sluice.replica.fetch.fsync`: a follower fdatasyncs what it fetched
    /// before fetching on (so what it reports to the leader, and so what
    /// acks=all waits for, is on its disk). Off, as Kafka: a follower's
    /// fetched records are in its page cache when the leader counts them.
    pub fetch_fsync: bool,
    /// `unclean.leader.election.enable` (the default of the topic key):
    /// with no in-sync replica alive, any live replica may lead, losing
    /// what only the ISR held. Off, as Kafka: the partition stays offline.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`: the controller moves leadership back
    /// to each partition's preferred replica once it is in sync.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`: how often it looks.
    pub leader_imbalance_check_interval_seconds: u64,
    /// `controlled.shutdown.enable`: on SIGTERM, leadership moves off the
    /// broker (and it leaves the ISRs) before it exits.
    pub controlled_shutdown_enable: bool,
    /// `sluice.controlled.shutdown.timeout.ms`: how long SIGTERM waits for
    /// the controller to move leadership away (no quorum: it stops anyway).
    pub controlled_shutdown_timeout_ms: u64,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self {
            fetch_max_bytes: 1 << 20,
            fetch_response_max_bytes: 10 << 20,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            fetch_backoff_ms: 1_000,
            socket_timeout_ms: 30_000,
            lag_time_max_ms: 30_000,
            num_fetchers: 1,
            fetch_fsync: false,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            controlled_shutdown_enable: true,
            controlled_shutdown_timeout_ms: 5_000,
        }
    }
}

/// The metadata quorum, by Kafka's KRaft keys. Every sluice node is a
/// broker and a controller (`process.roles=broker,controller`).
#[derive(Clone, Debug)]
pub struct QuorumSettings {
    /// `controller.quorum.voters` as (node id, host, port); empty: this
    /// broker is a quorum of one.
    pub voters: Vec<(i32, String, u16)>,
    /// `controller.quorum.bootstrap.servers` as (host, port). Without
    /// voters it may name only this node (Kafka 4's single-node sample,
    /// formatted `--standalone`): sluice's voter set is static.
    pub bootstrap_servers: Vec<(String, u16)>,
    /// `controller.listener.names`.
    pub controller_listener_names: Vec<String>,
    /// This node's controller listener, from `listeners`.
    pub controller_listener: Option<SocketAddr>,
    /// `controller.quorum.election.timeout.ms`: a follower that hears no
    /// leader for this long stands for election.
    pub election_timeout_ms: u64,
    /// `sluice.metadata.commit.timeout.ms`: how long a metadata change may
    /// take to commit before the request gets REQUEST_TIMED_OUT.
    pub commit_timeout_ms: u64,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub max_bytes_between_snapshots: u64,
    /// `controller.quorum.request.timeout.ms`: how long a request to the
    /// quorum leader waits for its answer.
    pub request_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`: a broker not heard from for this long
    /// is fenced.
    pub session_timeout_ms: u64,
}

impl Default for QuorumSettings {
    fn default() -> Self {
        Self {
            voters: Vec::new(),
            bootstrap_servers: Vec::new(),
            controller_listener_names: vec!["CONTROLLER".into()],
            controller_listener: None,
            election_timeout_ms: 1_000,
            commit_timeout_ms: 30_000,
            max_bytes_between_snapshots: 20 << 20,
            request_timeout_ms: 2_000,
            heartbeat_interval_ms: 2_000,
            session_timeout_ms: 9_000,
        }
    }
}

impl QuorumSettings {
    /// The voters' node ids, sorted (this node alone when none are set).
    pub fn voter_ids(&self, node_id: i32) -> Vec<u64> {
        let mut v: Vec<u64> = if self.voters.is_empty() {
            vec![node_id as u64]
        } else {
            self.voters.iter().map(|(id, _, _)| *id as u64).collect()
        };
        v.sort_unstable();
        v
    }

    /// The other voters' controller addresses.
    pub fn peer_addrs(&self, node_id: i32) -> std::io::Result<Vec<(u64, SocketAddr)>> {
        self.voters
            .iter()
            .filter(|(id, _, _)| *id != node_id)
            .map(|(id, host, port)| Ok((*id as u64, resolve(host, *port)?)))
            .collect()
    }

    /// Where this node's controller listens: its controller listener, else
    /// its own entry in the voters.
    pub fn listen_addr(&self, node_id: i32) -> std::io::Result<Option<SocketAddr>> {
        if let Some(a) = self.controller_listener {
            return Ok(Some(a));
        }
        self.voters
            .iter()
            .find(|(id, _, _)| *id == node_id)
            .map(|(_, host, port)| resolve(host, *port))
            .transpose()
    }

    /// One raft tick: a tenth of the election timeout.
    pub fn tick_ms(&self) -> u64 {
        (self.election_timeout_ms / 10).clamp(10, 1_000)
    }
}

fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host}:{port} resolves to no address")))
}

/// `controller.quorum.voters`: `id@host:port,...`.
fn parse_voters(k: &str, v: &str) -> Result<Vec<(i32, String, u16)>, ConfigError> {
    let mut out: Vec<(i32, String, u16)> = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || {
            invalid(
                k,
                v,
                "expected id@host:port,... (for example 1@127.0.0.1:19092)",
            )
        };
        let (id, addr) = item.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.trim().parse().map_err(|_| bad())?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if out.iter().any(|(o, _, _)| *o == id) {
            return Err(invalid(k, v, format!("voter {id} is listed twice")));
        }
        out.push((id, host.trim_matches(['[', ']']).to_string(), port));
    }
    if out.is_empty() {
        return Err(invalid(k, v, "no voters"));
    }
    Ok(out)
}

/// `host:port,...`.
fn parse_bootstrap_servers(k: &str, v: &str) -> Result<Vec<(String, u16)>, ConfigError> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || invalid(k, v, "expected host:port,... (for example localhost:9093)");
        let (host, port) = item.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        out.push((host.trim_matches(['[', ']']).to_string(), port));
    }
    if out.is_empty() {
        return Err(invalid(k, v, "no servers"));
    }
    Ok(out)
}

/// Every `NAME://host:port` of a listeners value, names upper-cased.
fn parse_listener_list(k: &str, v: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let name = item
            .split_once("://")
            .map_or("PLAINTEXT", |(n, _)| n)
            .to_ascii_uppercase();
        let (host, port) = parse_listener(k, item)?;
        out.push((name, host, port));
    }
    if out.is_empty() {
        return Err(invalid(k, v, "no listener"));
    }
    Ok(out)
}

/// `host` as parsed by `parse_listener` (brackets of an IPv6 literal gone).
/// Built from the parts, not by formatting "host:port" again, which an IPv6
/// address cannot be parsed back from.
fn socket_addr(k: &str, v: &str, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    pick_address(host, port, |h, p| {
        (h, p).to_socket_addrs().map(|a| a.collect())
    })
    .map_err(|why| invalid(k, v, why))
}

/// An IP address, localhost, or a host name `resolve` turns into addresses,
/// as Kafka binds `listeners=PLAINTEXT://broker1:9092`: the name's first
/// IPv4 address (Java prefers them unless `java.net.preferIPv6Addresses`),
/// else its first.
fn pick_address(
    host: &str,
    port: u16,
    resolve: impl FnOnce(&str, u16) -> std::io::Result<Vec<SocketAddr>>,
) -> Result<SocketAddr, String> {
    if host == "localhost" {
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs = resolve(host, port).map_err(|e| format!("cannot resolve host {host}: {e}"))?;
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("host {host} has no address"))
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            broker_id: 1,
            listener: "127.0.0.1:9092".parse().unwrap(),
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            log_dir: PathBuf::from("./data"),
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            min_insync_replicas: 1,
            socket_request_max_bytes: 100 * 1024 * 1024,
            log_retention_check_interval_ms: 300_000,
            recovery_point_checkpoint_interval_ms: 60_000,
            log_start_offset_checkpoint_interval_ms: 60_000,
            high_watermark_checkpoint_interval_ms: 5_000,
            producer_id_expiration_check_interval_ms: 600_000,
            log: LogConfig::default(),
            smp: 0,
            max_connections_per_shard: 10_000,
            connections_max_idle_ms: 600_000,
            request_read_timeout_ms: 30_000,
            max_inflight_requests_per_connection: 100,
            queued_max_request_bytes: RequestMemory::Default,
            tail_cache_bytes_per_shard: 8 << 20,
            read_ahead_bytes_per_shard: 16 << 20,
            log_open_files_max: None,
            log_sync_filesystem_min_partitions: DEFAULT_SYNC_FILESYSTEM_MIN_PARTITIONS,
            fetch_reads_in_flight: 8,
            cross_shard_queue_depth: 1024,
            shard_sched_slice_us: DEFAULT_SHARD_SCHED_SLICE_US,
            shard_thread_affinity: true,
            metrics_listener: None,
            io_memory_bytes_per_shard: 8 << 20,
            groups: crate::group::CoordinatorConfig::default(),
            quorum: QuorumSettings::default(),
            replication: ReplicationSettings::default(),
        }
    }
}

/// Parse `key=value` lines (`#` and `!` comments), as Java properties do for
/// the subset server.properties uses.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let i = l.find(['=', ':'])?;
            Some((l[..i].trim().to_string(), l[i + 1..].trim().to_string()))
        })
        .collect()
}

fn invalid(key: &str, value: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        why: why.into(),
    }
}

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.parse()
        .map_err(|_| invalid(key, v, "not a number in range"))
}

/// `PLAINTEXT://host:port` (the first listener) -> (host, port).
pub fn parse_listener(key: &str, v: &str) -> Result<(String, u16), ConfigError> {
    let first = v.split(',').next().unwrap_or("").trim();
    let rest = first.split_once("://").map_or(first, |(proto, rest)| {
        let _ = proto;
        rest
    });
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, v, "expected PLAINTEXT://host:port"))?;
    let port: u16 = port.parse().map_err(|_| invalid(key, v, "bad port"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

impl BrokerConfig {
    /// The client listener is the first that is not a controller listener;
    /// the controller listener is the quorum's. Advertised: the entry of the
    /// client listener's name, else the first non-controller one.
    fn resolve_listeners(
        &mut self,
        listeners: Option<&str>,
        advertised: Option<&str>,
    ) -> Result<(), ConfigError> {
        let is_controller = |n: &str| self.quorum.controller_listener_names.iter().any(|c| c == n);
        let mut client_name = None;
        if let Some(v) = listeners {
            let k = "listeners";
            let all = parse_listener_list(k, v)?;
            let (name, host, port) = all
                .iter()
                .find(|(n, _, _)| !is_controller(n))
                .ok_or_else(|| {
                    invalid(
                        k,
                        v,
                        "no listener for clients (every one is a controller listener)",
                    )
                })?
                .clone();
            self.listener = socket_addr(k, v, &host, port)?;
            self.advertised_host = if host == "0.0.0.0" {
                "127.0.0.1".into()
            } else {
                host
            };
            self.advertised_port = port;
            if let Some((_, h, p)) = all.iter().find(|(n, _, _)| is_controller(n)) {
                self.quorum.controller_listener = Some(socket_addr(k, v, h, *p)?);
            }
            client_name = Some(name);
        }
        if let Some(v) = advertised {
            let all = parse_listener_list("advertised.listeners", v)?;
            let pick = all
                .iter()
                .find(|(n, _, _)| Some(n) == client_name.as_ref())
                .or_else(|| all.iter().find(|(n, _, _)| !is_controller(n)))
                .ok_or_else(|| invalid("advertised.listeners", v, "no listener for clients"))?;
            self.advertised_host = pick.1.clone();
            self.advertised_port = pick.2;
        }
        Ok(())
    }

    /// Every node is a voter: it must be among the voters. The voter set
    /// is static (no KIP-853 voter changes): bootstrap servers without
    /// voters may only name this node itself.
    fn check_quorum(&self) -> Result<(), ConfigError> {
        let q = &self.quorum;
        if q.voters.is_empty() {
            let k = "controller.quorum.bootstrap.servers";
            let others: Vec<String> = q
                .bootstrap_servers
                .iter()
                .filter(|(h, p)| !self.is_own_controller(h, *p))
                .map(|(h, p)| format!("{h}:{p}"))
                .collect();
            if !others.is_empty() {
                return Err(invalid(
                    k,
                    &others.join(","),
                    "names controllers other than this node, but sluice's quorum is a static \
                     voter set (dynamic voters, KIP-853, are not supported): list every voter with \
                     its node id in controller.quorum.voters=ID@HOST:PORT,...",
                ));
            }
            if !q.bootstrap_servers.is_empty() {
                tracing::info!(
                    "controller.quorum.bootstrap.servers names only this node: a quorum of one (as Kafka formatted --standalone)"
                );
            }
            return Ok(());
        }
        if !q.bootstrap_servers.is_empty() {
            tracing::info!(
                "controller.quorum.voters is set: the static voter set is used and controller.quorum.bootstrap.servers is not needed"
            );
        }
        let k = "controller.quorum.voters";
        let v = q
            .voters
            .iter()
            .map(|(id, h, p)| format!("{id}@{h}:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        if !q.voters.iter().any(|(id, _, _)| *id == self.broker_id) {
            return Err(invalid(
                k,
                &v,
                format!(
                    "node.id {} is not among the voters; every sluice node is a voter",
                    self.broker_id
                ),
            ));
        }
        Ok(())
    }

    /// Whether `host:port` is this node's controller listener.
    fn is_own_controller(&self, host: &str, port: u16) -> bool {
        let Some(l) = self.quorum.controller_listener else {
            return false;
        };
        if l.port() != port {
            return false;
        }
        // This host's address: one a socket can bind to (a name is resolved).
        let local = |ip: std::net::IpAddr| {
            ip == l.ip()
                || (l.ip().is_loopback() && ip.is_loopback())
                || (l.ip().is_unspecified()
                    && (ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok()))
        };
        use std::net::ToSocketAddrs;
        (host, port)
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.any(|a| local(a.ip())))
    }

    /// Load `file` (if any), then apply `overrides` in order.
    pub fn load(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut props = BTreeMap::new();
        if let Some(f) = file {
            let text = std::fs::read_to_string(f).map_err(|e| ConfigError::Read(f.into(), e))?;
            props = parse_properties(&text);
        }
        let mut cfg = Self::default();
        let mut advertised: Option<String> = None;
        let mut listeners: Option<String> = None;
        // Kafka 0.9's keys, honoured only where the modern ones are absent.
        let mut legacy = Legacy::default();
        let mut retention = (None, None, None); // ms, minutes, hours
        let mut ordered: Vec<(String, String)> = props.into_iter().collect();
        ordered.extend(overrides.iter().cloned());
        for (k, v) in &ordered {
            let (k, v) = (k.as_str(), v.as_str());
            match k {
                "broker.id" | "node.id" => cfg.broker_id = num(k, v)?,
                "port" => legacy.port = Some(num::<u16>(k, v)?),
                "host.name" => legacy.host = Some(v.to_string()),
                "advertised.host.name" => legacy.advertised_host = Some(v.to_string()),
                "advertised.port" => legacy.advertised_port = Some(num::<u16>(k, v)?),
                "log.dir" => legacy.log_dir = Some(v.to_string()),
                "zookeeper.connect" => {
                    tracing::warn!(
                        key = k,
                        "sluice has no ZooKeeper: its metadata lives in the broker itself; ignored"
                    )
                }
                _ if IGNORED_KAFKA_KEYS.contains(&k) => {
                    tracing::info!(key = k, "a Kafka setting sluice does not need; ignored")
                }
                // Resolved after the loop: which listener is the controller's
                // depends on controller.listener.names.
                "listeners" => {
                    legacy.listeners_set = true;
                    parse_listener_list(k, v)?;
                    listeners = Some(v.to_string());
                }
                "advertised.listeners" => {
                    legacy.advertised_set = true;
                    parse_listener_list(k, v)?;
                    advertised = Some(v.to_string());
                }
                "process.roles" => {
                    let roles: Vec<&str> = v.split(',').map(str::trim).collect();
                    if !(roles.contains(&"broker") && roles.contains(&"controller")) {
                        return Err(invalid(
                            k,
                            v,
                            "every sluice node is both broker and controller: use process.roles=broker,controller",
                        ));
                    }
                }
                "controller.quorum.voters" => cfg.quorum.voters = parse_voters(k, v)?,
                "controller.quorum.bootstrap.servers" => {
                    cfg.quorum.bootstrap_servers = parse_bootstrap_servers(k, v)?
                }
                "controller.listener.names" => {
                    cfg.quorum.controller_listener_names = v
                        .split(',')
                        .map(|n| n.trim().to_ascii_uppercase())
                        .filter(|n| !n.is_empty())
                        .collect()
                }
                "controller.quorum.election.timeout.ms" => {
                    cfg.quorum.election_timeout_ms = at_least(k, v, 30)?
                }
                "sluice.metadata.commit.timeout.ms" => {
                    cfg.quorum.commit_timeout_ms = positive(k, v)?
                }
                "broker.heartbeat.interval.ms" => {
                    cfg.quorum.heartbeat_interval_ms = at_least(k, v, 10)?
                }
                "broker.session.timeout.ms" => cfg.quorum.session_timeout_ms = at_least(k, v, 20)?,
                "replica.fetch.max.bytes" => {
                    cfg.replication.fetch_max_bytes = at_least(k, v, 1024)? as usize
                }
                "replica.fetch.response.max.bytes" => {
                    cfg.replication.fetch_response_max_bytes = at_least(k, v, 1024)? as usize
                }
                "replica.fetch.wait.max.ms" => cfg.replication.fetch_wait_max_ms = positive(k, v)?,
                "replica.fetch.min.bytes" => {
                    cfg.replication.fetch_min_bytes = at_least(k, v, 1)? as usize
                }
                "replica.fetch.backoff.ms" => cfg.replication.fetch_backoff_ms = positive(k, v)?,
                "replica.socket.timeout.ms" => {
                    cfg.replication.socket_timeout_ms = at_least(k, v, 100)?
                }
                "replica.lag.time.max.ms" => cfg.replication.lag_time_max_ms = at_least(k, v, 100)?,
                "num.replica.fetchers" => {
                    cfg.replication.num_fetchers = at_least(k, v, 1)?.min(16) as usize
                }
                "sluice.replica.fetch.fsync" => cfg.replication.fetch_fsync = boolean(k, v)?,
                "unclean.leader.election.enable" => {
                    cfg.replication.unclean_leader_election_enable = boolean(k, v)?
                }
                "auto.leader.rebalance.enable" => {
                    cfg.replication.auto_leader_rebalance_enable = boolean(k, v)?
                }
                "leader.imbalance.check.interval.seconds" => {
                    cfg.replication.leader_imbalance_check_interval_seconds = positive(k, v)?
                }
                "controlled.shutdown.enable" => {
                    cfg.replication.controlled_shutdown_enable = boolean(k, v)?
                }
                "sluice.controlled.shutdown.timeout.ms" => {
                    cfg.replication.controlled_shutdown_timeout_ms = positive(k, v)?
                }
                "leader.imbalance.per.broker.percentage" => tracing::warn!(
                    key = k,
                    "sluice, as Kafka's KRaft controller, moves every partition whose preferred leader is in sync; the percentage is not used"
                ),

                "controller.quorum.request.timeout.ms" => {
                    cfg.quorum.request_timeout_ms = positive(k, v)?
                }
                "metadata.log.max.record.bytes.between.snapshots" => {
                    cfg.quorum.max_bytes_between_snapshots = positive(k, v)?
                }
                "log.dirs" => {
                    legacy.log_dirs_set = true;
                    if v.contains(',') {
                        return Err(invalid(
                            k,
                            v,
                            "sluice supports one log directory per broker",
                        ));
                    }
                    cfg.log_dir = PathBuf::from(v);
                }
                "num.partitions" => cfg.num_partitions = positive(k, v)?,
                "default.replication.factor" => cfg.default_replication_factor = positive(k, v)?,
                "auto.create.topics.enable" => cfg.auto_create_topics_enable = boolean(k, v)?,
                "min.insync.replicas" => cfg.min_insync_replicas = positive(k, v)?,
                "log.retention.ms" => retention.0 = Some(num::<i64>(k, v)?),
                "log.retention.minutes" => retention.1 = Some(num::<i64>(k, v)?),
                "log.retention.hours" => retention.2 = Some(num::<i64>(k, v)?),
                "log.retention.bytes" | "retention.bytes" => cfg.log.retention_bytes = num(k, v)?,
                "producer.id.expiration.ms" => {
                    cfg.log.producer_id_expiration_ms = positive::<i64>(k, v)?
                }
                "producer.id.expiration.check.interval.ms" => {
                    cfg.producer_id_expiration_check_interval_ms = positive(k, v)?
                }
                "log.flush.offset.checkpoint.interval.ms" => {
                    cfg.recovery_point_checkpoint_interval_ms = positive(k, v)?
                }
                "log.flush.start.offset.checkpoint.interval.ms" => {
                    cfg.log_start_offset_checkpoint_interval_ms = positive(k, v)?
                }
                "replica.high.watermark.checkpoint.interval.ms" => {
                    cfg.high_watermark_checkpoint_interval_ms = positive(k, v)?
                }
                "log.retention.check.interval.ms" => {
                    cfg.log_retention_check_interval_ms = positive(k, v)?
                }
                "log.segment.bytes" => cfg.log.segment_bytes = at_least(k, v, 14)?,
                "log.roll.ms" => cfg.log.segment_ms = positive(k, v)?,
                "log.roll.hours" => cfg.log.segment_ms = positive::<i64>(k, v)? * 3_600_000,
                "log.index.interval.bytes" => cfg.log.index_interval_bytes = num(k, v)?,
                "message.max.bytes" => cfg.log.max_message_bytes = positive(k, v)?,
                "log.message.timestamp.type" => cfg.log.log_append_time = timestamp_type(k, v)?,
                "compression.type" => {
                    cfg.log.compression = crate::storage::recompress::TopicCompression::parse(v)
                        .ok_or_else(|| {
                            invalid(
                                k,
                                v,
                                "one of uncompressed, zstd, lz4, snappy, gzip, producer",
                            )
                        })?
                }
                "log.message.timestamp.before.max.ms" => {
                    cfg.log.timestamp_before_max_ms = at_least(k, v, 0)? as i64
                }
                "log.message.timestamp.after.max.ms" => {
                    cfg.log.timestamp_after_max_ms = at_least(k, v, 0)? as i64
                }
                "log.flush.interval.messages" => cfg.log.flush_interval_messages = positive(k, v)?,
                "log.flush.interval.ms" => cfg.log.flush_interval_ms = Some(positive(k, v)?),
                "socket.request.max.bytes" => cfg.socket_request_max_bytes = positive(k, v)?,
                "smp" => cfg.smp = num(k, v)?,
                "max.connections" => cfg.max_connections_per_shard = positive(k, v)?,
                "connections.max.idle.ms" => cfg.connections_max_idle_ms = positive(k, v)?,
                "sluice.request.read.timeout.ms" => cfg.request_read_timeout_ms = positive(k, v)?,
                "queued.max.requests" => cfg.max_inflight_requests_per_connection = positive(k, v)?,
                "queued.max.request.bytes" => {
                    cfg.queued_max_request_bytes = match num::<i64>(k, v)? {
                        -1 => RequestMemory::Unlimited,
                        n if n > 0 => RequestMemory::Bytes(n as usize),
                        _ => return Err(invalid(k, v, "must be positive, or -1 for no limit")),
                    }
                }
                "sluice.tail.cache.bytes" => cfg.tail_cache_bytes_per_shard = num(k, v)?,
                "sluice.fetch.read.ahead.bytes" => cfg.read_ahead_bytes_per_shard = num(k, v)?,
                "sluice.log.open.files.max" => cfg.log_open_files_max = Some(positive(k, v)?),
                "sluice.log.sync.filesystem.min.partitions" => {
                    cfg.log_sync_filesystem_min_partitions = num(k, v)?
                }
                "sluice.fetch.reads.in.flight" => cfg.fetch_reads_in_flight = positive(k, v)?,
                "sluice.io.memory.bytes" => cfg.io_memory_bytes_per_shard = positive(k, v)?,
                "sluice.shard.sched.slice.us" => {
                    cfg.shard_sched_slice_us = num(k, v)?;
                    if cfg.shard_sched_slice_us != 0
                        && !(100..=100_000).contains(&cfg.shard_sched_slice_us)
                    {
                        return Err(invalid(k, v, "must be 100..=100000 (the kernel's range), or 0 for the kernel's default"));
                    }
                }
                "sluice.shard.thread.affinity" => cfg.shard_thread_affinity = boolean(k, v)?,
                "sluice.metrics.listener" => {
                    cfg.metrics_listener = if v.trim().is_empty() {
                        None
                    } else {
                        let bad = || invalid(k, v, "expected host:port (for example 127.0.0.1:9644), or empty for off");
                        match v.trim().parse::<SocketAddr>() {
                            Ok(a) => Some(a),
                            Err(_) => {
                                let (host, port) = v.trim().rsplit_once(':').ok_or_else(bad)?;
                                let port: u16 = port.parse().map_err(|_| bad())?;
                                Some(socket_addr(k, v, host, port)?)
                            }
                        }
                    };
                }
                "sluice.log.write.max.bytes" => cfg.log.write_max_bytes = positive(k, v)?,
                "sluice.log.preallocate.bytes" => {
                    cfg.log.preallocate_bytes = num(k, v)?;
                    if cfg.log.preallocate_bytes > MAX_PREALLOCATE_BYTES {
                        return Err(invalid(k, v, "must be at most 1 GiB (0 = off)"));
                    }
                }
                _ if k.starts_with("group.") || k.starts_with("offset") => {
                    group_key(&mut cfg.groups, k, v)?
                }
                _ => tracing::warn!(key = k, "unknown configuration key ignored"),
            }
        }
        cfg.resolve_listeners(listeners.as_deref(), advertised.as_deref())?;
        legacy.apply(&mut cfg, advertised.is_some())?;
        cfg.check_quorum()?;
        cfg.log.retention_ms = match retention {
            (Some(ms), _, _) => ms,
            (None, Some(m), _) => m * 60_000,
            (None, None, Some(h)) => h * 3_600_000,
            _ => cfg.log.retention_ms,
        };
        Ok(cfg)
    }
}

/// Broker keys that AlterConfigs may change at run time (BROKER resources,
/// per broker or cluster-wide), applied without a restart: the defaults of
/// topic configs (as Kafka's DynamicLogConfig) and producer id expiry.
pub const DYNAMIC_BROKER_KEYS: &[&str] = &[
    "compression.type",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.index.interval.bytes",
    "log.message.timestamp.after.max.ms",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.type",
    "log.retention.bytes",
    "log.retention.ms",
    "log.roll.ms",
    "log.segment.bytes",
    "message.max.bytes",
    "min.insync.replicas",
    "producer.id.expiration.ms",
    "unclean.leader.election.enable",
];

/// Why a dynamic broker config edit is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum DynamicConfigError {
    /// A key Kafka knows but cannot change at run time (INVALID_REQUEST).
    NotDynamic(String),
    /// An unknown key or a bad value (INVALID_CONFIG).
    Invalid(String),
}

impl BrokerConfig {
    /// This config with dynamic broker configs applied on top, in order.
    pub fn with_dynamic(&self, edits: &[(String, String)]) -> Result<Self, DynamicConfigError> {
        let mut cfg = self.clone();
        for (k, v) in edits {
            if !DYNAMIC_BROKER_KEYS.contains(&k.as_str()) {
                return Err(if is_known_broker_key(k) {
                    DynamicConfigError::NotDynamic(format!(
                        "Cannot update these configs dynamically: Set({k})"
                    ))
                } else {
                    DynamicConfigError::Invalid(format!("Unknown broker config name: {k}"))
                });
            }
            // The same parsing and checks as the file's.
            let one = BrokerConfig::load(None, &[(k.clone(), v.clone())])
                .map_err(|e| DynamicConfigError::Invalid(e.to_string()))?;
            let l = &one.log;
            match k.as_str() {
                "compression.type" => cfg.log.compression = l.compression,
                "log.flush.interval.messages" => {
                    cfg.log.flush_interval_messages = l.flush_interval_messages
                }
                "log.flush.interval.ms" => cfg.log.flush_interval_ms = l.flush_interval_ms,
                "log.index.interval.bytes" => cfg.log.index_interval_bytes = l.index_interval_bytes,
                "log.message.timestamp.after.max.ms" => {
                    cfg.log.timestamp_after_max_ms = l.timestamp_after_max_ms
                }
                "log.message.timestamp.before.max.ms" => {
                    cfg.log.timestamp_before_max_ms = l.timestamp_before_max_ms
                }
                "log.message.timestamp.type" => cfg.log.log_append_time = l.log_append_time,
                "log.retention.bytes" => cfg.log.retention_bytes = l.retention_bytes,
                "log.retention.ms" => cfg.log.retention_ms = l.retention_ms,
                "log.roll.ms" => cfg.log.segment_ms = l.segment_ms,
                "log.segment.bytes" => cfg.log.segment_bytes = l.segment_bytes,
                "message.max.bytes" => cfg.log.max_message_bytes = l.max_message_bytes,
                "min.insync.replicas" => cfg.min_insync_replicas = one.min_insync_replicas,
                "producer.id.expiration.ms" => {
                    cfg.log.producer_id_expiration_ms = l.producer_id_expiration_ms
                }
                "unclean.leader.election.enable" => {
                    cfg.replication.unclean_leader_election_enable =
                        one.replication.unclean_leader_election_enable
                }
                other => unreachable!("{other} is in DYNAMIC_BROKER_KEYS but not applied"),
            }
        }
        Ok(cfg)
    }
}

/// A broker key Kafka defines (so refusing it is "not dynamic", not
/// "unknown"): everything `load` reads, and Kafka's keys sluice ignores.
fn is_known_broker_key(k: &str) -> bool {
    const STATIC: &[&str] = &[
        "broker.id",
        "node.id",
        "listeners",
        "advertised.listeners",
        "process.roles",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "controller.listener.names",
        "controller.quorum.election.timeout.ms",
        "metadata.log.max.record.bytes.between.snapshots",
        "controller.quorum.request.timeout.ms",
        "broker.heartbeat.interval.ms",
        "broker.session.timeout.ms",
        "replica.fetch.max.bytes",
        "replica.fetch.response.max.bytes",
        "replica.fetch.wait.max.ms",
        "replica.fetch.min.bytes",
        "replica.fetch.backoff.ms",
        "replica.socket.timeout.ms",
        "replica.lag.time.max.ms",
        "num.replica.fetchers",
        "sluice.replica.fetch.fsync",
        "unclean.leader.election.enable",
        "auto.leader.rebalance.enable",
        "leader.imbalance.check.interval.seconds",
        "leader.imbalance.per.broker.percentage",
        "controlled.shutdown.enable",
        "sluice.controlled.shutdown.timeout.ms",
        "inter.broker.listener.name",
        "listener.security.protocol.map",
        "log.dirs",
        "log.dir",
        "num.partitions",
        "default.replication.factor",
        "auto.create.topics.enable",
        "log.retention.minutes",
        "log.retention.hours",
        "log.retention.check.interval.ms",
        "log.roll.hours",
        "socket.request.max.bytes",
        "max.connections",
        "queued.max.requests",
        "queued.max.request.bytes",
        "connections.max.idle.ms",
        "port",
        "host.name",
        "zookeeper.connect",
        "producer.id.expiration.check.interval.ms",
    ];
    STATIC.contains(&k)
        || IGNORED_KAFKA_KEYS.contains(&k)
        || k.starts_with("group.")
        || k.starts_with("offsets.")
}

/// Kafka broker keys with no meaning here (thread pools, socket buffers,
/// replication of internal topics on one broker): accepted from Kafka's own
/// sample files without a warning.
const IGNORED_KAFKA_KEYS: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "zookeeper.connection.timeout.ms",
    "log.cleaner.enable",
    "delete.topic.enable",
    // One listener protocol (PLAINTEXT) and one broker-to-broker listener.
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "controller.quorum.fetch.timeout.ms",
];

/// Kafka 0.9's listener and log-dir keys (the seeds' multi-broker recipe
/// edits `port` and `log.dir` in a copy of server.properties). As in Kafka,
/// they count only when `listeners` / `log.dirs` are not set.
#[derive(Default)]
struct Legacy {
    port: Option<u16>,
    host: Option<String>,
    advertised_host: Option<String>,
    advertised_port: Option<u16>,
    log_dir: Option<String>,
    listeners_set: bool,
    advertised_set: bool,
    log_dirs_set: bool,
}

impl Legacy {
    fn apply(self, cfg: &mut BrokerConfig, advertised_set: bool) -> Result<(), ConfigError> {
        if !self.listeners_set && (self.port.is_some() || self.host.is_some()) {
            let host = self.host.clone().unwrap_or_default();
            let port = self.port.unwrap_or(9092);
            let ip = match host.as_str() {
                "" => "0.0.0.0",
                "localhost" => "127.0.0.1",
                h => h,
            };
            let v = format!("{ip}:{port}");
            cfg.listener = v
                .parse()
                .map_err(|_| invalid("host.name", &host, "not an IP address"))?;
            if !advertised_set && !self.advertised_set {
                cfg.advertised_host = if ip == "0.0.0.0" {
                    "127.0.0.1".into()
                } else {
                    ip.to_string()
                };
                cfg.advertised_port = port;
            }
            tracing::warn!("port/host.name are Kafka 0.9 keys: listening on {v}; the modern key is listeners=PLAINTEXT://{host}:{port}");
        }
        if !advertised_set && (self.advertised_host.is_some() || self.advertised_port.is_some()) {
            if let Some(h) = self.advertised_host {
                cfg.advertised_host = h;
            }
            if let Some(p) = self.advertised_port {
                cfg.advertised_port = p;
            }
            tracing::warn!("advertised.host.name/advertised.port are Kafka 0.9 keys; the modern key is advertised.listeners");
        }
        if let Some(d) = self.log_dir {
            if self.log_dirs_set {
                tracing::warn!("log.dir={d} ignored: log.dirs is set and wins, as in Kafka");
            } else {
                cfg.log_dir = PathBuf::from(&d);
                tracing::warn!("log.dir is Kafka's single-directory key: data in {d}; the modern key is log.dirs");
            }
        }
        Ok(())
    }
}

/// Kafka's `group.*` and `offsets.*` keys.
fn group_key(g: &mut crate::group::CoordinatorConfig, k: &str, v: &str) -> Result<(), ConfigError> {
    match k {
        "offsets.topic.num.partitions" => g.offsets_topic_partitions = positive(k, v)?,
        "offsets.topic.replication.factor" => g.offsets_topic_replication_factor = positive(k, v)?,
        "offsets.topic.segment.bytes" => g.offsets_topic_segment_bytes = at_least(k, v, 14)?,
        "offsets.retention.minutes" => g.offsets_retention_ms = positive::<i64>(k, v)? * 60_000,
        "offsets.retention.check.interval.ms" => {
            g.offsets_retention_check_interval_ms = positive(k, v)?
        }
        "offset.metadata.max.bytes" => g.offset_metadata_max_bytes = num(k, v)?,
        "offsets.commit.timeout.ms" => g.offsets_commit_timeout_ms = positive(k, v)?,
        "group.min.session.timeout.ms" => g.limits.min_session_timeout_ms = positive(k, v)?,
        "group.max.session.timeout.ms" => g.limits.max_session_timeout_ms = positive(k, v)?,
        "group.initial.rebalance.delay.ms" => g.limits.initial_rebalance_delay_ms = num(k, v)?,
        "group.max.size" => g.limits.max_size = positive(k, v)?,
        "group.max.member.metadata.bytes" => g.limits.max_member_metadata_bytes = positive(k, v)?,
        "group.consumer.heartbeat.interval.ms" => {
            g.consumer_heartbeat_interval_ms = positive(k, v)?
        }
        "group.consumer.session.timeout.ms" => g.consumer_session_timeout_ms = positive(k, v)?,
        "group.consumer.max.size" => g.consumer_max_size = positive(k, v)?,
        "group.consumer.min.session.timeout.ms" => {
            g.consumer_min_session_timeout_ms = positive(k, v)?
        }
        "group.consumer.max.session.timeout.ms" => {
            g.consumer_max_session_timeout_ms = positive(k, v)?
        }
        "group.consumer.min.heartbeat.interval.ms" => {
            g.consumer_min_heartbeat_interval_ms = positive(k, v)?
        }
        "group.consumer.max.heartbeat.interval.ms" => {
            g.consumer_max_heartbeat_interval_ms = positive(k, v)?
        }
        _ => tracing::warn!(key = k, "unknown configuration key ignored"),
    }
    Ok(())
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    k: &str,
    v: &str,
) -> Result<T, ConfigError> {
    let n: T = num(k, v)?;
    if n <= T::default() {
        return Err(invalid(k, v, "must be positive"));
    }
    Ok(n)
}

fn at_least(k: &str, v: &str, min: u64) -> Result<u64, ConfigError> {
    let n: u64 = num(k, v)?;
    if n < min {
        return Err(invalid(k, v, format!("must be at least {min}")));
    }
    Ok(n)
}

fn boolean(k: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(k, v, "expected true or false")),
    }
}

pub fn timestamp_type(k: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "CreateTime" => Ok(false),
        "LogAppendTime" => Ok(true),
        _ => Err(invalid(k, v, "expected CreateTime or LogAppendTime")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_keys_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("server.properties");
        std::fs::write(
            &f,
            "# comment\nbroker.id=3\nlisteners=PLAINTEXT://127.0.0.1:9093\nlog.dirs=/tmp/k\nnum.partitions=4\nlog.retention.hours=1\n",
        )
        .unwrap();
        let c = BrokerConfig::load(Some(&f), &[("num.partitions".into(), "6".into())]).unwrap();
        assert_eq!(c.broker_id, 3);
        assert_eq!(c.listener.port(), 9093);
        assert_eq!(c.num_partitions, 6, "flags override the file");
        assert_eq!(c.log.retention_ms, 3_600_000);
        assert_eq!(c.log_dir, PathBuf::from("/tmp/k"));
    }

    /// The configuration with one key set, as `--override key=value` sets it.
    fn with(key: &str, v: &str) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::load(None, &[(key.into(), v.into())])
    }

    #[test]
    fn ipv6_and_localhost_listeners_bind_where_they_say() {
        let c = with("listeners", "PLAINTEXT://[::1]:19092").unwrap();
        assert_eq!(c.listener, "[::1]:19092".parse::<SocketAddr>().unwrap());
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("::1", 19092)
        );
        let c = with("listeners", "PLAINTEXT://[::]:19093").unwrap();
        assert_eq!(c.listener, "[::]:19093".parse::<SocketAddr>().unwrap());
        let c = with("listeners", "PLAINTEXT://localhost:19094").unwrap();
        assert_eq!(c.listener, "127.0.0.1:19094".parse::<SocketAddr>().unwrap());
        let c = with("listeners", "PLAINTEXT://:19095").unwrap();
        assert_eq!(c.listener, "0.0.0.0:19095".parse::<SocketAddr>().unwrap());
        assert!(with("listeners", "PLAINTEXT://[::1]:x").is_err());
        let m = with("sluice.metrics.listener", "[::1]:19097").unwrap();
        assert_eq!(m.metrics_listener, Some("[::1]:19097".parse().unwrap()));
    }

    #[test]
    fn a_host_name_binds_its_first_ipv4_address_as_kafka_does() {
        use std::io::{Error, ErrorKind};
        let (v4, v6): (SocketAddr, SocketAddr) = (
            "10.0.0.7:0".parse().unwrap(),
            "[fd00::7]:0".parse().unwrap(),
        );
        let answer = |addrs: Vec<SocketAddr>| {
            move |h: &str, p: u16| {
                assert_eq!((h, p), ("broker1", 9092), "asked for the name and port");
                Ok(addrs)
            }
        };
        assert_eq!(pick_address("broker1", 9092, answer(vec![v6, v4])), Ok(v4));
        assert_eq!(pick_address("broker1", 9092, answer(vec![v6])), Ok(v6));
        let none = pick_address("broker1", 9092, answer(vec![])).unwrap_err();
        assert!(none.contains("broker1 has no address"), "{none}");
        let failed = pick_address("broker1", 9092, |_, _| {
            Err(Error::new(ErrorKind::NotFound, "Name or service not known"))
        })
        .unwrap_err();
        assert!(
            failed.contains("cannot resolve host broker1: Name or service not known"),
            "{failed}"
        );
        // Addresses and localhost are never looked up.
        let never = |_: &str, _: u16| -> std::io::Result<Vec<SocketAddr>> { panic!("looked up") };
        assert_eq!(
            pick_address("localhost", 1, never),
            Ok("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(
            pick_address("::1", 2, never),
            Ok("[::1]:2".parse().unwrap())
        );
    }

    #[test]
    fn the_metrics_listener_is_off_unless_named() {
        let load = |v: &str| with("sluice.metrics.listener", v).map(|c| c.metrics_listener);
        assert_eq!(
            BrokerConfig::load(None, &[]).unwrap().metrics_listener,
            None
        );
        assert_eq!(load("").unwrap(), None);
        assert_eq!(
            load("localhost:9644").unwrap(),
            Some("127.0.0.1:9644".parse().unwrap())
        );
        assert_eq!(
            load("[::1]:9644").unwrap(),
            Some("[::1]:9644".parse().unwrap())
        );
        assert!(load("9644").is_err());
        assert!(load("127.0.0.1:port").is_err());
    }

    #[test]
    fn queued_max_request_bytes_is_split_between_shards_and_minus_one_is_no_limit() {
        let load =
            |v: &str| with("queued.max.request.bytes", v).map(|c| c.queued_max_request_bytes);
        let unset = BrokerConfig::load(None, &[])
            .unwrap()
            .queued_max_request_bytes;
        assert_eq!(
            unset.per_shard(4),
            Some(DEFAULT_REQUEST_MEMORY_BYTES_PER_SHARD)
        );
        assert_eq!(load("-1").unwrap().per_shard(4), None);
        assert_eq!(load("100000000").unwrap().per_shard(4), Some(25_000_000));
        assert_eq!(load("1").unwrap().per_shard(4), Some(1), "never zero");
        assert!(load("0").is_err());
        assert!(load("-2").is_err());
    }

    #[test]
    fn shard_sched_slice_is_in_the_kernels_range_or_off() {
        let load = |v: &str| with("sluice.shard.sched.slice.us", v).map(|c| c.shard_sched_slice_us);
        let unset = BrokerConfig::load(None, &[]).unwrap().shard_sched_slice_us;
        assert_eq!(unset, DEFAULT_SHARD_SCHED_SLICE_US);
        assert_eq!(load("0").unwrap(), 0);
        assert_eq!(load("3000").unwrap(), 3000);
        assert!(load("50").is_err());
        assert!(load("200000").is_err());
    }

    #[test]
    fn shards_are_pinned_unless_thread_affinity_is_off() {
        assert!(BrokerConfig::load(None, &[]).unwrap().shard_thread_affinity);
        let load =
            |v: &str| with("sluice.shard.thread.affinity", v).map(|c| c.shard_thread_affinity);
        assert!(!load("false").unwrap());
        assert!(load("true").unwrap());
        assert!(load("no").is_err());
    }

    #[test]
    fn preallocate_bytes_defaults_to_1_mib_and_zero_turns_it_off() {
        let load =
            |v: &str| with("sluice.log.preallocate.bytes", v).map(|c| c.log.preallocate_bytes);
        let unset = BrokerConfig::load(None, &[]).unwrap().log.preallocate_bytes;
        assert_eq!(unset, crate::storage::log::DEFAULT_PREALLOCATE_BYTES);
        assert_eq!(unset, 1 << 20);
        assert_eq!(load("0").unwrap(), 0);
        assert_eq!(load("65536").unwrap(), 64 << 10);
        assert!(load("-1").is_err());
        assert!(load("2147483648").is_err(), "more than a segment");
    }

    #[test]
    fn sync_filesystem_min_partitions_defaults_to_8_and_zero_turns_it_off() {
        let load = |v: &str| {
            with("sluice.log.sync.filesystem.min.partitions", v)
                .map(|c| c.log_sync_filesystem_min_partitions)
        };
        let unset = BrokerConfig::load(None, &[]).unwrap();
        assert_eq!(unset.log_sync_filesystem_min_partitions, 8);
        assert_eq!(load("0").unwrap(), 0);
        assert_eq!(load("2").unwrap(), 2);
        assert!(load("-1").is_err());
        assert!(load("many").is_err());
    }

    #[test]
    fn kafka_0_9_port_and_log_dir_count_when_the_modern_keys_are_absent() {
        let kv = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // The seeds' server-1.properties: broker.id, port, log.dir.
        let c = BrokerConfig::load(
            None,
            &kv(&[
                ("broker.id", "1"),
                ("port", "9093"),
                ("log.dir", "/tmp/kafka-logs-1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listener.port(), 9093);
        assert_eq!(c.advertised_port, 9093);
        assert_eq!(c.log_dir, PathBuf::from("/tmp/kafka-logs-1"));
        let c =
            BrokerConfig::load(None, &kv(&[("port", "9094"), ("host.name", "127.0.0.1")])).unwrap();
        assert_eq!(c.listener, "127.0.0.1:9094".parse().unwrap());
        // With listeners / log.dirs set, the old keys lose (in any order).
        let c = BrokerConfig::load(
            None,
            &kv(&[
                ("port", "9093"),
                ("listeners", "PLAINTEXT://127.0.0.1:9095"),
                ("log.dirs", "/tmp/a"),
                ("log.dir", "/tmp/b"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listener.port(), 9095);
        assert_eq!(c.log_dir, PathBuf::from("/tmp/a"));
        // Kafka's sample keys that do not apply load without error.
        BrokerConfig::load(
            None,
            &kv(&[
                ("num.network.threads", "3"),
                ("zookeeper.connect", "localhost:2181"),
            ]),
        )
        .unwrap();
    }

    /// Kafka 4's KRaft sample (config/server.properties), combined mode.
    #[test]
    fn kraft_keys_of_a_combined_node() {
        let text = "process.roles=broker,controller\nnode.id=1\n\
            controller.quorum.voters=1@localhost:9093\n\
            listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
            inter.broker.listener.name=PLAINTEXT\n\
            advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n\
            controller.listener.names=CONTROLLER\n\
            listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
            log.dirs=/tmp/kraft-combined-logs\n";
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("server.properties");
        std::fs::write(&f, text).unwrap();
        let c = BrokerConfig::load(Some(&f), &[]).unwrap();
        assert_eq!(c.broker_id, 1);
        assert_eq!(c.listener, "0.0.0.0:9092".parse().unwrap());
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("localhost", 9092)
        );
        assert_eq!(
            c.quorum.controller_listener,
            Some("0.0.0.0:9093".parse().unwrap())
        );
        assert_eq!(c.quorum.voters, vec![(1, "localhost".to_string(), 9093)]);
        assert_eq!(c.quorum.voter_ids(c.broker_id), vec![1]);
        // The controller listener may come first; clients get the other.
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        let c = BrokerConfig::load(
            None,
            &[kv(
                "listeners",
                "CONTROLLER://127.0.0.1:19093,PLAINTEXT://127.0.0.1:19092",
            )],
        )
        .unwrap();
        assert_eq!(c.listener.port(), 19092);
        assert_eq!(c.quorum.controller_listener.unwrap().port(), 19093);
        // No quorum configured: this broker alone.
        assert_eq!(
            BrokerConfig::load(None, &[kv("node.id", "7")])
                .unwrap()
                .quorum
                .voter_ids(7),
            vec![7]
        );
    }

    #[test]
    fn bootstrap_servers_without_voters_may_name_only_this_node() {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        // Kafka 4's config/server.properties (a single node, --standalone).
        let c = BrokerConfig::load(
            None,
            &[
                kv("node.id", "1"),
                kv("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                kv("controller.quorum.bootstrap.servers", "localhost:9093"),
            ],
        )
        .unwrap();
        assert_eq!(c.quorum.voter_ids(1), vec![1]);
        // Three controllers: would silently be three one-node clusters.
        let e = BrokerConfig::load(
            None,
            &[
                kv("node.id", "1"),
                kv("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                kv(
                    "controller.quorum.bootstrap.servers",
                    "localhost:9093,localhost:9095,localhost:9097",
                ),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("controller.quorum.bootstrap.servers")
                && e.contains("localhost:9095,localhost:9097")
                && e.contains("controller.quorum.voters="),
            "{e}"
        );
        // No controller listener here: the one named is someone else.
        assert!(BrokerConfig::load(
            None,
            &[kv("controller.quorum.bootstrap.servers", "127.0.0.1:9093")]
        )
        .is_err());
        // With voters the static set is used.
        let c = BrokerConfig::load(
            None,
            &[
                kv("node.id", "1"),
                kv(
                    "controller.quorum.voters",
                    "1@127.0.0.1:9093,2@127.0.0.1:9095",
                ),
                kv(
                    "controller.quorum.bootstrap.servers",
                    "127.0.0.1:9093,127.0.0.1:9095",
                ),
            ],
        )
        .unwrap();
        assert_eq!(c.quorum.voter_ids(1), vec![1, 2]);
    }

    #[test]
    fn quorum_settings_that_cannot_run_are_refused_naming_the_key() {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        let err =
            |pairs: &[(String, String)]| BrokerConfig::load(None, pairs).unwrap_err().to_string();
        let e = err(&[kv("process.roles", "broker")]);
        assert!(
            e.contains("process.roles") && e.contains("broker,controller"),
            "{e}"
        );
        let e = err(&[
            kv("node.id", "2"),
            kv("controller.quorum.voters", "1@127.0.0.1:9093"),
        ]);
        assert!(
            e.contains("controller.quorum.voters") && e.contains("not among the voters"),
            "{e}"
        );
        let e = err(&[kv(
            "controller.quorum.voters",
            "1@127.0.0.1:9093,1@127.0.0.1:9094",
        )]);
        assert!(e.contains("listed twice"), "{e}");
        let e = err(&[kv("controller.quorum.voters", "1-127.0.0.1:9093")]);
        assert!(e.contains("id@host:port"), "{e}");
        let e = err(&[kv("listeners", "CONTROLLER://:9093")]);
        assert!(e.contains("no listener for clients"), "{e}");
        // Several voters that include this node are fine.
        let kvs = [kv(
            "controller.quorum.voters",
            "1@127.0.0.1:9093,2@127.0.0.1:9094",
        )];
        assert_eq!(
            BrokerConfig::load(None, &kvs).unwrap().quorum.voter_ids(1),
            vec![1, 2]
        );
    }

    #[test]
    fn dynamic_broker_configs_apply_over_the_file() {
        let base = BrokerConfig::default();
        let kv = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let c = base.with_dynamic(&kv("log.retention.ms", "1234")).unwrap();
        assert_eq!(c.log.retention_ms, 1234);
        let c = base.with_dynamic(&kv("message.max.bytes", "5000")).unwrap();
        assert_eq!(c.log.max_message_bytes, 5000);
        assert!(matches!(
            base.with_dynamic(&kv("broker.id", "7")),
            Err(DynamicConfigError::NotDynamic(_))
        ));
        assert!(matches!(
            base.with_dynamic(&kv("no.such.key", "1")),
            Err(DynamicConfigError::Invalid(_))
        ));
        assert!(matches!(
            base.with_dynamic(&kv("log.segment.bytes", "x")),
            Err(DynamicConfigError::Invalid(_))
        ));
        // Every dynamic key applies (none falls through to unreachable!).
        for k in DYNAMIC_BROKER_KEYS {
            let v = match *k {
                "compression.type" => "lz4",
                "log.message.timestamp.type" => "LogAppendTime",
                "unclean.leader.election.enable" => "true",
                _ => "100",
            };
            base.with_dynamic(&kv(k, v))
                .unwrap_or_else(|e| panic!("{k}: {e:?}"));
        }
    }

    #[test]
    fn bad_value_names_the_key() {
        let e = BrokerConfig::load(None, &[("num.partitions".into(), "-1".into())]).unwrap_err();
        assert!(e.to_string().contains("num.partitions"), "{e}");
        let e = BrokerConfig::load(None, &[("log.segment.bytes".into(), "x".into())]).unwrap_err();
        assert!(e.to_string().contains("log.segment.bytes"), "{e}");
    }
}
