//! The broker process: start shards, open logs, serve, shut down cleanly.

pub mod checkpoint;
pub mod controller;
pub mod state;

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::BrokerConfig;
use crate::shard::{self, RuntimeConfig};
use crate::storage::format;
pub use state::ShardState;

/// Read or create `meta.properties`; returns the cluster id.
fn ensure_meta_properties(cfg: &BrokerConfig) -> anyhow::Result<String> {
    let path = cfg.log_dir.join(format::META_PROPERTIES_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let (cluster_id, node_id) = format::decode_meta_properties(&text)
            .ok_or_else(|| anyhow::anyhow!("{} is malformed", path.display()))?;
        if node_id != cfg.broker_id {
            anyhow::bail!(
                "{} belongs to broker.id {node_id}, but this broker is configured as {}",
                path.display(),
                cfg.broker_id
            );
        }
        return Ok(cluster_id);
    }
    let cluster_id = format::base64_url(uuid::Uuid::new_v4().as_bytes());
    crate::storage::log::write_atomically(
        &path,
        format::encode_meta_properties(&cluster_id, cfg.broker_id).as_bytes(),
    )?;
    Ok(cluster_id)
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

pub fn run(cfg: BrokerConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.log_dir)
        .map_err(|e| anyhow::anyhow!("cannot create log.dirs {}: {e}", cfg.log_dir.display()))?;
    // Before anything reads or repairs the data: one broker per log dir.
    let _lock = crate::storage::dir_lock::DirLock::acquire(&cfg.log_dir)?;
    // The shards share the port through SO_REUSEPORT, which would just as
    // silently share it with another broker: check nobody holds it first.
    wait_for_port(cfg.listener)?;
    let fresh = !cfg.log_dir.join(format::META_PROPERTIES_FILE).exists();
    let cluster_id = ensure_meta_properties(&cfg)?;
    let marker = cfg.log_dir.join(format::CLEAN_SHUTDOWN_FILE);
    let clean = marker.exists();
    if clean {
        std::fs::remove_file(&marker)?;
    } else if !fresh {
        tracing::info!("no clean-shutdown marker: partition tails will be checked");
    }
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    raise_resource_limits();

    let cpus = shard::available_cpus();
    let nr_shards = if cfg.smp == 0 { cpus.len() } else { cfg.smp };
    let rt = RuntimeConfig {
        cpus,
        nr_shards,
        cross_shard_queue_depth: cfg.cross_shard_queue_depth,
        io_memory_bytes: cfg.io_memory_bytes_per_shard,
    };
    let cfg = Arc::new(cfg);
    let failed = Arc::new(AtomicBool::new(false));
    let started = Arc::new(StartBarrier {
        shards: nr_shards,
        started: AtomicUsize::new(0),
    });
    // Every shard's final offsets, for the checkpoint files written last.
    let closed: Arc<std::sync::Mutex<Vec<checkpoint::PartitionOffsets>>> = Default::default();
    let (cfg2, stop2, failed2, closed2) =
        (cfg.clone(), stop.clone(), failed.clone(), closed.clone());
    shard::run(rt, move |id| {
        let (cfg, stop, failed, cluster_id, started, closed) = (
            cfg2.clone(),
            stop2.clone(),
            failed2.clone(),
            cluster_id.clone(),
            started.clone(),
            closed2.clone(),
        );
        async move {
            let ended = shard_main(id, cfg, cluster_id, clean, stop.clone(), started).await;
            let ended = ended.map(|offsets| closed.lock().expect("not poisoned").extend(offsets));
            if let Err(e) = ended {
                tracing::error!(shard = id, error = %e, "shard failed");
                failed.store(true, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
            }
        }
    })?;
    if failed.load(Ordering::SeqCst) {
        anyhow::bail!("broker stopped after an error (see log above)");
    }
    let mut offsets = std::mem::take(&mut *closed.lock().expect("not poisoned"));
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    checkpoint::write_all(&cfg.log_dir, &offsets)?;
    std::fs::write(&marker, b"")?;
    tracing::info!("clean shutdown complete");
    Ok(())
}

/// glommio registers DMA memory, which counts against RLIMIT_MEMLOCK; lift the
/// soft limit to the hard one so the default per-shard io memory fits.
fn raise_resource_limits() {
    raise_limit(libc::RLIMIT_MEMLOCK);
    // Three files per partition: 10k partitions need 30k descriptors.
    if let Some(n) = raise_limit(libc::RLIMIT_NOFILE) {
        tracing::debug!(
            open_files_limit = n,
            "raised RLIMIT_NOFILE to its hard limit"
        );
    }
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

async fn shard_main(
    id: shard::ShardId,
    cfg: Arc<BrokerConfig>,
    cluster_id: String,
    clean: bool,
    stop: Arc<AtomicBool>,
    started: Arc<StartBarrier>,
) -> anyhow::Result<Vec<checkpoint::PartitionOffsets>> {
    crate::shard::io::prime_device_probe(&cfg.log_dir.join(format::META_PROPERTIES_FILE)).await?;
    let state = ShardState::start(id, (*cfg).clone(), cluster_id, clean).await?;
    if !started.arrive_and_wait(&stop).await {
        return Ok(state.shutdown().await);
    }
    let listener = crate::net::listen(&state)?;
    if id == 0 {
        tracing::info!(
            shards = shard::count(),
            "sluice broker listening on {}",
            cfg.listener
        );
    }
    let server = shard::spawn(crate::net::serve(listener, state.clone()));
    let retention = shard::spawn(state::retention_loop(state.clone()));
    let expiration = shard::spawn(state::producer_expiration_loop(state.clone()));
    let checkpoints = (id == controller::CONTROLLER_SHARD)
        .then(|| shard::spawn(checkpoint::checkpoint_loop(state.clone())));
    while !stop.load(Ordering::Relaxed) {
        shard::sleep(Duration::from_millis(100)).await;
    }
    drop(checkpoints);
    drop(server);
    drop(retention);
    drop(expiration);
    Ok(state.shutdown().await)
}

pub fn data_dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

pub type State = Rc<ShardState>;
