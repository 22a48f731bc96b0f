//! The raft-rs node of this broker, driven from one shard: ticks on a timer,
//! `Ready`s handled as raft-rs asks (persist entries and hard state, then
//! hand committed entries on), proposals answered once committed.
//!
//! What the entries mean is not known here: committed entries are queued as
//! bytes for the broker's metadata applier (`next_committed`), which tells the
//! node when it has built a snapshot (`compact`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use raft::prelude::{ConfState, Entry, EntryType, Message, Snapshot};
use raft::{RawNode, SnapshotStatus, StateRole, Storage};

use super::transport::{self, Frame, Peer, Sent};
use super::DiskStorage;
use crate::shard::net::{Listener, Stream};
use crate::shard::{self, notify::Notify};

/// Serves controller requests that reach the leader (the broker's).
pub type RequestHandler = Rc<dyn Fn(u64, Vec<u8>) -> Pin<Box<dyn Future<Output = Vec<u8>>>>>;

/// Reply status bytes (the first byte of a REPLY payload).
const REPLY_OK: u8 = 0;
const REPLY_NOT_LEADER: u8 = 1;
const REPLY_BUSY: u8 = 2;

/// Controller requests one node serves at once; more are answered busy.
pub const MAX_INFLIGHT_REQUESTS: usize = 64;

#[derive(Clone, Debug)]
pub struct QuorumConfig {
    pub node_id: u64,
    /// The voters of a new quorum (an existing log keeps its own).
    pub voters: Vec<u64>,
    /// One raft tick; elections and heartbeats count in ticks.
    pub tick_ms: u64,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// This node's controller listener (None: a quorum of one needs none).
    pub listen: Option<SocketAddr>,
    /// The other voters' controller listeners.
    pub peers: Vec<(u64, SocketAddr)>,
    /// The largest controller frame read (`socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// How long a request to the leader may wait for its reply.
    pub request_timeout_ms: u64,
}

/// One voter as the leader sees it (Kafka's DescribeQuorum ReplicaState).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterState {
    pub id: u64,
    /// The last log index it is known to hold.
    pub log_end: u64,
    /// When it was last heard from / last held the leader's whole log, in
    /// ms since the epoch (None: never while this node led).
    pub last_fetch_ms: Option<i64>,
    pub last_caught_up_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStatus {
    pub leader: u64,
    pub term: u64,
    pub high_watermark: u64,
    pub voters: Vec<VoterState>,
}

