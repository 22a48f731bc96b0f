//! Thread-per-core runtime: one pinned executor per shard, cross-shard calls,
//! timers and local tasks.
//!
//! This is the only module that names glommio. Everything else sees `ShardId`,
//! `submit_to`, `spawn`, `sleep` and the I/O wrappers in `io` and `net`, so a
//! runtime swap stays a local change.

pub mod budget;
pub mod io;
pub mod net;
pub mod notify;
pub mod sched;
pub mod table;
pub mod waker_guard;

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::oneshot;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender};
use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};

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
    /// Pin each shard to its CPU in `cpus`; when false the kernel places
    /// the shard threads on any CPU this process may use (an overprovisioned
    /// machine: a shard pinned to a core that another program is running on
    /// waits for that program's turn to end, up to a scheduler tick, even
    /// while another core is idle).
    pub pin: bool,
    pub nr_shards: usize,
    /// Depth of each cross-shard queue; senders wait when it is full.
    pub cross_shard_queue_depth: usize,
    /// Memory glommio pre-registers for DMA buffers per shard.
    pub io_memory_bytes: usize,
    /// Scheduler slice asked for each shard thread (`sched::set_slice_us`);
    /// `None` leaves the kernel's default.
    pub sched_slice_us: Option<u64>,
}

/// Helper threads per shard for `run_blocking`. More than one, so that
/// blocking calls of one shard run side by side: the fsyncs of partitions
/// created together then share the file system's journal commits, and a
/// round's syncfs never queues behind another call.
pub const BLOCKING_THREADS_PER_SHARD: usize = 4;

/// CPUs this process may run on, in order.
pub fn available_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        })
}

/// Start `nr_shards` executors (pinned unless `cfg.pin` is false), wire the cross-shard mesh, run `main` on
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
        let slice_us = cfg.sched_slice_us;
        let placement = if cfg.pin {
            Placement::Fixed(cpu)
        } else {
            Placement::Unbound
        };
        let h = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .io_memory(cfg.io_memory_bytes)
            .blocking_thread_pool_placement(PoolPlacement::Unbound(BLOCKING_THREADS_PER_SHARD))
            .spawn(move || {
                if let Some(us) = slice_us {
                    match sched::set_slice_us(us) {
                        Ok(()) => tracing::debug!(shard = id, slice_us = ?sched::slice_us(), "scheduler slice set"),
                        Err(e) => tracing::warn!(shard = id, error = %e, "could not set the shard's scheduler slice"),
                    }
                }
                guard_root(async move {
                    // A sender's connect waits for its receiver's, so both sides
                    // of every pair must connect concurrently or shards deadlock.
                    let senders = futures::future::join_all(txs.into_iter().map(|tx| async move {
                        match tx {
                            Some(tx) => Some(tx.connect().await),
                            None => None,
                        }
                    }));
                    let receivers =
                        futures::future::join_all(rxs.into_iter().map(|rx| rx.connect()));
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
                                spawn(job()).detach();
                            }
                        })
                        .detach();
                    }
                    main(id).await;
                    RUNTIME.with(|r| r.borrow_mut().take());
                })
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
///
/// The result travels back as a job on the caller's own shard, which completes
/// a shard-local oneshot there. Nothing that holds the caller's `Waker` ever
/// reaches the target thread: a glommio task waker woken or dropped from a
/// foreign thread races with the owning executor's refcount checks (the
/// foreign `drop_waker` decrements to zero and then re-increments, and a
/// `JoinHandle` dropped in that window frees the task, which is freed again
/// when the foreign wake is processed: a double free).
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
    let origin = rt.id;
    let (tx, rx) = oneshot::channel::<T>();
    let waiting = Waiting(REPLIES.with(|r| r.borrow_mut().insert(Box::new(tx))));
    let id = waiting.0;
    let job: Job = Box::new(move || {
        Box::pin(async move {
            // Until the result is on its way, a dropped job still tells the
            // caller (best effort) so it does not wait forever.
            let mut reply = ReplyOnDrop {
                origin,
                id,
                value: None::<T>,
            };
            reply.value = Some(f().await);
            reply.send().await;
        })
    });
    let sender = rt.peers[target].as_ref().expect("peer sender");
    if sender.send(job).await.is_err() {
        return Err(ShardGone(target));
    }
    let r = rx.await.map_err(|_| ShardGone(target));
    drop(waiting);
    r
}

