//! The standalone worker: runs each connector's tasks on their own threads,
//! converts, produces (sources) and consumes in a group (sinks), keeps source
//! offsets, and takes pause / resume / stop / restart / delete from REST.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::config::{ConnectorConfig, WorkerConfig};
use super::connector::{
    self, Connector, Kind, SinkRecord, SinkTask, SourceRecord, SourceTask, TaskConfig, TaskError,
};
use super::converter::Converter;
use super::offsets::OffsetStore;
use super::ConfigError;
use crate::client::{
    Client, ClientConfig, ClientError, FetchPosition, GroupMember, MemberConfig, EARLIEST_TIMESTAMP,
};

/// How long a source task's poll may wait for data.
const POLL_WAIT: Duration = Duration::from_millis(500);
/// A sink fetch's max wait.
const FETCH_MAX_WAIT_MS: i32 = 500;
/// A sink fetch's size bound.
const FETCH_MAX_BYTES: i32 = 4 << 20;
/// Bound on one produced batch (brokers take about 1 MiB by default).
const PRODUCE_BATCH_MAX_BYTES: usize = 900 * 1024;
/// How often sinks look for new topics and partitions.
const METADATA_REFRESH: Duration = Duration::from_secs(5);
/// Back-off after a failed call to the cluster, doubling up to the max.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Bound on every call the worker's clients make.
const REQUEST_TIMEOUT_MS: u64 = 15_000;

/// What the user asked a connector to be (Kafka's TargetState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Started,
    Paused,
    Stopped,
}

/// A task's or connector's state as `/status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Stopped,
    Failed(String),
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Stopped => "STOPPED",
            State::Failed(_) => "FAILED",
        }
    }

    pub fn trace(&self) -> Option<&str> {
        match self {
            State::Failed(t) => Some(t),
            _ => None,
        }
    }
}

/// Errors of worker operations, mapped to HTTP statuses by the REST layer.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("Connector {0} not found")]
    NotFound(String),
    #[error("Connector {0} already exists")]
    Exists(String),
    #[error("{0}")]
    Config(#[from] ConfigError),
}

/// Shared between a task thread and the worker.
struct TaskControl {
    target: Mutex<Target>,
    changed: Condvar,
    state: Mutex<State>,
}

impl TaskControl {
    fn new(target: Target) -> Arc<TaskControl> {
        Arc::new(TaskControl {
            target: Mutex::new(target),
            changed: Condvar::new(),
            state: Mutex::new(State::Unassigned),
        })
    }

    fn set_target(&self, t: Target) {
        *lock(&self.target) = t;
        self.changed.notify_all();
    }

    fn target(&self) -> Target {
        *lock(&self.target)
    }

    fn set_state(&self, s: State) {
        *lock(&self.state) = s;
    }

