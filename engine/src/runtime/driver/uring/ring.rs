//! The worker's ring: submission, completion, the sockets it serves, the buffer ring,
//! the deadline heap, and the task that turns it all.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, squeue, types};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::buf_ring::BufRing;
use super::socket::Socket;
pub(crate) use crate::runtime::uring::RingConfig;

/// The buffer group of the worker's buffer ring.
pub(super) const BUF_GROUP: u16 = 0;

/// Completions handled per turn before the ring task lets the handlers run.
const CQES_PER_TURN: usize = 1024;

/// How long a turn serves the run queue of connections with bytes waiting (at least one
/// visit per turn): what a connection that sends little waits at most behind the ones
/// that flood, besides the other work of a turn.
const SERVE_PER_TURN: Duration = Duration::from_micros(30);

/// Sockets dirtied per receive completion above which a turn is a fan-out (its flush may wait a
/// turn to batch more). An echo dirties one socket per message; a broadcast to N, N.
const FAN_OUT: usize = 8;

/// The most sockets a turn flushes for fan-out deliveries (publishes to many), about a
/// millisecond of sends: a publish to thousands of subscribers leaves over a few turns,
/// while sockets with replies of their own are flushed at every turn.
const FAN_OUT_PER_TURN: usize = 128;

/// What an operation's completion is for, in the low byte of its user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum OpKind {
    Recv = 1,
    Send = 2,
    Accept = 3,
    Connect = 4,
    Cancel = 5,
    /// A single receive into the connection's own buffer (a connection that floods).
    Read = 6,
}

/// A socket's place in the ring: slot index and generation (a reused slot gets a new
/// generation, so a late completion for the previous socket is recognised and dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct SlotId {
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl SlotId {
    pub(super) fn user_data(self, kind: OpKind) -> u64 {
        (u64::from(self.index) << 32)
            | (u64::from(self.generation & 0x00ff_ffff) << 8)
            | kind as u64
    }

    fn from_user_data(data: u64) -> (u32, u32, u8) {
        (
            (data >> 32) as u32,
            ((data >> 8) & 0x00ff_ffff) as u32,
            data as u8,
        )
    }
}

/// The worker's sockets by slot.
#[derive(Default)]
struct Slots {
    sockets: Vec<Option<Rc<Socket>>>,
    generations: Vec<u32>,
    free: Vec<u32>,
}

/// One worker's io_uring instance and everything it serves.
pub(crate) struct Ring {
    uring: RefCell<IoUring>,
    /// Entries that did not fit in the submission queue; pushed first at the next turn.
    backlog: RefCell<Vec<squeue::Entry>>,
    pub(super) bufs: RefCell<BufRing>,
    slots: RefCell<Slots>,
    /// Sockets with work for the next turn (kicked by their handle, or by the ring).
    dirty: RefCell<Vec<SlotId>>,
    /// Sockets kicked by a publish's delivery: flushed in order, [`FAN_OUT_PER_TURN`] a
    /// turn.
    fan_out: RefCell<VecDeque<SlotId>>,
    /// Deadlines of sockets: (when, slot). Stale ones are skipped when they come.
    timers: RefCell<BinaryHeap<Reverse<(Instant, SlotId)>>>,
    /// The ring task, when it sleeps.
    waker: RefCell<Option<Waker>>,
    woken: Cell<bool>,
    /// Registered with the ring; readable when completions wait (wakes tokio's reactor).
    /// Taken by the ring task, which owns it from then on.
    eventfd: RefCell<Option<OwnedFd>>,
    /// Multishot receives that ended for lack of buffers (ENOBUFS), re-armed next turn.
    pub(super) starved: Cell<u64>,
    /// Connections with received bytes waiting to be processed, served in turn (round
    /// robin, [`SERVE_PER_TURN`] per turn) after the completions of connections that
    /// had nothing waiting.
    runnable: RefCell<VecDeque<SlotId>>,
    /// Counts turns (a connection's inline allowance is per turn).
    turn_number: Cell<u64>,
    /// Receive completions (input) the last turn dispatched.
    reaped: Cell<usize>,
    /// The last turn held its flush back (fan-out): this one flushes.
    held_back: Cell<bool>,
}