thread_local! {
    /// Callers on this shard waiting for a `submit_to` result, by id.
    static REPLIES: RefCell<Replies> = RefCell::new(Replies::default());
}

/// Each entry is a boxed `oneshot::Sender<T>` that never leaves this shard.
#[derive(Default)]
struct Replies {
    next_id: u64,
    waiting: std::collections::HashMap<u64, Box<dyn Any>>,
}

impl Replies {
    fn insert(&mut self, tx: Box<dyn Any>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.insert(id, tx);
        id
    }
}

/// Forgets a caller's entry when its `submit_to` returns or is cancelled.
struct Waiting(u64);

impl Drop for Waiting {
    fn drop(&mut self) {
        // Dropped outside the borrow: the sender's drop wakes a local task.
        let tx = REPLIES.with(|r| r.borrow_mut().waiting.remove(&self.0));
        drop(tx);
    }
}

/// Runs on the caller's shard: hand `value` to the waiting caller, or (with
/// `None`) drop its sender so it sees `ShardGone`.
fn reply_job<T: Send + 'static>(id: u64, value: Option<T>) -> Job {
    Box::new(move || {
        Box::pin(async move {
            let tx = REPLIES.with(|r| r.borrow_mut().waiting.remove(&id));
            if let (Some(tx), Some(v)) = (tx, value) {
                if let Ok(tx) = tx.downcast::<oneshot::Sender<T>>() {
                    let _ = tx.send(v);
                }
            }
        })
    })
}

/// The target side of a `submit_to`: sends the result home, or a cancellation
/// if dropped before that (the target shard is shutting down).
struct ReplyOnDrop<T: Send + 'static> {
    origin: ShardId,
    id: u64,
    value: Option<T>,
}

impl<T: Send + 'static> ReplyOnDrop<T> {
    fn peer(&self) -> Option<Rc<Runtime>> {
        RUNTIME.with(|r| r.borrow().clone())
    }

    async fn send(mut self) {
        let value = self.value.take();
        let Some(rt) = self.peer() else { return };
        let Some(to) = rt.peers.get(self.origin).and_then(Option::as_ref) else {
            return;
        };
        // If the caller's shard is gone, the reply (owned data) is dropped here.
        let _ = to.send(reply_job(self.id, value)).await;
        self.id = u64::MAX;
    }
}

impl<T: Send + 'static> Drop for ReplyOnDrop<T> {
    fn drop(&mut self) {
        if self.id == u64::MAX {
            return;
        }
        if let Some(rt) = self.peer() {
            if let Some(to) = rt.peers.get(self.origin).and_then(Option::as_ref) {
                let _ = to.try_send(reply_job::<T>(self.id, None));
            }
        }
    }
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
/// A shard's root future, with its waker checked in debug builds.
fn guard_root<T>(f: impl Future<Output = T>) -> impl Future<Output = T> {
    #[cfg(debug_assertions)]
    let f = waker_guard::guarded(f, waker_guard::abort_on_foreign_use);
    f
}