#[derive(Debug)]
pub enum Committed {
    /// A committed entry; empty data (a leader's no-op) only moves the
    /// applied index.
    Entry { index: u64, data: Vec<u8> },
    /// The leader's snapshot replaced our log: rebuild the image from it.
    Snapshot { index: u64, data: Vec<u8> },
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("this node is not the quorum leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("metadata log storage failed: {0}")]
    Storage(String),
    #[error("the quorum leader did not answer within {0} ms")]
    TimedOut(u64),
    #[error("the quorum leader is busy")]
    Busy,
}

/// What the metadata log holds committed, read before the node starts.
#[derive(Debug, Default)]
pub struct CommittedLog {
    pub snapshot_index: u64,
    pub snapshot_data: Vec<u8>,
    /// Committed entries after the snapshot that carry data, in order.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// The last committed index: the node starts applied up to here.
    pub commit: u64,
    pub voters: Vec<u64>,
}

/// Open the log in `dir` (formatting a new one for `voters`: a snapshot at
/// index 1 naming them, which every voter of a new quorum writes alike) and
/// read what it holds committed.
pub fn open_log(dir: &Path, voters: &[u64]) -> io::Result<CommittedLog> {
    let storage = DiskStorage::open(dir)?;
    let state = storage
        .initial_state()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let snapshot = storage
        .snapshot(0, 0)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let fresh = snapshot.get_metadata().index == 0
        && storage.last_index().unwrap_or(0) == 0
        && state.hard_state.term == 0
        && state.conf_state.voters.is_empty();
    if fresh {
        let mut s = Snapshot::default();
        s.mut_metadata().index = 1;
        s.mut_metadata().term = 1;
        s.mut_metadata()
            .set_conf_state(ConfState::from((voters.to_vec(), vec![])));
        storage.apply_snapshot(s)?;
        tracing::info!(dir = %dir.display(), ?voters, "formatted a new metadata log");
        return open_log(dir, voters);
    }
    let snap_index = snapshot.get_metadata().index;
    let commit = state.hard_state.commit.max(snap_index);
    let entries = if commit > snap_index {
        storage
            .entries(
                snap_index + 1,
                commit + 1,
                None,
                raft::GetEntriesContext::empty(false),
            )
            .map_err(|e| io::Error::other(e.to_string()))?
    } else {
        Vec::new()
    };
    Ok(CommittedLog {
        snapshot_index: snap_index,
        snapshot_data: snapshot.data.to_vec(),
        entries: entries
            .into_iter()
            .filter(|e| e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty())
            .map(|e| (e.index, e.data.to_vec()))
            .collect(),
        commit,
        voters: state.conf_state.voters,
    })
}

pub struct Node {
    raw: RefCell<RawNode<DiskStorage>>,
    storage: DiskStorage,
    cfg: QuorumConfig,
    committed: RefCell<VecDeque<Committed>>,
    committed_ready: Notify,
    /// Pokes the driver: a proposal or a message to step.
    wake: Notify,
    next_proposal: Cell<u64>,
    /// Proposals of this node not yet decided (None) or decided.
    proposals: RefCell<BTreeMap<u64, Option<Result<u64, QuorumError>>>>,
    decided: Notify,
    /// Set when the storage failed: the node stops taking part.
    failed: RefCell<Option<String>>,
    role: Cell<StateRole>,
    leader: Cell<u64>,
    /// After a storage failure: the lowest term whose leader it follows.
    failed_term: Cell<u64>,
    peers: HashMap<u64, Rc<Peer>>,
    /// The cluster this node belongs to, once known: peers of another are
    /// refused.
    cluster_id: RefCell<Option<String>>,
    handler: RefCell<Option<RequestHandler>>,
    next_call: Cell<u64>,
    calls: RefCell<HashMap<u64, Option<Vec<u8>>>>,
    replies: Notify,
    inflight_requests: Cell<usize>,
    /// Per peer: when a raft message last came from it, and when it last
    /// held everything this (leading) node had.
    heard: RefCell<HashMap<u64, (Instant, Option<Instant>)>>,
}

impl Node {
    /// Start the node on the log in `dir`, applied up to `applied` (what
    /// `open_log` returned as committed). Call `run` on a task next.
    pub fn start(dir: &Path, cfg: QuorumConfig, applied: u64) -> io::Result<Rc<Node>> {
        let storage = DiskStorage::open(dir)?;
        let raft_cfg = raft::Config {
            id: cfg.node_id,
            election_tick: cfg.election_ticks,
            heartbeat_tick: cfg.heartbeat_ticks,
            applied,
            check_quorum: true,
            pre_vote: true,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        raft_cfg
            .validate()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut raw = RawNode::new(&raft_cfg, storage.clone(), &logger)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let voters = raw
            .raft
            .prs()
            .conf()
            .voters()
            .ids()
            .iter()
            .collect::<Vec<_>>();
        if voters == [cfg.node_id] {
            // Alone: no one to wait for before leading.
            raw.campaign()
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(Rc::new(Node {
            raw: RefCell::new(raw),
            storage,
            committed: Default::default(),
            committed_ready: Notify::new(),
            wake: Notify::new(),
            next_proposal: Cell::new(1),
            proposals: Default::default(),
            decided: Notify::new(),
            failed: RefCell::new(None),
            role: Cell::new(StateRole::Follower),
            leader: Cell::new(raft::INVALID_ID),
            failed_term: Cell::new(0),
            peers: cfg
                .peers
                .iter()
                .map(|(id, addr)| (*id, Peer::new(*id, *addr)))
                .collect(),
            cfg,
            cluster_id: RefCell::new(None),
            handler: RefCell::new(None),
            next_call: Cell::new(1),
            calls: Default::default(),
            replies: Notify::new(),
            inflight_requests: Cell::new(0),
            heard: Default::default(),
        }))
    }

    /// The quorum as this node sees it, if it leads (followers' views of
    /// the others are stale).
    pub fn status(&self) -> Option<QuorumStatus> {
        let raw = self.raw.borrow();
        if raw.raft.state != StateRole::Leader {
            return None;
        }
        let now = Instant::now();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let wall = |t: Instant| now_ms - now.duration_since(t).as_millis() as i64;
        let heard = self.heard.borrow();
        let mut voters: Vec<VoterState> = self
            .voters()
            .into_iter()
            .map(|id| {
                if id == self.cfg.node_id {
                    return VoterState {
                        id,
                        log_end: raw.raft.raft_log.last_index(),
                        last_fetch_ms: Some(now_ms),
                        last_caught_up_ms: Some(now_ms),
                    };
                }
                let h = heard.get(&id);
                VoterState {
                    id,
                    log_end: raw.raft.prs().get(id).map_or(0, |p| p.matched),
                    last_fetch_ms: h.map(|(t, _)| wall(*t)),
                    last_caught_up_ms: h.and_then(|(_, c)| c.map(wall)),
                }
            })
            .collect();
        voters.sort_by_key(|v| v.id);
        Some(QuorumStatus {
            leader: self.cfg.node_id,
            term: raw.raft.term,
            high_watermark: raw.raft.raft_log.committed,
            voters,
        })
    }

    /// Serve controller requests with `h` while this node leads.
    pub fn set_request_handler(&self, h: RequestHandler) {
        *self.handler.borrow_mut() = Some(h);
    }

    pub fn set_cluster_id(&self, id: &str) {
        *self.cluster_id.borrow_mut() = Some(id.to_string());
    }

    /// Voters this node has a live connection to (itself included).
    pub fn connected_voters(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .peers
            .values()
            .filter(|p| p.connected.get())
            .map(|p| p.id)
            .chain([self.cfg.node_id])
            .collect();
        v.sort_unstable();
        v
    }

    pub fn node_id(&self) -> u64 {
        self.cfg.node_id
    }

    pub fn is_leader(&self) -> bool {
        self.role.get() == StateRole::Leader
    }

    pub fn leader(&self) -> Option<u64> {
        Some(self.leader.get()).filter(|l| *l != raft::INVALID_ID)
    }

    pub fn term(&self) -> u64 {
        self.raw.borrow().raft.term
    }

    pub fn commit_index(&self) -> u64 {
        self.raw.borrow().raft.raft_log.committed
    }

    pub fn voters(&self) -> Vec<u64> {
        let raw = self.raw.borrow();
        let mut v: Vec<u64> = raw.raft.prs().conf().voters().ids().iter().collect();
        v.sort_unstable();
        v
    }

    /// Drive the node until dropped: tick, handle `Ready`s, and carry
    /// messages to and from the other voters.
    pub async fn run(self: Rc<Self>) {
        let mut transport = Vec::new();
        for peer in self.peers.values() {
            let (me, me2) = (Rc::downgrade(&self), Rc::downgrade(&self));
            transport.push(shard::spawn(peer.clone().run(
                move || {
                    me.upgrade()
                        .map_or(Frame::Raft(Message::default()), |n| n.hello())
                },
                move |peer, snapshot, sent| {
                    if let Some(n) = me2.upgrade() {
                        n.on_sent(peer, snapshot, sent)
                    }
                },
            )));
        }
        if let Some(addr) = self.cfg.listen.filter(|_| !self.peers.is_empty()) {
            match Listener::bind_reuseport(addr, 64) {
                Ok(l) => transport.push(shard::spawn(accept_loop(Rc::downgrade(&self), l))),
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot listen for the other controllers");
                    *self.failed.borrow_mut() = Some(e.to_string());
                    return;
                }
            }
        }
        let _transport = transport;
        let tick = Duration::from_millis(self.cfg.tick_ms);
        let mut next_tick = Instant::now() + tick;
        loop {
            // Before waiting: a campaign at start or a proposal made before
            // this task ran has a Ready already.
            if let Err(e) = self.handle_ready() {
                tracing::error!(error = %e,
                    "metadata log storage failed; this node no longer takes part in the quorum");
                *self.failed.borrow_mut() = Some(e.to_string());
                self.fail_pending(|| QuorumError::Storage(e.to_string()));
                // A leader that cannot persist leads no more: the others
                // elect one once its heartbeats stop.
                // A leader that steps down cannot hear another's append in
                // its own term; a candidate may still learn this term's.
                let term = self.raw.borrow().raft.term;
                self.failed_term.set(term);
                if self.role.replace(StateRole::Follower) == StateRole::Leader {
                    self.leader.set(raft::INVALID_ID);
                }
                // The transport stays up: the broker's last words (its
                // controlled shutdown) still reach the quorum leader.
                std::future::pending::<()>().await;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            let _ = shard::timeout(wait, self.wake.notified()).await;
            if Instant::now() >= next_tick {
                self.raw.borrow_mut().tick();
                next_tick = Instant::now() + tick;
            }
        }
    }

    fn handle_ready(&self) -> io::Result<()> {
        let mut raw = self.raw.borrow_mut();
        if !raw.has_ready() {
            return Ok(());
        }
        let mut rd = raw.ready();
        if let Some(ss) = rd.ss() {
            self.leader.set(ss.leader_id);
            let was_leader = self.role.replace(ss.raft_state) == StateRole::Leader;
            if ss.raft_state == StateRole::Leader && !was_leader {
                tracing::info!(
                    node = self.cfg.node_id,
                    term = raw.raft.term,
                    "this node leads the metadata quorum"
                );
            } else if was_leader && ss.raft_state != StateRole::Leader {
                let leader = self.leader();
                self.fail_pending(|| QuorumError::NotLeader { leader });
            }
        }
        self.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            self.storage.apply_snapshot(snap.clone())?;
            self.push(Committed::Snapshot {
                index: snap.get_metadata().index,
                data: snap.data.to_vec(),
            });
        }
        let committed = rd.take_committed_entries();
        self.deliver(committed);
        self.storage.append(rd.entries())?;
        if let Some(hs) = rd.hs() {
            self.storage.set_hard_state(hs.clone())?;
        }
        self.send(rd.take_persisted_messages());
        let mut light = raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.storage.hard_state();
            hs.commit = commit;
            self.storage.set_hard_state(hs)?;
        }
        self.send(light.take_messages());
        self.deliver(light.take_committed_entries());
        raw.advance_apply();
        Ok(())
    }

