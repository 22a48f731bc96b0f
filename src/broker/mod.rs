//! The broker process: start shards, open logs, serve, shut down cleanly.

pub mod checkpoint;
pub mod controller;
mod fetcher;
pub mod metadata;
pub mod replication;
pub mod state;

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::BrokerConfig;
use crate::shard::{self, RuntimeConfig};
use crate::storage::recovery::PreviousStop;
use crate::storage::{format, LogDirHealth};
pub use state::ShardState;

/// The cluster id of `meta.properties`, if the log dir has one (checking it
/// belongs to this node).
fn read_meta_properties(cfg: &BrokerConfig) -> anyhow::Result<Option<String>> {
    let path = cfg.log_dir.join(format::META_PROPERTIES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let (cluster_id, node_id) = format::decode_meta_properties(&text)
        .ok_or_else(|| anyhow::anyhow!("{} is malformed", path.display()))?;
    if node_id != cfg.broker_id {
        anyhow::bail!(
            "{} belongs to node.id {node_id}, but this broker is configured as {}",
            path.display(),
            cfg.broker_id
        );
    }
    Ok(Some(cluster_id))
}

/// Write `meta.properties` once the cluster id is known, or check that the
/// one there names this cluster.
fn ensure_meta_properties(cfg: &BrokerConfig, cluster_id: &str) -> anyhow::Result<()> {
    let path = cfg.log_dir.join(format::META_PROPERTIES_FILE);
    match read_meta_properties(cfg)? {
        Some(id) if id == cluster_id => Ok(()),
        Some(id) => anyhow::bail!(
            "{} belongs to cluster {id}, but the metadata quorum is cluster {cluster_id}: \
             this data directory was formatted for another cluster",
            path.display()
        ),
        None => Ok(crate::storage::replace::write_atomically(
            &path,
            format::encode_meta_properties(cluster_id, cfg.broker_id).as_bytes(),
        )?),
    }
}

/// Run the broker until SIGTERM/SIGINT.
/// How long start-up waits for a port still held by a process that just died:
/// io_uring releases a dead process's sockets asynchronously.
const PORT_RELEASE_WAIT_MS: u64 = 3_000;

fn wait_for_port(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_millis(PORT_RELEASE_WAIT_MS);
    loop {
        match crate::shard::net::probe_exclusive(addr) {
            Ok(()) => return Ok(()),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => anyhow::bail!("cannot listen on {addr}: {e}"),
        }
    }
}

pub fn run(mut cfg: BrokerConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.log_dir)
        .map_err(|e| anyhow::anyhow!("cannot create log.dirs {}: {e}", cfg.log_dir.display()))?;
    // Before anything reads or repairs the data: one broker per log dir.
    let _lock = crate::storage::dir_lock::DirLock::acquire(&cfg.log_dir)?;
    // Partition directories whose deletion a stop interrupted.
    for entry in std::fs::read_dir(&cfg.log_dir)?.flatten() {
        if format::is_delete_dir(&entry.file_name().to_string_lossy()) && entry.path().is_dir() {
            tracing::info!(dir = %entry.path().display(), "removing a partition deleted before the last stop");
            state::remove_in_background(entry.path());
        }
    }
    // The shards share the port through SO_REUSEPORT, which would just as
    // silently share it with another broker: check nobody holds it first.
    wait_for_port(cfg.listener)?;
    if cfg.quorum.voters.len() > 1 {
        // The controller listener: taken by another process is a clear
        // refusal, not a node that silently never joins.
        if let Some(addr) = cfg.quorum.listen_addr(cfg.broker_id)? {
            wait_for_port(addr).map_err(|e| anyhow::anyhow!("controller listener: {e}"))?;
        }
    }
    let fresh = !cfg.log_dir.join(format::META_PROPERTIES_FILE).exists();
    let meta_cluster_id = read_meta_properties(&cfg)?;
    let (image, metadata_log) = metadata::initial_image(&cfg.log_dir, &cfg.quorum, cfg.broker_id)?;
    if let (Some(a), Some(b)) = (&meta_cluster_id, &image.cluster_id) {
        if a != b {
            anyhow::bail!(
                "{} belongs to cluster {a}, but its metadata log is cluster {b}",
                cfg.log_dir.display()
            );
        }
    }
    tracing::info!(
        node_id = cfg.broker_id,
        voters = ?cfg.quorum.voter_ids(cfg.broker_id),
        metadata_version = image.version,
        topics = image.topics.len(),
        "metadata log read"
    );
    // The image is handed to each shard as its first catalogue; shard 0
    // also runs the quorum node from where the log left off.
    // (A Mutex only because the catalogue's lazy id index is not Sync.)
    let image = Arc::new(std::sync::Mutex::new(image));
    let metadata_log = Arc::new(std::sync::Mutex::new(Some(metadata_log)));
    let previous_stop = crate::storage::recovery::previous_stop(&cfg.log_dir, fresh)?;
    // `stop`: every shard shuts down now. `term`: SIGTERM/SIGINT, which a
    // serving broker answers with a controlled shutdown first (shard 0 moves
    // its leadership away, then sets `stop`); one still starting just stops.
    let stop = Arc::new(AtomicBool::new(false));
    let term = Arc::new(AtomicBool::new(false));
    let serving = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, term.clone())?;
    {
        let (stop, term, serving) = (stop.clone(), term.clone(), serving.clone());
        std::thread::Builder::new()
            .name("sluice-signals".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if term.load(Ordering::SeqCst) && !serving.load(Ordering::SeqCst) {
                        stop.store(true, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(SIGNAL_POLL_MS));
                }
            })?;
    }
    raise_resource_limits();

    let cpus = shard::available_cpus();
    let nr_shards = if cfg.smp == 0 { cpus.len() } else { cfg.smp };
    cfg.log_open_files_max = Some(log_open_files(cfg.log_open_files_max, nr_shards));
    let rt = RuntimeConfig {
        cpus,
        pin: cfg.shard_thread_affinity,
        nr_shards,
        cross_shard_queue_depth: cfg.cross_shard_queue_depth,
        io_memory_bytes: cfg.io_memory_bytes_per_shard,
        sched_slice_us: (cfg.shard_sched_slice_us > 0).then_some(cfg.shard_sched_slice_us),
    };
    let cfg = Arc::new(cfg);
    let failed = Arc::new(AtomicBool::new(false));
    // Three rendezvous: every shard's state exists before the first
    // metadata version is handed out; every shard is ready before any
    // listens; every shard listens before the port is checked as ours.
    let barriers = Arc::new([(); 3].map(|_| StartBarrier {
        shards: nr_shards,
        started: AtomicUsize::new(0),
    }));
    // Every shard's final offsets, for the checkpoint files written last.
    let closed: Arc<std::sync::Mutex<Vec<checkpoint::PartitionOffsets>>> = Default::default();
    let (cfg2, stop2, failed2, closed2) =
        (cfg.clone(), stop.clone(), failed.clone(), closed.clone());
    let health = LogDirHealth::default();
    let health2 = health.clone();
    let metrics = crate::metrics::BrokerMetrics::new(nr_shards);
    let metrics_server = match cfg.metrics_listener {
        Some(addr) => Some(crate::metrics::http::start(
            addr,
            metrics.clone(),
            stop.clone(),
        )?),
        None => None,
    };
    let signals = Signals { term, serving };
    shard::run(rt, move |id| {
        let (cfg, stop, failed, barriers, closed, signals) = (
            cfg2.clone(),
            stop2.clone(),
            failed2.clone(),
            barriers.clone(),
            closed2.clone(),
            signals.clone(),
        );
        let image = image.lock().expect("not poisoned").clone();
        let start = ShardStart {
            image,
            // Only the controller shard runs the quorum node.
            metadata_log: (id == controller::CONTROLLER_SHARD)
                .then(|| metadata_log.lock().expect("not poisoned").take())
                .flatten(),
            meta_cluster_id: meta_cluster_id.clone(),
            previous_stop,
            health: health2.clone(),
            metrics: metrics.shard(id),
        };
        async move {
            let ended = shard_main(id, cfg, start, stop.clone(), signals, barriers).await;
            let ended = ended.map(|offsets| closed.lock().expect("not poisoned").extend(offsets));
            if let Err(e) = ended {
                tracing::error!(shard = id, error = %e, "shard failed");
                failed.store(true, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
            }
        }
    })?;
    if let Some((_, thread)) = metrics_server {
        // `stop` is set once the shards are done; the thread sees it within
        // its poll interval.
        stop.store(true, Ordering::SeqCst);
        let _ = thread.join();
    }
    if let Some(cause) = health.failure() {
        // No checkpoints, no clean-shutdown marker and no boot id: the next
        // start checks every tail against what was fsync'ed, even in this
        // boot (a failing device may not hold what it said it wrote).
        let _ = std::fs::remove_file(cfg.log_dir.join(format::BOOT_ID_FILE));
        anyhow::bail!(
            "log dir {} failed ({cause}); the broker shut down, as Kafka does when its last log dir fails",
            cfg.log_dir.display()
        );
    }
    if failed.load(Ordering::SeqCst) {
        anyhow::bail!("broker stopped after an error (see log above)");
    }
    let mut offsets = std::mem::take(&mut *closed.lock().expect("not poisoned"));
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    checkpoint::write_all(&cfg.log_dir, &offsets)?;
    std::fs::write(cfg.log_dir.join(format::CLEAN_SHUTDOWN_FILE), b"")?;
    tracing::info!("clean shutdown complete");
    Ok(())
}

