//! A connection on a readiness-based stream (tokio's epoll reactor): one task, one state
//! machine.
//!
//! Each time the task is polled (the socket became readable or writable, the handle queued
//! something, or the deadline came) it runs one pass over the session: read what is there
//! (straight into the receive buffer; a read that does not fill its buffer means the
//! socket is drained, so it does not read again to see `EAGAIN`), write everything queued
//! in one `write`/`writev`, end the TCP connection when the session says so, pass the
//! time, and arm the connection's one timer for the next deadline. Nothing is held while
//! the socket is quiet: no pending read owns a buffer, and an empty receive buffer is let
//! go.
//!
//! A pass is cheap, so that the runtime's FIFO order of tasks is fair: at most
//! [`READS_PER_PASS`] reads, and a connection whose reads cost more than
//! [`PASS_ALLOWANCE`] becomes heavy and from then on reads one share at its turn among
//! the thread's heavy connections ([`Turn`]) until it has caught up.

use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::turns::Turn;
use super::{ConnTimer, consume};
use crate::runtime::session::{MAX_READ, TcpStep};
use crate::runtime::socket::Shared;

/// Filled reads in one pass before the task yields to the others on its worker.
const READS_PER_PASS: usize = 8;

/// The time one pass may spend on reads before the connection counts as heavy and
/// reads only at its turn ([`Turn`]). Time, not bytes: a byte of a large message costs a
/// copy, a byte of a 1-byte fragment a frame.
const PASS_ALLOWANCE: Duration = Duration::from_micros(30);

/// What a heavy connection's turn should cost: its share (the size of its reads while
/// other heavy ones wait) halves when a turn costs twice this and doubles at half.
const TURN: Duration = Duration::from_micros(10);

/// The bounds of a heavy connection's share, and where it starts.
const SHARE_MIN: usize = 1024;
const SHARE_START: usize = 16 * 1024;

/// A stream that says when it is ready and then reads or writes without blocking.
pub(crate) trait Readiness {
    /// Whether the stream can be read now (registering the task for when it can). A
    /// stream that cannot tell says yes, and its read then waits instead.
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Reads into the spare capacity of `buf` (appending, at most `limit` and at most
    /// [`MAX_READ`] bytes) once the stream is readable.
    /// `Ready(Ok(0))`: the end of the stream. A read that fills less than it could
    /// leaves the stream marked not readable until the kernel says otherwise.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        limit: usize,
    ) -> Poll<io::Result<usize>>;

