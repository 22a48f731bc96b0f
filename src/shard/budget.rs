//! A shard-local byte budget (Kafka's KIP-72 memory pool): a request takes
//! its size before its bytes are read, and gives it back when it no longer
//! holds them. Single-threaded, like `Notify`: takers and givers share a shard.
//!
//! As in Kafka's `SimpleMemoryPool`, a take succeeds whenever anything is
//! left, even if it then overshoots: a request larger than the whole budget
//! still gets through (alone), instead of waiting forever.

use std::cell::Cell;
use std::rc::Rc;

use super::notify::Notify;

struct Inner {
    limit_bytes: usize,
    used_bytes: Cell<usize>,
    freed: Notify,
}

/// Cloneable handle; all clones share one budget.
#[derive(Clone)]
pub struct Budget(Rc<Inner>);

impl Budget {
    /// `None`: no limit (takes never wait; usage is still counted).
    pub fn new(limit_bytes: Option<usize>) -> Self {
        Self(Rc::new(Inner {
            limit_bytes: limit_bytes.unwrap_or(usize::MAX),
            used_bytes: Cell::new(0),
            freed: Notify::new(),
        }))
    }

    #[cfg(test)]
    pub fn used_bytes(&self) -> usize {
        self.0.used_bytes.get()
    }

    /// Take `bytes`, waiting while the budget is used up.
    pub async fn take(&self, bytes: usize) -> Permit {
        loop {
            // Registered before the check, so a give between the check and
            // the wait is not missed.
            let freed = self.0.freed.notified();
            let used = self.0.used_bytes.get();
            if used < self.0.limit_bytes {
                self.0.used_bytes.set(used + bytes);
                return Permit {
                    budget: self.clone(),
                    bytes,
                };
            }
            freed.await;
        }
    }

    fn give(&self, bytes: usize) {
        let used = self.0.used_bytes.get();
        assert!(bytes <= used, "gave back {bytes} bytes of {used} taken");
        self.0.used_bytes.set(used - bytes);
        if bytes > 0 {
            self.0.freed.notify_all();
        }
    }
}

/// Bytes taken from a `Budget`; given back on drop.
pub struct Permit {
    budget: Budget,
    bytes: usize,
}

impl Permit {
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Move up to `bytes` of this permit into a new one, which can be given
    /// back on its own (a request releasing each part as it is done with it).
    pub fn split(&mut self, bytes: usize) -> Permit {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Permit {
            budget: self.budget.clone(),
            bytes,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    fn take_now(b: &Budget, bytes: usize) -> Option<Permit> {
        match poll_once(pin!(b.take(bytes))) {
            Poll::Ready(p) => Some(p),
            Poll::Pending => None,
        }
    }

    #[test]
    fn takes_wait_once_the_budget_is_used_and_resume_when_bytes_come_back() {
        let b = Budget::new(Some(100));
        let first = take_now(&b, 60).expect("room");
        // Anything left admits the next take, which may overshoot (KIP-72).
        let second = take_now(&b, 60).expect("40 bytes were left");
        assert_eq!(b.used_bytes(), 120);
        let mut waiting = pin!(b.take(1));
        assert!(poll_once(waiting.as_mut()).is_pending());
        drop(first);
        assert_eq!(b.used_bytes(), 60);
        let third = match poll_once(waiting.as_mut()) {
            Poll::Ready(p) => p,
            Poll::Pending => panic!("60 of 100 bytes used: the take must go through"),
        };
        drop((second, third));
        assert_eq!(b.used_bytes(), 0);
    }

    #[test]
    fn a_request_larger_than_the_whole_budget_still_gets_through_alone() {
        let b = Budget::new(Some(10));
        let big = take_now(&b, 1000).expect("an empty budget admits anything");
        assert!(take_now(&b, 1).is_none());
        drop(big);
        assert!(take_now(&b, 1).is_some());
    }

    #[test]
    fn split_parts_give_back_their_own_bytes() {
        let b = Budget::new(Some(100));
        let mut whole = take_now(&b, 100).unwrap();
        let part = whole.split(70);
        assert_eq!((whole.bytes(), part.bytes()), (30, 70));
        drop(part);
        assert_eq!(b.used_bytes(), 30);
        assert_eq!(
            whole.split(1000).bytes(),
            30,
            "a split takes at most what is left"
        );
        drop(whole);
        assert_eq!(b.used_bytes(), 0);
    }

    #[test]
    fn no_limit_never_waits() {
        let b = Budget::new(None);
        let _a = take_now(&b, usize::MAX / 2).unwrap();
        assert!(take_now(&b, 1).is_some());
    }
}
