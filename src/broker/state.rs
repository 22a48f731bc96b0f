//! Everything one shard owns: its copy of the catalogue and shard table, the
//! logs of its partitions, and its group committer.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::cluster::topic_config;
use crate::cluster::Catalog;
use crate::config::BrokerConfig;
use crate::shard::{self, ShardId, ShardTable};
use crate::storage::commit::{close_writer, persist_active_index, Committer};
use crate::storage::log::SharedLog;
use crate::storage::recovery::{open_partition, OpenParams, PreviousStop};
use crate::storage::tail_cache::TailBudget;
use crate::storage::{now_ms, retention};

pub struct ShardState {
    pub id: ShardId,
    /// The configuration the process started with (file and flags).
    pub cfg: BrokerConfig,
    /// `cfg` with the catalogue's dynamic broker configs applied: what topic
    /// defaults resolve against. Replaced with each catalogue version.
    effective: RefCell<Rc<BrokerConfig>>,
    pub catalog: RefCell<Rc<Catalog>>,
    pub table: RefCell<ShardTable>,
    pub logs: RefCell<PartitionLogs>,
    pub committer: Rc<Committer>,
    /// This shard's latency histograms (written here, read by a scrape).
    pub metrics: std::sync::Arc<crate::metrics::ShardMetrics>,
    /// Groups whose `__consumer_offsets` partition this shard owns.
    pub groups: crate::group::coordinator::Shared,
    tail_budget: Rc<TailBudget>,
    /// Every segment file of this shard's partitions is opened through it.
    pub files: Rc<crate::storage::files::OpenFiles>,
    /// Bytes of requests this shard's connections have read and not yet
    /// done with (`queued.max.request.bytes`, this shard's share).
    pub request_memory: crate::shard::budget::Budget,
    /// How the last run on this log dir ended (how much of a tail to check).
    previous_stop: PreviousStop,
    /// Serialises catalogue changes (used on the controller shard only).
    pub controller_lock: futures::lock::Mutex<()>,
    /// Set while `apply_catalog` runs: the reopen loop then waits its turn,
    /// so no partition is opened twice by two overlapping applications.
    applying: std::cell::Cell<bool>,
    /// The syncfs that makes a new topic's partitions durable together, where
    /// the committer has one. Its own descriptor: syncfs reports a write-back
    /// error once per descriptor, and the committer must see every one.
    new_files_sync: Option<crate::storage::fs_sync::FsSync>,
    /// Recovery points of the last run (`recovery-point-offset-checkpoint`),
    /// used when an unclean stop leaves partition tails to check.
    recovery_points: std::collections::HashMap<(String, i32), i64>,
    /// From `replication-offset-checkpoint`, read at start.
    high_watermarks: std::collections::HashMap<(String, i32), i64>,
    /// Hands out producer ids (used on the controller shard only).
    pub producer_ids: RefCell<crate::cluster::producer_ids::ProducerIdBlock>,
    /// Fired when the replicas this shard holds (or their roles) change:
    /// the replica fetcher re-plans its streams.
    pub replicas_changed: crate::shard::notify::Notify,
}

thread_local! {
    static STATE: RefCell<Option<Rc<ShardState>>> = const { RefCell::new(None) };
}

/// This shard's state (for work shipped here from other shards).
pub fn local() -> Rc<ShardState> {
    STATE.with(|s| s.borrow().clone().expect("shard state not started"))
}

