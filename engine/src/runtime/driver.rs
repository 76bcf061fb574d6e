//! The two tasks that move a connection's bytes on either driver: the reader and the writer.
//!
//! Reader: read into the spare capacity of the core's receive buffer (no copy; a
//! single-frame message is then a `Bytes` view of that buffer), run the core, put messages
//! in the inbox, wake the application and the writer (for pongs and close replies).
//!
//! Writer: take everything the core has queued (all frames of this turn) and write it in
//! one `write` (one chunk) or `writev` (a header and large payloads by reference). It also
//! owns the deadlines: keepalive pings, the idle timeout, and the close timeout. When the
//! connection is done it ends the TCP connection in the order RFC 6455 §7.1.1 asks for.

use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::socket::{End, Inner};
use super::transport::{Transport, consume};
use crate::proto::connection::{Event, State};

/// The most a single read asks for, however large the frame in progress.
const MAX_READ: usize = 256 * 1024;
/// The buffer of a read on a connection where nothing is flowing: what an idle
/// connection holds. Small messages (a ping-pong's) fit; a read that fills it makes the
/// next one large.
const IDLE_READ: usize = 512;
/// An idle read reuses the receive buffer's spare capacity down to this much.
const IDLE_READ_MIN: usize = 128;

/// Spawns the reader and writer of a connection on the current worker.
pub(crate) fn spawn<T: Transport>(
    inner: Rc<Inner>,
    stream: Rc<T>,
    on_finish: impl FnOnce() + 'static,
) {
    tokio::task::spawn_local(read_loop(inner.clone(), stream.clone()));
    tokio::task::spawn_local(async move {
        write_loop(&inner, &*stream).await;
        on_finish();
    });
}

async fn read_loop<T: Transport>(inner: Rc<Inner>, stream: Rc<T>) {
    // Frames that arrived with the handshake (in the same read) are already buffered.
    process_received(&inner);
    loop {
        // Backpressure: stop reading while the application has too much unread, or while
        // too much waits to be written (replies the core queues by itself, such as pongs
        // to a peer that floods pings and never reads). TCP flow control then slows the
        // peer, and memory stays bounded by the two queue limits.
        while reading_paused(&inner) {
            tokio::select! {
                _ = inner.recv_space.notified() => {}
                _ = inner.send_space.notified() => {}
            }
        }
        let result = match inner.read_pool.as_ref().and_then(|pool| pool.try_take()) {
            Some(fixed) => read_registered(&inner, &*stream, fixed).await,
            None => read_ordinary(&inner, &*stream).await,
        };
        let mut s = inner.shared.borrow_mut();
        let receiving = s.conn.is_receiving();
        match result {
            Ok(0) | Err(_) => {
                s.read_closed = true;
                if receiving {
                    // The TCP connection ended before the closing handshake: 1006.
                    s.conn.abort();
                }
                match result {
                    Err(e) => s.set_end(End::Io(e.kind())),
                    _ => s.set_end(End::Abnormal),
                }
                drop(s);
                inner.readable.notify();
                inner.writable.notify();
                return;
            }
            Ok(_) => {}
        }
        s.last_received = Instant::now();
        if !receiving {
            // After the peer's close frame (or a protocol error), read only to see its FIN.
            s.conn.read_buf().clear();
            continue;
        }
        drop(s);
        process_received(&inner);
    }
}

/// Whether the reader waits: a queue is over its limit and the connection is not over.
fn reading_paused(inner: &Inner) -> bool {
    let s = inner.shared.borrow();
    let opts = &inner.options;
    s.end.is_none()
        && (s.inbox_bytes > opts.max_recv_queue
            || s.conn.pending_transmit() + s.in_flight > opts.max_send_queue)
}