impl Ring {
    /// Creates the ring, registers its buffer ring and eventfd. Fails where the kernel
    /// refuses io_uring or lacks what this driver needs (buffer rings: 5.19; multishot
    /// receive: 6.0).
    pub(crate) fn new(config: RingConfig) -> io::Result<Rc<Ring>> {
        let uring = make_uring(config.entries)?;
        let bufs = BufRing::new(config.buffers, config.buffer_size)?;
        // SAFETY: the ring memory is owned by the `Ring` made below, does not move (it is
        // a heap allocation), and stays allocated until `Drop for Ring` has unregistered
        // it; its entries were written by `BufRing::new`.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                bufs.ring_addr(),
                bufs.entries(),
                BUF_GROUP,
                0,
            )?;
        }
        // SAFETY: plain eventfd(2) call; the descriptor is checked before it is owned.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` is a fresh descriptor owned by nobody else.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        uring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        Ok(Rc::new(Ring {
            uring: RefCell::new(uring),
            backlog: RefCell::default(),
            bufs: RefCell::new(bufs),
            slots: RefCell::default(),
            dirty: RefCell::default(),
            fan_out: RefCell::default(),
            timers: RefCell::default(),
            waker: RefCell::default(),
            woken: Cell::new(false),
            eventfd: RefCell::new(Some(eventfd)),
            starved: Cell::new(0),
            runnable: RefCell::default(),
            turn_number: Cell::new(0),
            reaped: Cell::new(0),
            held_back: Cell::new(false),
        }))
    }

    /// Queues a submission; the ring task is woken to submit it at its next turn.
    pub(super) fn push(&self, entry: squeue::Entry) {
        self.wake();
        let mut uring = self.uring.borrow_mut();
        let mut sq = uring.submission();
        // SAFETY: every entry's buffers (send chunks and their iovecs, connect addresses)
        // are owned by its socket's slot until the completion arrives, and receives use
        // the registered buffer ring: nothing an entry points at is freed or moved first.
        if unsafe { sq.push(&entry) }.is_err() {
            drop(sq);
            drop(uring);
            self.backlog.borrow_mut().push(entry);
        }
    }

    /// Gives a socket a slot.
    pub(super) fn insert(&self, make: impl FnOnce(SlotId) -> Socket) -> Rc<Socket> {
        let mut slots = self.slots.borrow_mut();
        let index = match slots.free.pop() {
            Some(index) => index,
            None => {
                slots.sockets.push(None);
                slots.generations.push(0);
                (slots.sockets.len() - 1) as u32
            }
        };
        let generation = slots.generations[index as usize];
        let socket = Rc::new(make(SlotId { index, generation }));
        slots.sockets[index as usize] = Some(socket.clone());
        socket
    }

    /// Frees a socket's slot (its operations are all complete).
    pub(super) fn remove(&self, id: SlotId) {
        let mut slots = self.slots.borrow_mut();
        let i = id.index as usize;
        if slots.generations.get(i) == Some(&id.generation) {
            slots.sockets[i] = None;
            slots.generations[i] = slots.generations[i].wrapping_add(1);
            slots.free.push(id.index);
        }
    }

    fn get(&self, index: u32, generation: u32) -> Option<Rc<Socket>> {
        let slots = self.slots.borrow();
        let i = index as usize;
        if slots.generations.get(i).map(|g| g & 0x00ff_ffff) != Some(generation & 0x00ff_ffff) {
            return None;
        }
        slots.sockets.get(i)?.clone()
    }

    /// Marks a socket for the next turn and wakes the ring task.
    pub(super) fn mark_dirty(&self, id: SlotId) {
        self.dirty.borrow_mut().push(id);
        self.wake();
    }

    /// Marks a socket that a publish's delivery kicked, and wakes the ring task.
    pub(super) fn mark_fan_out(&self, id: SlotId) {
        self.fan_out.borrow_mut().push_back(id);
        self.wake();
    }

    /// Asks for a turn at `at` for socket `id`.
    pub(super) fn add_timer(&self, at: Instant, id: SlotId) {
        self.timers.borrow_mut().push(Reverse((at, id)));
        self.wake();
    }

    /// Puts a socket at the back of the run queue (its bytes wait for their turn).
    pub(super) fn enqueue(&self, id: SlotId) {
        self.runnable.borrow_mut().push_back(id);
        self.wake();
    }

    /// Whether other connections wait in the run queue: then a flooding connection's
    /// reads stay small, so that a visit costs little.
    pub(super) fn contended(&self) -> bool {
        self.runnable.borrow().len() > 1
    }

    /// The current turn's number.
    pub(super) fn turn_number(&self) -> u64 {
        self.turn_number.get()
    }

    fn wake(&self) {
        if !self.woken.replace(true)
            && let Some(waker) = self.waker.borrow().as_ref()
        {
            waker.wake_by_ref();
        }
    }

    /// One turn: run the dirty sockets and due timers, submit, reap and dispatch
    /// completions. Returns whether anything happened.
    fn turn(&self) -> bool {
        self.turn_number.set(self.turn_number.get().wrapping_add(1));
        let mut worked = false;
        // Sockets kicked since the last turn: flush what their handles queued.
        for id in std::mem::take(&mut *self.dirty.borrow_mut()) {
            if let Some(socket) = self.get(id.index, id.generation) {
                socket.pump(self);
                worked = true;
            }
        }
        // Subscribers kicked by publishes: up to [`FAN_OUT_PER_TURN`] of them. Unless this
        // is a fan-out (a few messages in made many sockets dirty: a broadcast) while
        // input keeps coming: then their flush waits one turn, so that what the next
        // completions publish leaves in the same writes (a send per socket per turn is
        // what a broadcast costs). Never two turns in a row.
        let reaped = self.reaped.get();
        let pending = self.fan_out.borrow().len();
        let hold = reaped > 0 && pending > FAN_OUT * reaped && !self.held_back.get();
        self.held_back.set(hold);
        if !hold {
            for _ in 0..pending.min(FAN_OUT_PER_TURN) {
                let Some(id) = self.fan_out.borrow_mut().pop_front() else {
                    break;
                };
                if let Some(socket) = self.get(id.index, id.generation) {
                    socket.pump(self);
                    worked = true;
                }
            }
        }
        // Deadlines that came.
        let now = Instant::now();
        loop {
            let due = {
                let mut timers = self.timers.borrow_mut();
                match timers.peek() {
                    Some(Reverse((at, _))) if *at <= now => timers.pop().map(|Reverse((_, id))| id),
                    _ => None,
                }
            };
            let Some(id) = due else { break };
            if let Some(socket) = self.get(id.index, id.generation) {
                socket.on_timer(self, now);
                worked = true;
            }
        }
        self.bufs.borrow_mut().publish();
        worked |= self.submit_and_reap();
        worked |= self.serve_runnable();
        // What is left comes at the next turn, at once.
        worked |= !self.fan_out.borrow().is_empty();
        worked
    }

    /// Serves the run queue: each connection processes one share of its waiting bytes and
    /// goes to the back if more wait, until the turn's time for this is used. A
    /// connection with nothing waiting was served at its completion already, so one that
    /// sends a little now and then never waits behind those that flood.
    fn serve_runnable(&self) -> bool {
        if self.runnable.borrow().is_empty() {
            return false;
        }
        let started = Instant::now();
        let mut served = false;
        loop {
            let next = self.runnable.borrow_mut().pop_front();
            let Some(id) = next else { break };
            if let Some(socket) = self.get(id.index, id.generation) {
                socket.serve(self);
                served = true;
                if started.elapsed() >= SERVE_PER_TURN {
                    break;
                }
            }
        }
        served || !self.runnable.borrow().is_empty()
    }

    /// Submits what is queued (one `io_uring_enter`, only when there is something to
    /// submit or the kernel has completion work for us) and dispatches the completions.
    fn submit_and_reap(&self) -> bool {
        {
            let mut uring = self.uring.borrow_mut();
            let mut backlog = self.backlog.borrow_mut();
            if !backlog.is_empty() {
                let mut sq = uring.submission();
                let mut pushed = 0;
                for entry in backlog.iter() {
                    // SAFETY: as in `push`.
                    if unsafe { sq.push(entry) }.is_err() {
                        break;
                    }
                    pushed += 1;
                }
                drop(sq);
                backlog.drain(..pushed);
            }
            let (submitter, mut sq, _) = uring.split();
            sq.sync();
            let must_enter = !sq.is_empty() || sq.taskrun() || sq.cq_overflow();
            drop(sq);
            if must_enter {
                match submitter.submit() {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)
                        ) => {}
                    // The ring itself failed: nothing can be done for its sockets but to
                    // let them time out; this does not happen on a working kernel.
                    Err(_) => {}
                }
            }
        }
        let mut worked = false;
        let mut reaped = 0;
        let mut cqes: Vec<cqueue::Entry> = Vec::new();
        loop {
            cqes.clear();
            {
                let mut uring = self.uring.borrow_mut();
                let mut cq = uring.completion();
                cq.sync();
                cqes.extend(cq.by_ref().take(CQES_PER_TURN));
            }
            if cqes.is_empty() {
                break;
            }
            worked = true;
            for cqe in &cqes {
                let (index, generation, kind) = SlotId::from_user_data(cqe.user_data());
                if kind == OpKind::Recv as u8 || kind == OpKind::Read as u8 {
                    reaped += 1;
                }
                if kind == OpKind::Cancel as u8 {
                    continue;
                }
                match self.get(index, generation) {
                    Some(socket) => socket.complete(self, kind, cqe.result(), cqe.flags()),
                    None => {
                        // A late completion for a freed socket: give back its buffer.
                        if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                            self.bufs.borrow_mut().recycle(bid);
                        }
                    }
                }
            }
            self.bufs.borrow_mut().publish();
            if cqes.len() < CQES_PER_TURN {
                break;
            }
        }
        self.reaped.set(reaped);
        // Sockets that completions made dirty run in this turn too.
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        for id in dirty {
            if let Some(socket) = self.get(id.index, id.generation) {
                socket.pump(self);
            }
        }
        worked
    }

    /// The earliest live deadline.
    fn next_deadline(&self) -> Option<Instant> {
        self.timers.borrow().peek().map(|Reverse((at, _))| *at)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The runtime is going away with connections still open (a client runtime whose
        // future returned, a worker past its shutdown): end every socket, and wait (at
        // most a second) for their operations to complete, since the kernel may read a
        // send's buffers until then. Sockets still busy after that are leaked, never
        // freed under the kernel.
        let sockets: Vec<Rc<Socket>> = self
            .slots
            .get_mut()
            .sockets
            .iter()
            .flatten()
            .cloned()
            .collect();
        for socket in &sockets {
            socket.abandon();
        }
        let until = Instant::now() + std::time::Duration::from_secs(1);
        while sockets.iter().any(|s| s.is_busy()) && Instant::now() < until {
            let ts = types::Timespec::new().nsec(10_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.uring.get_mut().submitter().submit_with_args(1, &args);
            self.submit_and_reap();
        }
        for socket in sockets {
            if socket.is_busy() {
                std::mem::forget(socket);
            }
        }
        // The kernel lets go of the buffer ring's memory here, before the fields (and so
        // that memory) are dropped.
        let _ = self
            .uring
            .get_mut()
            .submitter()
            .unregister_buf_ring(BUF_GROUP);
    }
}

/// Creates the io_uring instance with the best flags the kernel takes: `COOP_TASKRUN`
/// with `TASKRUN_FLAG` (5.19; completions are not pushed on us with an interrupt while we
/// run, and the flag says when to enter for them), else none.
///
/// Not `DEFER_TASKRUN`, although it saves a little more: with it, a completion's work is
/// run only inside `io_uring_enter`, so a worker that sleeps in tokio's reactor (as ours
/// does, for the handlers' timers and channels) learns of it only through the registered
/// eventfd, and the kernel may signal that eventfd late. On the 6.18 kernel of our
/// benchmark machines it came 12–29 ms after the bytes (the signal seems deferred by the
/// kernel): a 1-connection ping-pong ran 50–350 messages/s instead of 7,000–17,000, and
/// `cargo run -p load` 2,900 msg/s instead of 85,000–145,000. With `COOP_TASKRUN` the
/// work runs as the sleeping thread wakes and the eventfd is signalled from it at once
/// (p50 62–120 µs from the peer's write to our wake-up, as with epoll).
fn make_uring(entries: u32) -> io::Result<IoUring> {
    let cq = entries.saturating_mul(2);
    let mut builder = IoUring::builder();
    builder
        .setup_cqsize(cq)
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_submit_all();
    match builder.build(entries) {
        Ok(uring) => Ok(uring),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let mut builder = IoUring::builder();
            builder.setup_cqsize(cq);
            builder.build(entries)
        }
        Err(e) => Err(e),
    }
}