impl ShardState {
    pub async fn start(
        id: ShardId,
        cfg: BrokerConfig,
        catalog: Catalog,
        previous_stop: PreviousStop,
        health: crate::storage::LogDirHealth,
        metrics: std::sync::Arc<crate::metrics::ShardMetrics>,
    ) -> anyhow::Result<Rc<Self>> {
        let fs_sync = match cfg.log_sync_filesystem_min_partitions {
            0 => None,
            min => match crate::storage::fs_sync::FsSync::for_dir(&cfg.log_dir) {
                Ok(f) => {
                    if id == 0 {
                        tracing::info!(min_partitions = min,
                            "commit rounds with this many partitions to sync use one syncfs of the log dir's file system");
                    }
                    Some(f)
                }
                Err(why) => {
                    if id == 0 {
                        tracing::info!(%why, "commit rounds fdatasync each partition (no syncfs)");
                    }
                    None
                }
            },
        };
        let new_files_sync = fs_sync
            .as_ref()
            .and_then(|_| crate::storage::fs_sync::FsSync::for_dir(&cfg.log_dir).ok());
        let state = Rc::new(ShardState {
            id,
            catalog: RefCell::new(Rc::new(Catalog::default())),
            table: RefCell::new(ShardTable::new(shard::count())),
            logs: RefCell::new(PartitionLogs::default()),
            committer: Committer::new(
                health.clone(),
                metrics.clone(),
                fs_sync,
                cfg.log_sync_filesystem_min_partitions,
            ),
            metrics: metrics.clone(),
            groups: crate::group::Coordinator::new(cfg.groups.clone()),
            tail_budget: TailBudget::with_read_ahead(
                cfg.tail_cache_bytes_per_shard,
                cfg.read_ahead_bytes_per_shard,
            ),
            files: crate::storage::files::OpenFiles::new(
                (cfg.log_open_files_max.unwrap_or(usize::MAX) / shard::count())
                    .max(crate::storage::files::MIN_OPEN_FILES_PER_SHARD),
            ),
            request_memory: crate::shard::budget::Budget::new(
                cfg.queued_max_request_bytes.per_shard(shard::count()),
            ),
            previous_stop,
            controller_lock: futures::lock::Mutex::new(()),
            effective: RefCell::new(Rc::new(cfg.clone())),
            applying: std::cell::Cell::new(false),
            new_files_sync,
            recovery_points: if previous_stop == PreviousStop::Clean {
                Default::default()
            } else {
                super::checkpoint::read_recovery_points(&cfg.log_dir)
            },
            high_watermarks: super::checkpoint::read_high_watermarks(&cfg.log_dir),
            producer_ids: RefCell::new(Default::default()),
            replicas_changed: crate::shard::notify::Notify::new(),
            cfg,
        });
        STATE.with(|s| *s.borrow_mut() = Some(state.clone()));
        shard::spawn(state.committer.clone().run()).detach();
        if let Some(ms) = state.cfg.log.flush_interval_ms {
            let st = state.clone();
            shard::spawn(Committer::run_periodic_sync(
                move || st.logs.borrow().all(),
                ms,
                health,
                metrics,
            ))
            .detach();
        }
        // A partition that cannot be opened (a full disk cannot take its new
        // files, a bad segment) stays offline; the others are served, and
        // `reopen_loop` retries it.
        if let Err(e) = state.apply_catalog(Rc::new(catalog)).await {
            tracing::error!(shard = id, error = %e,
                "starting with some partitions offline; they are retried every {REOPEN_INTERVAL_MS} ms");
        }
        shard::spawn(reopen_loop(state.clone())).detach();
        shard::spawn(crate::group::coordinator::run_timers()).detach();
        Ok(state)
    }

    pub fn catalog(&self) -> Rc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Why this broker has no log for a partition: it exists but another
    /// broker (or none) leads it, or it does not exist.
    pub fn not_served_error(&self, topic: &str, partition: i32) -> kafka_protocol::ResponseError {
        use kafka_protocol::ResponseError;
        match self.catalog.borrow().topics.get(topic) {
            Some(t) if (0..t.partitions).contains(&partition) => ResponseError::NotLeaderOrFollower,
            _ => ResponseError::UnknownTopicOrPartition,
        }
    }

    /// The cluster's id (known before any client is served).
    pub fn cluster_id(&self) -> String {
        self.catalog.borrow().cluster_id.clone().unwrap_or_default()
    }

    /// The configuration in force: `cfg` plus dynamic broker configs.
    pub fn effective_cfg(&self) -> Rc<BrokerConfig> {
        self.effective.borrow().clone()
    }

