//! Heavy connections of a thread take turns (the readiness driver's fair share).
//!
//! A task per connection is polled in FIFO order by the runtime, so a connection that
//! floods (bytes that each cost a frame: 1-byte fragments) is fair only if each poll
//! costs little. A connection whose reads cost more than a pass's allowance joins this
//! thread's queue and then reads only at its turn, one share at a time: however many
//! connections flood, one of them runs between two other tasks, and a connection that
//! sends a little now and then (or a new handshake) waits behind one share, not behind
//! every flooder's.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::task::Waker;

/// The queue of heavy connections on a thread; the front one's turn.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<(u64, Option<Waker>)>,
    next_id: u64,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::default();
}

/// A connection's place among its thread's heavy connections; it leaves when dropped.
pub(crate) struct Turn {
    id: u64,
}

impl Turn {
    /// Joins at the back.
    pub(crate) fn join() -> Turn {
        QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            let id = q.next_id;
            q.next_id = q.next_id.wrapping_add(1);
            q.waiting.push_back((id, None));
            Turn { id }
        })
    }

    /// Whether it is this connection's turn; if not, `waker` is woken when it is.
    pub(crate) fn ready(&self, waker: &Waker) -> bool {
        QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            if q.waiting.front().is_some_and(|(id, _)| *id == self.id) {
                return true;
            }
            if let Some(entry) = q.waiting.iter_mut().find(|(id, _)| *id == self.id) {
                entry.1 = Some(waker.clone());
            }
            false
        })
    }

    /// This connection's turn is over: it goes to the back, and the next one is woken.
    pub(crate) fn pass(&self) {
        let next = QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            if let Some(at) = q.waiting.iter().position(|(id, _)| *id == self.id) {
                q.waiting.remove(at);
            }
            q.waiting.push_back((self.id, None));
            q.waiting.front_mut().and_then(|(_, w)| w.take())
        });
        if let Some(waker) = next {
            waker.wake();
        }
    }

    /// Whether other heavy connections wait on this thread (then reads stay one share).
    pub(crate) fn contended() -> bool {
        QUEUE.with(|q| q.borrow().waiting.len() > 1)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // `try_with`: a connection dropped while its thread ends has no one to wake.
        let next = QUEUE
            .try_with(|q| {
                let mut q = q.borrow_mut();
                let at = q.waiting.iter().position(|(id, _)| *id == self.id)?;
                q.waiting.remove(at);
                if at == 0 {
                    q.waiting.front_mut().and_then(|(_, w)| w.take())
                } else {
                    None
                }
            })
            .ok()
            .flatten();
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn heavy_connections_take_turns_in_order_and_leaving_passes_the_turn() {
        let (a, b, c) = (Turn::join(), Turn::join(), Turn::join());
        let (wb_count, wb) = waker();
        let (wc_count, wc) = waker();
        let (_, wa) = waker();
        assert!(Turn::contended());
        assert!(a.ready(&wa));
        assert!(!b.ready(&wb));
        assert!(!c.ready(&wc));
        // a's turn ends: b is woken, and it is b's turn; a waits behind c.
        a.pass();
        assert_eq!(wb_count.0.load(Ordering::SeqCst), 1);
        assert!(b.ready(&wb));
        assert!(!a.ready(&wa));
        // b leaves during its turn: c is woken and goes.
        drop(b);
        assert_eq!(wc_count.0.load(Ordering::SeqCst), 1);
        assert!(c.ready(&wc));
        drop(c);
        assert!(a.ready(&wa));
        assert!(!Turn::contended());
        drop(a);
        QUEUE.with(|q| assert!(q.borrow().waiting.is_empty()));
    }

    #[test]
    fn one_leaving_from_the_middle_wakes_nobody() {
        let (a, b, c) = (Turn::join(), Turn::join(), Turn::join());
        let (wc_count, wc) = waker();
        let (_, wb) = waker();
        assert!(!c.ready(&wc));
        assert!(!b.ready(&wb));
        drop(b);
        assert_eq!(wc_count.0.load(Ordering::SeqCst), 0);
        a.pass();
        assert_eq!(wc_count.0.load(Ordering::SeqCst), 1);
        assert!(c.ready(&wc));
        drop((a, c));
    }
}
