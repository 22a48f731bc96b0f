//! One shard's group coordinator: the groups whose `__consumer_offsets`
//! partition this shard owns, their committed offsets, loading them by replay,
//! and the timer that evicts dead members and expires old offsets.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use super::classic::{ClassicGroup, GroupLimits, GroupState};
use super::consumer::ConsumerGroup;
use super::format::{self, OffsetValue, RecordKey};
use super::store::{self, OFFSETS_TOPIC};
use crate::broker::state::local;
use crate::shard;
use crate::storage::now_ms;

/// How often member sessions and join deadlines are checked.
const TIMER_TICK_MS: u64 = 100;

/// Coordinator settings (Kafka's `group.*` and `offsets.*` keys).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub limits: GroupLimits,
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.replication.factor` (capped at the live brokers when
    /// the topic is created).
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: u64,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: usize,
    /// `offsets.commit.timeout.ms`: how long a write to `__consumer_offsets`
    /// waits for the partition's in-sync replicas (Kafka writes it with
    /// acks=all, so a commit survives the coordinator's broker).
    pub offsets_commit_timeout_ms: u64,
    /// KIP-848 groups: heartbeat interval handed to members, session timeout.
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_session_timeout_ms: i32,
    pub consumer_max_size: usize,
    /// Bounds of the per-group overrides (KIP-848 group configs).
    pub consumer_min_session_timeout_ms: i32,
    pub consumer_max_session_timeout_ms: i32,
    pub consumer_min_heartbeat_interval_ms: i32,
    pub consumer_max_heartbeat_interval_ms: i32,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            limits: GroupLimits::default(),
            offsets_topic_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 100 << 20,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            offsets_commit_timeout_ms: 5_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_session_timeout_ms: 45_000,
            consumer_max_size: 1_000,
            consumer_min_session_timeout_ms: 45_000,
            consumer_max_session_timeout_ms: 60_000,
            consumer_min_heartbeat_interval_ms: 5_000,
            consumer_max_heartbeat_interval_ms: 15_000,
        }
    }
}

impl CoordinatorConfig {
    /// The settings KIP-848 groups run with.
    pub fn consumer_group(&self) -> super::consumer::ConsumerGroupConfig {
        super::consumer::ConsumerGroupConfig {
            session_timeout_ms: self.consumer_session_timeout_ms,
            heartbeat_interval_ms: self.consumer_heartbeat_interval_ms,
            max_size: self.consumer_max_size,
        }
    }

    /// The settings of one KIP-848 group: its group configs (already
    /// validated when stored) over the broker's.
    pub fn consumer_group_for(
        &self,
        overrides: Option<&std::collections::BTreeMap<String, String>>,
    ) -> super::consumer::ConsumerGroupConfig {
        let mut c = self.consumer_group();
        let get = |k: &str| {
            overrides
                .and_then(|o| o.get(k))
                .and_then(|v| v.parse().ok())
        };
        if let Some(v) = get(super::GROUP_SESSION_TIMEOUT) {
            c.session_timeout_ms = v;
        }
        if let Some(v) = get(super::GROUP_HEARTBEAT_INTERVAL) {
            c.heartbeat_interval_ms = v;
        }
        c
    }

    /// Check a group's configs as Kafka's GroupConfig does; the message
    /// names the key.
    pub fn validate_group_configs(
        &self,
        configs: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), String> {
        use super::{GROUP_HEARTBEAT_INTERVAL, GROUP_SESSION_TIMEOUT, SHARE_GROUP_KEYS};
        let int = |k: &str, v: &str| -> Result<i32, String> {
            v.trim().parse::<i32>().map_err(|_| {
                format!("Invalid value {v} for configuration {k}: Not a number of type INT")
            })
        };
        let range = |k: &str, v: i32, lo: i32, hi: i32| -> Result<(), String> {
            if v < lo {
                Err(format!(
                    "Invalid value {v} for configuration {k}: Value must be at least {lo}"
                ))
            } else if v > hi {
                Err(format!(
                    "Invalid value {v} for configuration {k}: Value must be no more than {hi}"
                ))
            } else {
                Ok(())
            }
        };
        for (k, v) in configs {
            match k.as_str() {
                GROUP_SESSION_TIMEOUT => range(
                    k,
                    int(k, v)?,
                    self.consumer_min_session_timeout_ms,
                    self.consumer_max_session_timeout_ms,
                )?,
                GROUP_HEARTBEAT_INTERVAL => range(
                    k,
                    int(k, v)?,
                    self.consumer_min_heartbeat_interval_ms,
                    self.consumer_max_heartbeat_interval_ms,
                )?,
                k if SHARE_GROUP_KEYS.contains(&k) => range(k, int(k, v)?, 1, i32::MAX)?,
                other => return Err(format!("Unknown group config name: {other}")),
            }
        }
        let c = self.consumer_group_for(Some(configs));
        if c.heartbeat_interval_ms >= c.session_timeout_ms {
            return Err(format!(
                "{GROUP_HEARTBEAT_INTERVAL} must be less than {GROUP_SESSION_TIMEOUT}"
            ));
        }
        Ok(())
    }
}

pub enum GroupKind {
    Classic(Box<ClassicGroup>),
    Consumer(ConsumerGroup),
}

pub struct GroupEntry {
    /// Its `__consumer_offsets` partition.
    pub partition: i32,
    pub kind: GroupKind,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
}

impl GroupEntry {
    pub fn state_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(g) => g.state.name(),
            GroupKind::Consumer(g) => g.state_name(),
        }
    }

    pub fn protocol_type(&self) -> String {
        match &self.kind {
            GroupKind::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            GroupKind::Consumer(_) => "consumer".into(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.kind {
            GroupKind::Classic(g) => g.state == GroupState::Empty,
            GroupKind::Consumer(g) => g.members.is_empty(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    Loading,
    Loaded,
}

pub struct Coordinator {
    pub cfg: CoordinatorConfig,
    loads: HashMap<i32, Load>,
    pub groups: HashMap<String, GroupEntry>,
    /// The catalogue as of the last tick (deleted topics show in the diff).
    last_catalog: Rc<crate::cluster::Catalog>,
    /// Every `__consumer_offsets` partition this shard owns is loaded.
    all_loaded: bool,
    last_expiry_check_ms: i64,
}

pub type Shared = Rc<RefCell<Coordinator>>;

impl Coordinator {
    pub fn new(cfg: CoordinatorConfig) -> Shared {
        Rc::new(RefCell::new(Coordinator {
            cfg,
            loads: HashMap::new(),
            groups: HashMap::new(),
            last_catalog: Rc::new(crate::cluster::Catalog::default()),
            all_loaded: false,
            last_expiry_check_ms: now_ms(),
        }))
    }

    /// A classic group, created Empty when missing. Errors when the id
    /// belongs to a KIP-848 group.
    pub fn classic(
        &mut self,
        group: &str,
        partition: i32,
        create: bool,
    ) -> Result<Option<&mut ClassicGroup>, ResponseError> {
        if create && !self.groups.contains_key(group) {
            let mut g = ClassicGroup::new(group.to_string(), now_ms());
            g.initial_delay_ms = self.cfg.limits.initial_rebalance_delay_ms;
            self.groups.insert(
                group.to_string(),
                GroupEntry {
                    partition,
                    kind: GroupKind::Classic(Box::new(g)),
                    offsets: BTreeMap::new(),
                },
            );
        }
        match self.groups.get_mut(group) {
            None => Ok(None),
            Some(GroupEntry {
                kind: GroupKind::Classic(g),
                ..
            }) => Ok(Some(g)),
            Some(e) if e.is_empty() && create => {
                // An empty KIP-848 group may turn classic (Kafka's conversion).
                let mut g = ClassicGroup::new(group.to_string(), now_ms());
                g.initial_delay_ms = self.cfg.limits.initial_rebalance_delay_ms;
                e.kind = GroupKind::Classic(Box::new(g));
                match &mut e.kind {
                    GroupKind::Classic(g) => Ok(Some(g)),
                    GroupKind::Consumer(_) => unreachable!(),
                }
            }
            Some(_) => Err(ResponseError::InconsistentGroupProtocol),
        }
    }
}

/// This shard's coordinator.
pub fn shared() -> Shared {
    local().groups.clone()
}

/// Replay partition `partition` of `__consumer_offsets` once; requests for
/// its groups meanwhile get COORDINATOR_LOAD_IN_PROGRESS (retriable).
pub async fn ensure_loaded(c: &Shared, partition: i32) -> Result<(), ResponseError> {
    match c.borrow().loads.get(&partition) {
        Some(Load::Loaded) => return Ok(()),
        Some(Load::Loading) => return Err(ResponseError::CoordinatorLoadInProgress),
        None => {}
    }
    if local().log(OFFSETS_TOPIC, partition).is_none() {
        // The shard is still opening its logs for a new catalogue version.
        return Err(ResponseError::CoordinatorLoadInProgress);
    }
    c.borrow_mut().loads.insert(partition, Load::Loading);
    let started = std::time::Instant::now();
    let mut groups: HashMap<String, format::GroupValue> = HashMap::new();
    let mut tombstoned: Vec<String> = Vec::new();
    let mut offsets: HashMap<String, BTreeMap<(String, i32), OffsetValue>> = HashMap::new();
    let replayed = store::replay(partition, |key, value| match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            let value = value.and_then(|v| format::decode_offset(&v).ok());
            let offs = offsets.entry(group).or_default();
            match value {
                Some(v) => {
                    offs.insert((topic, partition), v);
                }
                None => {
                    offs.remove(&(topic, partition));
                }
            }
        }
        RecordKey::Group { group } => match value.and_then(|v| format::decode_group(&v).ok()) {
            Some(v) => {
                groups.insert(group, v);
            }
            None => {
                groups.remove(&group);
                tombstoned.push(group);
            }
        },
    })
    .await;
    let records = match replayed {
        Ok(n) => n,
        Err(e) => {
            c.borrow_mut().loads.remove(&partition);
            tracing::error!(partition, error = %e, "cannot load __consumer_offsets partition");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
    };
    let now = now_ms();
    let mut co = c.borrow_mut();
    let delay = co.cfg.limits.initial_rebalance_delay_ms;
    let names: Vec<String> = groups
        .keys()
        .chain(offsets.keys())
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut loaded = 0;
    for name in names {
        let offs = offsets.remove(&name).unwrap_or_default();
        let value = groups.remove(&name);
        if value.is_none() && offs.is_empty() {
            continue;
        }
        let mut g = match value {
            Some(v) => ClassicGroup::from_value(name.clone(), v, now),
            None => ClassicGroup::new(name.clone(), now),
        };
        g.initial_delay_ms = delay;
        co.groups.insert(
            name,
            GroupEntry {
                partition,
                kind: GroupKind::Classic(Box::new(g)),
                offsets: offs,
            },
        );
        loaded += 1;
    }
    co.loads.insert(partition, Load::Loaded);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if records > 0 {
        tracing::info!(
            partition,
            records,
            groups = loaded,
            elapsed_ms,
            "loaded group coordinator state from __consumer_offsets"
        );
    } else {
        tracing::debug!(partition, "empty __consumer_offsets partition loaded");
    }
    Ok(())
}

/// Forget groups of partitions this shard no longer owns.
fn unload_gone_partitions(c: &Shared) {
    let state = local();
    let table = state.table.borrow();
    let mut co = c.borrow_mut();
    let gone: Vec<i32> = co
        .loads
        .keys()
        .copied()
        .filter(|p| table.shard_of(OFFSETS_TOPIC, *p) != Some(state.id))
        .collect();
    for p in gone {
        co.loads.remove(&p);
        co.groups.retain(|_, e| e.partition != p);
    }
}

/// Persist a classic group's metadata (after a join formed an empty
/// generation, or a static member took over an identity).
pub fn persist_group(c: &Shared, group: &str) {
    let entries = {
        let mut co = c.borrow_mut();
        let Some(e) = co.groups.get_mut(group) else {
            return;
        };
        let GroupKind::Classic(g) = &mut e.kind else {
            return;
        };
        if !g.needs_persist {
            return;
        }
        g.needs_persist = false;
        (e.partition, vec![g.record()])
    };
    let write = store::write(entries.0, entries.1);
    let group = group.to_string();
    shard::spawn(async move {
        if let Err(e) = write.await {
            tracing::warn!(%group, error = ?e, "could not persist group metadata");
        }
    })
    .detach();
}

/// The per-shard timer: member sessions, join deadlines, offset expiry,
/// offsets of deleted topics, and loading partitions this shard owns.
pub async fn run_timers() {
    let c = shared();
    loop {
        // Wake at the earliest group deadline (a session that ends, a join
        // or revocation deadline), so members expire at their deadline, not
        // up to a tick later; and at least every tick, to pick up deadlines
        // set by requests meanwhile and to load partitions.
        let now = now_ms();
        let next = {
            let co = c.borrow();
            let catalog = local().catalog();
            co.groups
                .iter()
                .filter_map(|(name, e)| match &e.kind {
                    GroupKind::Classic(g) => g.next_deadline_ms(),
                    GroupKind::Consumer(g) => g.next_deadline_ms(
                        &co.cfg.consumer_group_for(catalog.group_configs.get(name)),
                    ),
                })
                .min()
        };
        let wait_ms = next.map_or(TIMER_TICK_MS as i64, |d| {
            (d - now).clamp(1, TIMER_TICK_MS as i64)
        });
        shard::sleep(Duration::from_millis(wait_ms as u64)).await;
        let state = local();
        let catalog = state.catalog();
        let previous = c.borrow().last_catalog.clone();
        if catalog.version != previous.version {
            c.borrow_mut().last_catalog = catalog.clone();
            c.borrow_mut().all_loaded = false;
            unload_gone_partitions(&c);
            super::offsets::drop_deleted_topics(&c, &previous, &catalog);
        }
        if !c.borrow().all_loaded {
            // Load owned partitions eagerly, so that members restored from
            // disk expire on time even if nobody asks for their group.
            let mine: Vec<i32> = state
                .table
                .borrow()
                .partitions_on(state.id)
                .filter(|(t, _)| *t == OFFSETS_TOPIC)
                .map(|(_, p)| p)
                .collect();
            let mut all = true;
            for p in mine {
                if c.borrow().loads.get(&p) != Some(&Load::Loaded) {
                    all = false;
                    let _ = ensure_loaded(&c, p).await;
                }
            }
            c.borrow_mut().all_loaded = all;
        }
        let now = now_ms();
        let names: Vec<String> = c.borrow().groups.keys().cloned().collect();
        for name in names {
            {
                let mut co = c.borrow_mut();
                let consumer_cfg = co.cfg.consumer_group_for(catalog.group_configs.get(&name));
                let Some(e) = co.groups.get_mut(&name) else {
                    continue;
                };
                match &mut e.kind {
                    GroupKind::Classic(g) => g.tick(now),
                    GroupKind::Consumer(g) => g.tick(now, &consumer_cfg, &catalog),
                }
            }
            persist_group(&c, &name);
        }
        let interval = c.borrow().cfg.offsets_retention_check_interval_ms;
        if now - c.borrow().last_expiry_check_ms >= interval {
            c.borrow_mut().last_expiry_check_ms = now;
            super::offsets::expire(&c, now);
            // Its writes wait for the ISR: not on the timers' path.
            let loaded: Vec<i32> = c.borrow().loads.keys().copied().collect();
            let co = c.clone();
            shard::spawn(async move {
                for p in loaded {
                    super::compact::maybe_compact(&co, p).await;
                }
            })
            .detach();
        }
    }
}