/// Reads into the spare capacity of the core's receive buffer: no copy.
///
/// With io_uring a pending read owns its buffer until data arrives, so an idle
/// connection holds whatever its read was given. Reads are therefore sized by what is
/// flowing: a connection with nothing buffered whose last read did not fill its buffer
/// (the socket was drained) reads into a buffer of at most [`IDLE_READ`] bytes (what is
/// left of the current one, or a fresh one); once a read fills its buffer or a frame is in
/// progress, reads get at least [`SocketOptions::read_buffer_size`] and as much as the
/// frame still needs.
///
/// [`SocketOptions::read_buffer_size`]: super::options::SocketOptions::read_buffer_size
async fn read_ordinary<T: Transport>(inner: &Inner, stream: &T) -> std::io::Result<usize> {
    let buf = {
        let mut s = inner.shared.borrow_mut();
        let flowing = s.last_read_filled || s.conn.buffered() > 0;
        let want = if flowing {
            s.conn
                .read_hint()
                .clamp(inner.options.read_buffer_size, MAX_READ)
        } else {
            IDLE_READ_MIN
        };
        let buf = s.conn.read_buf();
        let spare = buf.capacity() - buf.len();
        if !flowing && (spare < want || buf.capacity() > IDLE_READ) {
            // Nothing buffered: a fresh small buffer, rather than growing the old one
            // (which earlier messages may still share) or leaving a large one with a
            // read that may wait for a long time.
            *buf = BytesMut::with_capacity(IDLE_READ);
        } else if spare < want {
            buf.reserve(want);
        }
        std::mem::take(buf)
    };
    let spare = buf.capacity() - buf.len();
    let (result, buf) = stream.read(buf).await;
    let mut s = inner.shared.borrow_mut();
    s.last_read_filled = matches!(result, Ok(n) if n == spare);
    *s.conn.read_buf() = buf;
    result
}

/// Reads into a registered buffer, then copies into the core's receive buffer.
async fn read_registered<T: Transport>(
    inner: &Inner,
    stream: &T,
    fixed: tokio_uring::buf::fixed::FixedBuf,
) -> std::io::Result<usize> {
    let (result, fixed) = stream.read_registered(fixed).await;
    if let Ok(n) = result {
        let mut s = inner.shared.borrow_mut();
        if s.conn.is_receiving() {
            s.conn.feed(&fixed[..n]);
        }
    }
    result
}

/// Runs the core over the bytes received so far: messages to the inbox, then wakes the
/// application (messages, or the end) and the writer (pongs, close frames).
fn process_received(inner: &Inner) {
    let mut s = inner.shared.borrow_mut();
    let mut got_message = false;
    loop {
        match s.conn.poll_event() {
            Ok(Some(Event::Message(message))) => {
                s.inbox_bytes += message.len();
                s.inbox.push_back(message);
                got_message = true;
            }
            Ok(Some(Event::Ping(_) | Event::Pong(_))) => {}
            Ok(Some(Event::Close(frame))) => {
                s.set_end(End::Closed(frame));
                break;
            }
            Ok(None) => break,
            Err(e) => {
                s.set_end(End::Protocol(e));
                break;
            }
        }
    }
    let wake_writer = s.conn.wants_transmit() || s.conn.is_closed();
    let ended = s.end.is_some();
    drop(s);
    if got_message || ended {
        inner.readable.notify();
    }
    if wake_writer {
        inner.writable.notify();
    }
}

async fn write_loop<T: Transport>(inner: &Inner, stream: &T) {
    let mut chunks: Vec<Bytes> = Vec::new();
    loop {
        let hold = hold_close_until(inner, &mut inner.shared.borrow_mut());
        if let Some(until) = hold {
            // Let the application answer what arrived before the close first.
            tokio::select! {
                _ = inner.writable.notified() => {}
                _ = Box::pin(tokio::time::sleep_until(until.into())) => {}
            }
            continue;
        }
        let deadline = {
            let mut s = inner.shared.borrow_mut();
            s.conn.drain_transmit(&mut chunks);
            if chunks.is_empty() {
                if s.end.is_some() || s.conn.is_closed() {
                    break;
                }
                next_deadline(inner, &s)
            } else {
                s.in_flight = chunks.iter().map(Bytes::len).sum();
                None
            }
        };
        if chunks.is_empty() {
            let notified = inner.writable.notified();
            match deadline {
                None => notified.await,
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = Box::pin(tokio::time::sleep_until(at.into())) => on_deadline(inner),
                    }
                }
            }
            continue;
        }
        // Boxed: the write's state (ring operation, stall timer) is allocated while a
        // write is under way, not held by every idle connection's writer.
        let result = Box::pin(write_chunks(
            stream,
            &mut chunks,
            inner.options.send_stall_timeout,
        ))
        .await;
        inner.shared.borrow_mut().in_flight = 0;
        inner.send_space.notify();
        if let Err(e) = result {
            let mut s = inner.shared.borrow_mut();
            s.conn.abort();
            s.set_end(match e {
                WriteError::Stalled => End::Stalled,
                WriteError::Io(e) => End::Io(e.kind()),
            });
            drop(s);
            inner.readable.notify();
            break;
        }
    }
    finish(inner, stream).await;
}

