//! One connection's load: the closed loop (keep K messages in flight) or the open loop
//! (send on a fixed schedule), each verifying every echo; or, idle, none at all.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wsengine::CloseCode;
use wsengine::runtime::{Error, WebSocket};

use crate::pacer::Pacer;
use crate::payload;
use crate::stats::ThreadStats;

/// When measuring starts and when sending stops.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Echoes received from here on are measured.
    pub measure_from: Instant,
    /// No message is sent after this.
    pub end: Instant,
}

/// What a connection sends.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Payload size (the smallest, with mixed sizes).
    pub size: usize,
    /// The largest payload with mixed sizes; `size` otherwise.
    pub max_size: usize,
    /// Text or binary.
    pub text: bool,
    /// Messages in flight (closed loop).
    pub pipeline: usize,
    /// Seconds between messages of this connection (open loop).
    pub interval: Option<Duration>,
}

impl Shape {
    /// The payload size of message `seq`.
    #[inline]
    pub fn size_of(&self, seq: u64) -> usize {
        payload::size_of(seq, self.size, self.max_size)
    }
}

/// The kind an error is counted under.
pub(crate) fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Closed(frame) if frame.code == CloseCode::ABNORMAL => "connection lost",
        Error::Closed(_) => "closed by server",
        Error::Protocol(_) => "protocol",
        Error::Io(_) => "io",
        Error::Timeout(_) => "timeout",
        Error::Send(_) => "send",
        _ => "other",
    }
}

/// Closed loop: K messages in flight; each echo is verified and answered by the next
/// message. Latency is from each message's send to its echo.
pub async fn closed_loop(
    ws: WebSocket,
    shape: Shape,
    window: Window,
    stats: Rc<ThreadStats>,
    stop: &AtomicBool,
) {
    let mut scratch = Vec::with_capacity(shape.max_size);
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(shape.pipeline);
    let mut next_seq = 0u64;
    let mut expected = 0u64;
    let now = Instant::now();
    for _ in 0..shape.pipeline.max(1) {
        if !send_next(&ws, &mut next_seq, shape, &mut scratch, &stats).await {
            return;
        }
        sent_at.push_back(now);
    }
    while let Some(sent) = sent_at.pop_front() {
        let echo = match ws.recv().await {
            Ok(echo) => echo,
            Err(e) => {
                stats.error(error_kind(&e));
                return;
            }
        };
        let now = Instant::now();
        let size = shape.size_of(expected);
        if !payload::matches(&echo, expected, size, shape.text, &mut scratch) {
            stats.mismatches.set(stats.mismatches.get() + 1);
        }
        expected += 1;
        stats.tick(echo.len());
        if now >= window.measure_from && sent >= window.measure_from {
            stats.record(now, now - sent, echo.len());
        }
        if now < window.end && !stop.load(Ordering::Relaxed) {
            if !send_next(&ws, &mut next_seq, shape, &mut scratch, &stats).await {
                return;
            }
            sent_at.push_back(now);
        }
    }
    close(&ws).await;
}

/// Sends message `seq` and moves `seq` on; counts the error and returns `false` when the
/// connection can no longer send.
async fn send_next(
    ws: &WebSocket,
    seq: &mut u64,
    shape: Shape,
    scratch: &mut Vec<u8>,
    stats: &ThreadStats,
) -> bool {
    let message = payload::message(*seq, shape.size_of(*seq), shape.text, scratch);
    match ws.send(message).await {
        Ok(()) => {
            *seq += 1;
            true
        }
        Err(e) => {
            stats.error(error_kind(&e));
            false
        }
    }
}

/// Open loop: message `i` is due at `start + i × interval` and leaves then (or as soon as
/// possible after, if the connection is backed up); latency counts from the due time, so
/// a stalled server shows in the percentiles instead of slowing the load down.
///
/// `phase` (a fraction of the interval, by connection) spreads the connections' sends
/// over the interval rather than sending every connection's message at once. How late
/// each message left (the load's own timer lateness, which the latency includes) is
/// kept as the send lag.
pub async fn open_loop(
    ws: WebSocket,
    shape: Shape,
    phase: f64,
    pacer: Rc<Pacer>,
    window: Window,
    stats: Rc<ThreadStats>,
    stop: &AtomicBool,
) {
    let interval = shape.interval.unwrap_or(Duration::from_millis(1));
    let due: Rc<RefCell<VecDeque<Instant>>> = Rc::new(RefCell::new(VecDeque::new()));
    let sender = {
        let ws = ws.clone();
        let due = due.clone();
        let stats = stats.clone();
        async move {
            let mut scratch = Vec::with_capacity(shape.max_size);
            let start = Instant::now() + interval.mul_f64(phase.clamp(0.0, 1.0));
            let mut seq = 0u64;
            loop {
                let now = Instant::now();
                if now >= window.end || stop.load(Ordering::Relaxed) {
                    break;
                }
                // Everything due by now leaves in this turn (one write).
                loop {
                    let at = start + interval.mul_f64(seq as f64);
                    if at > now {
                        // Never past the window's end (a connection whose first send,
                        // shifted by its phase, falls after it sends nothing).
                        pacer.sleep_until(at.min(window.end)).await;
                        break;
                    }
                    if at >= window.measure_from {
                        stats.record_send_lag(Instant::now().saturating_duration_since(at));
                    }
                    let size = shape.size_of(seq);
                    let m = payload::message(seq, size, shape.text, &mut scratch);
                    if let Err(e) = ws.send(m).await {
                        stats.error(error_kind(&e));
                        return;
                    }
                    due.borrow_mut().push_back(at);
                    seq += 1;
                }
            }
        }
    };
    let receiver = {
        let ws = ws.clone();
        let due = due.clone();
        let stats = stats.clone();
        async move {
            let mut scratch = Vec::with_capacity(shape.max_size);
            let mut expected = 0u64;
            loop {
                let echo = match ws.recv().await {
                    Ok(echo) => echo,
                    Err(e) => {
                        if !matches!(&e, Error::Closed(f) if f.code == CloseCode::NORMAL) {
                            stats.error(error_kind(&e));
                        }
                        return;
                    }
                };
                let now = Instant::now();
                let Some(at) = due.borrow_mut().pop_front() else {
                    stats.mismatches.set(stats.mismatches.get() + 1);
                    continue;
                };
                let size = shape.size_of(expected);
                if !payload::matches(&echo, expected, size, shape.text, &mut scratch) {
                    stats.mismatches.set(stats.mismatches.get() + 1);
                }
                expected += 1;
                stats.tick(echo.len());
                if at >= window.measure_from {
                    stats.record(now, now.saturating_duration_since(at), echo.len());
                }
                if now >= window.end && due.borrow().is_empty() {
                    return;
                }
            }
        }
    };
    let receiving = tokio_uring::spawn(receiver);
    sender.await;
    // Wait for the echoes still in flight, at most a second.
    let _ = tokio::time::timeout(Duration::from_secs(1), receiving).await;
    close(&ws).await;
}