    /// Queue committed entries for the applier and settle this node's
    /// proposals among them.
    fn deliver(&self, entries: Vec<Entry>) {
        for e in entries {
            if e.get_entry_type() != EntryType::EntryNormal || e.data.is_empty() {
                // A leader's no-op (membership changes are not proposed by
                // sluice): nothing to apply, but the applied index moves.
                self.push(Committed::Entry {
                    index: e.index,
                    data: Vec::new(),
                });
                continue;
            }
            if let Ok(id) = <[u8; 8]>::try_from(&e.context[..]) {
                let id = u64::from_be_bytes(id);
                if let Some(slot) = self.proposals.borrow_mut().get_mut(&id) {
                    *slot = Some(Ok(e.index));
                    self.decided.notify_all();
                }
            }
            self.push(Committed::Entry {
                index: e.index,
                data: e.data.to_vec(),
            });
        }
    }

    fn push(&self, c: Committed) {
        self.committed.borrow_mut().push_back(c);
        self.committed_ready.notify_all();
    }

    fn send(&self, msgs: Vec<Message>) {
        for m in msgs {
            match self.peers.get(&m.to) {
                Some(p) => p.enqueue(&Frame::Raft(m)),
                None => tracing::debug!(to = m.to, "raft message for an unknown node dropped"),
            }
        }
    }

