//! A shard-local notification: wakes every task waiting on it. Single-threaded
//! by design (no atomics): waiters and notifiers live on the same shard.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

const MAX_WAKERS: usize = 4096;

#[derive(Default)]
struct Inner {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

/// Cloneable handle; all clones share one waiter list.
#[derive(Clone, Default)]
pub struct Notify(Rc<Inner>);

impl Notify {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wake everyone currently waiting.
    pub fn notify_all(&self) {
        self.0.generation.set(self.0.generation.get() + 1);
        for w in self.0.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// A future that resolves at the next `notify_all` after this call.
    pub fn notified(&self) -> Notified {
        Notified {
            inner: self.0.clone(),
            seen: self.0.generation.get(),
        }
    }
}

pub struct Notified {
    inner: Rc<Inner>,
    seen: u64,
}

impl Future for Notified {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.generation.get() != self.seen {
            return Poll::Ready(());
        }
        let mut wakers = self.inner.wakers.borrow_mut();
        // Waiters that timed out leave their waker behind; rather than track them,
        // bound the list and turn an overflow into a spurious wake-up, which every
        // caller tolerates because it re-checks its condition.
        if wakers.len() >= MAX_WAKERS {
            for w in wakers.drain(..) {
                w.wake();
            }
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