    /// The log of a partition this broker leads (what clients may use).
    pub fn log(&self, topic: &str, partition: i32) -> Option<SharedLog> {
        self.logs
            .borrow()
            .get(topic, partition)
            .filter(|l| l.borrow().replication.is_leader())
    }

    /// The log of any replica on this shard, led or followed.
    pub fn replica_log(&self, topic: &str, partition: i32) -> Option<SharedLog> {
        self.logs.borrow().get(topic, partition)
    }

    /// The log of a partition another shard routed here at catalogue
    /// `version`: if this shard is still adopting that version (opening the
    /// partition), wait for it, bounded, rather than failing a request
    /// that arrived a moment early.
    pub async fn log_at(&self, topic: &str, partition: i32, version: u64) -> Option<SharedLog> {
        let deadline = std::time::Instant::now() + Duration::from_millis(OPEN_WAIT_MS);
        loop {
            if let Some(log) = self.log(topic, partition) {
                return Some(log);
            }
            let behind = self.catalog().version < version || self.applying.get();
            if !behind || std::time::Instant::now() >= deadline {
                return None;
            }
            shard::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Adopt a new catalogue: rebuild the shard table, open the logs this shard
    /// now owns, close and delete those of deleted topics, apply config changes.
    pub async fn apply_catalog(&self, catalog: Rc<Catalog>) -> anyhow::Result<()> {
        // Applications run one at a time (they await while opening logs).
        while self.applying.replace(true) {
            shard::sleep(Duration::from_millis(5)).await;
        }
        struct Done<'a>(&'a std::cell::Cell<bool>);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _done = Done(&self.applying);
        self.apply_catalog_now(catalog).await
    }

    async fn apply_catalog_now(&self, catalog: Rc<Catalog>) -> anyhow::Result<()> {
        let old = self.catalog();
        if catalog.version < old.version {
            return Ok(());
        }
        // This broker serves the partitions it leads (followers come with
        // replication).
        let me = self.cfg.broker_id;
        self.table.borrow_mut().rebuild(
            catalog.version,
            catalog.topics.values().map(|t| {
                let served = (0..t.partitions as usize)
                    .map(|p| t.parts.get(p).is_some_and(|m| m.leader == me))
                    .collect();
                (t.name.as_str(), served)
            }),
        );
        *self.catalog.borrow_mut() = catalog.clone();
        let dynamic = catalog.dynamic_configs_for(self.cfg.broker_id);
        match self.cfg.with_dynamic(&dynamic) {
            Ok(eff) => *self.effective.borrow_mut() = Rc::new(eff),
            // Checked by the controller before it was stored; a value that
            // no longer parses (an older version's) is skipped, not fatal.
            Err(e) => tracing::error!(error = ?e, "dynamic broker configs not applied"),
        }
        let effective = self.effective_cfg();
        // Deleted topics (or recreated under a new id): close and remove.
        let gone: Vec<(String, i32)> = self
            .logs
            .borrow()
            .iter()
            .filter(|(t, _, log)| {
                catalog
                    .topics
                    .get(*t)
                    .is_none_or(|m| m.id != log.borrow().topic_id)
            })
            .map(|(t, p, _)| (t.to_string(), p))
            .collect();
        for (topic, p) in gone {
            let log = self.logs.borrow_mut().remove(&topic, p).unwrap();
            let dir = log.borrow().dir.clone();
            close_log(&log, false).await;
            delete_partition_dir(&dir);
        }
        // The replicas this shard holds: the partitions it leads (its part
        // of the shard table) and those it follows, placed the same way.
        let mut mine: Vec<(String, i32)> = self
            .table
            .borrow()
            .partitions_on(self.id)
            .map(|(t, p)| (t.to_string(), p))
            .collect();
        for t in catalog.topics.values() {
            for (p, m) in t.parts.iter().enumerate() {
                let p = p as i32;
                if m.leader != me
                    && m.replicas.contains(&me)
                    && shard::table::place(&t.name, p, shard::count()) == self.id
                {
                    mine.push((t.name.clone(), p));
                }
            }
        }
        // Replicas no longer here: closed. One the image has reassigned to
        // other brokers is deleted, as Kafka's broker deletes a replica
        // removed from the partition (its data lives on the new replicas,
        // which were in sync before this one was removed).
        // (A set: with 10k partitions a scan per log was 50M comparisons on
        // every metadata version.)
        let kept: std::collections::HashSet<(&str, i32)> =
            mine.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        let moved: Vec<(String, i32)> = self
            .logs
            .borrow()
            .iter()
            .filter(|(t, p, _)| !kept.contains(&(*t, *p)))
            .map(|(t, p, _)| (t.to_string(), p))
            .collect();
        for (topic, p) in moved {
            let log = self.logs.borrow_mut().remove(&topic, p).unwrap();
            let removed = catalog
                .topics
                .get(&topic)
                .and_then(|t| t.parts.get(p as usize))
                .is_some_and(|m| !m.replicas.contains(&me));
            close_log(&log, !removed).await;
            if removed {
                let dir = log.borrow().dir.clone();
                tracing::info!(topic, partition = p, dir = %dir.display(),
                    "no longer a replica of the partition (reassigned): deleting its log");
                delete_partition_dir(&dir);
            } else {
                tracing::info!(
                    topic,
                    partition = p,
                    "not served here now: closing the partition"
                );
            }
        }
        // One partition that cannot open (no descriptors, a bad disk) must not
        // keep the others closed: open all that can, report the failures.
        let mut failed = Vec::new();
        let mut to_open = Vec::new();
        let mut held = Vec::new();
        for (topic, p) in mine {
            // Borrowed, not cloned: a topic's image holds all its partitions,
            // and a clone per partition made opening 10k of them quadratic.
            let meta = &catalog.topics[&topic];
            let config = topic_config::resolve(&effective, &meta.configs);
            if let Some(log) = self.replica_log(&topic, p) {
                log.borrow_mut().config = config;
                held.push((log, topic, p));
                continue;
            }
            to_open.push((topic, p, config));
        }
        self.write_leader_epochs(
            held.iter()
                .map(|(log, topic, p)| (log, &catalog.topics[topic], *p)),
            me,
        )
        .await;
        for (log, topic, p) in &held {
            adopt_role(log, &catalog.topics[topic], *p, me);
        }
        use futures::StreamExt;
        // Many new partitions at once (a new topic's): their files are
        // written without fsyncs, then one syncfs makes them all durable
        // (below). A few: each file's own fsyncs, which do not wait for the
        // write-back of other files, as a syncfs does. The threshold is the
        // commit rounds' (`sluice.log.sync.filesystem.min.partitions`).
        let new_here = to_open
            .iter()
            .filter(|(t, p, _)| {
                !crate::storage::format::partition_dir(&self.cfg.log_dir, t, *p).exists()
            })
            .count();
        let new_files_synced_here = self.new_files_sync.is_some()
            && new_here >= self.cfg.log_sync_filesystem_min_partitions;
        let mut unsynced = Vec::new();
        let mut opening = futures::stream::iter(to_open)
            .map(|(topic, p, config)| {
                let params = OpenParams {
                    root: self.cfg.log_dir.clone(),
                    topic: topic.clone(),
                    partition: p,
                    topic_id: catalog.topics[&topic].id,
                    config,
                    previous_stop: self.previous_stop,
                    recovery_point: self.recovery_points.get(&(topic.clone(), p)).copied(),
                    high_watermark: self.high_watermarks.get(&(topic.clone(), p)).copied(),
                    tail_budget: self.tail_budget.clone(),
                    files: self.files.clone(),
                    me: self.cfg.broker_id,
                    new_files_synced_by_caller: new_files_synced_here,
                };
                async move { (topic, p, open_partition(params).await) }
            })
            .buffer_unordered(OPEN_LOGS_AT_ONCE);
        while let Some((topic, p, opened)) = opening.next().await {
            match opened {
                Ok(o) => {
                    let log = Rc::new(RefCell::new(o.log));
                    if o.needs_sync {
                        unsynced.push((topic, p, log));
                    } else {
                        adopt_role(&log, &catalog.topics[&topic], p, me);
                        self.logs.borrow_mut().insert(topic, p, log);
                    }
                }
                Err(e) => failed.push(format!("{topic}-{p}: {e}")),
            }
        }
        drop(opening);
        if !unsynced.is_empty() {
            // Served only once their names and files are durable: an acks=all
            // append's fdatasync would not make its file's name durable.
            let fs = self.new_files_sync.as_ref();
            let fs = fs.expect("new files are left unsynced only where there is a syncfs");
            let began = std::time::Instant::now();
            match fs.sync().await {
                Ok(()) => {
                    tracing::info!(
                        shard = self.id,
                        partitions = unsynced.len(),
                        sync_ms = began.elapsed().as_millis() as u64,
                        "new partitions' files made durable with one syncfs"
                    );
                    for (topic, p, log) in unsynced {
                        adopt_role(&log, &catalog.topics[&topic], p, me);
                        self.logs.borrow_mut().insert(topic, p, log);
                    }
                }
                Err(e) => {
                    // They hold nothing yet: removed, so a retry
                    // (`reopen_loop`) creates them again from the start.
                    for (topic, p, log) in unsynced {
                        let dir = log.borrow().dir.clone();
                        close_log(&log, false).await;
                        delete_partition_dir(&dir);
                        failed.push(format!("{topic}-{p}: syncfs of its new files: {e}"));
                    }
                }
            }
        }
        self.replicas_changed.notify_all();
        if !failed.is_empty() {
            anyhow::bail!(
                "{} partition(s) could not be opened, first: {}",
                failed.len(),
                failed[0]
            );
        }
        Ok(())
    }

    /// Rewrite, and make durable, the `leader-epoch-checkpoint` of each
    /// replica the image makes this broker lead at a newer epoch, before it
    /// leads (followers truncate by it, KIP-101): all of them at once, off
    /// the shard thread ([`Self::write_epochs_ahead`]), instead of a file
    /// and a directory fsync each on the shard thread in `become_leader`:
    /// about 0.5 ms a partition here, during which the shard served nothing,
    /// so half a second for a failover that moves 1,000 partitions to it.
    async fn write_leader_epochs<'a>(
        &self,
        replicas: impl Iterator<Item = (&'a SharedLog, &'a crate::cluster::TopicMeta, i32)>,
        me: i32,
    ) {
        let (logs, ahead): (Vec<_>, Vec<_>) = replicas
            .filter_map(|(log, meta, p)| {
                let m = meta.parts.get(p as usize).filter(|m| m.leader == me)?;
                let l = log.borrow();
                let ahead = l.epochs_ahead([(m.leader_epoch, l.next_offset)])?;
                Some((log.clone(), ahead))
            })
            .unzip();
        let ahead = std::sync::Arc::new(ahead);
        let durable = self.write_epochs_ahead(&ahead, "leading").await;
        for ((log, a), ok) in logs.iter().zip(ahead.iter()).zip(durable) {
            log.borrow_mut().take_epochs_ahead(a, ok);
        }
    }