    fn hello(&self) -> Frame {
        Frame::Hello {
            node_id: self.cfg.node_id,
            addr: self.cfg.listen.map(|a| a.to_string()).unwrap_or_default(),
            voters: self.voters(),
            cluster_id: self.cluster_id.borrow().clone(),
        }
    }

    fn on_sent(&self, peer: u64, snapshot: bool, sent: Sent) {
        let mut raw = self.raw.borrow_mut();
        match (snapshot, sent) {
            (true, Sent::Ok) => raw.report_snapshot(peer, SnapshotStatus::Finish),
            (true, Sent::Failed) => raw.report_snapshot(peer, SnapshotStatus::Failure),
            (false, Sent::Failed) => raw.report_unreachable(peer),
            (false, Sent::Ok) => {}
        }
    }

    /// Why a connecting peer's hello is refused, if it is.
    fn check_hello(
        &self,
        from: SocketAddr,
        node_id: u64,
        addr: &str,
        voters: &[u64],
        cluster: &Option<String>,
    ) -> Option<String> {
        if node_id == self.cfg.node_id {
            return Some(format!(
                "a node at {from} (controller address {addr}) claims node.id {node_id}, which is this node's: two nodes share one node.id"
            ));
        }
        let Some(peer) = self.peers.get(&node_id) else {
            return Some(format!(
                "node {node_id} at {from} is not a voter of this quorum ({:?})",
                self.voters()
            ));
        };
        if voters != self.voters() {
            return Some(format!(
                "node {node_id} has controller.quorum.voters {voters:?}, this node {:?}: every node must list the same voters",
                self.voters()
            ));
        }
        if !addr.is_empty() && addr != peer.addr.to_string() {
            return Some(format!(
                "a node listening on {addr} claims node.id {node_id}, which the voters place at {}: two nodes share one node.id",
                peer.addr
            ));
        }
        if let (Some(theirs), Some(ours)) = (cluster, self.cluster_id.borrow().as_ref()) {
            if theirs != ours {
                return Some(format!(
                    "node {node_id} belongs to cluster {theirs}, this node to cluster {ours}"
                ));
            }
        }
        None
    }