    /// Sleeps up to `d`, waking early when the target changes.
    fn sleep(&self, d: Duration) {
        let t = lock(&self.target);
        let before = *t;
        let woken = self.changed.wait_timeout_while(t, d, |now| *now == before);
        drop(woken);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicked task thread must not wedge the worker.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct TaskHandle {
    control: Arc<TaskControl>,
    thread: Option<JoinHandle<()>>,
}

impl TaskHandle {
    fn stop(&mut self) {
        self.control.set_target(Target::Stopped);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct ConnectorEntry {
    config: ConnectorConfig,
    plugin: &'static dyn Connector,
    target: Target,
    task_configs: Vec<TaskConfig>,
    tasks: Vec<TaskHandle>,
}

/// A connector's status, for REST.
pub struct ConnectorStatus {
    pub name: String,
    pub kind: Kind,
    pub state: State,
    pub tasks: Vec<(usize, State)>,
}

/// A connector's description, for REST.
pub struct ConnectorInfo {
    pub name: String,
    pub kind: Kind,
    pub config: BTreeMap<String, String>,
    pub task_configs: Vec<TaskConfig>,
}

pub struct Worker {
    config: WorkerConfig,
    offsets: Arc<OffsetStore>,
    connectors: Mutex<BTreeMap<String, ConnectorEntry>>,
    cluster_id: Mutex<Option<String>>,
}

impl Worker {
    pub fn new(config: WorkerConfig) -> Arc<Worker> {
        let offsets = Arc::new(OffsetStore::open(&config.offset_file));
        Arc::new(Worker {
            config,
            offsets,
            connectors: Mutex::new(BTreeMap::new()),
            cluster_id: Mutex::new(None),
        })
    }

    /// The Kafka cluster's id (asked once; `None` while no broker answers).
    pub fn cluster_id(&self) -> Option<String> {
        let mut cached = lock(&self.cluster_id);
        if cached.is_none() {
            let config = ClientConfig {
                client_id: self.config.client_id.clone(),
                request_timeout_ms: 2_000,
                allow_auto_topic_creation: false,
            };
            *cached = Client::connect_with(&self.config.bootstrap_servers, config)
                .and_then(|mut c| c.metadata(Some(Vec::new())))
                .ok()
                .and_then(|md| md.cluster_id);
        }
        cached.clone()
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Checks and starts a connector (a duplicate name is refused).
    pub fn add(&self, props: BTreeMap<String, String>) -> Result<ConnectorInfo, WorkerError> {
        let config = ConnectorConfig::from_props(props)?;
        let plugin = connector::find(&config.class).ok_or_else(|| {
            let known: Vec<&str> = connector::PLUGINS.iter().map(|p| p.class()).collect();
            ConfigError(format!(
                "Failed to find any class that implements Connector and which name matches {}, \
                 available connectors are: {}",
                config.class,
                known.join(", ")
            ))
        })?;
        plugin.validate(&config)?;
        config.warn_unknown(plugin.keys());
        let mut all = lock(&self.connectors);
        if all.contains_key(&config.name) {
            return Err(WorkerError::Exists(config.name));
        }
        let task_configs = plugin.task_configs(&config);
        let mut entry = ConnectorEntry {
            config,
            plugin,
            target: Target::Started,
            task_configs,
            tasks: Vec::new(),
        };
        tracing::info!(
            "starting connector {} ({}) with {} task(s)",
            entry.config.name,
            plugin.class(),
            entry.task_configs.len()
        );
        self.start_tasks(&mut entry);
        let info = info_of(&entry);
        all.insert(entry.config.name.clone(), entry);
        Ok(info)
    }

    fn start_tasks(&self, entry: &mut ConnectorEntry) {
        debug_assert!(entry.tasks.is_empty(), "tasks started twice");
        let target = match entry.target {
            Target::Stopped => return,
            t => t,
        };
        for (id, task_config) in entry.task_configs.iter().enumerate() {
            let control = TaskControl::new(target);
            let run = TaskRun {
                connector: entry.config.name.clone(),
                id,
                plugin: entry.plugin,
                task_config: task_config.clone(),
                config: entry.config.clone(),
                key_converter: entry
                    .config
                    .key_converter
                    .unwrap_or(self.config.key_converter),
                value_converter: entry
                    .config
                    .value_converter
                    .unwrap_or(self.config.value_converter),
                bootstrap: self.config.bootstrap_servers.clone(),
                client_id: format!("{}-{}-{id}", self.config.client_id, entry.config.name),
                flush_interval: Duration::from_millis(self.config.offset_flush_interval_ms),
                session_timeout_ms: self.config.consumer_session_timeout_ms,
                heartbeat_interval_ms: self.config.consumer_heartbeat_interval_ms,
                offsets: self.offsets.clone(),
                control: control.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("{}-{id}", entry.config.name))
                .spawn(move || run.run())
                .expect("spawn a task thread");
            entry.tasks.push(TaskHandle {
                control,
                thread: Some(thread),
            });
        }
    }

    fn with<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut ConnectorEntry) -> T,
    ) -> Result<T, WorkerError> {
        let mut all = lock(&self.connectors);
        let entry = all
            .get_mut(name)
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        Ok(f(entry))
    }

    pub fn names(&self) -> Vec<String> {
        lock(&self.connectors).keys().cloned().collect()
    }

    pub fn info(&self, name: &str) -> Result<ConnectorInfo, WorkerError> {
        self.with(name, |e| info_of(e))
    }

    pub fn status(&self, name: &str) -> Result<ConnectorStatus, WorkerError> {
        self.with(name, |e| {
            let tasks: Vec<(usize, State)> = e
                .tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (i, lock(&t.control.state).clone()))
                .collect();
            let state = match e.target {
                Target::Started => State::Running,
                Target::Paused => State::Paused,
                Target::Stopped => State::Stopped,
            };
            ConnectorStatus {
                name: e.config.name.clone(),
                kind: e.plugin.kind(),
                state,
                tasks,
            }
        })
    }

    /// Pauses every task: sources stop polling, sinks stop consuming (and
    /// keep their group membership).
    pub fn pause(&self, name: &str) -> Result<(), WorkerError> {
        self.with(name, |e| {
            if e.target == Target::Stopped {
                return;
            }
            e.target = Target::Paused;
            for t in &e.tasks {
                t.control.set_target(Target::Paused);
            }
            tracing::info!("connector {name} paused");
        })
    }

    pub fn resume(&self, name: &str) -> Result<(), WorkerError> {
        let stopped = self.with(name, |e| e.target == Target::Stopped)?;
        let mut all = lock(&self.connectors);
        let e = all
            .get_mut(name)
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        e.target = Target::Started;
        if stopped {
            self.start_tasks(e);
        } else {
            for t in &e.tasks {
                t.control.set_target(Target::Started);
            }
        }
        tracing::info!("connector {name} resumed");
        Ok(())
    }

    /// KIP-875's stop: tasks shut down (offsets flushed and committed), the
    /// connector stays, with no tasks, until resumed.
    pub fn stop(&self, name: &str) -> Result<(), WorkerError> {
        self.with(name, |e| {
            e.target = Target::Stopped;
            for t in &mut e.tasks {
                t.stop();
            }
            e.tasks.clear();
            tracing::info!("connector {name} stopped");
        })?;
        self.flush_offsets();
        Ok(())
    }

    /// Restarts the connector's tasks (all, or only the failed ones).
    pub fn restart(&self, name: &str, only_failed: bool) -> Result<(), WorkerError> {
        let mut all = lock(&self.connectors);
        let e = all
            .get_mut(name)
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        if e.target == Target::Stopped {
            return Ok(());
        }
        let failed: Vec<bool> = e
            .tasks
            .iter()
            .map(|t| matches!(*lock(&t.control.state), State::Failed(_)))
            .collect();
        if only_failed && !failed.contains(&true) {
            return Ok(());
        }
        for t in &mut e.tasks {
            t.stop();
        }
        e.tasks.clear();
        self.start_tasks(e);
        tracing::info!("connector {name} restarted");
        Ok(())
    }

    /// Restarts one task.
    pub fn restart_task(&self, name: &str, task: usize) -> Result<bool, WorkerError> {
        // Tasks are cheap to start; restarting all keeps ids and threads simple.
        let exists = self.with(name, |e| task < e.tasks.len())?;
        if exists {
            self.restart(name, false)?;
        }
        Ok(exists)
    }

    pub fn delete(&self, name: &str) -> Result<(), WorkerError> {
        let mut entry = lock(&self.connectors)
            .remove(name)
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        for t in &mut entry.tasks {
            t.stop();
        }
        self.flush_offsets();
        tracing::info!("connector {name} deleted");
        Ok(())
    }

    /// Writes acknowledged source offsets to the offset file.
    pub fn flush_offsets(&self) {
        if let Err(e) = self.offsets.flush() {
            tracing::error!(
                "cannot write offsets to {}: {e}",
                self.config.offset_file.display()
            );
        }
    }

    /// Stops every task (sinks flush and commit, sources record what was
    /// acknowledged) and writes the offsets.
    pub fn shutdown(&self) {
        let mut all = lock(&self.connectors);
        for e in all.values_mut() {
            for t in &e.tasks {
                t.control.set_target(Target::Stopped);
            }
        }
        for e in all.values_mut() {
            for t in &mut e.tasks {
                t.stop();
            }
        }
        drop(all);
        self.flush_offsets();
    }
}

fn info_of(e: &ConnectorEntry) -> ConnectorInfo {
    ConnectorInfo {
        name: e.config.name.clone(),
        kind: e.plugin.kind(),
        config: e.config.props.clone(),
        task_configs: if e.target == Target::Stopped {
            Vec::new()
        } else {
            e.task_configs.clone()
        },
    }
}

/// Everything one task thread needs.
struct TaskRun {
    connector: String,
    id: usize,
    plugin: &'static dyn Connector,
    task_config: TaskConfig,
    config: ConnectorConfig,
    key_converter: Converter,
    value_converter: Converter,
    bootstrap: String,
    client_id: String,
    flush_interval: Duration,
    session_timeout_ms: i32,
    heartbeat_interval_ms: u64,
    offsets: Arc<OffsetStore>,
    control: Arc<TaskControl>,
}

/// How a call to the cluster failed.
enum Failure {
    /// Worth retrying after a back-off (broker down, leader moving, ...).
    Transient(String),
    /// Ends the task.
    Fatal(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let transient = match e.kafka_code() {
            Some(code) => code.is_retriable() || code == ResponseError::CoordinatorNotAvailable,
            None => matches!(
                e,
                ClientError::Connect { .. } | ClientError::Io { .. } | ClientError::Timeout { .. }
            ),
        };
        if transient {
            Failure::Transient(e.to_string())
        } else {
            Failure::Fatal(e.to_string())
        }
    }
}

impl From<TaskError> for Failure {
    fn from(e: TaskError) -> Failure {
        Failure::Fatal(e.0)
    }
}

impl TaskRun {
    fn run(self) {
        let label = format!("{}-{}", self.connector, self.id);
        let result = match self.plugin.kind() {
            Kind::Source => {
                let offsets = self.offsets.clone();
                let name = self.connector.clone();
                self.plugin
                    .start_source(&self.task_config, &|p| offsets.get(&name, p))
                    .map_err(|e| e.0)
                    .and_then(|task| SourceRun::new(&self, task).run())
            }
            Kind::Sink => self
                .plugin
                .start_sink(&self.task_config)
                .map_err(|e| e.0)
                .and_then(|task| SinkRun::new(&self, task).run()),
        };
        match result {
            Ok(()) => {
                self.control.set_state(State::Unassigned);
                tracing::info!("task {label} stopped");
            }
            Err(trace) => {
                tracing::error!("task {label} failed: {trace}");
                self.control.set_state(State::Failed(trace));
            }
        }
    }

    fn connect(&self) -> Result<Client, Failure> {
        let config = ClientConfig {
            client_id: self.client_id.clone(),
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            allow_auto_topic_creation: true,
        };
        Client::connect_with(&self.bootstrap, config).map_err(Failure::from)
    }

    /// Waits while paused; false once the task must stop.
    fn runnable(&self) -> bool {
        loop {
            match self.control.target() {
                Target::Stopped => return false,
                Target::Started => {
                    self.control.set_state(State::Running);
                    return true;
                }
                Target::Paused => {
                    self.control.set_state(State::Paused);
                    self.control.sleep(Duration::from_secs(1));
                }
            }
        }
    }
}

/// Doubling back-off between failed calls.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(RETRY_BACKOFF_MIN)
    }

