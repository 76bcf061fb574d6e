//! What one load thread measured, and the sum over threads.
//!
//! Each thread keeps its own histograms and counters (no sharing on the hot path) and
//! hands them over at the end; the progress line reads two atomics per thread.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::environment::ThreadCpu;
use crate::fanout::Spread;
use crate::series::{Seconds, SecondsRecorder};

/// Latencies from 1 µs to 60 s at 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// The value at quantile `q` of `h`, or 0 when it is empty (hdrhistogram would say 0
/// too, but through its lowest bucket; this says so on purpose).
pub fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

/// A thread's figures, filled by its connections.
pub struct ThreadStats {
    /// Round-trip (or scheduled-send-to-receive) latency in µs, measured window only.
    pub latency: RefCell<Histogram<u64>>,
    /// Connect plus handshake time in µs.
    pub connect: RefCell<Histogram<u64>>,
    /// Open loop: how late each message left after its scheduled time, µs.
    pub send_lag: RefCell<Histogram<u64>>,
    /// Echoes received in the measured window.
    pub messages: Cell<u64>,
    /// Of those, the ones that arrived before the window's end (the rest were in flight
    /// when it ended, or queued behind a server that fell behind).
    pub answered_in_window: Cell<u64>,
    /// The end of the measured window, once known.
    pub window_end: Cell<Option<Instant>>,
    /// Payload bytes of those echoes.
    pub bytes: Cell<u64>,
    /// Echoes that differed from what was sent (type, length or content).
    pub mismatches: Cell<u64>,
    /// Connections that could not be opened.
    pub connect_failures: Cell<u64>,
    /// Connections opened.
    pub connected: Cell<u64>,
    /// Idle mode: connections still open at the end of the window.
    pub held: Cell<u64>,
    /// Errors by kind.
    pub errors: RefCell<BTreeMap<&'static str, u64>>,
    /// Payload bytes of every echo, warm-up included (for the wire ratio).
    pub payload_received: Cell<u64>,
    /// Bytes the server's frames took on the wire, over the connections' lifetimes.
    pub wire_received: Cell<u64>,
    /// Connections that negotiated permessage-deflate.
    pub deflated: Cell<u64>,
    /// Fan-out: publishes a subscriber never got (gaps, and what was missing at the end).
    pub dropped: Cell<u64>,
    /// Fan-out: how evenly the subscribers were served.
    pub spread: Cell<Option<Spread>>,
    /// For the progress line: every echo so far, and this thread's p99 so far (µs).
    pub live: Arc<LiveCounters>,
    /// Latency and errors second by second.
    pub seconds: SecondsRecorder,
    /// Connections open now (sampled into the seconds for the series).
    pub open: Cell<u64>,
    /// When the measured window began for this thread, and its CPU time then.
    pub cpu_from: Cell<Option<(Instant, Duration)>>,
    /// This thread's CPU over the measured window (the self-check), once it is over.
    pub cpu: Cell<Option<ThreadCpu>>,
}

/// Counters the main thread samples for the progress line.
#[derive(Default)]
pub struct LiveCounters {
    /// Echoes received, warm-up included.
    pub echoes: AtomicU64,
    /// The thread's p99 latency so far, in µs.
    pub p99_us: AtomicU64,
}

impl ThreadStats {
    /// Empty figures.
    pub fn new(live: Arc<LiveCounters>) -> Self {
        ThreadStats {
            latency: RefCell::new(histogram()),
            connect: RefCell::new(histogram()),
            send_lag: RefCell::new(histogram()),
            messages: Cell::new(0),
            answered_in_window: Cell::new(0),
            window_end: Cell::new(None),
            bytes: Cell::new(0),
            mismatches: Cell::new(0),
            connect_failures: Cell::new(0),
            connected: Cell::new(0),
            held: Cell::new(0),
            errors: RefCell::new(BTreeMap::new()),
            payload_received: Cell::new(0),
            wire_received: Cell::new(0),
            deflated: Cell::new(0),
            dropped: Cell::new(0),
            spread: Cell::new(None),
            live,
            seconds: SecondsRecorder::default(),
            open: Cell::new(0),
            cpu_from: Cell::new(None),
            cpu: Cell::new(None),
        }
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &'static str) {
        *self.errors.borrow_mut().entry(kind).or_insert(0) += 1;
        self.seconds.error(Instant::now());
    }