    /// Write leader epochs taken ahead for many partitions (a failover's
    /// new leaders, or a follower's first fetched records of a newer epoch)
    /// on the shard's helper threads, made durable with one syncfs where
    /// there are many (from `sluice.log.sync.filesystem.min.partitions`, as
    /// for new partitions). Returns which are durable, for the caller to
    /// take (or forget) each. `before` names what waits for them, for the
    /// log line.
    pub async fn write_epochs_ahead(
        &self,
        ahead: &std::sync::Arc<Vec<crate::storage::epochs::EpochsAhead>>,
        before: &str,
    ) -> Vec<bool> {
        let n = ahead.len();
        if n == 0 {
            return Vec::new();
        }
        let min = self.cfg.log_sync_filesystem_min_partitions;
        // A descriptor of its own, opened before the writes: syncfs reports
        // a write-back error once per descriptor, to whichever caller looks
        // first, and fetchers and metadata changes may sync at once.
        let together = self
            .new_files_sync
            .as_ref()
            .filter(|_| min > 0 && n >= min)
            .and_then(|fs| {
                fs.reopen()
                    .map_err(|e| tracing::warn!(error = %e, "cannot open the log dir for a syncfs; fsyncing each file"))
                    .ok()
            });
        let durable_each = together.is_none();
        let began = std::time::Instant::now();
        // Split over the shard's helper threads: each file is a create, a
        // write and a rename (and fsyncs when not left to the syncfs), about
        // 0.5 ms one after another.
        let per_thread = n.div_ceil(shard::BLOCKING_THREADS_PER_SHARD);
        let mut written: Vec<bool> =
            futures::future::join_all((0..n).step_by(per_thread).map(|from| {
                let ahead = ahead.clone();
                shard::run_blocking(move || {
                    ahead[from..(from + per_thread).min(n)]
                        .iter()
                        .map(|a| match a.write(durable_each) {
                            Ok(written) => written,
                            Err(e) => {
                                tracing::warn!(file = %a.path().display(), error = %e,
                                    "could not write leader-epoch-checkpoint ahead; it is written again in place");
                                false
                            }
                        })
                        .collect::<Vec<bool>>()
                })
            }))
            .await
            .concat();
        if let Some(fs) = together {
            if let Err(e) = fs.sync().await {
                tracing::warn!(error = %e,
                    "syncfs of leader epochs written ahead failed; each partition writes its own in place");
                written.iter_mut().for_each(|w| *w = false);
            }
        }
        tracing::info!(
            shard = self.id,
            partitions = written.iter().filter(|w| **w).count(),
            of = n,
            syncfs = !durable_each,
            ms = began.elapsed().as_millis() as u64,
            "leader epochs made durable before {before}"
        );
        written
    }

