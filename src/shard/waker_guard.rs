//! Debug-build check that no task waker crosses shards. glommio's wakers are
//! not thread-safe: one woken, cloned or dropped on another thread races
//! with the owning executor's reference counting (this once freed a task
//! twice and aborted the broker). Futures channels (`futures::channel::*`)
//! complete by waking the receiver's waker on the sender's thread, and the
//! types are all `Send`, so the compiler cannot stop such a waker from
//! travelling through `submit_to`. This guard can: every task spawned through
//! `shard::spawn` (and every cross-shard job) sees a waker that remembers its
//! owner thread, and a clone, wake or drop anywhere else is reported the
//! first time that code path runs, with no race needed to show it.
//!
//! Used in debug builds only (the test suite runs those); release builds
//! poll futures directly.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread::ThreadId;

/// What to do about a waker used off its thread: (operation, owner thread
/// name). The broker aborts; the unit test below counts.
pub type OnForeignUse = fn(&'static str);

/// Abort the process, saying why: a waker off its thread is a memory-safety
/// bug, and carrying on would hide it until it corrupts the heap.
pub fn abort_on_foreign_use(what: &'static str) {
    eprintln!(
        "BUG: a task waker was {what} on thread {:?}, not the shard that owns it; aborting",
        std::thread::current().name()
    );
    std::process::abort();
}

struct Inner {
    owner: ThreadId,
    waker: Waker,
    on_foreign: OnForeignUse,
}

impl Inner {
    /// True on the owner thread; otherwise reports and returns false.
    fn on_owner(&self, what: &'static str) -> bool {
        if std::thread::current().id() == self.owner {
            true
        } else {
            (self.on_foreign)(what);
            false
        }
    }
}

// The vtable's pointer is always an `Arc<Inner>` turned into a raw pointer by
// `Arc::into_raw` (in `checked_waker` and `clone`); each function below owns
// or borrows exactly the reference the `RawWaker` contract gives it.

unsafe fn clone(p: *const ()) -> RawWaker {
    // SAFETY: `p` came from `Arc::into_raw` (see above) and the waker being
    // cloned still holds its reference, so the `Arc` is alive; ManuallyDrop
    // keeps that reference, and the clone takes a new one.
    let a = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(p as *const Inner) });
    a.on_owner("cloned");
    RawWaker::new(Arc::into_raw(Arc::clone(&a)) as *const (), &VTABLE)
}

unsafe fn wake(p: *const ()) {
    // SAFETY: `wake` consumes the waker: borrow for the wake, then release
    // the reference exactly once through `drop_waker`.
    unsafe {
        wake_by_ref(p);
        drop_waker(p);
    }
}

unsafe fn wake_by_ref(p: *const ()) {
    // SAFETY: as in `clone`: a live reference, borrowed, not released.
    let a = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(p as *const Inner) });
    a.on_owner("woken");
    // Still wake (after reporting): glommio queues a foreign wake to the
    // owner; it is the foreign *drop* of its waker that races, see below.
    a.waker.wake_by_ref();
}

unsafe fn drop_waker(p: *const ()) {
    // SAFETY: the waker being dropped owns this reference.
    let a = unsafe { Arc::from_raw(p as *const Inner) };
    if !a.on_owner("dropped") {
        // Never let the inner glommio waker be dropped off its thread (that
        // is the very bug): leak this reference instead.
        std::mem::forget(a);
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn checked_waker(inner: &Waker, on_foreign: OnForeignUse) -> Waker {
    let i = Arc::new(Inner {
        owner: std::thread::current().id(),
        waker: inner.clone(),
        on_foreign,
    });
    // SAFETY: the pointer is an `Arc<Inner>` from `Arc::into_raw`, and every
    // VTABLE function treats it as exactly that (see above).
    unsafe { Waker::from_raw(RawWaker::new(Arc::into_raw(i) as *const (), &VTABLE)) }
}

/// `fut`, polled with a checked waker built from the task's own.
pub struct Guarded<F> {
    fut: F,
    /// (the task's waker, our checked one), rebuilt when the task's changes.
    cached: Option<(Waker, Waker)>,
    on_foreign: OnForeignUse,
}

pub fn guarded<F: Future>(fut: F, on_foreign: OnForeignUse) -> Guarded<F> {
    Guarded {
        fut,
        cached: None,
        on_foreign,
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of
        // `self` (only polled in place below); `cached` and `on_foreign` are
        // not pinned and may be replaced freely.
        let this = unsafe { self.get_unchecked_mut() };
        let fresh = match &this.cached {
            Some((task, _)) => !task.will_wake(cx.waker()),
            None => true,
        };
        if fresh {
            let w = checked_waker(cx.waker(), this.on_foreign);
            this.cached = Some((cx.waker().clone(), w));
        }
        let w = this.cached.as_ref().expect("set above").1.clone();
        // SAFETY: see above: `fut` stays where it is.
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        fut.poll(&mut Context::from_waker(&w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::oneshot;
    use glommio::{LocalExecutorBuilder, Placement};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static SEEN: AtomicUsize = AtomicUsize::new(0);
    fn count(_: &'static str) {
        SEEN.fetch_add(1, Ordering::SeqCst);
    }

    /// 20 futures oneshots awaited (guarded) on executor A, each completed by
    /// A itself or, with `remote`, by executor B's thread.
    fn round_trips(remote: bool) -> usize {
        let before = SEEN.load(Ordering::SeqCst);
        let (to_b, from_a) = std::sync::mpsc::channel::<oneshot::Sender<u32>>();
        let b = LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                for tx in from_a {
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                    let _ = tx.send(7);
                }
            })
            .unwrap();
        let a = LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                for _ in 0..20 {
                    let (tx, rx) = oneshot::channel();
                    if remote {
                        to_b.send(tx).unwrap();
                    } else {
                        glommio::spawn_local(async move {
                            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                            let _ = tx.send(7);
                        })
                        .detach();
                    }
                    let got = glommio::spawn_local(guarded(rx, count)).await;
                    assert_eq!(got.unwrap(), 7);
                }
                drop(to_b);
            })
            .unwrap();
        a.join().unwrap();
        b.join().unwrap();
        SEEN.load(Ordering::SeqCst) - before
    }

    #[test]
    fn a_waker_used_on_another_shard_is_caught_every_time() {
        // Local completion: nothing to report.
        assert_eq!(round_trips(false), 0);
        // Completion from another executor's thread: caught (and the inner
        // glommio waker was never touched there, so this test itself is safe).
        assert!(round_trips(true) >= 20);
    }
}