    /// A frame from `peer`'s connection.
    fn receive(self: &Rc<Self>, peer: u64, f: Frame) {
        match f {
            Frame::Raft(m) => {
                if self.failed.borrow().is_some() {
                    // No longer a member (it could not persist a thing), but
                    // it still tracks who leads, so that its last words (a
                    // controlled shutdown) reach the leader the others chose.
                    use raft::prelude::MessageType;
                    if m.from == peer
                        && matches!(
                            m.get_msg_type(),
                            MessageType::MsgHeartbeat
                                | MessageType::MsgAppend
                                | MessageType::MsgSnapshot
                        )
                        && m.term >= self.failed_term.get()
                    {
                        self.failed_term.set(m.term);
                        self.leader.set(m.from);
                    }
                    return;
                }
                if m.from != peer {
                    tracing::warn!(
                        peer,
                        from = m.from,
                        "raft message with a foreign sender dropped"
                    );
                    return;
                }
                let mut raw = self.raw.borrow_mut();
                if let Err(e) = raw.step(m) {
                    tracing::debug!(peer, error = %e, "raft message not taken");
                }
                let now = Instant::now();
                let caught_up = raw.raft.state == StateRole::Leader
                    && raw
                        .raft
                        .prs()
                        .get(peer)
                        .is_some_and(|p| p.matched >= raw.raft.raft_log.last_index());
                drop(raw);
                let mut heard = self.heard.borrow_mut();
                let e = heard.entry(peer).or_insert((now, None));
                e.0 = now;
                if caught_up {
                    e.1 = Some(now);
                }
                self.wake.notify_all();
            }
            Frame::Request { id, payload } => self.serve(peer, id, payload),
            Frame::Reply { id, payload } => {
                if let Some(slot) = self.calls.borrow_mut().get_mut(&id) {
                    *slot = Some(payload);
                    self.replies.notify_all();
                }
            }
            Frame::Hello { .. } => tracing::warn!(peer, "second hello on a connection ignored"),
        }
    }

    fn reply(&self, peer: u64, id: u64, status: u8, body: Vec<u8>) {
        let mut payload = Vec::with_capacity(body.len() + 1);
        payload.push(status);
        payload.extend(body);
        if let Some(p) = self.peers.get(&peer) {
            p.enqueue(&Frame::Reply { id, payload });
        }
    }

    fn serve(self: &Rc<Self>, peer: u64, id: u64, payload: Vec<u8>) {
        let handler = self.handler.borrow().clone();
        let Some(handler) = handler.filter(|_| self.is_leader()) else {
            return self.reply(peer, id, REPLY_NOT_LEADER, Vec::new());
        };
        if self.inflight_requests.get() >= MAX_INFLIGHT_REQUESTS {
            return self.reply(peer, id, REPLY_BUSY, Vec::new());
        }
        self.inflight_requests.set(self.inflight_requests.get() + 1);
        let me = self.clone();
        shard::spawn(async move {
            let body = handler(peer, payload).await;
            me.inflight_requests.set(me.inflight_requests.get() - 1);
            me.reply(peer, id, REPLY_OK, body);
        })
        .detach();
    }