/// Idle: sends nothing and holds the connection until the end of the window (or `stop`),
/// then closes it with 1000. The connection waits on `recv` meanwhile, so a server that
/// drops it is noticed (an error, by kind); a message from the server is a mismatch.
/// With `greet`, one message of that shape goes first and its echo is checked.
pub async fn idle(
    ws: WebSocket,
    greet: Option<Shape>,
    window: Window,
    stats: Rc<ThreadStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if let Some(shape) = greet {
        let mut scratch = Vec::with_capacity(shape.size);
        let mut seq = 0;
        if !send_next(&ws, &mut seq, shape, &mut scratch, &stats).await {
            return;
        }
        match ws.recv().await {
            Ok(echo) => {
                if !payload::matches(&echo, 0, shape.size, shape.text, &mut scratch) {
                    stats.mismatches.set(stats.mismatches.get() + 1);
                }
                stats.tick(echo.len());
            }
            Err(e) => {
                stats.error(error_kind(&e));
                return;
            }
        }
    }
    let end = tokio::time::sleep_until(window.end.into());
    tokio::pin!(end);
    loop {
        tokio::select! {
            received = ws.recv() => match received {
                Ok(_) => stats.mismatches.set(stats.mismatches.get() + 1),
                Err(e) => {
                    stats.error(error_kind(&e));
                    return;
                }
            },
            () = &mut end => break,
            // Ctrl-C; a dropped sender (the thread is ending) means the same.
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    stats.held.set(stats.held.get() + 1);
    close(&ws).await;
}

/// Raw TCP closed loop: `pipeline` messages of `size` bytes in flight, each echo checked
/// byte for byte; all messages ready in a turn leave in one write.
pub async fn raw_closed_loop(
    stream: tokio_uring::net::TcpStream,
    shape: Shape,
    window: Window,
    stats: Rc<ThreadStats>,
    stop: &AtomicBool,
) {
    use tokio_uring::buf::BoundedBuf;
    let size = shape.size.max(1);
    let mut scratch = Vec::with_capacity(size);
    let mut out: Vec<u8> = Vec::with_capacity(size * shape.pipeline.max(1));
    let mut sent_at: VecDeque<Instant> = VecDeque::new();
    let (mut next_seq, mut expected) = (0u64, 0u64);
    let now = Instant::now();
    for _ in 0..shape.pipeline.max(1) {
        payload::fill(&mut scratch, next_seq, size);
        out.extend_from_slice(&scratch);
        sent_at.push_back(now);
        next_seq += 1;
    }
    let mut input = bytes::BytesMut::with_capacity(64 * 1024);
    while !sent_at.is_empty() {
        if !out.is_empty() {
            let (result, buf) = stream.write_all(std::mem::take(&mut out)).await;
            if result.is_err() {
                stats.error("io");
                return;
            }
            out = buf;
            out.clear();
        }
        if input.capacity() - input.len() < 16 * 1024 {
            input.reserve(64 * 1024);
        }
        let (len, cap) = (input.len(), input.capacity());
        let (result, slice) = stream.read(input.slice(len..cap)).await;
        input = slice.into_inner();
        match result {
            Ok(0) | Err(_) => {
                stats.error("connection lost");
                return;
            }
            Ok(_) => {}
        }
        let now = Instant::now();
        while input.len() >= size {
            let Some(sent) = sent_at.pop_front() else {
                stats.mismatches.set(stats.mismatches.get() + 1);
                input.clear();
                break;
            };
            payload::fill(&mut scratch, expected, size);
            if input[..size] != scratch[..] {
                stats.mismatches.set(stats.mismatches.get() + 1);
            }
            let _ = input.split_to(size);
            expected += 1;
            stats.tick(size);
            if now >= window.measure_from && sent >= window.measure_from {
                stats.record(now, now - sent, size);
            }
            if now < window.end && !stop.load(Ordering::Relaxed) {
                payload::fill(&mut scratch, next_seq, size);
                out.extend_from_slice(&scratch);
                sent_at.push_back(now);
                next_seq += 1;
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Closes with 1000 and waits (bounded) for the server's answer.
pub(crate) async fn close(ws: &WebSocket) {
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(CloseCode::NORMAL, "")).await;
}
