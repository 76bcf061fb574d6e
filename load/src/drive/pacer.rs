//! Precise sleeps for the open loop: one `timerfd` per load thread instead of tokio's
//! timer wheel.
//!
//! tokio's timers have a 1 ms resolution and round deadlines up: measured here, a task
//! asking to wake every 200 µs woke 1.15 ms late at the median and 3.4 ms at p99, on
//! either runtime. The open loop counts latency from each message's scheduled time (as
//! wrk2 does, so a stalled server cannot hide), which put that lateness inside every
//! percentile: at 10,000 msg/s the "server's" p50 was 1.7 ms of which 1.0 ms was the load
//! sending late. A `timerfd` armed for the earliest deadline of the thread wakes within
//! ~60 µs at the median (p99 ~1 ms on this shared VM), and what lateness is left is
//! reported as the send lag.
//!
//! The thread's sleepers share one heap of deadlines; the timer is armed for the
//! earliest, and when it fires every sleeper due by then is woken. Readiness comes from
//! tokio's reactor (`AsyncFd`), which both of the load's runtimes drive.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::poll_fn;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;

/// A deadline and whom to wake then (ordered by the deadline, then by arrival).
struct Sleeper {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Sleeper {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Sleeper {}
impl PartialOrd for Sleeper {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sleeper {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One thread's precise timer.
pub struct Pacer {
    timer: AsyncFd<OwnedFd>,
    sleepers: RefCell<BinaryHeap<Reverse<Sleeper>>>,
    /// The deadline the timer is armed for.
    armed: Cell<Option<Instant>>,
    seq: Cell<u64>,
}

impl Pacer {
    /// A timer for this thread, and the task that fires it (spawn it on the thread's
    /// runtime; it runs until dropped).
    pub fn new() -> std::io::Result<(Rc<Pacer>, impl Future<Output = ()>)> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // `AsyncFd::new` is deprecated because a `T` that merely borrows its descriptor
        // could close it while registered; an `OwnedFd` moved into the `AsyncFd` lives
        // exactly as long as the registration, which is the case it is sound for (and
        // it keeps `unsafe` out of the load generator).
        #[allow(deprecated)]
        let timer = AsyncFd::new(fd)?;
        let pacer = Rc::new(Pacer {
            timer,
            sleepers: RefCell::new(BinaryHeap::new()),
            armed: Cell::new(None),
            seq: Cell::new(0),
        });
        let firing = pacer.clone();
        Ok((pacer, async move { firing.fire().await }))
    }

    /// Waits until `at`.
    pub async fn sleep_until(&self, at: Instant) {
        poll_fn(|cx| {
            let now = Instant::now();
            if now >= at {
                return Poll::Ready(());
            }
            let seq = self.seq.get();
            self.seq.set(seq + 1);
            self.sleepers.borrow_mut().push(Reverse(Sleeper {
                at,
                seq,
                waker: cx.waker().clone(),
            }));
            if self.armed.get().is_none_or(|armed| at < armed) {
                self.arm(at, now);
            }
            Poll::Pending
        })
        .await
    }

    /// Arms the timer for `at` (relative to `now`).
    fn arm(&self, at: Instant, now: Instant) {
        // A zero it_value disarms a timerfd: at least a nanosecond.
        let after = (at - now).max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: after.as_secs() as i64,
                tv_nsec: after.subsec_nanos() as i64,
            },
        };
        if timerfd_settime(self.timer.get_ref(), TimerfdTimerFlags::empty(), &spec).is_ok() {
            self.armed.set(Some(at));
        }
    }

    /// Wakes the sleepers as their deadlines pass.
    async fn fire(&self) {
        loop {
            let Ok(mut ready) = self.timer.readable().await else {
                return;
            };
            let mut expirations = [0u8; 8];
            if rustix::io::read(self.timer.get_ref(), &mut expirations).is_err() {
                // Not expired yet (re-armed meanwhile): wait for the next readiness.
                ready.clear_ready();
                continue;
            }
            drop(ready);
            self.armed.set(None);
            let now = Instant::now();
            let mut due = Vec::new();
            {
                let mut sleepers = self.sleepers.borrow_mut();
                while sleepers.peek().is_some_and(|s| s.0.at <= now) {
                    if let Some(Reverse(s)) = sleepers.pop() {
                        due.push(s.waker);
                    }
                }
                if let Some(next) = sleepers.peek() {
                    let at = next.0.at;
                    drop(sleepers);
                    self.arm(at, now);
                }
            }
            for waker in due {
                waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleepers_wake_in_order_and_never_early() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let (pacer, firing) = Pacer::new().unwrap();
            let fire = tokio::task::spawn_local(firing);
            let woke = Rc::new(RefCell::new(Vec::new()));
            let start = Instant::now();
            let mut tasks = Vec::new();
            // Deadlines out of order, two equal, one already past.
            for (i, us) in [3_000u64, 1_000, 2_000, 2_000, 0, 500]
                .into_iter()
                .enumerate()
            {
                let (pacer, woke) = (pacer.clone(), woke.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let at = start + Duration::from_micros(us);
                    pacer.sleep_until(at).await;
                    assert!(Instant::now() >= at, "woken early");
                    woke.borrow_mut().push((us, i));
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let order: Vec<u64> = woke.borrow().iter().map(|&(us, _)| us).collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(order, sorted, "{:?}", woke.borrow());
            fire.abort();
        });
    }
}