/// While our close frame is pending and the application has not taken the messages that
/// arrived before it, the writer holds the close back (at most the close timeout), so that
/// replies to those messages go out first. Returns until when to hold.
fn hold_close_until(inner: &Inner, s: &mut super::socket::Shared) -> Option<Instant> {
    if s.conn.state() != State::ClosePending || s.inbox.is_empty() {
        s.close_pending_since = None;
        return None;
    }
    let since = *s.close_pending_since.get_or_insert_with(Instant::now);
    let until = since + inner.options.protocol.close_timeout;
    (Instant::now() < until).then_some(until)
}

/// Why [`write_chunks`] gave up.
enum WriteError {
    /// The socket took no byte for the send stall timeout.
    Stalled,
    Io(std::io::Error),
}

/// Writes all `chunks` (each round one `write`, or `writev` when there are several),
/// leaving it empty. Gives up when one write takes none of them for `stall` (a peer that stopped
/// reading: the kernel's send buffer is full); every byte accepted starts the wait anew.
async fn write_chunks<T: Transport>(
    stream: &T,
    chunks: &mut Vec<Bytes>,
    stall: Option<Duration>,
) -> Result<(), WriteError> {
    while !chunks.is_empty() {
        let write = stream.write(std::mem::take(chunks));
        let (result, batch) = match stall {
            None => write.await,
            Some(stall) => tokio::select! {
                // The write first: one that completes at once (a readiness driver with
                // room in the socket) never registers the timer.
                biased;
                done = write => done,
                // Dropping the write leaves the operation (and its buffers) with the
                // ring until the kernel completes it; ending the socket completes it.
                _ = tokio::time::sleep(stall) => return Err(WriteError::Stalled),
            },
        };
        *chunks = batch;
        consume(chunks, result.map_err(WriteError::Io)?).map_err(WriteError::Io)?;
    }
    Ok(())
}

/// The earliest of the keepalive ping, the idle timeout and the close timeout.
fn next_deadline(inner: &Inner, s: &super::socket::Shared) -> Option<Instant> {
    let opts = &inner.options;
    let mut at: Option<Instant> = None;
    let mut consider = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
    if let Some(sent) = s.close_sent_at {
        consider(sent + opts.protocol.close_timeout);
    } else if s.conn.state() == State::Open {
        if let Some(every) = opts.ping_interval {
            consider(s.last_received.max(s.ping_sent_at) + every);
        }
        if let Some(idle) = opts.idle_timeout {
            consider(s.last_received + idle);
        }
    }
    at
}

fn on_deadline(inner: &Inner) {
    let now = Instant::now();
    let opts = &inner.options;
    let mut s = inner.shared.borrow_mut();
    if let Some(sent) = s.close_sent_at {
        if now >= sent + opts.protocol.close_timeout {
            s.conn.abort();
            s.set_end(End::TimedOut("the peer did not answer the close frame"));
        }
    } else if opts
        .idle_timeout
        .is_some_and(|idle| now >= s.last_received + idle)
    {
        s.conn.abort();
        s.set_end(End::TimedOut("idle timeout"));
    } else if opts
        .ping_interval
        .is_some_and(|every| now >= s.last_received.max(s.ping_sent_at) + every)
    {
        // Nothing arrived for a ping interval: ask for a pong.
        let _ = s.conn.send_ping(Bytes::new());
        s.ping_sent_at = now;
    }
    drop(s);
    inner.readable.notify();
}

/// Ends the TCP connection: flushes the last bytes, then RFC 6455 §7.1.1's order (the
/// server closes first; the client waits for the server's FIN, at most the close
/// timeout), then wakes everyone.
async fn finish<T: Transport>(inner: &Inner, stream: &T) {
    let (clean_close, closes_first, timeout) = {
        let s = inner.shared.borrow();
        (
            matches!(s.end, Some(End::Closed(_)) | Some(End::Protocol(_))) && !s.read_closed,
            s.conn.role().closes_tcp_first(),
            inner.options.protocol.close_timeout,
        )
    };
    if clean_close {
        if closes_first {
            let _ = stream.shutdown(Shutdown::Write);
        }
        // Wait for the peer's FIN (the reader sees EOF) so that our close frame is not
        // lost to a reset from unread data, at most the close timeout.
        let deadline = tokio::time::Instant::now() + timeout;
        while !inner.shared.borrow().read_closed {
            tokio::select! {
                _ = inner.readable.notified() => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    let mut s = inner.shared.borrow_mut();
    s.conn.abort();
    s.set_end(End::Abnormal);
    s.finished = true;
    drop(s);
    inner.readable.notify();
    inner.send_space.notify();
    inner.recv_space.notify();
    inner.finished.notify();
}