    /// Records an echo received at `now` in the measured window.
    #[inline]
    pub fn record(&self, now: Instant, latency: Duration, bytes: usize) {
        let us = (latency.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.latency.borrow_mut().record(us);
        self.seconds.record(now, us);
        if self.window_end.get().is_some_and(|end| now < end) {
            self.answered_in_window
                .set(self.answered_in_window.get() + 1);
        }
        self.messages.set(self.messages.get() + 1);
        self.bytes.set(self.bytes.get() + bytes as u64);
    }

    /// Counts an echo of `bytes` payload bytes for the progress line and the wire ratio
    /// (warm-up included).
    #[inline]
    pub fn tick(&self, bytes: usize) {
        self.live.echoes.fetch_add(1, Ordering::Relaxed);
        self.payload_received
            .set(self.payload_received.get() + bytes as u64);
    }

    /// Records how late a message left after its scheduled time (open loop).
    #[inline]
    pub fn record_send_lag(&self, lag: Duration) {
        let us = (lag.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.send_lag.borrow_mut().record(us);
    }

    /// Ends the self-check at `now` (once): the thread's CPU since the window began.
    pub fn finish_cpu(&self, now: Instant) {
        if let (Some((from, cpu)), None) = (self.cpu_from.get(), self.cpu.get()) {
            self.cpu.set(Some(ThreadCpu {
                cpu: crate::environment::thread_cpu().saturating_sub(cpu),
                wall: now.saturating_duration_since(from),
            }));
        }
    }

    /// Publishes this thread's p99 for the progress line.
    pub fn publish_p99(&self) {
        let p99 = self.latency.borrow().value_at_quantile(0.99);
        self.live.p99_us.store(p99, Ordering::Relaxed);
    }

    /// Plain figures, to send to the main thread.
    pub fn into_totals(self) -> Totals {
        Totals {
            latency: self.latency.into_inner(),
            connect: self.connect.into_inner(),
            send_lag: self.send_lag.into_inner(),
            messages: self.messages.get(),
            answered_in_window: self.answered_in_window.get(),
            bytes: self.bytes.get(),
            mismatches: self.mismatches.get(),
            connect_failures: self.connect_failures.get(),
            connected: self.connected.get(),
            held: self.held.get(),
            errors: self
                .errors
                .into_inner()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            payload_received: self.payload_received.get(),
            wire_received: self.wire_received.get(),
            deflated: self.deflated.get(),
            dropped: self.dropped.get(),
            spread: self.spread.get(),
            published: 0,
            seconds: self.seconds.into_seconds(),
            load_threads: self.cpu.get().into_iter().collect(),
        }
    }
}

/// Figures summed over threads.
#[derive(Clone)]
pub struct Totals {
    /// Latency in µs.
    pub latency: Histogram<u64>,
    /// Connect plus handshake time in µs.
    pub connect: Histogram<u64>,
    /// Open loop: how late messages left after their scheduled time, µs.
    pub send_lag: Histogram<u64>,
    /// Echoes in the measured window.
    pub messages: u64,
    /// Of those, the ones that arrived before the window's end.
    pub answered_in_window: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Echoes that differed from what was sent.
    pub mismatches: u64,
    /// Connections that could not be opened.
    pub connect_failures: u64,
    /// Connections opened.
    pub connected: u64,
    /// Idle mode: connections still open at the end of the window.
    pub held: u64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Payload bytes of every echo, warm-up included.
    pub payload_received: u64,
    /// Bytes the server's frames took on the wire.
    pub wire_received: u64,
    /// Connections that negotiated permessage-deflate.
    pub deflated: u64,
    /// Fan-out: publishes subscribers never got.
    pub dropped: u64,
    /// Fan-out: how evenly the subscribers were served.
    pub spread: Option<Spread>,
    /// Fan-out: publishes sent.
    pub published: u64,
    /// Latency and errors second by second.
    pub seconds: Seconds,
    /// Each load thread's CPU over the measured window (the self-check).
    pub load_threads: Vec<ThreadCpu>,
}

impl Totals {
    /// Nothing measured yet.
    pub fn empty() -> Self {
        Totals {
            latency: histogram(),
            connect: histogram(),
            send_lag: histogram(),
            messages: 0,
            answered_in_window: 0,
            bytes: 0,
            mismatches: 0,
            connect_failures: 0,
            connected: 0,
            held: 0,
            errors: BTreeMap::new(),
            payload_received: 0,
            wire_received: 0,
            deflated: 0,
            dropped: 0,
            spread: None,
            published: 0,
            seconds: Seconds::default(),
            load_threads: Vec::new(),
        }
    }

    /// Adds another thread's figures.
    pub fn add(&mut self, other: &Totals) {
        let _ = self.latency.add(&other.latency);
        let _ = self.connect.add(&other.connect);
        let _ = self.send_lag.add(&other.send_lag);
        self.messages += other.messages;
        self.answered_in_window += other.answered_in_window;
        self.bytes += other.bytes;
        self.mismatches += other.mismatches;
        self.connect_failures += other.connect_failures;
        self.connected += other.connected;
        self.held += other.held;
        self.payload_received += other.payload_received;
        self.wire_received += other.wire_received;
        self.deflated += other.deflated;
        self.dropped += other.dropped;
        self.published += other.published;
        self.spread = match (self.spread, other.spread) {
            (Some(a), b) => Some(a.merge(b)),
            (None, b) => b,
        };
        self.seconds.add(&other.seconds);
        self.load_threads.extend_from_slice(&other.load_threads);
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += n;
        }
    }

    /// Bytes on the wire (server to client, frame headers and close frames included) per
    /// payload byte echoed, if anything was echoed: about 1 without compression (a little
    /// more for the headers), the compression ratio with permessage-deflate.
    pub fn wire_ratio(&self) -> Option<f64> {
        (self.payload_received > 0)
            .then(|| self.wire_received as f64 / self.payload_received as f64)
    }

    /// All errors, of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}
