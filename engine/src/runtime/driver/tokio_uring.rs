//! The io_uring driver on `tokio-uring`: a TCP socket whose reads and writes are ring
//! operations that own their buffers while in flight.
//!
//! A connection is one task and one state machine: at most one read and one write in
//! flight (two writes could be reordered), each started from what the session decides,
//! and the task waits for whichever completes first, the handle's wake-up, or the
//! connection's one timer. A pending read owns its buffer until bytes arrive, so reads
//! are sized by what is flowing: 512 bytes on a quiet connection, at least
//! `read_buffer_size` (and as much as the frame in progress needs) once reads fill their
//! buffers.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

use super::{Acceptor, ConnTimer, IOV_MAX, Transport, consume};
use crate::runtime::session::{MAX_READ, Session, TcpStep};
use crate::runtime::socket::Shared;

/// The buffer of a read on a connection where nothing is flowing: what an idle
/// connection holds. Small messages (a ping-pong's) fit; a read that fills it makes the
/// next one large.
const IDLE_READ: usize = 512;
/// An idle read reuses the receive buffer's spare capacity down to this much.
const IDLE_READ_MIN: usize = 128;

impl Transport for TcpStream {
    async fn read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let (len, cap) = (buf.len(), buf.capacity());
        let (result, slice) = TcpStream::read(self, buf.slice(len..cap)).await;
        (result, slice.into_inner())
    }

    async fn write(&self, mut chunks: Vec<Bytes>) -> (io::Result<usize>, Vec<Bytes>) {
        if chunks.len() == 1
            && let Some(chunk) = chunks.pop()
        {
            let (result, chunk) = TcpStream::write(self, chunk).submit().await;
            chunks.push(chunk);
            return (result, chunks);
        }
        if chunks.len() <= IOV_MAX {
            return self.writev(chunks).await;
        }
        let rest = chunks.split_off(IOV_MAX);
        let (result, mut chunks) = self.writev(chunks).await;
        chunks.extend(rest);
        (result, chunks)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }

    fn set_nodelay(&self) -> io::Result<()> {
        TcpStream::set_nodelay(self, true)
    }

    async fn drive(self: Rc<Self>, shared: Rc<Shared>, on_finish: Box<dyn FnOnce()>) {
        run(shared, self).await;
        on_finish();
    }
}

impl Acceptor for TcpListener {
    type Stream = TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        TcpListener::accept(self).await
    }
}

/// A read in flight, into the receive buffer.
struct ReadOp {
    op: Pin<Box<dyn Future<Output = (io::Result<usize>, BytesMut)>>>,
    spare: usize,
}

type WriteOp = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<Bytes>)>>>;

/// What the task woke up for.
enum Woke {
    Read(io::Result<usize>, BytesMut, usize),
    Written(io::Result<usize>, Vec<Bytes>),
    Handle,
    Timer,
}