    fn wait(&mut self, control: &TaskControl, label: &str, why: &str) {
        tracing::warn!("task {label}: {why}; retrying in {} ms", self.0.as_millis());
        control.sleep(self.0);
        self.0 = (self.0 * 2).min(RETRY_BACKOFF_MAX);
    }

    fn reset(&mut self) {
        self.0 = RETRY_BACKOFF_MIN;
    }
}

struct SourceRun<'a> {
    run: &'a TaskRun,
    task: Box<dyn SourceTask>,
    client: Option<Client>,
    partitions: HashMap<String, usize>,
    /// Round-robin partition for records without a key, per topic.
    sticky: HashMap<String, usize>,
}

/// A record ready to send: where to, its bytes, and its source position.
struct Outgoing {
    topic: String,
    key: Option<Bytes>,
    value: Option<Bytes>,
    source: Option<(serde_json::Value, serde_json::Value)>,
}

impl<'a> SourceRun<'a> {
    fn new(run: &'a TaskRun, task: Box<dyn SourceTask>) -> SourceRun<'a> {
        SourceRun {
            run,
            task,
            client: None,
            partitions: HashMap::new(),
            sticky: HashMap::new(),
        }
    }

    fn label(&self) -> String {
        format!("{}-{}", self.run.connector, self.run.id)
    }

    fn run(mut self) -> Result<(), String> {
        let mut pending: Vec<Outgoing> = Vec::new();
        let mut backoff = Backoff::new();
        let result = loop {
            if !self.run.runnable() {
                break Ok(());
            }
            if pending.is_empty() {
                match self.task.poll(POLL_WAIT) {
                    Ok(records) => match self.convert(records) {
                        Ok(out) => pending = out,
                        Err(e) => break Err(e),
                    },
                    Err(e) => break Err(e.0),
                }
                if pending.is_empty() {
                    continue;
                }
            }
            match self.send(&mut pending) {
                Ok(()) => backoff.reset(),
                Err(Failure::Transient(why)) => {
                    self.client = None;
                    backoff.wait(&self.run.control, &self.label(), &why);
                }
                Err(Failure::Fatal(why)) => break Err(why),
            }
        };
        if !pending.is_empty() {
            tracing::info!(
                "task {}: {} polled record(s) were not acknowledged; they will be read again",
                self.label(),
                pending.len()
            );
        }
        result
    }

    fn convert(&self, records: Vec<SourceRecord>) -> Result<Vec<Outgoing>, String> {
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let key = self
                .run
                .key_converter
                .from_connect(r.key_schema.as_ref(), &r.key)
                .map_err(|e| format!("cannot convert a key for topic {}: {e}", r.topic))?;
            let value = self
                .run
                .value_converter
                .from_connect(r.value_schema.as_ref(), &r.value)
                .map_err(|e| format!("cannot convert a value for topic {}: {e}", r.topic))?;
            out.push(Outgoing {
                topic: r.topic,
                key: key.map(Bytes::from),
                value: value.map(Bytes::from),
                source: r.partition.zip(r.offset),
            });
        }
        Ok(out)
    }

