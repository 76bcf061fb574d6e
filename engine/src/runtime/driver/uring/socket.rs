//! A socket in the worker's ring: its operations (multishot receive, one send, multishot
//! accept, connect), their completions, and the inline state machine of an established
//! connection ([`Socket::pump`]).
//!
//! Until a session takes it over, received bytes wait in the socket for the handshake's
//! reads (async, [`Transport::read`]); after [`Transport::drive`], they go straight into
//! the session's receive buffer and the core runs over them in the completion's turn.
//! While the session pauses reading (a queue over its bound) the receive is cancelled;
//! bytes already on their way wait unprocessed, so no reply is queued for them until it
//! resumes. A multishot receive that ends (no `F_MORE`: out of ring buffers, or done) is
//! armed again at the next turn; bytes are never lost or reordered, since the socket keeps
//! what the kernel did not deliver.
//!
//! # Sharing the worker among connections
//! The worker's time and its ring buffers are shared per connection, not per byte: a
//! connection that floods (a cheap peer can make every byte cost: 1-byte fragments) must
//! not delay the others' messages, handshakes or buffers.
//! - A connection with nothing waiting has its bytes processed at their completion, for
//!   up to [`INLINE_PER_TURN`] of the worker's time a turn.
//! - Past that it becomes *heavy*: its multishot receive is cancelled, what it still
//!   delivers goes to the session's buffer unprocessed, and the connection joins the
//!   ring's run queue, where each visit processes what one read brought (its *share*,
//!   sized so that a visit costs about [`VISIT`]) and the turn serves visits for a
//!   bounded time.
//! - A heavy connection reads with one plain receive at a time into its own session
//!   buffer, issued only when its waiting bytes are processed: it never holds more than
//!   one read unprocessed and never takes the ring's buffers from the others. A read that
//!   does not fill its buffer means it has caught up: it goes back to the multishot
//!   receive (and holds no buffer while idle).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use io_uring::{cqueue, opcode, types};

use super::ring::{BUF_GROUP, OpKind, Ring, SlotId, current};
use crate::runtime::driver::{Acceptor, IOV_MAX, Transport, consume};
use crate::runtime::session::{MAX_READ, Session, TcpStep};
use crate::runtime::socket::{Kick, Shared};

/// The most received bytes a socket keeps for its handshake's reads before it stops
/// receiving (the handshake's own limit is 16 KiB of head).
const RECEIVED_MAX: usize = 64 * 1024;

/// The time a connection with nothing waiting may spend on its bytes at their
/// completions in one turn; past that it is heavy (see the module docs). Time, not bytes:
/// a byte of a large message costs a copy, a byte of a 1-byte fragment a frame.
const INLINE_PER_TURN: Duration = Duration::from_micros(30);

/// What one visit of a heavy connection should cost: its share (the bytes a visit takes,
/// and its reads' size while others wait) halves when a visit costs twice this and
/// doubles when it costs half.
const VISIT: Duration = Duration::from_micros(10);

/// The bounds of a heavy connection's share, and where it starts.
const SHARE_MIN: usize = 1024;
const SHARE_START: usize = 16 * 1024;

/// A send in flight: what it points at lives here until its completion.
struct SendOp {
    chunks: Vec<Bytes>,
    /// What the kernel reads for a `sendmsg` of several chunks: kept alive, never read
    /// here. A single chunk goes out with `send` and needs neither.
    _vectored: Option<(Vec<libc::iovec>, Box<libc::msghdr>)>,
    /// Sent for the session (else for an async `write`).
    for_session: bool,
}

/// A plain receive in flight into the session's buffer, lent to it (a heavy connection).
struct DirectRead {
    /// The session's receive buffer; the kernel writes into its spare capacity.
    buf: BytesMut,
    /// The bytes asked for.
    spare: usize,
}