async fn run(shared: Rc<Shared>, stream: Rc<TcpStream>) {
    let mut read: Option<ReadOp> = None;
    let mut write: Option<WriteOp> = None;
    let mut timer = ConnTimer::default();
    let mut chunks: Vec<Bytes> = Vec::new();
    // Frames that arrived with the handshake (in the same read) are already buffered.
    if shared.session.borrow_mut().process().wake_recv {
        shared.wake_recv();
    }
    loop {
        let deadline = {
            let mut s = shared.session.borrow_mut();
            // Start what the session wants: a read, a write of everything queued.
            if read.is_none() && s.wants_read() {
                read = Some(start_read(&mut s, &stream));
            }
            if write.is_none() {
                s.take_transmit(&mut chunks);
                if !chunks.is_empty() {
                    let stream = stream.clone();
                    let batch = std::mem::take(&mut chunks);
                    write = Some(Box::pin(
                        async move { Transport::write(&*stream, batch).await },
                    ));
                }
            }
            match s.tcp_step() {
                TcpStep::Run => {}
                TcpStep::ShutdownWrite => {
                    let _ = stream.shutdown(Shutdown::Write);
                }
                TcpStep::Close => {
                    // Ends the operations in flight; their buffers stay with the ring until
                    // the kernel completes them.
                    let _ = stream.shutdown(Shutdown::Both);
                    s.finish();
                    break;
                }
            }
            if s.handle_timeout(Instant::now()) {
                // The time made work (a ping to send, an end): start it first.
                continue;
            }
            s.poll_timeout()
        };
        timer.arm(deadline);
        let woke = poll_fn(|cx| {
            if let Some(ReadOp { op, spare }) = read.as_mut()
                && let Poll::Ready((result, buf)) = op.as_mut().poll(cx)
            {
                return Poll::Ready(Woke::Read(result, buf, *spare));
            }
            if let Some(op) = write.as_mut()
                && let Poll::Ready((result, batch)) = op.as_mut().poll(cx)
            {
                return Poll::Ready(Woke::Written(result, batch));
            }
            if shared.driver_polled(cx.waker()) {
                return Poll::Ready(Woke::Handle);
            }
            if timer.poll_fired(cx) {
                return Poll::Ready(Woke::Timer);
            }
            Poll::Pending
        })
        .await;
        let mut s = shared.session.borrow_mut();
        match woke {
            Woke::Read(result, buf, spare) => {
                read = None;
                let received = finish_read(&mut s, result, buf, spare);
                drop(s);
                if received {
                    shared.wake_recv();
                }
            }
            Woke::Written(result, mut batch) => {
                write = None;
                let outcome = result.and_then(|n| consume(&mut batch, n).map(|()| n));
                match outcome {
                    Ok(n) => {
                        let wake_send = s.on_written(n);
                        if s.in_flight() > 0 {
                            // A partial write: the rest goes first, before anything newer.
                            chunks = batch;
                        }
                        drop(s);
                        if wake_send {
                            shared.wake_send();
                        }
                    }
                    Err(e) => {
                        s.on_write_error(e.kind());
                        drop(s);
                        shared.wake_recv();
                    }
                }
            }
            Woke::Handle | Woke::Timer => {}
        }
    }
    shared.finished();
}

/// Starts a read into the receive buffer, sized by what is flowing.
fn start_read(s: &mut Session, stream: &Rc<TcpStream>) -> ReadOp {
    let flowing = s.flowing();
    let want = if flowing {
        s.read_size()
    } else {
        IDLE_READ_MIN
    };
    let buf = s.read_buf();
    let spare = buf.capacity() - buf.len();
    if !flowing && (spare < want || buf.capacity() > IDLE_READ) {
        // Nothing buffered: a fresh small buffer, rather than growing the old one (which
        // earlier messages may still share) or leaving a large one with a read that may
        // wait for a long time.
        *buf = BytesMut::with_capacity(IDLE_READ);
    } else if spare < want.div_ceil(4) {
        // Grown only below a quarter of a read's room, as `Session::reserve_read` does: a
        // frame dripped a few bytes at a time must not grow it at every read.
        buf.reserve(want);
    }
    let buf = s.lend_read_buf();
    // At most MAX_READ, whatever capacity the buffer has: one read's replies (pongs) are
    // what the send queue may exceed its bound by.
    let (len, spare) = (buf.len(), (buf.capacity() - buf.len()).min(MAX_READ));
    let stream = stream.clone();
    ReadOp {
        op: Box::pin(async move {
            let (result, slice) = stream.read(buf.slice(len..len + spare)).await;
            (result, slice.into_inner())
        }),
        spare,
    }
}

/// Hands a finished read to the session; returns whether `recv` must be woken.
fn finish_read(s: &mut Session, result: io::Result<usize>, buf: BytesMut, spare: usize) -> bool {
    s.return_read_buf(buf);
    match result {
        Ok(n) => s.on_read(n, n == spare).wake_recv,
        Err(e) => {
            s.on_read_end(Some(e.kind()));
            true
        }
    }
}