    fn partition_count(&mut self, topic: &str) -> Result<usize, Failure> {
        if let Some(n) = self.partitions.get(topic) {
            return Ok(*n);
        }
        let client = self.client.as_mut().expect("connected");
        let md = client.metadata(Some(vec![topic.to_string()]))?;
        let t = md
            .topic(topic)
            .ok_or_else(|| Failure::Transient(format!("no metadata for topic {topic} yet")))?;
        if let Some(code) = t.error {
            return Err(Failure::from(ClientError::Kafka {
                context: format!("topic {topic}"),
                code,
                message: None,
            }));
        }
        if t.partitions.is_empty() {
            return Err(Failure::Transient(format!(
                "topic {topic} has no partitions yet"
            )));
        }
        self.partitions
            .insert(topic.to_string(), t.partitions.len());
        Ok(t.partitions.len())
    }

    /// Sends `pending` in order, one batch per run of records for the same
    /// partition; what is acknowledged leaves `pending` and moves its source
    /// offsets forward, so a failure resends only what was not acknowledged.
    fn send(&mut self, pending: &mut Vec<Outgoing>) -> Result<(), Failure> {
        if self.client.is_none() {
            self.client = Some(self.run.connect()?);
        }
        while !pending.is_empty() {
            let topic = pending[0].topic.clone();
            let count = self.partition_count(&topic)?;
            let partition = match &pending[0].key {
                Some(k) => crate::cli::partition_for_key(k, count),
                None => {
                    let next = self.sticky.entry(topic.clone()).or_insert(0);
                    *next = (*next + 1) % count;
                    *next as i32
                }
            };
            let mut n = 0;
            let mut bytes = 0;
            while n < pending.len() && pending[n].topic == topic {
                let size = pending[n].key.as_ref().map_or(0, |k| k.len())
                    + pending[n].value.as_ref().map_or(0, |v| v.len());
                let same_partition = match &pending[n].key {
                    Some(k) => crate::cli::partition_for_key(k, count) == partition,
                    None => true,
                };
                if !same_partition || (n > 0 && bytes + size > PRODUCE_BATCH_MAX_BYTES) {
                    break;
                }
                bytes += size;
                n += 1;
            }
            let batch: Vec<(Option<Bytes>, Option<Bytes>)> = pending[..n]
                .iter()
                .map(|o| (o.key.clone(), o.value.clone()))
                .collect();
            let client = self.client.as_mut().expect("connected");
            if let Err(e) = client.produce(&topic, partition, batch, -1) {
                if e.kafka_code() == Some(ResponseError::UnknownTopicOrPartition) {
                    self.partitions.remove(&topic);
                }
                return Err(e.into());
            }
            for o in pending.drain(..n) {
                if let Some((partition, offset)) = o.source {
                    self.run
                        .offsets
                        .put(&self.run.connector, &partition, offset);
                }
            }
        }
        Ok(())
    }
}

