//! A wake-up signal between the tasks of one worker thread.
//!
//! Like `tokio::sync::Notify` but for one thread only (no atomics, no mutex): a connection's
//! reader, writer and application tasks all run on the same worker, and they signal each
//! other on every message, so this is on the hot path. A waiter takes the current
//! generation when it starts waiting and is ready once `notify` has moved it on, so no
//! wake-up between checking a condition and awaiting is lost.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Wakes every task waiting on it.
#[derive(Debug, Default)]
pub(crate) struct LocalNotify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl LocalNotify {
    /// Wakes all current waiters.
    #[inline]
    pub(crate) fn notify(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    /// Wakes `waker` at the next [`notify`](Self::notify): for a `poll_*` method that
    /// checked its condition and found it false in the same turn (one thread, so nothing
    /// can notify between the check and this).
    #[inline]
    pub(crate) fn register(&self, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }

    /// Completes at the next [`notify`](Self::notify) after this call.
    #[inline]
    pub(crate) fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.generation.get(),
        }
    }
}

/// The future of [`LocalNotify::notified`].
pub(crate) struct Notified<'a> {
    notify: &'a LocalNotify,
    generation: u64,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            return Poll::Ready(());
        }
        self.notify.register(cx.waker());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_notify_before_the_first_poll_is_not_lost() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let n = Rc::new(LocalNotify::default());
            let waiting = n.notified();
            n.notify();
            waiting.await;
            let n2 = n.clone();
            let task = tokio::task::spawn_local(async move { n2.notified().await });
            tokio::task::yield_now().await;
            n.notify();
            task.await.unwrap();
        });
    }
}
