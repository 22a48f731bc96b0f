//! The metadata plane of this broker, on the controller shard: the quorum
//! node, the applier that turns committed records into catalogue versions
//! and hands each to every shard, and the commit path the controller uses.
//!
//! Every change goes the same way: the controller derives records from the
//! edit, proposes them, and answers once they are committed and applied on
//! every shard. Start-up reads the committed log before any shard starts
//! (`initial_image`), so a shard never serves an older catalogue than the one
//! it had when the broker stopped.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use super::state::local;
use crate::cluster::catalog::{BrokerReg, LEGACY_CATALOG_FILE};
use crate::cluster::controller_rpc::{ControllerReply, ControllerRequest, VoterReport};
use crate::cluster::leadership;
use crate::cluster::producer_ids::{self, BLOCK_SIZE};
use crate::cluster::records::{self, MetadataRecord};
use crate::cluster::Catalog;
use crate::quorum::{self, Committed, CommittedLog, Node, QuorumConfig, QuorumError};
use crate::shard::{self, notify::Notify};
use crate::storage::format;

/// Pause before a forwarded change is sent again to a new quorum leader.
const FORWARD_RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Proposal outcomes kept for callers that have not collected them yet.
const MAX_REMEMBERED_OUTCOMES: usize = 1024;

/// Read the committed metadata log (formatting a new one) and rebuild the
/// image it describes. Runs before the shards start.
pub fn initial_image(
    log_dir: &Path,
    quorum: &crate::config::QuorumSettings,
    node_id: i32,
) -> anyhow::Result<(Catalog, CommittedLog)> {
    let dir = log_dir.join(quorum::METADATA_DIR);
    let voters = quorum.voter_ids(node_id);
    let log = quorum::open_log(&dir, &voters)
        .map_err(|e| anyhow::anyhow!("cannot open the metadata log in {}: {e}", dir.display()))?;
    let mut stored = log.voters.clone();
    stored.sort_unstable();
    if stored != voters {
        anyhow::bail!(
            "the metadata log in {} was formed by the voters {stored:?}, but controller.quorum.voters names {voters:?}; \
             a quorum's voters cannot be changed by editing the config",
            dir.display()
        );
    }
    let mut image = records::decode_image(&log.snapshot_data, log.snapshot_index)
        .map_err(|e| anyhow::anyhow!("metadata snapshot in {}: {e}", dir.display()))?;
    for (index, data) in &log.entries {
        apply_entry(&mut image, *index, data);
    }
    image.version = log.commit;
    Ok((image, log))
}

/// Apply one committed entry; a batch that cannot be applied is skipped the
/// same way on every broker, and said so.
fn apply_entry(image: &mut Catalog, index: u64, data: &[u8]) {
    match records::decode(data).and_then(|r| records::apply(image, &r)) {
        Ok(()) => {}
        Err(e) => tracing::error!(index, error = %e, "metadata log entry not applied"),
    }
    image.version = index;
}