/// A sink's position in one partition.
#[derive(Debug, Clone, Copy)]
struct Position {
    /// Next offset to fetch: everything below it was put to the task.
    next: i64,
    /// Last offset committed for the group.
    committed: i64,
}

struct SinkRun<'a> {
    run: &'a TaskRun,
    task: Box<dyn SinkTask>,
    client: Option<Client>,
    member: GroupMember,
    positions: BTreeMap<(String, i32), Position>,
    subscribed: Vec<String>,
    refreshed: Option<Instant>,
    last_commit: Instant,
}

impl<'a> SinkRun<'a> {
    fn new(run: &'a TaskRun, task: Box<dyn SinkTask>) -> SinkRun<'a> {
        let group = format!("connect-{}", run.connector);
        let member = MemberConfig {
            session_timeout_ms: run.session_timeout_ms,
            heartbeat_interval_ms: run.heartbeat_interval_ms,
            ..MemberConfig::new(&group)
        };
        SinkRun {
            run,
            task,
            client: None,
            member: GroupMember::new(member),
            positions: BTreeMap::new(),
            subscribed: Vec::new(),
            refreshed: None,
            last_commit: Instant::now(),
        }
    }

    fn label(&self) -> String {
        format!("{}-{}", self.run.connector, self.run.id)
    }

    fn run(mut self) -> Result<(), String> {
        let mut backoff = Backoff::new();
        let result = loop {
            match self.run.control.target() {
                Target::Stopped => break Ok(()),
                Target::Paused => {
                    self.run.control.set_state(State::Paused);
                    // Stay in the group while paused, as a paused consumer does.
                    if let Some(c) = self.client.as_mut() {
                        if let Err(e) = self.member.heartbeat_if_due(c) {
                            tracing::debug!("task {}: heartbeat while paused: {e}", self.label());
                        }
                    }
                    self.run.control.sleep(Duration::from_millis(500));
                    continue;
                }
                Target::Started => self.run.control.set_state(State::Running),
            }
            match self.step() {
                Ok(()) => backoff.reset(),
                Err(Failure::Transient(why)) => {
                    self.client = None;
                    backoff.wait(&self.run.control, &self.label(), &why);
                }
                Err(Failure::Fatal(why)) => break Err(why),
            }
        };
        // Flush and commit what was written, then leave, even after a failure.
        if self.client.is_some() || self.positions.values().any(|p| p.next != p.committed) {
            if let Err(Failure::Transient(e) | Failure::Fatal(e)) = self.flush_and_commit() {
                tracing::warn!("task {}: final commit failed: {e}", self.label());
            }
        }
        if let Some(c) = self.client.as_mut() {
            let _ = self.member.leave(c);
        }
        result
    }

    fn step(&mut self) -> Result<(), Failure> {
        if self.client.is_none() {
            self.client = Some(self.run.connect()?);
            self.refreshed = None;
        }
        if self
            .refreshed
            .is_none_or(|t| t.elapsed() >= METADATA_REFRESH)
        {
            self.refresh_subscription()?;
        }
        if self.subscribed.is_empty() {
            self.run.control.sleep(Duration::from_millis(500));
            return Ok(());
        }
        if self.member.needs_join() {
            return self.rejoin();
        }
        let client = self.client.as_mut().expect("connected");
        if self.member.heartbeat_if_due(client)? {
            return Ok(());
        }
        if self.last_commit.elapsed() >= self.run.flush_interval {
            self.flush_and_commit()?;
        }
        if self.positions.is_empty() {
            self.run.control.sleep(Duration::from_millis(200));
            return Ok(());
        }
        let fetch: Vec<FetchPosition> = self
            .positions
            .iter()
            .map(|((topic, partition), p)| FetchPosition {
                topic: topic.clone(),
                partition: *partition,
                offset: p.next,
            })
            .collect();
        let client = self.client.as_mut().expect("connected");
        let results = client.fetch_many(&fetch, FETCH_MAX_WAIT_MS, FETCH_MAX_BYTES)?;
        for (pos, result) in results {
            let key = (pos.topic.clone(), pos.partition);
            let fetched = match result {
                Ok(f) => f,
                Err(e) if e.kafka_code() == Some(ResponseError::OffsetOutOfRange) => {
                    let client = self.client.as_mut().expect("connected");
                    let earliest =
                        client.list_offsets(&pos.topic, pos.partition, EARLIEST_TIMESTAMP)?;
                    tracing::warn!(
                        "task {}: offset {} of {}-{} is out of range; resetting to {earliest}",
                        self.label(),
                        pos.offset,
                        pos.topic,
                        pos.partition
                    );
                    if let Some(p) = self.positions.get_mut(&key) {
                        p.next = earliest;
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let mut records = Vec::with_capacity(fetched.records.len());
            for r in &fetched.records {
                let at = || format!("{}-{} at offset {}", pos.topic, pos.partition, r.offset);
                let (key_schema, key) = self
                    .run
                    .key_converter
                    .to_connect(r.key.as_deref())
                    .map_err(|e| {
                        Failure::Fatal(format!("cannot convert the key of {}: {e}", at()))
                    })?;
                let (value_schema, value) = self
                    .run
                    .value_converter
                    .to_connect(r.value.as_deref())
                    .map_err(|e| {
                        Failure::Fatal(format!("cannot convert the value of {}: {e}", at()))
                    })?;
                records.push(SinkRecord {
                    topic: pos.topic.clone(),
                    partition: pos.partition,
                    offset: r.offset,
                    key_schema,
                    key,
                    value_schema,
                    value,
                });
            }
            self.task.put(&records)?;
            if let Some(p) = self.positions.get_mut(&key) {
                p.next = fetched.next_offset.max(p.next);
            }
        }
        Ok(())
    }

    /// The topics named by `topics` (created if the broker auto-creates, as
    /// a consumer's metadata request does) or matching `topics.regex`.
    fn refresh_subscription(&mut self) -> Result<(), Failure> {
        let client = self.client.as_mut().expect("connected");
        let topics: Vec<String> = match (
            self.run.config.get("topics"),
            self.run.config.get("topics.regex"),
        ) {
            (Some(list), _) if !list.trim().is_empty() => {
                let wanted: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect();
                let md = client.metadata(Some(wanted.clone()))?;
                wanted
                    .into_iter()
                    .filter(|t| {
                        md.topic(t)
                            .is_some_and(|m| m.error.is_none() && !m.partitions.is_empty())
                    })
                    .collect()
            }
            (_, Some(pattern)) => {
                let re = regex::Regex::new(&format!("^(?:{})$", pattern.trim())).map_err(|e| {
                    Failure::Fatal(format!(
                        "topics.regex {pattern} is not a valid regular expression: {e}"
                    ))
                })?;
                let md = client.metadata(None)?;
                md.topics
                    .iter()
                    .filter(|t| !t.is_internal && t.error.is_none() && re.is_match(&t.name))
                    .map(|t| t.name.clone())
                    .collect()
            }
            _ => Vec::new(),
        };
        self.refreshed = Some(Instant::now());
        let mut sorted = topics;
        sorted.sort();
        if sorted != self.subscribed {
            tracing::info!("task {}: subscribed to {:?}", self.label(), sorted);
            self.subscribed = sorted.clone();
            self.member.subscribe(sorted);
        }
        Ok(())
    }

    /// Commits what was written, joins, and positions each assigned
    /// partition: where this task already is, else the group's committed
    /// offset, else the earliest (Connect's `auto.offset.reset`).
    fn rejoin(&mut self) -> Result<(), Failure> {
        if let Err(Failure::Transient(e) | Failure::Fatal(e)) = self.flush_and_commit() {
            tracing::debug!("task {}: commit before rebalance failed: {e}", self.label());
        }
        let client = self.client.as_mut().expect("connected");
        let assignment = self.member.join(client)?;
        let committed = client.offset_fetch(self.member.group_id(), Some(&assignment))?;
        let mut positions = BTreeMap::new();
        for (topic, partition) in assignment {
            let stored = committed
                .iter()
                .find(|c| c.topic == topic && c.partition == partition && c.offset >= 0)
                .map(|c| c.offset);
            let key = (topic, partition);
            let p = match (self.positions.get(&key), stored) {
                (Some(p), _) => *p,
                (None, Some(o)) => Position {
                    next: o,
                    committed: o,
                },
                (None, None) => {
                    let o = client.list_offsets(&key.0, partition, EARLIEST_TIMESTAMP)?;
                    Position {
                        next: o,
                        committed: -1,
                    }
                }
            };
            positions.insert(key, p);
        }
        tracing::info!(
            "task {}: assigned {:?}",
            self.label(),
            positions.keys().collect::<Vec<_>>()
        );
        self.positions = positions;
        Ok(())
    }

    /// Flushes the task (its writes become durable), then commits.
    fn flush_and_commit(&mut self) -> Result<(), Failure> {
        self.last_commit = Instant::now();
        let pending: Vec<(String, i32, i64)> = self
            .positions
            .iter()
            .filter(|(_, p)| p.next != p.committed)
            .map(|((t, part), p)| (t.clone(), *part, p.next))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        self.task.flush()?;
        let Some(client) = self.client.as_mut() else {
            return Err(Failure::Transient("not connected".into()));
        };
        if self.member.generation().generation_id < 0 {
            return Ok(());
        }
        self.member.commit(client, &pending)?;
        for (t, part, offset) in pending {
            if let Some(p) = self.positions.get_mut(&(t, part)) {
                p.committed = offset;
            }
        }
        Ok(())
    }
}