    /// Writes from the front of `chunks` (one `write`, or a `writev` of several); the
    /// count may be partial.
    fn poll_send(&self, cx: &mut Context<'_>, chunks: &[Bytes]) -> Poll<io::Result<usize>>;

    /// Pushes out what the stream buffers itself (a TLS or other wrapped stream); a
    /// socket has nothing to flush.
    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts down the sending direction (our FIN).
    fn poll_shutdown_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Closes both directions at the end of the connection.
    fn close(&self);
}

/// Runs the connection until its socket is closed.
pub(crate) async fn run<S: Readiness>(shared: Rc<Shared>, stream: Rc<S>) {
    let mut state = Loop {
        out: Vec::new(),
        unflushed: false,
        shutting_write: false,
        timer: ConnTimer::default(),
        turn: None,
        share: SHARE_START,
    };
    // Frames that arrived with the handshake (in the same read) are already buffered.
    if shared.session.borrow_mut().process().wake_recv {
        shared.wake_recv();
    }
    poll_fn(|cx| state.poll(cx, &shared, &*stream)).await;
    shared.finished();
}

/// The task's own state between passes.
struct Loop {
    /// Chunks taken from the session and not yet written.
    out: Vec<Bytes>,
    /// A write went out since the last flush.
    unflushed: bool,
    /// Our FIN is being sent.
    shutting_write: bool,
    /// The connection's one timer.
    timer: ConnTimer,
    /// Heavy: reads only at its turn, one share at a time.
    turn: Option<Turn>,
    /// A heavy connection's share: its reads' size while other heavy ones wait.
    share: usize,
}

impl Loop {
    fn poll<S: Readiness>(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Shared,
        stream: &S,
    ) -> Poll<()> {
        shared.driver_polled(cx.waker());
        loop {
            let mut happened = false;
            let mut wake_recv = false;
            let mut wake_send = false;
            let mut s = shared.session.borrow_mut();

            // Read what is there: a few reads a pass, or, heavy, one share at its turn.
            let mut reads = 0;
            let mut yield_now = false;
            let pass_began = Instant::now();
            while s.wants_read() {
                if let Some(turn) = &self.turn
                    && !turn.ready(cx.waker())
                {
                    // Not its turn: woken when it is.
                    break;
                }
                // Readiness first: a quiet connection reserves no buffer.
                match stream.poll_read_ready(cx) {
                    Poll::Pending => {
                        // Caught up: no longer heavy.
                        self.turn = None;
                        break;
                    }
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        happened = true;
                        s.on_read_end(Some(e.kind()));
                        wake_recv = true;
                        break;
                    }
                }
                let limit = if self.turn.is_some() && Turn::contended() {
                    self.share
                } else {
                    MAX_READ
                };
                let buf = s.reserve_read();
                let spare = (buf.capacity() - buf.len()).min(MAX_READ).min(limit);
                let read_began = Instant::now();
                match stream.poll_recv(cx, buf, spare) {
                    Poll::Pending => {
                        // The readiness was stale: keep no buffer while waiting.
                        s.release_idle_buffer();
                        self.turn = None;
                        break;
                    }
                    Poll::Ready(Ok(n)) => {
                        happened = true;
                        wake_recv |= s.on_read(n, n == spare).wake_recv;
                        if n < spare {
                            // Drained (or the end): the next read waits for readiness.
                            s.release_idle_buffer();
                            if self.turn.is_some() {
                                // Caught up: no longer heavy.
                                self.turn = None;
                            } else if pass_began.elapsed() > PASS_ALLOWANCE {
                                // Costly all the same: its next reads are at its turn.
                                self.turn = Some(Turn::join());
                            }
                            break;
                        }
                        if let Some(turn) = &self.turn {
                            let spent = read_began.elapsed();
                            if spent > 2 * TURN {
                                self.share = (self.share / 2).max(SHARE_MIN);
                            } else if spent < TURN / 2 {
                                self.share = (self.share * 2).min(MAX_READ);
                            }
                            turn.pass();
                            yield_now = true;
                        } else if pass_began.elapsed() > PASS_ALLOWANCE {
                            // Costly: from now on it reads at its turn.
                            self.turn = Some(Turn::join());
                            yield_now = true;
                        } else {
                            reads += 1;
                            yield_now = reads == READS_PER_PASS;
                        }
                        if yield_now {
                            // Let the worker's other tasks run, then go on.
                            cx.waker().wake_by_ref();
                            break;
                        }
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(e)) => {
                        happened = true;
                        s.on_read_end(Some(e.kind()));
                        wake_recv = true;
                        break;
                    }
                }
            }
            if !s.wants_read() {
                // Paused or done reading: it does not hold up the heavy ones.
                self.turn = None;
            }

            // Write everything queued (nothing, once the session dropped what was in
            // flight: an aborted connection).
            if s.in_flight() == 0 {
                self.out.clear();
            }
            if self.out.is_empty() {
                s.take_transmit(&mut self.out);
            }
            while !self.out.is_empty() {
                match stream.poll_send(cx, &self.out) {
                    Poll::Pending => break,
                    Poll::Ready(result) => {
                        happened = true;
                        match result.and_then(|n| consume(&mut self.out, n).map(|()| n)) {
                            Ok(n) => {
                                self.unflushed = true;
                                wake_send |= s.on_written(n);
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                self.out.clear();
                                s.on_write_error(e.kind());
                                wake_recv = true;
                            }
                        }
                    }
                }
            }
            if self.unflushed
                && self.out.is_empty()
                && let Poll::Ready(result) = stream.poll_flush(cx)
            {
                self.unflushed = false;
                if let Err(e) = result {
                    s.on_write_error(e.kind());
                    wake_recv = true;
                }
            }

            // End the TCP connection when the session says so.
            match s.tcp_step() {
                TcpStep::Run => {}
                TcpStep::ShutdownWrite => {
                    self.shutting_write = true;
                    happened = true;
                }
                TcpStep::Close => {
                    self.turn = None;
                    stream.close();
                    s.finish();
                    drop(s);
                    return Poll::Ready(());
                }
            }
            if self.shutting_write && stream.poll_shutdown_write(cx).is_ready() {
                self.shutting_write = false;
            }

            // Pass the time; arm the timer for the next deadline. Work the time made (a
            // keepalive ping, an abort) is done in another pass.
            let more = s.handle_timeout(Instant::now());
            let deadline = s.poll_timeout();
            drop(s);
            if wake_recv {
                shared.wake_recv();
            }
            if wake_send {
                shared.wake_send();
            }
            self.timer.arm(deadline);
            let fired = self.timer.poll_fired(cx);
            if yield_now || !(happened || fired || more) {
                // (Having yielded, it was woken already, and goes on at its next poll.)
                return Poll::Pending;
            }
        }
    }
}