thread_local! {
    /// The ring of the worker (or client runtime) running on this thread.
    static CURRENT: RefCell<Option<Rc<Ring>>> = const { RefCell::new(None) };
}

/// The ring of this thread's runtime, if it runs this driver.
pub(super) fn current() -> Option<Rc<Ring>> {
    CURRENT.with(|c| c.borrow().clone())
}

impl Ring {
    /// Makes `ring` this thread's (until the returned guard drops), for the sockets that
    /// futures on this thread create.
    pub(crate) fn enter(ring: &Rc<Ring>) -> impl Drop + use<> {
        struct Leave(Option<Rc<Ring>>);
        impl Drop for Leave {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|c| c.borrow_mut().replace(ring.clone()));
        Leave(previous)
    }

    /// The task that turns the ring: run it with `spawn_local` on the thread's runtime.
    /// While there is work it turns, letting the thread's other tasks (the handlers) run
    /// between turns; when there is none it sleeps until a completion (the eventfd), a
    /// handle's kick, or the next deadline.
    pub(crate) async fn run(self: Rc<Self>) {
        let Some(fd) = self.eventfd.borrow_mut().take() else {
            return;
        };
        // SAFETY: the `AsyncFd` owns the descriptor, so it stays open and the same for as
        // long as the registration lives.
        let Ok(eventfd) = (unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) })
        else {
            return;
        };
        let mut sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            self.woken.set(false);
            if self.turn() {
                // Let the handlers the completions woke run, then turn again.
                crate::runtime::executor::yield_to_worker().await;
                continue;
            }
            let deadline = self.next_deadline();
            if let Some(at) = deadline {
                let at = tokio::time::Instant::from_std(at);
                match &mut sleep {
                    Some(s) => s.as_mut().reset(at),
                    None => sleep = Some(Box::pin(tokio::time::sleep_until(at))),
                }
            }
            poll_fn(|cx| {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                if self.woken.get() {
                    return Poll::Ready(());
                }
                if let Poll::Ready(Ok(mut guard)) = eventfd.poll_read_ready(cx) {
                    // The eventfd's count is never read: each completion posted makes a
                    // new edge for the reactor, which is all that matters here.
                    guard.clear_ready();
                    return Poll::Ready(());
                }
                if deadline.is_some()
                    && let Some(s) = sleep.as_mut()
                    && s.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(());
                }
                Poll::Pending
            })
            .await;
        }
    }
}

use std::future::Future as _;
