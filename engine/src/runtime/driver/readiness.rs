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

use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::{ConnTimer, consume};
use crate::runtime::session::{MAX_READ, TcpStep};
use crate::runtime::socket::Shared;

/// Filled reads in one pass before the task yields to the others on its worker.
const READS_PER_PASS: usize = 8;

/// A stream that says when it is ready and then reads or writes without blocking.
pub(crate) trait Readiness {
    /// Whether the stream can be read now (registering the task for when it can). A
    /// stream that cannot tell says yes, and its read then waits instead.
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Reads into the spare capacity of `buf` (appending, at most [`MAX_READ`] bytes) once
    /// the stream is readable.
    /// `Ready(Ok(0))`: the end of the stream. A read that fills less than the spare
    /// capacity leaves the stream marked not readable until the kernel says otherwise.
    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>;

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

            // Read what is there.
            let mut reads = 0;
            while s.wants_read() {
                // Readiness first: a quiet connection reserves no buffer.
                match stream.poll_read_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        happened = true;
                        s.on_read_end(Some(e.kind()));
                        wake_recv = true;
                        break;
                    }
                }
                let buf = s.reserve_read();
                let spare = (buf.capacity() - buf.len()).min(MAX_READ);
                match stream.poll_recv(cx, buf) {
                    Poll::Pending => {
                        // The readiness was stale: keep no buffer while waiting.
                        s.release_idle_buffer();
                        break;
                    }
                    Poll::Ready(Ok(n)) => {
                        happened = true;
                        wake_recv |= s.on_read(n, n == spare).wake_recv;
                        if n < spare {
                            // Drained (or the end): the next read waits for readiness.
                            s.release_idle_buffer();
                            break;
                        }
                        reads += 1;
                        if reads == READS_PER_PASS {
                            // Fairness: let the worker's other tasks run, then go on.
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
            if !(happened || fired || more) {
                return Poll::Pending;
            }
        }
    }
}
