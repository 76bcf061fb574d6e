//! The counts of a topic and of the whole server, written by one worker each and read
//! from anywhere.
//!
//! Every worker counts into a slot of its own (a cache line apart from the others), so
//! counting a delivery is a relaxed add on a line no other core writes; reading sums the
//! slots. One more slot takes what publishers outside the workers count.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// One writer's counts, alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Slot {
    /// Subscribers on this worker (the topic's slots only).
    pub(crate) subscribers: AtomicUsize,
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

impl Slot {
    #[inline]
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Slots for `workers` workers and the outside.
#[derive(Debug)]
pub(crate) struct Slots(Box<[Slot]>);

impl Slots {
    pub(crate) fn new(workers: usize) -> Self {
        Slots((0..=workers).map(|_| Slot::default()).collect())
    }

    /// Worker `index`'s slot, or the outside's (`index == workers`).
    #[inline]
    pub(crate) fn slot(&self, index: usize) -> &Slot {
        &self.0[index]
    }

    /// The workers' slots (not the outside's).
    pub(crate) fn workers(&self) -> &[Slot] {
        &self.0[..self.0.len() - 1]
    }

    fn sum(&self, counter: impl Fn(&Slot) -> u64) -> u64 {
        self.0.iter().map(counter).sum()
    }

    pub(crate) fn subscribers(&self) -> usize {
        self.0
            .iter()
            .map(|s| s.subscribers.load(Ordering::Acquire))
            .sum()
    }

    pub(crate) fn stats(&self) -> PubSubStats {
        PubSubStats {
            subscribers: self.subscribers(),
            published: self.sum(|s| s.published.load(Ordering::Relaxed)),
            delivered: self.sum(|s| s.delivered.load(Ordering::Relaxed)),
            dropped: self.sum(|s| s.dropped.load(Ordering::Relaxed)),
        }
    }
}

/// A topic's counts while it has subscribers somewhere.
#[derive(Debug)]
pub(crate) struct TopicCounters {
    pub(crate) slots: Slots,
    /// The topic lost its last subscriber and left the registry: whoever holds this must
    /// look the topic up again.
    pub(crate) retired: AtomicBool,
}

impl TopicCounters {
    pub(crate) fn new(workers: usize) -> Self {
        TopicCounters {
            slots: Slots::new(workers),
            retired: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }
}

/// Counts of a topic ([`Publisher::topic_stats`](super::Publisher::topic_stats)) or of
/// the whole server ([`Publisher::stats`](super::Publisher::stats)).
///
/// For every publish, each worker counts each subscriber it has at that moment once: as
/// delivered (queued on the connection) or as dropped (too slow, closing, or the worker's
/// inbox full). A topic's counts start when it gets its first subscriber and end with its
/// last; the server's cover its whole life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PubSubStats {
    /// Subscriptions now (a connection on two topics counts twice in the server's).
    pub subscribers: usize,
    /// Messages published (to topics with subscribers or not, for the server's).
    pub published: u64,
    /// Messages queued on a subscriber's connection.
    pub delivered: u64,
    /// Messages a subscriber did not get: its send queue was full, it was closing, or
    /// its worker's inbox was over [`PubSubOptions::inbox_limit`](super::PubSubOptions::inbox_limit).
    pub dropped: u64,
}
