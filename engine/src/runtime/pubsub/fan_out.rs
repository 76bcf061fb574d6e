//! Waking the subscribers of a publish a batch at a time, where each connection has a
//! driver task of its own (the tokio driver).
//!
//! A publish to a thousand subscribers wakes a thousand driver tasks. Woken at once, they
//! all go into the scheduler's queue ahead of whatever else became ready, and a
//! connection that only wants its own small reply written waits behind every
//! subscriber's write, at every hop of its echo. So a delivery defers the wake-up here,
//! and one task hands out [`PER_TURN`] of them a turn and yields in between: the other
//! tasks are never more than a batch behind. (The io_uring driver runs connections
//! inline and spreads a fan-out's flushes over its turns itself.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::runtime::notify::LocalNotify;
use crate::runtime::socket::Shared;

/// Driver tasks woken per turn of the waking task.
const PER_TURN: usize = 64;

/// Deferred wake-ups of subscribers' driver tasks, in delivery order.
#[derive(Default)]
pub(crate) struct FanOutWakes {
    queue: RefCell<VecDeque<Rc<Shared>>>,
    ready: LocalNotify,
}

impl FanOutWakes {
    /// `conn` (already marked as told, see [`Shared::wake_driver_for_fan_out`]) gets its
    /// wake-up in a coming batch.
    pub(crate) fn defer(&self, conn: &Rc<Shared>) {
        let mut queue = self.queue.borrow_mut();
        if queue.is_empty() {
            self.ready.notify();
        }
        queue.push_back(conn.clone());
    }

    /// The waking task: runs until the worker ends.
    pub(crate) async fn run(self: Rc<Self>) {
        loop {
            if self.queue.borrow().is_empty() {
                self.ready.notified().await;
                continue;
            }
            for _ in 0..PER_TURN {
                let Some(conn) = self.queue.borrow_mut().pop_front() else {
                    break;
                };
                conn.wake_deferred();
            }
            crate::runtime::executor::yield_to_worker().await;
        }
    }
}