/// glommio registers DMA memory, which counts against RLIMIT_MEMLOCK; lift the
/// soft limit to the hard one so the default per-shard io memory fits.
fn raise_resource_limits() {
    raise_limit(libc::RLIMIT_MEMLOCK);
    // Segment files are bounded by `sluice.log.open.files.max`, derived from
    // this limit; connections take the rest.
    if let Some(n) = raise_limit(libc::RLIMIT_NOFILE) {
        tracing::debug!(
            open_files_limit = n,
            "raised RLIMIT_NOFILE to its hard limit"
        );
    }
}

/// Segment files the broker may keep open (`sluice.log.open.files.max`):
/// as configured, or three quarters of RLIMIT_NOFILE, never more than that
/// (connections, listeners and io_uring rings need the rest), and at least
/// the per-shard minimum.
fn log_open_files(configured: Option<usize>, shards: usize) -> usize {
    // SAFETY: getrlimit on our own process into a local struct.
    let nofile = unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur as usize
        } else {
            1024
        }
    };
    let room = nofile / 4 * 3;
    let floor = crate::storage::files::MIN_OPEN_FILES_PER_SHARD * shards;
    let n = match configured {
        Some(n) if n > room => {
            tracing::warn!(
                configured = n,
                open_files_limit = nofile,
                using = room,
                "sluice.log.open.files.max is more than three quarters of RLIMIT_NOFILE; lowered"
            );
            room
        }
        Some(n) => n,
        None => room,
    };
    let n = n.max(floor);
    tracing::info!(
        log_open_files_max = n,
        per_shard = n / shards,
        "segment files kept open at most"
    );
    n
}

