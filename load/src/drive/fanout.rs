//! The fan-out scenario: publishers send on a schedule to a broadcast server (one that
//! sends every message it receives to every connection, as `bench-server --mode
//! broadcast` or a uWebSockets server that `publish`es each message); every other
//! connection is a subscriber that checks what it gets and times it.
//!
//! A publish carries its publisher, its sequence number and the time it was handed to
//! `send` (nanoseconds since the run's clock base: one process, so every thread reads
//! the same clock). A subscriber expects each publisher's sequence numbers in order: a
//! gap is that many drops, a step back an order error (counted as a mismatch). Latency
//! runs from the publisher's `send` to the subscriber's `recv`: what the server and the
//! two sockets add. Publishers keep an open-loop schedule (tokio's timer, 1 ms
//! granularity); a server that pushes back on them shows as fewer publishes than the
//! rate asks for (`published` in the report). At the end, what a publisher sent and a
//! subscriber never got counts as dropped too.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wsengine::Message;
use wsengine::runtime::WebSocket;

use crate::connection::{Window, close, error_kind};
use crate::stats::ThreadStats;

/// Publisher id, sequence number, scheduled send time: the header of every publish.
pub const HEADER: usize = 4 + 8 + 8;

/// How long subscribers wait after the window for publishes still on their way.
const DRAIN: Duration = Duration::from_secs(2);

/// The clock base shared by every thread of the run.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn nanos(at: Instant) -> u64 {
    at.saturating_duration_since(base()).as_nanos() as u64
}

/// What the fan-out's connections share across threads: how many messages each
/// publisher has sent (for the drops at the end).
pub struct FanoutShared {
    published: Vec<AtomicU64>,
}