    /// Send a request to the quorum leader (served here if this node leads)
    /// and wait for its answer.
    pub async fn call_leader(&self, payload: Vec<u8>) -> Result<Vec<u8>, QuorumError> {
        let leader = self
            .leader()
            .ok_or(QuorumError::NotLeader { leader: None })?;
        if leader == self.cfg.node_id {
            let handler = self.handler.borrow().clone();
            return match handler.filter(|_| self.is_leader()) {
                Some(h) => Ok(h(self.cfg.node_id, payload).await),
                None => Err(QuorumError::NotLeader { leader: None }),
            };
        }
        let peer = self.peers.get(&leader).ok_or(QuorumError::NotLeader {
            leader: Some(leader),
        })?;
        let id = self.next_call.get();
        self.next_call.set(id + 1);
        self.calls.borrow_mut().insert(id, None);
        struct Slot<'a>(&'a RefCell<HashMap<u64, Option<Vec<u8>>>>, u64);
        impl Drop for Slot<'_> {
            fn drop(&mut self) {
                self.0.borrow_mut().remove(&self.1);
            }
        }
        let _slot = Slot(&self.calls, id);
        peer.enqueue(&Frame::Request { id, payload });
        let wait = async {
            loop {
                let replied = self.replies.notified();
                if let Some(r) = self.calls.borrow_mut().get_mut(&id).and_then(Option::take) {
                    return r;
                }
                replied.await;
            }
        };
        let timeout_ms = self.cfg.request_timeout_ms;
        let reply = shard::timeout(Duration::from_millis(timeout_ms), wait)
            .await
            .ok_or(QuorumError::TimedOut(timeout_ms))?;
        match reply.split_first() {
            Some((&REPLY_OK, body)) => Ok(body.to_vec()),
            Some((&REPLY_BUSY, _)) => Err(QuorumError::Busy),
            _ => Err(QuorumError::NotLeader { leader: None }),
        }
    }

    fn fail_pending(&self, err: impl Fn() -> QuorumError) {
        for slot in self.proposals.borrow_mut().values_mut() {
            if slot.is_none() {
                *slot = Some(Err(err()));
            }
        }
        self.decided.notify_all();
    }

    /// Why the metadata log's storage failed, if it did (the node has
    /// stopped taking part in the quorum).
    pub fn storage_failure(&self) -> Option<String> {
        self.failed.borrow().clone()
    }

    /// Propose `data`; answers with its log index once committed. Not the
    /// leader (or no leader): NotLeader at once. The caller bounds the wait.
    pub async fn propose(&self, data: Vec<u8>) -> Result<u64, QuorumError> {
        if let Some(e) = self.failed.borrow().as_ref() {
            return Err(QuorumError::Storage(e.clone()));
        }
        if !self.is_leader() {
            return Err(QuorumError::NotLeader {
                leader: self.leader(),
            });
        }
        let id = self.next_proposal.get();
        self.next_proposal.set(id + 1);
        if self
            .raw
            .borrow_mut()
            .propose(id.to_be_bytes().to_vec(), data)
            .is_err()
        {
            return Err(QuorumError::NotLeader {
                leader: self.leader(),
            });
        }
        self.proposals.borrow_mut().insert(id, None);
        // Removes the slot however this future ends (a caller's timeout too).
        struct Slot<'a>(
            &'a RefCell<BTreeMap<u64, Option<Result<u64, QuorumError>>>>,
            u64,
        );
        impl Drop for Slot<'_> {
            fn drop(&mut self) {
                self.0.borrow_mut().remove(&self.1);
            }
        }
        let _slot = Slot(&self.proposals, id);
        self.wake.notify_all();
        loop {
            let decided = self.decided.notified();
            if let Some(r) = self
                .proposals
                .borrow_mut()
                .get_mut(&id)
                .and_then(Option::take)
            {
                return r;
            }
            decided.await;
        }
    }

    /// The next committed entry or snapshot, in log order.
    pub async fn next_committed(&self) -> Committed {
        loop {
            let ready = self.committed_ready.notified();
            if let Some(c) = self.committed.borrow_mut().pop_front() {
                return c;
            }
            ready.await;
        }
    }

    /// The applier has applied everything up to `index` and `data` rebuilds
    /// that image: keep it as the snapshot and drop the entries it covers.
    pub fn compact(&self, index: u64, data: Vec<u8>) -> io::Result<()> {
        let term = self
            .storage
            .term(index)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let conf_state = self
            .storage
            .initial_state()
            .map_err(|e| io::Error::other(e.to_string()))?
            .conf_state;
        let mut s = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        s.mut_metadata().index = index;
        s.mut_metadata().term = term;
        s.mut_metadata().set_conf_state(conf_state);
        self.storage.compact_with(s)
    }
}