/// A socket's state, borrowed only inside plain calls (never across an await).
#[derive(Default)]
struct State {
    /// A multishot receive is in the kernel.
    recv_armed: bool,
    /// Its cancellation was asked for.
    recv_cancelling: bool,
    /// Bytes received and not yet taken: by the handshake's reads, or by a session
    /// paused for backpressure.
    received: BytesMut,
    /// The receive side ended: `Some(None)` at end of stream, `Some(Some(kind))` on error.
    recv_end: Option<Option<io::ErrorKind>>,
    send: Option<SendOp>,
    /// What async callers wait for (a listener's accepts, a connect, the handshake's
    /// reads and writes): boxed, and dropped once a session takes the socket over, so
    /// that an established connection does not carry it.
    waiting: Option<Box<Waiting>>,
    /// The established connection this socket carries.
    session: Option<Rc<Shared>>,
    on_finish: Option<Box<dyn FnOnce()>>,
    /// The deadline the worker's heap holds for this socket.
    timer_at: Option<Instant>,
    /// Reads with plain receives into its own buffer (see the module docs).
    heavy: bool,
    /// A plain receive in the kernel.
    direct: Option<DirectRead>,
    /// Bytes in the session's buffer not yet processed (a plain receive's, or delivered
    /// past the turn's allowance): (count, whether the last read filled what it asked).
    unprocessed: Option<(usize, bool)>,
    /// In the ring's run queue.
    queued: bool,
    /// The turn of `inline_spent`, and the time spent at completions in it.
    inline_turn: u64,
    inline_spent: Duration,
    /// A heavy connection's share (0: not yet set, [`SHARE_START`]).
    share: usize,
    /// Shut down for good; the slot is freed once no operation is left.
    closed: bool,
}

/// What async callers of a socket wait for, before (or instead of) a session.
#[derive(Default)]
struct Waiting {
    recv_waker: Option<Waker>,
    send_result: Option<io::Result<usize>>,
    send_waker: Option<Waker>,
    accept_armed: bool,
    accepted: VecDeque<io::Result<OwnedFd>>,
    accept_waker: Option<Waker>,
    /// The address a connect in flight points at (kept alive until it completes).
    connect_addr: Option<Box<socket2::SockAddr>>,
    connect_result: Option<io::Result<()>>,
    connect_waker: Option<Waker>,
}

impl State {
    /// The async callers' part, made on first use.
    fn waiting(&mut self) -> &mut Waiting {
        self.waiting.get_or_insert_with(Box::default)
    }

    /// Whether an accept or a connect is in the kernel.
    fn waiting_busy(&self) -> bool {
        self.waiting
            .as_ref()
            .is_some_and(|w| w.accept_armed || w.connect_addr.is_some())
    }

    /// A heavy connection's share: the bytes a visit takes.
    fn share(&self) -> usize {
        if self.share == 0 {
            SHARE_START
        } else {
            self.share
        }
    }
}

/// A socket of the ring.
pub(crate) struct Socket {
    id: SlotId,
    fd: OwnedFd,
    ring: Weak<Ring>,
    st: RefCell<State>,
}

impl Kick for Socket {
    fn kick(&self) {
        if let Some(ring) = self.ring.upgrade() {
            ring.mark_dirty(self.id);
        }
    }

    fn kick_fan_out(&self) {
        if let Some(ring) = self.ring.upgrade() {
            ring.mark_fan_out(self.id);
        }
    }
}

impl Socket {
    fn new(ring: &Rc<Ring>, fd: OwnedFd) -> Rc<Socket> {
        let weak = Rc::downgrade(ring);
        ring.insert(|id| Socket {
            id,
            fd,
            ring: weak,
            st: RefCell::default(),
        })
    }

    fn raw(&self) -> types::Fd {
        types::Fd(self.fd.as_raw_fd())
    }

    fn arm_recv(&self, ring: &Ring, st: &mut State) {
        if st.recv_armed || st.recv_end.is_some() || st.closed {
            return;
        }
        let entry = opcode::RecvMulti::new(self.raw(), BUF_GROUP)
            .build()
            .user_data(self.id.user_data(OpKind::Recv));
        ring.push(entry);
        st.recv_armed = true;
        st.recv_cancelling = false;
    }

    fn cancel_recv(&self, ring: &Ring, st: &mut State) {
        if !st.recv_armed || st.recv_cancelling {
            return;
        }
        let entry = opcode::AsyncCancel::new(self.id.user_data(OpKind::Recv))
            .build()
            .user_data(self.id.user_data(OpKind::Cancel));
        ring.push(entry);
        st.recv_cancelling = true;
    }