impl FanoutShared {
    /// For `publishers` publishers.
    pub fn new(publishers: usize) -> Arc<Self> {
        base();
        Arc::new(FanoutShared {
            published: (0..publishers).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Publishes sent in all.
    pub fn published(&self) -> u64 {
        self.published
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .sum()
    }
}

/// A publish: the header, then `size - HEADER` filler bytes.
fn publish_message(publisher: u32, seq: u64, sent: Instant, size: usize) -> Message {
    let mut payload = vec![0x5a; size.max(HEADER)];
    payload[..4].copy_from_slice(&publisher.to_be_bytes());
    payload[4..12].copy_from_slice(&seq.to_be_bytes());
    payload[12..20].copy_from_slice(&nanos(sent).to_be_bytes());
    Message::binary(payload)
}

/// Publisher `id`: one message every `interval` on the open-loop schedule until the
/// window ends; it reads and discards what the server sends it meanwhile.
#[allow(clippy::too_many_arguments)]
pub async fn publisher(
    ws: WebSocket,
    id: u32,
    size: usize,
    interval: Duration,
    window: Window,
    shared: Arc<FanoutShared>,
    stats: Rc<ThreadStats>,
    stop: &AtomicBool,
) {
    let drain = {
        let ws = ws.clone();
        tokio::task::spawn_local(async move { while ws.recv().await.is_ok() {} })
    };
    let start = Instant::now();
    let mut seq = 0u64;
    loop {
        let due = start + interval.mul_f64(seq as f64);
        if due >= window.end || stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        if let Err(e) = ws
            .send(publish_message(id, seq, Instant::now(), size))
            .await
        {
            stats.error(error_kind(&e));
            break;
        }
        seq += 1;
        shared.published[id as usize].store(seq, Ordering::Relaxed);
    }
    // Subscribers drain before the publishers' connections close.
    tokio::time::sleep(DRAIN).await;
    close(&ws).await;
    drain.abort();
}

/// What one subscriber saw, for the per-subscriber spread.
#[derive(Debug, Clone, Copy, Default)]
struct SubscriberFigures {
    /// Publishes received in the measured window.
    received: u64,
    /// Their summed latency, in µs.
    latency_sum_us: u64,
}

/// A subscriber: receives until every publish arrived or the drain time after the
/// window passed, checking order and size and timing each publish.
pub async fn subscriber(
    ws: WebSocket,
    size: usize,
    window: Window,
    shared: Arc<FanoutShared>,
    stats: Rc<ThreadStats>,
) {
    let publishers = shared.published.len();
    let mut next = vec![0u64; publishers];
    let mut figures = SubscriberFigures::default();
    let measure_from = nanos(window.measure_from);
    let give_up = window.end + DRAIN;
    let mut done = false;
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        let got = match tokio::time::timeout(left, ws.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                stats.error(error_kind(&e));
                break;
            }
            Err(_) => break,
        };
        let now = Instant::now();
        let payload = got.payload();
        if got.is_text() || payload.len() != size.max(HEADER) {
            stats.mismatches.set(stats.mismatches.get() + 1);
            continue;
        }
        let id = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
        let seq = u64::from_be_bytes(payload[4..12].try_into().expect("8 bytes"));
        let sent = u64::from_be_bytes(payload[12..20].try_into().expect("8 bytes"));
        let Some(expected) = next.get_mut(id) else {
            stats.mismatches.set(stats.mismatches.get() + 1);
            continue;
        };
        if seq < *expected {
            // Out of order or twice.
            stats.mismatches.set(stats.mismatches.get() + 1);
            continue;
        }
        stats.dropped.set(stats.dropped.get() + (seq - *expected));
        *expected = seq + 1;
        stats.tick(payload.len());
        if sent >= measure_from {
            let latency = Duration::from_nanos(nanos(now).saturating_sub(sent));
            stats.record(now, latency, payload.len());
            figures.received += 1;
            figures.latency_sum_us += latency.as_micros() as u64;
        }
        if now >= window.end
            && next
                .iter()
                .zip(&shared.published)
                .all(|(n, p)| *n >= p.load(Ordering::Relaxed))
        {
            done = true;
            break;
        }
    }
    // What was published and never came.
    for (n, p) in next.iter().zip(&shared.published) {
        let published = p.load(Ordering::Relaxed);
        stats
            .dropped
            .set(stats.dropped.get() + published.saturating_sub(*n));
    }
    let mean_us = figures.latency_sum_us / figures.received.max(1);
    stats.spread.set(Some(
        Spread::one(figures.received, mean_us).merge(stats.spread.get()),
    ));
    if done {
        close(&ws).await;
    }
}

/// How evenly the subscribers were served: the fewest and most publishes one received in
/// the measured window, and the lowest and highest of their mean latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// Subscribers counted.
    pub subscribers: u64,
    /// Publishes received by the least served subscriber.
    pub min_received: u64,
    /// By the best served one.
    pub max_received: u64,
    /// The lowest mean latency of a subscriber, µs.
    pub min_mean_us: u64,
    /// The highest.
    pub max_mean_us: u64,
}

impl Spread {
    fn one(received: u64, mean_us: u64) -> Self {
        Spread {
            subscribers: 1,
            min_received: received,
            max_received: received,
            min_mean_us: mean_us,
            max_mean_us: mean_us,
        }
    }

    /// Both together.
    pub fn merge(self, other: Option<Spread>) -> Spread {
        let Some(o) = other else {
            return self;
        };
        Spread {
            subscribers: self.subscribers + o.subscribers,
            min_received: self.min_received.min(o.min_received),
            max_received: self.max_received.max(o.max_received),
            min_mean_us: self.min_mean_us.min(o.min_mean_us),
            max_mean_us: self.max_mean_us.max(o.max_mean_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_carries_its_header_and_size() {
        let due = base() + Duration::from_micros(1500);
        let m = publish_message(7, 42, due, 64);
        let p = m.payload();
        assert_eq!(p.len(), 64);
        assert_eq!(u32::from_be_bytes(p[..4].try_into().unwrap()), 7);
        assert_eq!(u64::from_be_bytes(p[4..12].try_into().unwrap()), 42);
        assert_eq!(u64::from_be_bytes(p[12..20].try_into().unwrap()), 1_500_000);
        // Smaller than the header: the header alone.
        assert_eq!(publish_message(0, 0, due, 4).len(), HEADER);
    }
}