    /// Flush everything, close every log (trimming padding, persisting
    /// indexes) so the next start can trust the files.
    pub async fn shutdown(&self) -> Vec<super::checkpoint::PartitionOffsets> {
        self.committer.stop();
        // Let the committer drain what is queued.
        for _ in 0..100 {
            if self
                .logs
                .borrow()
                .all()
                .iter()
                .all(|l| l.borrow().pending.is_empty())
            {
                break;
            }
            shard::sleep(Duration::from_millis(10)).await;
        }
        let logs = std::mem::take(&mut *self.logs.borrow_mut());
        // Several at once: each close waits on its own writes and fdatasync,
        // which overlap on the device (10,000 partitions closed one after
        // another took 8 s).
        use futures::StreamExt;
        futures::stream::iter(logs.all())
            .for_each_concurrent(CLOSE_LOGS_AT_ONCE, |log| async move {
                close_log(&log, true).await
            })
            .await;
        // Closed: written, fsync'ed and final.
        logs.iter()
            .map(|(t, p, log)| {
                let l = log.borrow();
                super::checkpoint::PartitionOffsets {
                    topic: t.to_string(),
                    partition: p,
                    recovery_point: l.written_end,
                    log_start: l.log_start_offset,
                    high_watermark: l.high_watermark,
                }
            })
            .collect()
    }
}