    /// Submits a send of `chunks` (one `send`, or `sendmsg` of up to `IOV_MAX` of them).
    fn start_send(&self, ring: &Ring, st: &mut State, chunks: Vec<Bytes>, for_session: bool) {
        let (entry, vectored) = if chunks.len() == 1 {
            let entry = opcode::Send::new(self.raw(), chunks[0].as_ptr(), chunks[0].len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build();
            (entry, None)
        } else {
            let iovecs: Vec<libc::iovec> = chunks
                .iter()
                .take(IOV_MAX)
                .map(|c| libc::iovec {
                    iov_base: c.as_ptr() as *mut libc::c_void,
                    iov_len: c.len(),
                })
                .collect();
            // SAFETY: a zeroed msghdr is a valid empty one (all pointers null, lengths 0).
            let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
            msg.msg_iov = iovecs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = iovecs.len() as _;
            let entry = opcode::SendMsg::new(self.raw(), &*msg)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build();
            (entry, Some((iovecs, msg)))
        };
        ring.push(entry.user_data(self.id.user_data(OpKind::Send)));
        st.send = Some(SendOp {
            chunks,
            _vectored: vectored,
            for_session,
        });
    }

    /// Starts a plain receive into the session's buffer (a heavy connection): as much as
    /// a flowing read wants, only its share while other connections wait.
    fn start_direct(&self, ring: &Ring, st: &mut State, s: &mut Session) {
        if st.direct.is_some() || st.recv_armed || st.recv_end.is_some() || st.closed {
            return;
        }
        let share = st.share();
        let want = if ring.contended() {
            share
        } else {
            s.read_size().max(share)
        };
        let buf = s.read_buf();
        if buf.capacity() - buf.len() < want {
            buf.reserve(want);
        }
        let mut buf = s.lend_read_buf();
        let len = buf.len();
        let spare = (buf.capacity() - len).min(want);
        // SAFETY: `len` is within the allocation (`len <= capacity`), so the pointer is in
        // bounds or one past the end; the kernel writes at most `spare` bytes from it,
        // which is within the spare capacity. The buffer is kept in `st.direct` (not
        // touched, its heap memory not moved or freed) until the completion, when
        // `set_len` covers exactly the bytes the kernel reported.
        let ptr = unsafe { buf.as_mut_ptr().add(len) };
        let entry = opcode::Recv::new(self.raw(), ptr, spare as u32)
            .build()
            .user_data(self.id.user_data(OpKind::Read));
        ring.push(entry);
        st.direct = Some(DirectRead { buf, spare });
    }

    /// Whether an operation is still in the kernel.
    fn busy(st: &State) -> bool {
        st.recv_armed || st.direct.is_some() || st.send.is_some() || st.waiting_busy()
    }

    /// Whether an operation of this socket is still in the kernel.
    pub(super) fn is_busy(&self) -> bool {
        Self::busy(&self.st.borrow())
    }

    /// The ring is going away: the connection ends now (1006 for its application), and
    /// the socket is shut down so that its operations complete.
    pub(super) fn abandon(&self) {
        let (session, on_finish) = {
            let mut st = self.st.borrow_mut();
            st.closed = true;
            (st.session.take(), st.on_finish.take())
        };
        let _ = socket2::SockRef::from(&self.fd).shutdown(Shutdown::Both);
        if let Some(shared) = session {
            shared.session.borrow_mut().finish();
            shared.finished();
        }
        if let Some(f) = on_finish {
            f();
        }
    }

    /// Shuts the socket down for good: every operation in flight completes (a receive
    /// sees the end, a send fails), and the slot is freed when the last has.
    fn close(&self, ring: &Ring) {
        let mut st = self.st.borrow_mut();
        if !st.closed {
            st.closed = true;
            let _ = socket2::SockRef::from(&self.fd).shutdown(Shutdown::Both);
            // A shut-down socket ends its operations, but a cancellation makes sure of it
            // (a send waiting on a peer that never reads).
            self.cancel_recv(ring, &mut st);
            if st.direct.is_some() {
                ring.push(
                    opcode::AsyncCancel::new(self.id.user_data(OpKind::Read))
                        .build()
                        .user_data(self.id.user_data(OpKind::Cancel)),
                );
            }
            if st.send.is_some() {
                ring.push(
                    opcode::AsyncCancel::new(self.id.user_data(OpKind::Send))
                        .build()
                        .user_data(self.id.user_data(OpKind::Cancel)),
                );
            }
        }
        let idle = !Self::busy(&st);
        drop(st);
        if idle {
            ring.remove(self.id);
        }
    }

    // ---- completions -----------------------------------------------------------------

    /// An operation of this socket completed.
    pub(super) fn complete(self: &Rc<Self>, ring: &Ring, kind: u8, result: i32, flags: u32) {
        match kind {
            k if k == OpKind::Recv as u8 => self.on_recv(ring, result, flags),
            k if k == OpKind::Read as u8 => self.on_direct(ring, result),
            k if k == OpKind::Send as u8 => self.on_send(ring, result),
            k if k == OpKind::Accept as u8 => {
                let mut st = self.st.borrow_mut();
                let waiting = st.waiting();
                if result >= 0 {
                    // SAFETY: a successful accept's result is a new descriptor we own.
                    waiting
                        .accepted
                        .push_back(Ok(unsafe { OwnedFd::from_raw_fd(result) }));
                } else {
                    waiting
                        .accepted
                        .push_back(Err(io::Error::from_raw_os_error(-result)));
                }
                if !cqueue::more(flags) {
                    waiting.accept_armed = false;
                }
                if let Some(w) = waiting.accept_waker.take() {
                    w.wake();
                }
            }
            k if k == OpKind::Connect as u8 => {
                let mut st = self.st.borrow_mut();
                let waiting = st.waiting();
                waiting.connect_addr = None;
                waiting.connect_result = Some(if result < 0 {
                    Err(io::Error::from_raw_os_error(-result))
                } else {
                    Ok(())
                });
                if let Some(w) = waiting.connect_waker.take() {
                    w.wake();
                }
            }
            _ => {}
        }
        let st = self.st.borrow();
        if st.closed && !Self::busy(&st) {
            drop(st);
            ring.remove(self.id);
        }
    }

    fn on_recv(self: &Rc<Self>, ring: &Ring, result: i32, flags: u32) {
        let mut st = self.st.borrow_mut();
        if !cqueue::more(flags) {
            st.recv_armed = false;
        }
        if result > 0 {
            let n = result as usize;
            let Some(bid) = cqueue::buffer_select(flags) else {
                return;
            };
            let session = st.session.clone();
            match session {
                Some(shared)
                    if st.received.is_empty()
                        && st.unprocessed.is_none()
                        && !st.closed
                        && shared.session.borrow().wants_read() =>
                {
                    let turn = ring.turn_number();
                    if st.inline_turn != turn {
                        st.inline_turn = turn;
                        st.inline_spent = Duration::ZERO;
                    }
                    let behind = st.queued;
                    if behind || st.inline_spent > INLINE_PER_TURN {
                        // Past its allowance for the turn (or bytes of it wait already):
                        // heavy. The bytes go where they would have gone, the session's
                        // buffer (so they cost no copy of their own), and wait there for
                        // the connection's turn.
                        {
                            let mut s = shared.session.borrow_mut();
                            let bufs = ring.bufs.borrow();
                            let incoming = bufs.filled(bid, n);
                            s.reserve_for(incoming);
                            s.read_buf().extend_from_slice(incoming);
                        }
                        ring.bufs.borrow_mut().recycle(bid);
                        // One receive's worth: what comes after it waits in the socket
                        // and is processed a share at a visit, so that a visit's replies
                        // (pongs) stay within what one read may add to the send queue.
                        st.unprocessed = Some((n, true));
                        if !st.heavy {
                            st.heavy = true;
                            self.cancel_recv(ring, &mut st);
                        }
                        drop(st);
                        ring.mark_dirty(self.id);
                        return;
                    }
                    // Within its allowance: processed now.
                    drop(st);
                    let started = Instant::now();
                    let wake_recv = {
                        let mut s = shared.session.borrow_mut();
                        let bufs = ring.bufs.borrow();
                        let more = cqueue::sock_nonempty(flags);
                        let received = s.deliver(bufs.filled(bid, n), more);
                        drop(bufs);
                        if !more {
                            s.release_idle_buffer();
                        }
                        received.wake_recv
                    };
                    if wake_recv {
                        shared.wake_recv();
                    }
                    ring.bufs.borrow_mut().recycle(bid);
                    self.st.borrow_mut().inline_spent += started.elapsed();
                    ring.mark_dirty(self.id);
                    return;
                }
                _ => {
                    // The handshake's bytes, or a session's while it is paused or has
                    // bytes waiting already: kept for later, unprocessed.
                    st.received
                        .extend_from_slice(ring.bufs.borrow().filled(bid, n));
                    ring.bufs.borrow_mut().recycle(bid);
                    if st.received.len() > RECEIVED_MAX {
                        // Nobody is taking these bytes fast enough (a peer that floods
                        // during the handshake): stop receiving until they are taken.
                        self.cancel_recv(ring, &mut st);
                    }
                }
            }
        } else if result == 0 {
            st.recv_end = Some(None);
            st.recv_armed = false;
        } else if result == -libc::ENOBUFS {
            // The ring ran dry: the multishot ended; armed again next turn, the bytes
            // still wait in the socket.
            ring.starved.set(ring.starved.get() + 1);
            st.recv_armed = false;
        } else if result == -libc::ECANCELED {
            st.recv_armed = false;
        } else {
            st.recv_end = Some(Some(io::Error::from_raw_os_error(-result).kind()));
            st.recv_armed = false;
        }
        if let Some(w) = st.waiting.as_mut().and_then(|w| w.recv_waker.take()) {
            w.wake();
        }
        let inline = st.session.is_some();
        drop(st);
        if inline || !self.st.borrow().recv_armed {
            ring.mark_dirty(self.id);
        }
    }

    fn on_send(self: &Rc<Self>, ring: &Ring, result: i32) {
        let mut st = self.st.borrow_mut();
        let Some(mut op) = st.send.take() else {
            return;
        };
        let outcome = if result < 0 {
            Err(io::Error::from_raw_os_error(-result))
        } else {
            consume(&mut op.chunks, result as usize).map(|()| result as usize)
        };
        if !op.for_session {
            // An async write's (a session's send after an abort is nobody's).
            if let Some(waiting) = st.waiting.as_mut() {
                waiting.send_result = Some(outcome);
                if let Some(w) = waiting.send_waker.take() {
                    w.wake();
                }
            }
            return;
        }
        let Some(shared) = st.session.clone() else {
            return;
        };
        match outcome {
            Ok(n) => {
                let wake_send = shared.session.borrow_mut().on_written(n);
                if !op.chunks.is_empty() && !st.closed {
                    // A partial send: the rest goes first, before anything newer.
                    self.start_send(ring, &mut st, std::mem::take(&mut op.chunks), true);
                }
                drop(st);
                if wake_send {
                    shared.wake_send();
                }
                if shared.is_kicked() {
                    // Its handle kicked it since its last pump, so it waits for a turn
                    // already (its own, or a fan-out's a few turns on): what was queued
                    // meanwhile leaves then, in one send, rather than a send per
                    // publish as each completion comes.
                    return;
                }
            }
            Err(e) => {
                drop(st);
                shared.session.borrow_mut().on_write_error(e.kind());
                shared.wake_recv();
            }
        }
        ring.mark_dirty(self.id);
    }

    /// A plain receive (a heavy connection's) completed: its bytes wait in the session's
    /// buffer for the connection's turn in the run queue.
    fn on_direct(self: &Rc<Self>, ring: &Ring, result: i32) {
        let mut st = self.st.borrow_mut();
        let Some(DirectRead { mut buf, spare }) = st.direct.take() else {
            return;
        };
        let Some(shared) = st.session.clone() else {
            // The session is over; the kernel is done with the buffer.
            return;
        };
        if result > 0 {
            let n = result as usize;
            // SAFETY: the kernel wrote `n <= spare` bytes into the spare capacity after
            // `len` (as asked in `start_direct`), so they are initialised and within the
            // capacity.
            unsafe { buf.set_len(buf.len() + n) };
            st.unprocessed = Some((n, n == spare));
            // A read that did not fill its buffer: caught up, back to the multishot
            // receive after this one.
            st.heavy = n == spare;
        } else if result == 0 {
            st.recv_end = Some(None);
        } else if result != -libc::ECANCELED {
            st.recv_end = Some(Some(io::Error::from_raw_os_error(-result).kind()));
        }
        shared.session.borrow_mut().return_read_buf(buf);
        drop(st);
        ring.mark_dirty(self.id);
    }

    /// The connection's visit in the run queue: one share of its waiting bytes processed,
    /// then [`pump`](Self::pump) (which queues it again if more wait).
    pub(super) fn serve(self: &Rc<Self>, ring: &Ring) {
        let Some(shared) = self.st.borrow().session.clone() else {
            return;
        };
        let mut wake_recv = false;
        let started = Instant::now();
        {
            let mut s = shared.session.borrow_mut();
            let mut st = self.st.borrow_mut();
            st.queued = false;
            if st.closed || !s.wants_read() {
                // Paused: `pump` queues it again when it reads again.
            } else if let Some((n, filled)) = st.unprocessed.take() {
                wake_recv = s.on_read(n, filled).wake_recv;
                if !filled {
                    s.release_idle_buffer();
                }
            } else if !st.received.is_empty() {
                let n = st.received.len().min(st.share());
                let chunk = st.received.split_to(n);
                wake_recv = s.deliver(&chunk, !st.received.is_empty()).wake_recv;
            }
            let spent = started.elapsed();
            let share = st.share();
            if spent > 2 * VISIT {
                st.share = (share / 2).max(SHARE_MIN);
            } else if spent < VISIT / 2 {
                st.share = (share * 2).min(MAX_READ);
            }
        }
        if wake_recv {
            shared.wake_recv();
        }
        self.pump(ring);
    }

    /// A deadline this socket asked for came.
    pub(super) fn on_timer(self: &Rc<Self>, ring: &Ring, _now: Instant) {
        self.st.borrow_mut().timer_at = None;
        self.pump(ring);
    }

    // ---- the established connection ---------------------------------------------------

    /// Runs the connection's state machine: receive on or off, send everything queued,
    /// end the TCP connection when the session says so, pass the time, and ask for a turn
    /// at the next deadline.
    pub(super) fn pump(self: &Rc<Self>, ring: &Ring) {
        let Some(shared) = self.st.borrow().session.clone() else {
            return;
        };
        shared.take_kicked();
        loop {
            let mut wake_recv = false;
            let mut s = shared.session.borrow_mut();
            let mut st = self.st.borrow_mut();
            if st.closed {
                return;
            }
            // Bytes waiting (delivered while paused, past the inline allowance, or by a
            // plain receive) are processed in the run queue, in order, a share at a
            // visit; the next receive is armed once none wait.
            let waiting = !st.received.is_empty() || st.unprocessed.is_some();
            if s.wants_read() && waiting {
                if !st.queued {
                    st.queued = true;
                    ring.enqueue(self.id);
                }
            } else if s.wants_read() && !st.queued {
                match st.recv_end {
                    Some(end) if st.direct.is_none() && !st.recv_armed => {
                        s.on_read_end(end);
                        wake_recv = true;
                    }
                    Some(_) => {}
                    None if st.heavy => {
                        if st.recv_armed {
                            self.cancel_recv(ring, &mut st);
                        } else {
                            self.start_direct(ring, &mut st, &mut s);
                        }
                    }
                    None if st.direct.is_none() => self.arm_recv(ring, &mut st),
                    None => {}
                }
            } else if !s.is_ended() && !s.wants_read() {
                // Paused for backpressure: stop the receive until the queues drain.
                self.cancel_recv(ring, &mut st);
            }
            if st.send.is_none() {
                let mut chunks = Vec::new();
                s.take_transmit(&mut chunks);
                if !chunks.is_empty() {
                    self.start_send(ring, &mut st, chunks, true);
                }
            } else if s.in_flight() == 0 {
                // Aborted: what is in flight is no longer the session's.
                if let Some(op) = st.send.as_mut() {
                    op.for_session = false;
                }
            }
            match s.tcp_step() {
                TcpStep::Run => {}
                TcpStep::ShutdownWrite => {
                    let _ = socket2::SockRef::from(&self.fd).shutdown(Shutdown::Write);
                }
                TcpStep::Close => {
                    s.finish();
                    let on_finish = st.on_finish.take();
                    st.session = None;
                    drop(st);
                    drop(s);
                    self.close(ring);
                    shared.finished();
                    if let Some(f) = on_finish {
                        f();
                    }
                    return;
                }
            }
            let changed = s.handle_timeout(Instant::now());
            if let Some(at) = s.poll_timeout()
                && st.timer_at.is_none_or(|armed| at < armed)
            {
                st.timer_at = Some(at);
                ring.add_timer(at, self.id);
            }
            drop(st);
            drop(s);
            if wake_recv {
                shared.wake_recv();
            }
            if !changed {
                return;
            }
        }
    }
}

/// An accepted or connected TCP stream on the ring.
pub(crate) struct UringStream {
    socket: Rc<Socket>,
}

impl UringStream {
    /// Takes `fd` into the ring, its receive armed at once (the handshake's bytes then
    /// wait in the socket for its reads).
    fn new(ring: &Rc<Ring>, fd: OwnedFd) -> Self {
        let socket = Socket::new(ring, fd);
        socket.arm_recv(ring, &mut socket.st.borrow_mut());
        UringStream { socket }
    }