/// Makes an admin change another broker forwarded (the controller's).
pub type ChangeServer = Rc<
    dyn Fn(u64, Vec<u8>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ControllerReply>>>,
>;

pub struct MetadataPlane {
    node: Rc<Node>,
    change_server: RefCell<Option<ChangeServer>>,
    broker_id: i32,
    /// This process's registration (a new incarnation every start).
    registration: BrokerReg,
    heartbeat_interval: Duration,
    session_timeout: Duration,
    /// While this node leads: each broker's session deadline.
    sessions: RefCell<HashMap<i32, Instant>>,
    applied: Cell<u64>,
    /// Apply failures by log index (a shard could not open partitions).
    outcomes: RefCell<BTreeMap<u64, Option<String>>>,
    applied_notify: Notify,
    bytes_since_snapshot: Cell<u64>,
    snapshot_every_bytes: u64,
    commit_timeout: Duration,
    /// This broker is shutting down: no more registrations or heartbeats.
    shutting_down: Cell<bool>,
    /// The start-up bootstrap (cluster id, migration of the legacy
    /// catalogue, adoption of partition dirs) is over, or another node does it.
    bootstrap_done: Cell<bool>,
    /// While this node leads: the broker incarnations that asked for a
    /// controlled shutdown, which a late heartbeat must not unfence.
    shut_down: RefCell<std::collections::HashSet<(i32, uuid::Uuid)>>,
}

thread_local! {
    static PLANE: RefCell<Option<Rc<MetadataPlane>>> = const { RefCell::new(None) };
}

/// The plane of this shard (the controller shard only).
pub fn plane() -> Option<Rc<MetadataPlane>> {
    PLANE.with(|p| p.borrow().clone())
}

/// What the first leader of a new log writes: the cluster id (this data
/// dir's if it has one) and the legacy catalogue, if any.
pub struct Bootstrap {
    pub cluster_id: Option<String>,
}

/// Start the quorum node and the applier on this (the controller) shard.
pub fn start(
    cfg: &crate::config::BrokerConfig,
    log: &CommittedLog,
    bootstrap: Bootstrap,
) -> anyhow::Result<Rc<MetadataPlane>> {
    let q = &cfg.quorum;
    let tick_ms = q.tick_ms();
    let node = Node::start(
        &cfg.log_dir.join(quorum::METADATA_DIR),
        QuorumConfig {
            node_id: cfg.broker_id as u64,
            voters: q.voter_ids(cfg.broker_id),
            tick_ms,
            election_ticks: (q.election_timeout_ms / tick_ms).max(3) as usize,
            heartbeat_ticks: 1,
            listen: q.listen_addr(cfg.broker_id)?,
            peers: q.peer_addrs(cfg.broker_id)?,
            max_frame_bytes: cfg.socket_request_max_bytes,
            request_timeout_ms: q.request_timeout_ms,
        },
        log.commit,
    )?;
    let plane = Rc::new(MetadataPlane {
        node: node.clone(),
        change_server: RefCell::new(None),
        broker_id: cfg.broker_id,
        registration: BrokerReg {
            id: cfg.broker_id,
            host: cfg.advertised_host.clone(),
            port: cfg.advertised_port,
            incarnation: uuid::Uuid::new_v4(),
            fenced: false,
        },
        heartbeat_interval: Duration::from_millis(q.heartbeat_interval_ms),
        session_timeout: Duration::from_millis(q.session_timeout_ms),
        sessions: Default::default(),
        applied: Cell::new(log.commit),
        outcomes: Default::default(),
        applied_notify: Notify::new(),
        bytes_since_snapshot: Cell::new(log.entries.iter().map(|(_, d)| d.len() as u64).sum()),
        snapshot_every_bytes: q.max_bytes_between_snapshots,
        commit_timeout: Duration::from_millis(q.commit_timeout_ms),
        shutting_down: Cell::new(false),
        bootstrap_done: Cell::new(false),
        shut_down: Default::default(),
    });
    PLANE.with(|p| *p.borrow_mut() = Some(plane.clone()));
    let weak = Rc::downgrade(&plane);
    node.set_request_handler(Rc::new(move |from, payload| {
        let weak = weak.clone();
        Box::pin(async move {
            match weak.upgrade() {
                Some(p) => p.serve(from, payload).await.encode(),
                None => ControllerReply::Failed {
                    code: ResponseError::NotController.code(),
                    message: "the controller is stopping".into(),
                }
                .encode(),
            }
        })
    }));
    shard::spawn(node.run()).detach();
    shard::spawn(plane.clone().membership_loop()).detach();
    shard::spawn(plane.clone().session_loop()).detach();
    shard::spawn(plane.clone().apply_loop()).detach();
    shard::spawn(bootstrap_when_leading(
        plane.clone(),
        bootstrap,
        cfg.log_dir.clone(),
    ))
    .detach();
    Ok(plane)
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("{0}")]
    Quorum(#[from] QuorumError),
    #[error("the metadata change was not committed within {0} ms")]
    TimedOut(u64),
    /// The leader's metadata moved on to this version: edit again.
    #[error("the metadata changed meanwhile (now at version {0})")]
    Stale(u64),
    /// The leader refused it, with a Kafka error code.
    #[error("{1}")]
    Remote(i16, String),
}

/// How often a broker retries registering while no leader takes it.
const REGISTER_RETRY_MS: u64 = 200;

impl MetadataPlane {
    pub fn node(&self) -> &Rc<Node> {
        &self.node
    }

    /// Who makes the admin changes other brokers forward here.
    pub fn set_change_server(&self, f: ChangeServer) {
        *self.change_server.borrow_mut() = Some(f);
    }

    pub fn is_leader(&self) -> bool {
        self.node.is_leader()
    }

    /// Commit `records` (this node leads) and wait until every shard has
    /// applied them: their index, and a shard's failure to act on them.
    pub async fn commit(
        &self,
        recs: Vec<MetadataRecord>,
    ) -> Result<(u64, Option<String>), CommitError> {
        // Records are made against this broker's image: they must fit it as
        // it is now (a new leader first applies what earlier leaders
        // committed), or the edit is made again.
        self.catch_up().await?;
        let image = local().catalog();
        if let Err(e) = records::apply(&mut (*image).clone(), &recs) {
            tracing::debug!(error = %e, "metadata edit made against an older image");
            return Err(CommitError::Stale(image.version));
        }
        let data = records::encode(&recs);
        let timeout_ms = self.commit_timeout.as_millis() as u64;
        let index = shard::timeout(self.commit_timeout, self.node.propose(data))
            .await
            .ok_or(CommitError::TimedOut(timeout_ms))??;
        self.wait_applied(index).await?;
        Ok((index, self.outcomes.borrow_mut().remove(&index).flatten()))
    }

    /// Wait (bounded) until this broker has applied all the log it knows
    /// to be committed.
    pub async fn catch_up(&self) -> Result<(), CommitError> {
        self.wait_applied(self.node.commit_index()).await
    }

    /// Wait (bounded) until this broker has applied the log up to `index`.
    pub async fn wait_applied(&self, index: u64) -> Result<(), CommitError> {
        let timeout_ms = self.commit_timeout.as_millis() as u64;
        let wait = async {
            loop {
                let applied = self.applied_notify.notified();
                if self.applied.get() >= index {
                    return;
                }
                applied.await;
            }
        };
        shard::timeout(self.commit_timeout, wait)
            .await
            .ok_or(CommitError::TimedOut(timeout_ms))
    }

    /// Have the leader make an admin change (encoded by the controller)
    /// and wait until this broker has applied it: the version that holds
    /// it and each item's error, if any.
    pub async fn forward_change(
        &self,
        payload: Vec<u8>,
    ) -> Result<(u64, Vec<Option<(i16, String)>>), CommitError> {
        // While no leader is known, or the one asked says it no longer
        // leads or is busy, nothing was done: ask again (as Kafka's
        // forwarding does) until the commit timeout, rather than fail a
        // request over an election.
        let deadline = Instant::now() + self.commit_timeout;
        let reply = loop {
            let req = ControllerRequest::Change {
                payload: payload.clone(),
            };
            match self.ask_leader(req).await {
                Err(CommitError::Quorum(QuorumError::NotLeader { .. } | QuorumError::Busy))
                    if Instant::now() < deadline =>
                {
                    shard::sleep(FORWARD_RETRY_BACKOFF).await;
                }
                other => break other?,
            }
        };
        match reply {
            ControllerReply::Applied { index, errors } => {
                self.wait_applied(index).await?;
                Ok((index, errors))
            }
            ControllerReply::Failed { code, message } => Err(CommitError::Remote(code, message)),
            other => Err(CommitError::Remote(
                ResponseError::UnknownServerError.code(),
                format!("unexpected controller reply {other:?}"),
            )),
        }
    }

    async fn ask_leader(&self, req: ControllerRequest) -> Result<ControllerReply, CommitError> {
        let reply = self.node.call_leader(req.encode()).await?;
        ControllerReply::decode(&reply).map_err(|e| {
            CommitError::Remote(ResponseError::UnknownServerError.code(), e.to_string())
        })
    }

    /// Change the image with `f` and commit the difference (this node leads).
    async fn change_image(
        &self,
        f: impl FnOnce(&mut Catalog),
    ) -> Result<(u64, Option<String>), CommitError> {
        let state = local();
        let _guard = state.controller_lock.lock().await;
        self.catch_up().await?;
        let current = state.catalog();
        let mut target = (*current).clone();
        f(&mut target);
        let recs = records::diff(&current, &target);
        if recs.is_empty() {
            return Ok((current.version, None));
        }
        self.commit(recs).await
    }

    /// A request that reached this node as the quorum leader.
    async fn serve(&self, from: u64, payload: Vec<u8>) -> ControllerReply {
        let failed = |e: CommitError| {
            let code = match &e {
                CommitError::TimedOut(_) => ResponseError::RequestTimedOut.code(),
                CommitError::Quorum(QuorumError::NotLeader { .. }) => {
                    ResponseError::NotController.code()
                }
                CommitError::Remote(code, _) => *code,
                _ => ResponseError::KafkaStorageError.code(),
            };
            ControllerReply::Failed {
                code,
                message: e.to_string(),
            }
        };
        let Ok(req) = ControllerRequest::decode(&payload) else {
            tracing::warn!(from, "malformed controller request");
            return ControllerReply::Failed {
                code: ResponseError::InvalidRequest.code(),
                message: "malformed controller request".into(),
            };
        };
        match req {
            ControllerRequest::Change { payload } => {
                if !self.node.is_leader() {
                    return ControllerReply::Failed {
                        code: ResponseError::NotController.code(),
                        message: "this node no longer leads the quorum".into(),
                    };
                }
                let serve = self.change_server.borrow().clone();
                match serve {
                    Some(f) => f(from, payload).await,
                    None => ControllerReply::Failed {
                        code: ResponseError::NotController.code(),
                        message: "the controller is not started".into(),
                    },
                }
            }
            ControllerRequest::Register {
                id,
                host,
                port,
                incarnation,
            } => {
                if self.shut_down.borrow().contains(&(id, incarnation)) {
                    // Sent before its controlled shutdown: it stays fenced.
                    return ControllerReply::Ok;
                }
                self.sessions
                    .borrow_mut()
                    .insert(id, Instant::now() + self.session_timeout);
                let reg = BrokerReg {
                    id,
                    host,
                    port,
                    incarnation,
                    fenced: false,
                };
                match self
                    .change_image(|img| leadership::register(img, reg))
                    .await
                {
                    Ok(_) => ControllerReply::Ok,
                    Err(e) => failed(e),
                }
            }
            ControllerRequest::DescribeQuorum => self.local_quorum_report(),
            ControllerRequest::ControlledShutdown { id, incarnation } => {
                let known = local().catalog().brokers.get(&id).cloned();
                if known.is_none_or(|b| b.incarnation != incarnation) {
                    return ControllerReply::UnknownBroker;
                }
                self.shut_down.borrow_mut().insert((id, incarnation));
                tracing::info!(
                    broker = id,
                    "controlled shutdown: the broker's partitions move to other in-sync replicas"
                );
                match self.change_image(|img| leadership::fence(img, id)).await {
                    Ok(_) => ControllerReply::Ok,
                    Err(e) => failed(e),
                }
            }
            ControllerRequest::AllocateProducerIds => {
                let start = Cell::new(0);
                let allocated = self
                    .change_image(|img| {
                        start.set(img.next_producer_id);
                        img.next_producer_id += BLOCK_SIZE;
                    })
                    .await;
                match allocated {
                    Ok(_) => ControllerReply::ProducerIds { start: start.get() },
                    Err(e) => failed(e),
                }
            }
            ControllerRequest::Heartbeat { id, incarnation } => {
                let known = local().catalog().brokers.get(&id).cloned();
                let Some(b) = known.filter(|b| b.incarnation == incarnation) else {
                    return ControllerReply::UnknownBroker;
                };
                self.sessions
                    .borrow_mut()
                    .insert(id, Instant::now() + self.session_timeout);
                if b.fenced && self.shut_down.borrow().contains(&(id, incarnation)) {
                    // A heartbeat sent before its controlled shutdown.
                    return ControllerReply::Ok;
                }
                if b.fenced {
                    tracing::info!(broker = id, "broker is back: unfenced");
                    if let Err(e) = self.change_image(|img| leadership::unfence(img, id)).await {
                        return failed(e);
                    }
                }
                ControllerReply::Ok
            }
        }
    }

    /// The quorum as this node (the leader) sees it.
    fn local_quorum_report(&self) -> ControllerReply {
        match self.node.status() {
            Some(st) => ControllerReply::Quorum {
                leader: st.leader as i32,
                epoch: st.term as i32,
                high_watermark: st.high_watermark as i64,
                voters: st
                    .voters
                    .iter()
                    .map(|v| VoterReport {
                        id: v.id as i32,
                        log_end: v.log_end as i64,
                        last_fetch_ms: v.last_fetch_ms.unwrap_or(-1),
                        last_caught_up_ms: v.last_caught_up_ms.unwrap_or(-1),
                    })
                    .collect(),
            },
            None => ControllerReply::Failed {
                code: ResponseError::NotLeaderOrFollower.code(),
                message: "this node does not lead the quorum".into(),
            },
        }
    }

    /// A producer id never handed out before by any broker: from this
    /// broker's block, or a new block the leader allocates.
    pub async fn next_producer_id(&self) -> Result<i64, CommitError> {
        let state = local();
        loop {
            if let Some(id) = state.producer_ids.borrow_mut().take() {
                return Ok(id);
            }
            match self
                .ask_leader(ControllerRequest::AllocateProducerIds)
                .await?
            {
                ControllerReply::ProducerIds { start } => {
                    tracing::debug!(start, "took a block of producer ids");
                    state.producer_ids.borrow_mut().install(start);
                }
                ControllerReply::Failed { code, message } => {
                    return Err(CommitError::Remote(code, message))
                }
                other => {
                    return Err(CommitError::Remote(
                        ResponseError::UnknownServerError.code(),
                        format!("unexpected controller reply {other:?}"),
                    ))
                }
            }
        }
    }

    /// DescribeQuorum: answered by the leader, asked for it if need be.
    pub async fn describe_quorum(&self) -> ControllerReply {
        if self.node.is_leader() {
            return self.local_quorum_report();
        }
        match self.ask_leader(ControllerRequest::DescribeQuorum).await {
            Ok(r) => r,
            Err(e) => ControllerReply::Failed {
                code: ResponseError::NotLeaderOrFollower.code(),
                message: e.to_string(),
            },
        }
    }

    /// This broker's side of membership: register with the leader, then
    /// heartbeat; register again whenever the leader does not know us.
    async fn membership_loop(self: Rc<Self>) {
        loop {
            if self.shutting_down.get() {
                return;
            }
            let reg = ControllerRequest::Register {
                id: self.registration.id,
                host: self.registration.host.clone(),
                port: self.registration.port,
                incarnation: self.registration.incarnation,
            };
            match self.ask_leader(reg).await {
                Ok(ControllerReply::Ok) => {}
                Ok(other) => {
                    tracing::debug!(reply = ?other, "registration not taken yet");
                    shard::sleep(Duration::from_millis(REGISTER_RETRY_MS)).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "registration not taken yet");
                    shard::sleep(Duration::from_millis(REGISTER_RETRY_MS)).await;
                    continue;
                }
            }
            loop {
                shard::sleep(self.heartbeat_interval).await;
                if self.shutting_down.get() {
                    return;
                }
                let hb = ControllerRequest::Heartbeat {
                    id: self.broker_id,
                    incarnation: self.registration.incarnation,
                };
                match self.ask_leader(hb).await {
                    Ok(ControllerReply::UnknownBroker) => break,
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "heartbeat not answered"),
                }
            }
        }
    }

    /// Why the metadata log's storage failed, if it did.
    pub fn storage_failure(&self) -> Option<String> {
        self.node.storage_failure()
    }

    /// SIGTERM: ask the quorum leader to move this broker's leadership to
    /// other in-sync replicas and take it out of the ISRs (fence it), and
    /// wait until this broker's own metadata says so, at most `timeout`.
    /// Skipped when no other broker is live to take over.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        self.shutting_down.set(true);
        let me = self.broker_id;
        let others_live = local().catalog().live_brokers().iter().any(|b| *b != me);
        if !others_live {
            return;
        }
        let started = Instant::now();
        let deadline = started + timeout;
        tracing::info!(
            "controlled shutdown: asking the controller to move leadership off this broker"
        );
        loop {
            let req = ControllerRequest::ControlledShutdown {
                id: me,
                incarnation: self.registration.incarnation,
            };
            match self.ask_leader(req).await {
                Ok(ControllerReply::Ok) if self.node.storage_failure().is_some() => {
                    // Committed by the controller; this node's image no
                    // longer follows the log, so the change cannot be
                    // watched arriving here.
                    tracing::info!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "controlled shutdown: the controller moved leadership off this broker"
                    );
                    return;
                }
                Ok(ControllerReply::Ok) => break,
                Ok(other) if Instant::now() >= deadline => {
                    tracing::warn!(reply = ?other, "controlled shutdown refused; stopping anyway");
                    return;
                }
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(error = %e, "controlled shutdown not answered; stopping anyway");
                    return;
                }
                _ => shard::sleep(FORWARD_RETRY_BACKOFF).await,
            }
        }
        while Instant::now() < deadline {
            let image = local().catalog();
            if image.brokers.get(&me).is_none_or(|b| b.fenced) {
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "controlled shutdown: no partition is led here any more"
                );
                return;
            }
            shard::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!("controlled shutdown: the change did not arrive in time; stopping anyway");
    }

    /// While this node leads: fence brokers whose session ran out.
    async fn session_loop(self: Rc<Self>) {
        let mut leading = false;
        let mut next_rebalance = Instant::now()
            + Duration::from_secs(
                local()
                    .cfg
                    .replication
                    .leader_imbalance_check_interval_seconds,
            );
        loop {
            shard::sleep(self.heartbeat_interval / 2).await;
            if !self.node.is_leader() {
                leading = false;
                self.sessions.borrow_mut().clear();
                continue;
            }
            let now = Instant::now();
            let image = local().catalog();
            if !leading {
                // A new leader knows no heartbeat yet: everyone gets a session.
                leading = true;
                let mut s = self.sessions.borrow_mut();
                for id in image.brokers.keys() {
                    s.insert(*id, now + self.session_timeout);
                }
            }
            let expired: Vec<i32> = image
                .live_brokers()
                .into_iter()
                .filter(|id| {
                    *self
                        .sessions
                        .borrow_mut()
                        .entry(*id)
                        .or_insert(now + self.session_timeout)
                        < now
                })
                .collect();
            for id in expired {
                tracing::warn!(
                    broker = id,
                    session_timeout_ms = self.session_timeout.as_millis() as u64,
                    "broker missed its session: fenced, its partitions get new leaders"
                );
                if let Err(e) = self.change_image(|img| leadership::fence(img, id)).await {
                    tracing::error!(broker = id, error = %e, "cannot fence broker");
                }
            }
            self.unclean_elections().await;
            let rebalance = &local().cfg.replication;
            if rebalance.auto_leader_rebalance_enable && now >= next_rebalance {
                next_rebalance =
                    now + Duration::from_secs(rebalance.leader_imbalance_check_interval_seconds);
                self.preferred_elections().await;
            }
        }
    }

    /// Offline partitions of topics with `unclean.leader.election.enable`
    /// get any live replica as leader (looked at every session tick, so a
    /// config change or a returning out-of-sync replica is acted on soon).
    async fn unclean_elections(&self) {
        let default = local()
            .effective_cfg()
            .replication
            .unclean_leader_election_enable;
        let enabled = |t: &crate::cluster::TopicMeta| {
            t.configs
                .get("unclean.leader.election.enable")
                .map_or(default, |v| v.eq_ignore_ascii_case("true"))
        };
        if leadership::unclean_candidates(&local().catalog(), enabled).is_empty() {
            return;
        }
        let elected = RefCell::new(Vec::new());
        let result = self
            .change_image(|img| {
                // Again on the newest image: its configs decide.
                for (topic, partition) in &leadership::unclean_candidates(img, enabled) {
                    if let Ok(e) =
                        leadership::elect(img, topic, *partition, leadership::Election::Unclean)
                    {
                        elected.borrow_mut().push((topic.clone(), *partition, e));
                    }
                }
            })
            .await;
        match result {
            Ok(_) => {
                for (topic, partition, e) in elected.into_inner() {
                    if e.unclean {
                        tracing::warn!(%topic, partition, leader = e.leader,
                            "unclean leader election: no in-sync replica was alive, so an out-of-sync one leads; records only the old in-sync replicas held are lost (the old replicas log how many when they truncate)");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "unclean leader election not committed"),
        }
    }

    /// `auto.leader.rebalance.enable`: every partition whose preferred
    /// replica is live and in sync but does not lead gets it back.
    async fn preferred_elections(&self) {
        let wanted = leadership::imbalanced(&local().catalog());
        if wanted.is_empty() {
            return;
        }
        let moved = Cell::new(0usize);
        let result = self
            .change_image(|img| {
                for (topic, partition) in &wanted {
                    if leadership::elect(img, topic, *partition, leadership::Election::Preferred)
                        .is_ok()
                    {
                        moved.set(moved.get() + 1);
                    }
                }
            })
            .await;
        match result {
            Ok(_) if moved.get() == 0 => {}
            Ok(_) => tracing::info!(
                partitions = moved.get(),
                "leadership moved back to preferred replicas (auto.leader.rebalance.enable)"
            ),
            Err(e) => tracing::error!(error = %e, "preferred leader election not committed"),
        }
    }

    /// Whether start-up's bootstrap is over (the legacy catalogue migrated
    /// and removed), so clients may be served.
    pub fn bootstrap_done(&self) -> bool {
        self.bootstrap_done.get()
    }

    /// Whether this broker is registered (this incarnation) and unfenced.
    pub fn registered(&self, image: &Catalog) -> bool {
        image
            .brokers
            .get(&self.broker_id)
            .is_some_and(|b| b.incarnation == self.registration.incarnation && !b.fenced)
    }

    async fn apply_loop(self: Rc<Self>) {
        loop {
            let c = self.node.next_committed().await;
            let state = local();
            let mut next = (*state.catalog()).clone();
            let index = match c {
                Committed::Entry { index, data } if data.is_empty() => {
                    self.applied.set(index);
                    self.applied_notify.notify_all();
                    continue;
                }
                Committed::Entry { index, data } => {
                    apply_entry(&mut next, index, &data);
                    self.bytes_since_snapshot
                        .set(self.bytes_since_snapshot.get() + data.len() as u64);
                    index
                }
                Committed::Snapshot { index, data } => {
                    match records::decode_image(&data, index) {
                        Ok(image) => next = image,
                        Err(e) => tracing::error!(index, error = %e,
                            "the leader's metadata snapshot cannot be read; keeping the image"),
                    }
                    self.bytes_since_snapshot.set(0);
                    index
                }
            };
            next.version = index;
            let outcome = publish(next.clone()).await;
            self.applied.set(index);
            {
                let mut outcomes = self.outcomes.borrow_mut();
                outcomes.insert(index, outcome);
                while outcomes.len() > MAX_REMEMBERED_OUTCOMES {
                    outcomes.pop_first();
                }
            }
            self.applied_notify.notify_all();
            if self.bytes_since_snapshot.get() >= self.snapshot_every_bytes {
                match self.node.compact(index, records::encode_image(&next)) {
                    Ok(()) => {
                        tracing::info!(
                            index,
                            "metadata snapshot written; the log before it is dropped"
                        );
                        self.bytes_since_snapshot.set(0);
                    }
                    Err(e) => {
                        tracing::error!(index, error = %e, "cannot write a metadata snapshot")
                    }
                }
            }
        }
    }
}

/// Hand a catalogue version to every shard; the first shard's failure, if any.
async fn publish(next: Catalog) -> Option<String> {
    let mut apply_error = None;
    for s in 0..shard::count() {
        let c = next.clone();
        let r = shard::submit_to(s, move || async move {
            local()
                .apply_catalog(Rc::new(c))
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        if let Ok(Err(e)) | Err(e) = r.map_err(|e| e.to_string()) {
            tracing::error!(shard = s, error = %e, "shard failed to apply metadata version {}", next.version);
            apply_error.get_or_insert(e);
        }
    }
    apply_error
}

/// Once this node leads: give a new cluster its id (and migrate the legacy
/// `cluster.metadata` into the log), and adopt partition directories the
/// metadata does not know (data on disk is never hidden by lost metadata).
async fn bootstrap_when_leading(
    plane: Rc<MetadataPlane>,
    b: Bootstrap,
    log_dir: std::path::PathBuf,
) {
    const POLL_MS: u64 = 20;
    loop {
        match plane.node.leader() {
            Some(l) if l == plane.node.node_id() && plane.node.is_leader() => break,
            // Another node leads: it does this.
            Some(_) => {
                plane.bootstrap_done.set(true);
                return;
            }
            None => shard::sleep(Duration::from_millis(POLL_MS)).await,
        }
    }
    // Let the new leader apply what it has committed before looking.
    while plane.applied.get() < plane.node.commit_index() {
        shard::sleep(Duration::from_millis(POLL_MS)).await;
    }
    // Retried until it commits: the broker serves no client before the
    // cluster has an id.
    while !bootstrap_once(&plane, &b, &log_dir).await {
        shard::sleep(Duration::from_millis(BOOTSTRAP_RETRY_MS)).await;
    }
    plane.bootstrap_done.set(true);
}

const BOOTSTRAP_RETRY_MS: u64 = 1_000;

async fn bootstrap_once(plane: &MetadataPlane, b: &Bootstrap, log_dir: &Path) -> bool {
    let state = local();
    let _guard = state.controller_lock.lock().await;
    let current = state.catalog();
    let mut target = (*current).clone();
    let legacy_path = log_dir.join(LEGACY_CATALOG_FILE);
    // Already in the log (a stop came between commit and removal).
    let mut remove_legacy = target.cluster_id.is_some();
    if target.cluster_id.is_none() {
        target.cluster_id = Some(
            b.cluster_id
                .clone()
                .unwrap_or_else(|| format::base64_url(uuid::Uuid::new_v4().as_bytes())),
        );
        match Catalog::load_legacy(log_dir) {
            Ok(Some(legacy)) => {
                tracing::info!(
                    topics = legacy.topics.len(),
                    "migrating {} into the metadata log",
                    legacy_path.display()
                );
                target.topics = legacy.topics;
                target.broker_configs = legacy.broker_configs;
                target.group_configs = legacy.group_configs;
                remove_legacy = true;
            }
            Ok(None) => {}
            // Kept for a person to look at; the data is adopted below.
            Err(e) => tracing::error!(error = %e,
                "the legacy catalogue cannot be read; its topics are adopted from their directories"),
        }
    }
    if current.cluster_id.is_none() {
        // A new cluster or a migrated broker: what is on disk is its data.
        // (Later, a directory the metadata does not name is a deleted
        // topic's or another broker's: never adopted.)
        match target.adopt_partition_dirs(log_dir) {
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot list the log dir for partitions to adopt")
            }
        }
        target.place_unplaced_on(plane.broker_id);
        // Ids go on past those earlier sluice handed out from its file.
        match producer_ids::legacy_next_id(log_dir) {
            Some(next) => target.next_producer_id = target.next_producer_id.max(next),
            None => {
                tracing::error!("the producer-id-block file is unreadable; not starting the cluster over ids it may have handed out");
                return false;
            }
        }
    }
    let recs = records::diff(&current, &target);
    if !recs.is_empty() {
        match plane.commit(recs).await {
            Ok((_, None)) => {}
            Ok((_, Some(e))) => {
                tracing::error!(error = %e, "bootstrap metadata committed but not applied everywhere")
            }
            Err(e) => {
                tracing::error!(error = %e, "bootstrap metadata not committed; retrying");
                return false;
            }
        }
    }
    if remove_legacy && legacy_path.exists() {
        match std::fs::remove_file(&legacy_path) {
            Ok(()) => tracing::info!("{} migrated and removed", legacy_path.display()),
            Err(e) => tracing::warn!(error = %e, "cannot remove {}", legacy_path.display()),
        }
    }
    true
}