/// Accept the other controllers' connections: each says who it is, then
/// its frames are handed to the node. One live connection per peer (a new
/// one replaces the old).
async fn accept_loop(node: Weak<Node>, listener: Listener) {
    let mut by_peer: HashMap<u64, shard::Task<()>> = HashMap::new();
    loop {
        let Ok(mut s) = listener.accept().await else {
            shard::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Some(n) = node.upgrade() else { return };
        let from = s
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let max = n.cfg.max_frame_bytes;
        let hello = shard::timeout(
            Duration::from_millis(transport::HELLO_TIMEOUT_MS),
            transport::read_frame(&mut s, max),
        )
        .await;
        let Some(Ok(Frame::Hello {
            node_id,
            addr,
            voters,
            cluster_id,
        })) = hello
        else {
            tracing::warn!(%from, "controller connection without a hello closed");
            continue;
        };
        if let Some(why) = n.check_hello(from, node_id, &addr, &voters, &cluster_id) {
            tracing::error!(%from, "controller connection refused: {why}");
            continue;
        }
        let reader = shard::spawn(read_loop(Rc::downgrade(&n), node_id, s, max));
        by_peer.insert(node_id, reader);
    }
}

async fn read_loop(node: Weak<Node>, peer: u64, mut s: Stream, max_frame_bytes: usize) {
    loop {
        match transport::read_frame(&mut s, max_frame_bytes).await {
            Ok(f) => match node.upgrade() {
                Some(n) => n.receive(peer, f),
                None => return,
            },
            Err(e) => {
                tracing::debug!(peer, error = %e, "controller connection from peer ended");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> QuorumConfig {
        QuorumConfig {
            node_id: 1,
            voters: vec![1],
            tick_ms: 10,
            election_ticks: 10,
            heartbeat_ticks: 2,
            listen: None,
            peers: vec![],
            max_frame_bytes: 1 << 20,
            request_timeout_ms: 1_000,
        }
    }

    /// A one-voter node formats its log, leads, commits proposals in order,
    /// hands them to the applier, compacts, and after a restart has it all.
    #[test]
    fn a_lone_voter_commits_compacts_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), &[1]).unwrap();
        assert_eq!((log.snapshot_index, log.commit), (1, 1));
        assert!(log.entries.is_empty());
        assert_eq!(log.voters, vec![1]);
        let d = dir.path().to_path_buf();
        shard::block_on(async move {
            let node = Node::start(&d, cfg(), log.commit).unwrap();
            let driver = shard::spawn(node.clone().run());
            let mut indexes = Vec::new();
            for i in 0..3 {
                let idx = shard::timeout(
                    Duration::from_secs(10),
                    node.propose(format!("r{i}").into_bytes()),
                )
                .await
                .expect("committed in time")
                .unwrap();
                indexes.push(idx);
            }
            assert!(node.is_leader());
            assert_eq!(node.leader(), Some(1));
            assert!(indexes.windows(2).all(|w| w[1] == w[0] + 1));
            for (i, want) in indexes.iter().enumerate() {
                let mut c = node.next_committed().await;
                while matches!(&c, Committed::Entry { data, .. } if data.is_empty()) {
                    c = node.next_committed().await;
                }
                match c {
                    Committed::Entry { index, data } => {
                        assert_eq!((index, data), (*want, format!("r{i}").into_bytes()))
                    }
                    other => panic!("{other:?}"),
                }
            }
            node.compact(indexes[1], b"image".to_vec()).unwrap();
            drop(driver);
        });
        let log = open_log(dir.path(), &[1]).unwrap();
        assert_eq!(log.snapshot_data, b"image");
        assert_eq!(log.entries.len(), 1);
        assert_eq!(log.entries[0].1, b"r2");
    }

    #[test]
    fn a_follower_refuses_proposals_naming_no_leader() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), &[1, 2, 3]).unwrap();
        let d = dir.path().to_path_buf();
        shard::block_on(async move {
            let node = Node::start(&d, cfg(), log.commit).unwrap();
            assert!(matches!(
                node.propose(b"x".to_vec()).await,
                Err(QuorumError::NotLeader { leader: None })
            ));
        });
    }

    fn free_addr() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    struct Member {
        node: Rc<Node>,
        driver: Option<shard::Task<()>>,
        /// Applied so far (entries with data), in order.
        seen: Rc<RefCell<Vec<Vec<u8>>>>,
        _applier: shard::Task<()>,
    }

    fn member(dir: &Path, id: u64, addrs: &[(u64, SocketAddr)]) -> Member {
        let log = open_log(dir, &[1, 2, 3]).unwrap();
        let cfg = QuorumConfig {
            node_id: id,
            voters: vec![1, 2, 3],
            listen: addrs.iter().find(|(i, _)| *i == id).map(|(_, a)| *a),
            peers: addrs.iter().filter(|(i, _)| *i != id).cloned().collect(),
            ..cfg()
        };
        let node = Node::start(dir, cfg, log.commit).unwrap();
        node.set_request_handler(Rc::new(move |from, p| {
            Box::pin(async move {
                format!("{}:{from}->{id}", String::from_utf8(p).unwrap()).into_bytes()
            })
        }));
        let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::new(RefCell::new(
            log.entries.into_iter().map(|(_, d)| d).collect(),
        ));
        let (n, s) = (node.clone(), seen.clone());
        let applier = shard::spawn(async move {
            loop {
                match n.next_committed().await {
                    Committed::Entry { data, .. } if !data.is_empty() => s.borrow_mut().push(data),
                    Committed::Entry { .. } => {}
                    Committed::Snapshot { data, .. } => {
                        // The snapshot payload here is the list so far.
                        *s.borrow_mut() = data.split(|b| *b == b',').map(<[u8]>::to_vec).collect();
                    }
                }
            }
        });
        Member {
            driver: Some(shard::spawn(node.clone().run())),
            node,
            seen,
            _applier: applier,
        }
    }

    async fn leader_of(members: &[&Member]) -> u64 {
        for _ in 0..1000 {
            let leaders: Vec<u64> = members
                .iter()
                .filter(|m| m.node.is_leader())
                .map(|m| m.node.node_id())
                .collect();
            if leaders.len() == 1 && members.iter().all(|m| m.node.leader() == Some(leaders[0])) {
                return leaders[0];
            }
            shard::sleep(Duration::from_millis(10)).await;
        }
        panic!("no agreed leader within 10 s");
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        for _ in 0..1000 {
            if f() {
                return;
            }
            shard::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}: not within 10 s");
    }

    /// Three voters over real sockets: they elect one leader, replicate what
    /// it commits, answer a follower's request on the leader, elect another
    /// when it dies, and the dead one comes back and catches up (from a
    /// snapshot, since the leader compacted past it).
    #[test]
    fn three_voters_elect_replicate_fail_over_and_catch_up() {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let addrs: Vec<(u64, SocketAddr)> = (1..=3).map(|i| (i, free_addr())).collect();
        let paths: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        shard::block_on(async move {
            let mut m: Vec<Member> = (1..=3)
                .map(|i| member(&paths[i as usize - 1], i, &addrs))
                .collect();
            let leader = leader_of(&m.iter().collect::<Vec<_>>()).await;
            let li = leader as usize - 1;
            m[li].node.propose(b"a".to_vec()).await.unwrap();
            until("all applied a", || {
                m.iter()
                    .all(|x| x.seen.borrow().as_slice() == [b"a".to_vec()])
            })
            .await;
            // A follower's request is served by the leader.
            let fi = (li + 1) % 3;
            let follower = fi as u64 + 1;
            let st = m[li].node.status().expect("the leader has a status");
            assert_eq!((st.leader, st.voters.len()), (leader, 3));
            let top = st.voters.iter().map(|v| v.log_end).max().unwrap();
            assert_eq!(st.voters[li].log_end, top, "{st:?}");
            assert!(st.high_watermark > 0 && st.high_watermark <= top, "{st:?}");
            assert!(
                m[fi].node.status().is_none(),
                "followers do not answer for the quorum"
            );
            let r = m[fi].node.call_leader(b"hi".to_vec()).await.unwrap();
            assert_eq!(
                String::from_utf8(r).unwrap(),
                format!("hi:{follower}->{leader}")
            );
            assert!(matches!(
                m[fi].node.propose(b"x".to_vec()).await,
                Err(QuorumError::NotLeader { leader: Some(l) }) if l == leader
            ));
            // The leader dies.
            m[li].driver.take();
            let rest: Vec<&Member> = m
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != li)
                .map(|(_, x)| x)
                .collect();
            let new_leader = leader_of(&rest).await;
            assert_ne!(new_leader, leader);
            let ni = new_leader as usize - 1;
            for v in [b"b", b"c"] {
                m[ni].node.propose(v.to_vec()).await.unwrap();
            }
            until("survivors applied b, c", || {
                rest.iter().all(|x| x.seen.borrow().len() == 3)
            })
            .await;
            // The leader compacts past what the dead node has.
            let commit = m[ni].node.commit_index();
            m[ni].node.compact(commit, b"a,b,c".to_vec()).unwrap();
            m[ni].node.propose(b"d".to_vec()).await.unwrap();
            // The dead node comes back from its disk and catches up.
            let back = member(&paths[li], leader, &addrs);
            m[li] = back;
            let want: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d"]
                .iter()
                .map(|v| v.to_vec())
                .collect();
            until("the restarted node caught up", || {
                *m[li].seen.borrow() == want
            })
            .await;
            assert_eq!(m[li].node.leader(), Some(new_leader));
        });
    }
}
