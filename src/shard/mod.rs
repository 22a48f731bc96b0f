//! Thread-per-core runtime: one pinned executor per shard, cross-shard calls,
//! timers and local tasks.
//!
//! This is the only module that names glommio. Everything else sees `ShardId`,
//! `submit_to`, `spawn`, `sleep` and the I/O wrappers in `io` and `net`, so a
//! runtime swap stays a local change.

pub mod io;
pub mod net;
pub mod notify;
pub mod table;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender};
use glommio::{LocalExecutorBuilder, Placement};

pub use table::ShardTable;

/// Index of a shard, 0..nr_shards. Shard 0 also acts as the metadata controller.
pub type ShardId = usize;

/// A unit of work shipped to another shard. It is `Send` (owned data only) and
/// builds its future on the target shard, where thread-local state is reachable.
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

struct Runtime {
    id: ShardId,
    nr_shards: usize,
    /// `peers[i]` sends to shard i; `None` for ourselves.
    peers: Vec<Option<ConnectedSender<Job>>>,
}

thread_local! {
    static RUNTIME: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
}

fn runtime() -> Rc<Runtime> {
    RUNTIME.with(|r| r.borrow().clone().expect("not on a shard thread"))
}

/// This shard's id.
pub fn current() -> ShardId {
    runtime().id
}

/// How many shards this process runs.
pub fn count() -> usize {
    runtime().nr_shards
}

/// Runtime sizing knobs, named after what they bound.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// CPUs to pin shard i to (`cpus[i % len]`).
    pub cpus: Vec<usize>,
    pub nr_shards: usize,
    /// Depth of each cross-shard queue; senders wait when it is full.
    pub cross_shard_queue_depth: usize,
    /// Memory glommio pre-registers for DMA buffers per shard.
    pub io_memory_bytes: usize,
}

/// CPUs this process may run on, in order.
pub fn available_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        })
}

/// Start `nr_shards` pinned executors, wire the cross-shard mesh, run `main` on
/// each and block until all return.
pub fn run<F, Fut>(cfg: RuntimeConfig, main: F) -> std::io::Result<()>
where
    F: Fn(ShardId) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let n = cfg.nr_shards;
    assert!(n >= 1 && !cfg.cpus.is_empty());
    // senders[from][to], receivers[to][from]: one SPSC queue per ordered pair.
    let mut senders: Vec<Vec<Option<shared_channel::SharedSender<Job>>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut receivers: Vec<Vec<shared_channel::SharedReceiver<Job>>> =
        (0..n).map(|_| Vec::new()).collect();
    for (from, row) in senders.iter_mut().enumerate() {
        for (to, slot) in row.iter_mut().enumerate() {
            if from != to {
                let (tx, rx) = shared_channel::new_bounded(cfg.cross_shard_queue_depth);
                *slot = Some(tx);
                receivers[to].push(rx);
            }
        }
    }
    let mut handles = Vec::with_capacity(n);
    for (id, (txs, rxs)) in senders.into_iter().zip(receivers).enumerate() {
        let cpu = cfg.cpus[id % cfg.cpus.len()];
        let main = main.clone();
        let h = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("shard-{id}"))
            .io_memory(cfg.io_memory_bytes)
            .spawn(move || async move {
                // A sender's connect waits for its receiver's, so both sides
                // of every pair must connect concurrently or shards deadlock.
                let senders = futures::future::join_all(txs.into_iter().map(|tx| async move {
                    match tx {
                        Some(tx) => Some(tx.connect().await),
                        None => None,
                    }
                }));
                let receivers = futures::future::join_all(rxs.into_iter().map(|rx| rx.connect()));
                let (peers, receivers) = futures::join!(senders, receivers);
                let rt = Rc::new(Runtime {
                    id,
                    nr_shards: n,
                    peers,
                });
                RUNTIME.with(|r| *r.borrow_mut() = Some(rt));
                for rx in receivers {
                    let rx: ConnectedReceiver<Job> = rx;
                    glommio::spawn_local(async move {
                        while let Some(job) = rx.recv().await {
                            glommio::spawn_local(job()).detach();
                        }
                    })
                    .detach();
                }
                main(id).await;
                RUNTIME.with(|r| r.borrow_mut().take());
            })?;
        handles.push(h);
    }
    for h in handles {
        h.join()
            .map_err(|e| std::io::Error::other(format!("shard thread failed: {e:?}")))?;
    }
    Ok(())
}

/// The target shard is gone (shutting down) and dropped the call.
#[derive(Debug, thiserror::Error)]
#[error("shard {0} is not answering (shutting down)")]
pub struct ShardGone(pub ShardId);

/// Run `f` on shard `target` and bring its (owned) result back. Runs inline when
/// `target` is this shard, so callers need no special case for local work.
pub async fn submit_to<F, Fut, T>(target: ShardId, f: F) -> Result<T, ShardGone>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let rt = runtime();
    if target == rt.id {
        return Ok(f().await);
    }
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        Box::pin(async move {
            let _ = tx.send(f().await);
        })
    });
    let sender = rt.peers[target].as_ref().expect("peer sender");
    if sender.send(job).await.is_err() {
        return Err(ShardGone(target));
    }
    rx.await.map_err(|_| ShardGone(target))
}

/// A task on this shard; await it for its output or `detach` it.
pub struct Task<T>(glommio::Task<T>);

impl<T> Task<T> {
    pub fn detach(self) {
        self.0.detach();
    }
}

impl<T> Future for Task<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Spawn a task on this shard's executor.
pub fn spawn<T: 'static>(f: impl Future<Output = T> + 'static) -> Task<T> {
    Task(glommio::spawn_local(f))
}

pub async fn sleep(d: Duration) {
    glommio::timer::sleep(d).await;
}

/// `Some(output)` if `f` finishes within `d`, `None` otherwise.
pub async fn timeout<T>(d: Duration, f: impl Future<Output = T>) -> Option<T> {
    use futures::future::{select, Either};
    let f = std::pin::pin!(f);
    let t = std::pin::pin!(sleep(d));
    match select(f, t).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

/// Give other tasks a turn if this one has run for its time slice.
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await;
}

/// Run `f` to completion on a one-off executor on the calling thread (benches,
/// tools and tests that need the I/O types outside a running broker).
pub fn block_on<T>(f: impl Future<Output = T>) -> T {
    let ex = glommio::LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(8 << 20)
        .make()
        .expect("cannot start an executor");
    ex.run(f)
}