pub fn spawn<T: 'static>(f: impl Future<Output = T> + 'static) -> Task<T> {
    #[cfg(debug_assertions)]
    let f = waker_guard::guarded(f, waker_guard::abort_on_foreign_use);
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

/// Run a blocking call (a syscall io_uring has no operation for) on one of
/// the shard's helper threads, so the shard keeps serving while it waits.
pub async fn run_blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(f).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Wake, Waker};
    use std::thread::ThreadId;

    /// Forwards to the task's waker, recording the thread of every wake.
    struct Recorder {
        inner: Waker,
        threads: Arc<Mutex<Vec<ThreadId>>>,
    }

    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref()
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.threads
                .lock()
                .unwrap()
                .push(std::thread::current().id());
            self.inner.wake_by_ref()
        }
    }

    /// Polls `fut` with a `Recorder` around the task's waker.
    async fn record_wakes<F: Future>(fut: F, threads: Arc<Mutex<Vec<ThreadId>>>) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            let w = Waker::from(Arc::new(Recorder {
                inner: cx.waker().clone(),
                threads: threads.clone(),
            }));
            fut.as_mut().poll(&mut Context::from_waker(&w))
        })
        .await
    }

    /// A glommio task waker must not be woken (or dropped) on another shard's
    /// thread: glommio's foreign-waker refcounting races with the owner and
    /// can free the task twice. `submit_to` delivers its result on the
    /// caller's shard instead.
    #[test]
    fn submit_to_wakes_the_caller_only_on_its_own_shard() {
        let threads: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
        let caller: Arc<Mutex<Option<ThreadId>>> = Arc::default();
        let results: Arc<Mutex<Vec<u64>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let cfg = RuntimeConfig {
            cpus: available_cpus(),
            pin: true,
            nr_shards: 2,
            cross_shard_queue_depth: 16,
            io_memory_bytes: 1 << 20,
            sched_slice_us: None,
        };
        let (t, c, r, d) = (
            threads.clone(),
            caller.clone(),
            results.clone(),
            done.clone(),
        );
        run(cfg, move |id| {
            let (threads, caller, results, done) = (t.clone(), c.clone(), r.clone(), d.clone());
            async move {
                if id == 0 {
                    *caller.lock().unwrap() = Some(std::thread::current().id());
                    for i in 0..20u64 {
                        let got = record_wakes(
                            submit_to(1, move || async move {
                                sleep(Duration::from_millis(2)).await;
                                i * 10 + current() as u64
                            }),
                            threads.clone(),
                        )
                        .await
                        .unwrap();
                        results.lock().unwrap().push(got);
                    }
                    done.store(true, Ordering::SeqCst);
                } else {
                    while !done.load(Ordering::SeqCst) {
                        sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        })
        .unwrap();
        let expected: Vec<u64> = (0..20).map(|i| i * 10 + 1).collect();
        assert_eq!(*results.lock().unwrap(), expected);
        let caller = caller.lock().unwrap().unwrap();
        let threads = threads.lock().unwrap();
        assert!(!threads.is_empty(), "the caller waited at least once");
        assert!(
            threads.iter().all(|t| *t == caller),
            "caller woken from another thread: {threads:?} (caller {caller:?})"
        );
    }

    /// The CPUs the calling thread may run on.
    fn allowed_cpus() -> Vec<usize> {
        // SAFETY: `set` is a zeroed cpu_set_t of the size passed; the kernel
        // writes at most that many bytes; pid 0 is the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let r = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
            assert_eq!(
                r,
                0,
                "sched_getaffinity: {}",
                std::io::Error::last_os_error()
            );
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }

    #[test]
    fn a_shard_runs_on_its_own_cpu_unless_affinity_is_off() {
        let process = allowed_cpus();
        for pin in [true, false] {
            // Each shard's id and the CPUs its thread may run on.
            type Seen = Vec<(ShardId, Vec<usize>)>;
            let seen: Arc<Mutex<Seen>> = Arc::default();
            let cfg = RuntimeConfig {
                cpus: available_cpus(),
                pin,
                nr_shards: 2,
                cross_shard_queue_depth: 16,
                io_memory_bytes: 1 << 20,
                sched_slice_us: None,
            };
            let cpus = cfg.cpus.clone();
            let s = seen.clone();
            run(cfg, move |id| {
                let s = s.clone();
                async move { s.lock().unwrap().push((id, allowed_cpus())) }
            })
            .unwrap();
            let mut seen = seen.lock().unwrap().clone();
            seen.sort();
            assert_eq!(seen.len(), 2);
            for (id, allowed) in seen {
                if pin {
                    assert_eq!(allowed, vec![cpus[id % cpus.len()]], "shard {id} pinned");
                } else {
                    assert_eq!(
                        allowed, process,
                        "shard {id} may run wherever the process may"
                    );
                }
            }
        }
    }
}