    fn ring(&self) -> io::Result<Rc<Ring>> {
        self.socket
            .ring
            .upgrade()
            .ok_or_else(|| io::Error::other("the worker's ring is gone"))
    }
}

impl Drop for UringStream {
    fn drop(&mut self) {
        // A stream dropped before a session took it over (a failed handshake) ends here;
        // one that carries a session ends when the session does.
        let carries_session = self.socket.st.borrow().session.is_some();
        if !carries_session && let Some(ring) = self.socket.ring.upgrade() {
            self.socket.close(&ring);
        }
    }
}

impl Transport for UringStream {
    async fn read(&self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let result = poll_fn(|cx| {
            let mut st = self.socket.st.borrow_mut();
            if !st.received.is_empty() {
                let spare = (buf.capacity() - buf.len()).max(1);
                let n = spare.min(st.received.len());
                buf.extend_from_slice(&st.received[..n]);
                st.received.advance(n);
                return Poll::Ready(Ok(n));
            }
            match st.recv_end {
                Some(None) => return Poll::Ready(Ok(0)),
                Some(Some(kind)) => return Poll::Ready(Err(io::Error::from(kind))),
                None => {}
            }
            if st.closed {
                return Poll::Ready(Ok(0));
            }
            if !st.recv_armed
                && let Ok(ring) = self.ring()
            {
                self.socket.arm_recv(&ring, &mut st);
                drop(st);
                ring.mark_dirty(self.socket.id);
                st = self.socket.st.borrow_mut();
            }
            st.waiting().recv_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        (result, buf)
    }

    async fn write(&self, chunks: Vec<Bytes>) -> (io::Result<usize>, Vec<Bytes>) {
        let ring = match self.ring() {
            Ok(ring) => ring,
            Err(e) => return (Err(e), chunks),
        };
        {
            let mut st = self.socket.st.borrow_mut();
            if st.send.is_some() {
                return (Err(io::ErrorKind::WouldBlock.into()), chunks);
            }
            st.waiting().send_result = None;
            self.socket
                .start_send(&ring, &mut st, chunks.clone(), false);
        }
        ring.mark_dirty(self.socket.id);
        let result = poll_fn(|cx| {
            let mut st = self.socket.st.borrow_mut();
            let waiting = st.waiting();
            match waiting.send_result.take() {
                Some(result) => Poll::Ready(result),
                None => {
                    waiting.send_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        // The count refers to `chunks` as they were given; the caller consumes them.
        (result, chunks)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket2::SockRef::from(&self.socket.fd).shutdown(how)
    }

    fn set_nodelay(&self) -> io::Result<()> {
        socket2::SockRef::from(&self.socket.fd).set_nodelay(true)
    }

    async fn drive(self: Rc<Self>, shared: Rc<Shared>, on_finish: Box<dyn FnOnce()>) {
        let Ok(ring) = self.ring() else {
            shared.session.borrow_mut().finish();
            shared.finished();
            on_finish();
            return;
        };
        let early = {
            let mut st = self.socket.st.borrow_mut();
            st.session = Some(shared.clone());
            st.on_finish = Some(on_finish);
            // The handshake's reads and writes are over (and a connect's address with
            // them): the established connection does not carry their state.
            if !st.waiting_busy() {
                st.waiting = None;
            }
            std::mem::take(&mut st.received)
        };
        shared.set_kick(self.socket.clone());
        // Bytes that came after the handshake's last read go first, as a read (over TLS
        // they are ciphertext); without them, what came with the handshake.
        let received = {
            let mut s = shared.session.borrow_mut();
            if early.is_empty() {
                s.process()
            } else {
                s.deliver(&early, false)
            }
        };
        if received.wake_recv {
            shared.wake_recv();
        }
        self.socket.pump(&ring);
        // The ring runs the connection from here; this task ends.
    }
}

/// A listening socket on the ring, with a multishot accept.
pub(crate) struct UringListener {
    socket: Rc<Socket>,
}

impl UringListener {
    /// Takes `listener` into this thread's ring.
    pub(crate) fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        let ring =
            current().ok_or_else(|| io::Error::other("no io_uring driver on this thread"))?;
        let socket = Socket::new(&ring, OwnedFd::from(listener));
        Ok(UringListener { socket })
    }
}

impl Drop for UringListener {
    fn drop(&mut self) {
        if let Some(ring) = self.socket.ring.upgrade() {
            self.socket.close(&ring);
        }
    }
}

impl Acceptor for UringListener {
    type Stream = UringStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let ring = self
            .socket
            .ring
            .upgrade()
            .ok_or_else(|| io::Error::other("the worker's ring is gone"))?;
        let fd = poll_fn(|cx| {
            let mut st = self.socket.st.borrow_mut();
            let closed = st.closed;
            let waiting = st.waiting();
            if let Some(next) = waiting.accepted.pop_front() {
                return Poll::Ready(next);
            }
            if closed {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            }
            if !waiting.accept_armed {
                let entry = opcode::AcceptMulti::new(self.socket.raw())
                    .flags(libc::SOCK_CLOEXEC)
                    .build()
                    .user_data(self.socket.id.user_data(OpKind::Accept));
                ring.push(entry);
                waiting.accept_armed = true;
                ring.mark_dirty(self.socket.id);
            }
            waiting.accept_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await?;
        let peer = socket2::SockRef::from(&fd)
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP peer"))?;
        Ok((UringStream::new(&ring, fd), peer))
    }
}

/// Takes a connected stream (one hyper accepted, say) into this thread's ring.
pub(crate) fn adopt(stream: std::net::TcpStream) -> io::Result<UringStream> {
    let ring = current().ok_or_else(|| io::Error::other("no io_uring driver on this thread"))?;
    Ok(UringStream::new(&ring, OwnedFd::from(stream)))
}

/// Connects to `addr` (from `local`, if given) on this thread's ring.
pub(crate) async fn connect(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<UringStream> {
    let ring = current().ok_or_else(|| io::Error::other("no io_uring driver on this thread"))?;
    let raw = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM.cloexec(),
        Some(socket2::Protocol::TCP),
    )?;
    if let Some(local) = local {
        raw.bind(&SocketAddr::new(local, 0).into())?;
    }
    let socket = Socket::new(&ring, OwnedFd::from(raw));
    {
        let mut st = socket.st.borrow_mut();
        let target = Box::new(socket2::SockAddr::from(addr));
        let entry = opcode::Connect::new(socket.raw(), target.as_ptr().cast(), target.len())
            .build()
            .user_data(socket.id.user_data(OpKind::Connect));
        st.waiting().connect_addr = Some(target);
        ring.push(entry);
    }
    ring.mark_dirty(socket.id);
    let stream = UringStream { socket };
    poll_fn(|cx| {
        let mut st = stream.socket.st.borrow_mut();
        let waiting = st.waiting();
        match waiting.connect_result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                waiting.connect_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await?;
    stream
        .socket
        .arm_recv(&ring, &mut stream.socket.st.borrow_mut());
    ring.mark_dirty(stream.socket.id);
    Ok(stream)
}