/// Raise a soft resource limit to its hard limit; the new value if raised.
fn raise_limit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(resource, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(resource, &lim) == 0 {
                return Some(lim.rlim_cur);
            }
        }
    }
    None
}

/// Start-up rendezvous: no shard listens before every shard has opened its
/// partitions, so a client is never accepted by a broker that cannot yet
/// serve what it asks for (its partitions may live on another shard).
struct StartBarrier {
    shards: usize,
    started: AtomicUsize,
}

impl StartBarrier {
    /// Count this shard in and wait for the others; false if the broker is
    /// stopping (a shard failed) before all arrived.
    async fn arrive_and_wait(&self, stop: &AtomicBool) -> bool {
        self.started.fetch_add(1, Ordering::SeqCst);
        while self.started.load(Ordering::SeqCst) < self.shards {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            shard::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// How often the signal watcher looks at the flags.
const SIGNAL_POLL_MS: u64 = 20;

/// SIGTERM/SIGINT seen, and whether the broker serves yet.
#[derive(Clone)]
struct Signals {
    term: Arc<AtomicBool>,
    serving: Arc<AtomicBool>,
}

/// What one shard starts from.
struct ShardStart {
    image: crate::cluster::Catalog,
    metadata_log: Option<crate::quorum::CommittedLog>,
    meta_cluster_id: Option<String>,
    previous_stop: PreviousStop,
    /// The log dir's, shared by every shard.
    health: LogDirHealth,
    /// This shard's latency histograms.
    metrics: Arc<crate::metrics::ShardMetrics>,
}

/// How often a starting shard looks whether the cluster has its id yet.
const CLUSTER_ID_POLL_MS: u64 = 10;

async fn shard_main(
    id: shard::ShardId,
    cfg: Arc<BrokerConfig>,
    start: ShardStart,
    stop: Arc<AtomicBool>,
    signals: Signals,
    barriers: Arc<[StartBarrier; 3]>,
) -> anyhow::Result<Vec<checkpoint::PartitionOffsets>> {
    let [states_ready, started, bound] = &*barriers;
    // Any non-empty file of the log dir's device; the metadata log's state
    // exists from the first start on (meta.properties may not yet).
    let probe = cfg
        .log_dir
        .join(crate::quorum::METADATA_DIR)
        .join(crate::quorum::format::STATE_FILE);
    crate::shard::io::prime_device_probe(&probe).await?;
    let state = ShardState::start(
        id,
        (*cfg).clone(),
        start.image,
        start.previous_stop,
        start.health.clone(),
        start.metrics.clone(),
    )
    .await?;
    if !states_ready.arrive_and_wait(&stop).await {
        return Ok(state.shutdown().await);
    }
    if let Some(log) = start.metadata_log {
        let plane = metadata::start(
            &cfg,
            &log,
            metadata::Bootstrap {
                cluster_id: start.meta_cluster_id,
            },
        )?;
        plane.set_change_server(Rc::new(|from, payload| {
            Box::pin(controller::serve_forwarded(from, payload))
        }));
    }
    // No client is served before the cluster has an id (a new cluster gets
    // it from its first leader).
    let cluster_id = loop {
        if let Some(id) = state.catalog().cluster_id.clone() {
            break id;
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(state.shutdown().await);
        }
        shard::sleep(Duration::from_millis(CLUSTER_ID_POLL_MS)).await;
    };
    if id == controller::CONTROLLER_SHARD {
        ensure_meta_properties(&cfg, &cluster_id)?;
        // Nor before this broker is registered with the quorum's leader (so
        // admin requests have a controller, and topics can be placed here);
        // the other shards wait for this one at the barrier.
        if let Some(plane) = metadata::plane() {
            while !plane.registered(&state.catalog()) || !plane.bootstrap_done() {
                if stop.load(Ordering::Relaxed) {
                    return Ok(state.shutdown().await);
                }
                shard::sleep(Duration::from_millis(CLUSTER_ID_POLL_MS)).await;
            }
        }
    }
    if !started.arrive_and_wait(&stop).await {
        return Ok(state.shutdown().await);
    }
    let listener = crate::net::listen(&state)?;
    if !bound.arrive_and_wait(&stop).await {
        return Ok(state.shutdown().await);
    }
    if id == 0 {
        // The probe at start-up passed, but a broker that started at the
        // same time on the same port passed it too: SO_REUSEPORT then lets
        // both listen, and clients land on either. Whoever sees the other
        // refuses to serve.
        match crate::shard::net::count_listeners(cfg.listener) {
            Ok(listening) if listening > shard::count() => {
                drop(listener);
                state.shutdown().await;
                anyhow::bail!(
                    "cannot listen on {}: another process listens there too ({listening} listening sockets for {} shards); stop the other one or use another port",
                    cfg.listener,
                    shard::count()
                );
            }
            Ok(_) => {}
            // Not knowable here (a sandbox without /proc/net): the start-up
            // probe is all there is.
            Err(e) => tracing::warn!(error = %e, "cannot count the listeners on the client port"),
        }
        let leader = metadata::plane().and_then(|p| p.node().leader());
        tracing::info!(
            shards = shard::count(),
            node_id = cfg.broker_id,
            cluster_id,
            quorum_voters = ?cfg.quorum.voter_ids(cfg.broker_id),
            quorum_leader = ?leader,
            "sluice broker listening on {}",
            cfg.listener
        );
    }
    let server = shard::spawn(crate::net::serve(listener, state.clone()));
    let retention = shard::spawn(state::retention_loop(state.clone()));
    let expiration = shard::spawn(state::producer_expiration_loop(state.clone()));
    let snapshots = shard::spawn(state::producer_snapshot_loop(state.clone()));
    let fetcher = shard::spawn(fetcher::run(state.clone()));
    let isr = shard::spawn(replication::isr_expiration_loop(state.clone()));
    let checkpoints = (id == controller::CONTROLLER_SHARD)
        .then(|| shard::spawn(checkpoint::checkpoint_loop(state.clone())));
    if id == controller::CONTROLLER_SHARD {
        signals.serving.store(true, Ordering::SeqCst);
    }
    while !stop.load(Ordering::Relaxed) {
        let dir_failed = id == controller::CONTROLLER_SHARD && {
            if let Some(cause) = metadata::plane().and_then(|p| p.storage_failure()) {
                start.health.fail(&format!("metadata log: {cause}"));
            }
            start.health.failure().is_some()
        };
        if dir_failed {
            tracing::error!("the log dir has failed: moving leadership away, then shutting down");
        }
        if id == controller::CONTROLLER_SHARD && (dir_failed || signals.term.load(Ordering::SeqCst))
        {
            // Every shard still serves while leadership moves away.
            if let Some(plane) = metadata::plane() {
                let r = &cfg.replication;
                if r.controlled_shutdown_enable {
                    let timeout = Duration::from_millis(r.controlled_shutdown_timeout_ms);
                    plane.controlled_shutdown(timeout).await;
                }
            }
            stop.store(true, Ordering::SeqCst);
            break;
        }
        shard::sleep(Duration::from_millis(100)).await;
    }
    drop(checkpoints);
    drop(server);
    drop(retention);
    drop(expiration);
    drop(snapshots);
    drop(fetcher);
    drop(isr);
    Ok(state.shutdown().await)
}

pub fn data_dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

pub type State = Rc<ShardState>;