/// Delete a closed partition's directory as Kafka does: renamed aside at
/// once (atomic; never opened again under that name), removed by a
/// background thread so a large partition does not stall the shard.
fn delete_partition_dir(dir: &std::path::Path) {
    let aside = crate::storage::format::delete_dir(dir);
    if let Err(e) = std::fs::rename(dir, &aside) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not delete partition directory");
        return;
    }
    // The rename is what must survive a crash; the rest is cleanup.
    if let Some(parent) = aside.parent() {
        if let Err(e) = std::fs::File::open(parent).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %parent.display(), error = %e, "could not sync the log dir after a rename");
        }
    }
    remove_in_background(aside);
}

/// Remove `dir` (a `-delete` directory) off the shard threads.
pub fn remove_in_background(dir: std::path::PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("sluice-delete".into())
        .spawn(move || {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted partition's files (removed at the next start)");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread to remove a deleted partition's files (removed at the next start)");
    }
}

/// Hand a replica its role, replicas, ISR and leader epoch from the image.
fn adopt_role(log: &SharedLog, meta: &crate::cluster::TopicMeta, partition: i32, me: i32) {
    use crate::storage::replica::Role;
    let Some(m) = meta.parts.get(partition as usize) else {
        // A legacy image without placement: this broker leads alone.
        log.borrow_mut().update_high_watermark();
        return;
    };
    let mut l = log.borrow_mut();
    let role = if m.leader == me {
        Role::Leader
    } else {
        Role::Follower { leader: m.leader }
    };
    let was_leader = l.replication.is_leader();
    let new_epoch = l.leader_epoch != m.leader_epoch;
    l.replication
        .adopt(role, &m.replicas, &m.isr, m.partition_epoch);
    if role == Role::Leader {
        if !was_leader || new_epoch {
            l.become_leader(m.leader_epoch);
            let end = l.written_end;
            l.replication.start_clocks(end, crate::storage::now_ms());
            tracing::info!(topic = %l.topic, partition, leader_epoch = m.leader_epoch,
                isr = ?m.isr, "leading the partition");
        }
        l.update_high_watermark();
    } else {
        if was_leader || new_epoch {
            tracing::info!(topic = %l.topic, partition, leader = m.leader,
                leader_epoch = m.leader_epoch, "following the partition");
        }
        l.become_follower(m.leader_epoch);
    }
}

/// How long a request waits for a partition its shard is still opening.
pub const OPEN_WAIT_MS: u64 = 5_000;

/// How often partitions this shard owns but could not open are retried.
pub const REOPEN_INTERVAL_MS: u64 = 10_000;

/// Retry opening partitions that failed to open (e.g. on a full disk, until
/// space is freed), so they come back without a restart.
async fn reopen_loop(state: Rc<ShardState>) {
    loop {
        shard::sleep(Duration::from_millis(REOPEN_INTERVAL_MS)).await;
        if state.applying.get() {
            // Partitions being opened right now are not offline.
            continue;
        }
        let missing = {
            let logs = state.logs.borrow();
            state
                .table
                .borrow()
                .partitions_on(state.id)
                .filter(|(t, p)| logs.get(t, *p).is_none())
                .count()
        };
        if missing == 0 {
            continue;
        }
        match state.apply_catalog(state.catalog()).await {
            Ok(()) => tracing::info!(
                partitions = missing,
                "reopened partitions that were offline"
            ),
            Err(e) => tracing::debug!(error = %e, "partitions still offline"),
        }
    }
}

/// Logs a shard closes at once when it shuts down.
const CLOSE_LOGS_AT_ONCE: usize = 64;

/// Logs a shard opens at once (at start, or when a topic is created): each
/// open is a few file opens, stats and reads, which wait on io_uring's
/// workers one after the other; many at once share their submissions.
const OPEN_LOGS_AT_ONCE: usize = 64;

/// Close one log's writer; the log refuses appends afterwards. With
/// `snapshot`, also write the producer state at the log end (clean shutdown:
/// the next start reads no batch to rebuild it).
async fn close_log(log: &SharedLog, snapshot: bool) {
    log.borrow_mut().closed = true;
    // Wait for an in-flight flush to hand the writer back.
    for _ in 0..500 {
        if log.borrow().writer.is_some() {
            break;
        }
        shard::sleep(Duration::from_millis(10)).await;
    }
    let Some(mut w) = log.borrow_mut().writer.take() else {
        return;
    };
    let r = persist_active_index(log, &mut w, true).await;
    if let Err(e) = r
        .map_err(crate::storage::StorageError::from)
        .and(close_writer(w).await)
    {
        let l = log.borrow();
        tracing::error!(topic = %l.topic, partition = l.partition, error = %e, "closing log failed");
        return;
    }
    let mut l = log.borrow_mut();
    let end = l.written_end;
    // As Kafka's takeSnapshot: only when there is something new to say (an
    // empty log replays nothing at the next start anyway).
    if snapshot && l.snapshot_offset != Some(end) && end > l.log_start_offset {
        if let Err(e) = l.write_producer_snapshot(end) {
            tracing::warn!(topic = %l.topic, partition = l.partition, error = %e,
                "could not write the producer snapshot");
        }
    }
}

/// Background retention: every `log.retention.check.interval.ms`.
pub async fn retention_loop(state: Rc<ShardState>) {
    loop {
        shard::sleep(Duration::from_millis(
            state.cfg.log_retention_check_interval_ms,
        ))
        .await;
        let logs = state.logs.borrow().all();
        for log in logs {
            retention::enforce(&log, now_ms());
        }
    }
}

/// Forget producer ids idle past `producer.id.expiration.ms`, every
/// `producer.id.expiration.check.interval.ms` (Kafka's defaults: 1 day, 10 min).
pub async fn producer_expiration_loop(state: Rc<ShardState>) {
    loop {
        shard::sleep(Duration::from_millis(
            state.cfg.producer_id_expiration_check_interval_ms,
        ))
        .await;
        let now = now_ms();
        for log in state.logs.borrow().all() {
            let mut l = log.borrow_mut();
            let ms = l.config.producer_id_expiration_ms;
            let n = l.producers.remove_expired(now, ms);
            if n > 0 {
                tracing::debug!(topic = %l.topic, partition = l.partition, expired = n,
                    "forgot idle producer ids");
            }
        }
    }
}

/// A partition's producer snapshot is brought forward once this much was
/// written after the last one: a start after an unclean stop then reads at
/// most about this much of its batch headers to rebuild the producers'
/// state (16 MB of 16 KB batches: about 30 ms here). Fewer snapshots of
/// partitions that write little.
const PRODUCER_SNAPSHOT_MIN_BYTES: u64 = 16 << 20;

/// Every `log.flush.offset.checkpoint.interval.ms` (the recovery point's
/// cadence): a producer snapshot at the written end of each partition that
/// wrote `PRODUCER_SNAPSHOT_MIN_BYTES` since its last one. Kafka snapshots
/// only at a roll and a clean close, so after a kill -9 it rebuilds from the
/// active segment's start, up to `log.segment.bytes` of it.
pub async fn producer_snapshot_loop(state: Rc<ShardState>) {
    loop {
        shard::sleep(Duration::from_millis(
            state.cfg.recovery_point_checkpoint_interval_ms,
        ))
        .await;
        for log in state.logs.borrow().all() {
            let mut l = log.borrow_mut();
            if let Err(e) = l.write_periodic_producer_snapshot(PRODUCER_SNAPSHOT_MIN_BYTES) {
                tracing::warn!(topic = %l.topic, partition = l.partition, error = %e,
                    "could not write the producer snapshot");
            }
        }
    }
}

/// This shard's partition logs, looked up by `&str` topic without allocating.
#[derive(Default)]
pub struct PartitionLogs(HashMap<String, HashMap<i32, SharedLog>>);

impl PartitionLogs {
    pub fn get(&self, topic: &str, partition: i32) -> Option<SharedLog> {
        self.0.get(topic)?.get(&partition).cloned()
    }

    pub fn insert(&mut self, topic: String, partition: i32, log: SharedLog) {
        self.0.entry(topic).or_default().insert(partition, log);
    }

    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<SharedLog> {
        let parts = self.0.get_mut(topic)?;
        let log = parts.remove(&partition);
        if parts.is_empty() {
            self.0.remove(topic);
        }
        log
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, &SharedLog)> {
        self.0
            .iter()
            .flat_map(|(t, parts)| parts.iter().map(move |(p, l)| (t.as_str(), *p, l)))
    }

    pub fn all(&self) -> Vec<SharedLog> {
        self.iter().map(|(_, _, l)| l.clone()).collect()
    }
}
