//! The server's memory budget for buffered bytes: one bound on everything its connections
//! hold (receive buffers with frames in progress, reassembled fragments, permessage-deflate
//! streams and inflated messages, unread inboxes, send queues), so that many connections
//! each within their own limits cannot run the machine out of memory together.
//!
//! Each worker keeps its part of the budget (`WorkerBudget`: the total divided by the
//! workers) in plain cells, without atomics on the hot path: a session charges what it
//! holds after each step (the session's accounting) and the worker's sum
//! is published to [`ServerStats`] when it has moved by `PUBLISH_STEP`.
//!
//! The policy: a connection may always hold its share ([`MemoryBudget::per_connection`]);
//! past it, it may grow only while the worker is within its part. When the worker is over,
//! a connection above its share is the one that waits: it is not read from (TCP flow
//! control slows its peer) and its `send` waits, while connections within their share,
//! new handshakes and small messages go on. A connection that stays paused for
//! [`MemoryBudget::wait`] is failed with close code **1013** (try again later): its
//! message was within the limits, the server lacked the memory to take it now. 1009
//! would tell the peer its message is too big, which it is not.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::server::ServerStats;

/// How far a worker's sum may move before [`ServerStats::buffered_bytes`] is updated.
pub(crate) const PUBLISH_STEP: usize = 64 * 1024;

/// How often a connection paused for memory looks again whether it may read.
pub(crate) const RECHECK: Duration = Duration::from_millis(50);

/// The server's memory budget (see the module docs), set with
/// [`ServerBuilder::memory_budget`](super::ServerBuilder::memory_budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryBudget {
    /// Bytes all connections together may hold buffered, divided evenly among the
    /// workers. Default 1 GiB: a quarter of a 4 GiB machine, and under a tenth of
    /// this 24 GiB one; what is left covers the per-connection state and the shares.
    pub total: usize,
    /// Bytes any connection may hold whatever the budget, so that small messages always
    /// go through. Default 256 KiB. At worst the server holds `total` plus this for each
    /// connection.
    pub per_connection: usize,
    /// How long a connection may stay paused for memory before it is failed with 1013.
    /// Default 10 s.
    pub wait: Duration,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget {
            total: 1 << 30,
            per_connection: 256 * 1024,
            wait: Duration::from_secs(10),
        }
    }
}

impl MemoryBudget {
    /// No budget: only the per-connection limits bound memory.
    pub fn unlimited() -> Self {
        MemoryBudget {
            total: usize::MAX,
            ..MemoryBudget::default()
        }
    }
}

/// One worker's part of the budget and its running sum.
#[derive(Debug)]
pub(crate) struct WorkerBudget {
    /// This worker's part of [`MemoryBudget::total`].
    limit: usize,
    pub(crate) per_connection: usize,
    pub(crate) wait: Duration,
    /// Bytes this worker's sessions hold, as they last charged.
    used: Cell<usize>,
    /// `used` as last published to the stats.
    published: Cell<usize>,
    stats: Arc<ServerStats>,
}

impl WorkerBudget {
    /// The part of `budget` of one of `workers` workers.
    pub(crate) fn new(budget: MemoryBudget, workers: usize, stats: Arc<ServerStats>) -> Self {
        WorkerBudget {
            limit: budget.total / workers.max(1),
            per_connection: budget.per_connection,
            wait: budget.wait,
            used: Cell::new(0),
            published: Cell::new(0),
            stats,
        }
    }

    /// A connection that held `before` bytes now holds `after`.
    #[inline]
    pub(crate) fn charge(&self, before: usize, after: usize) {
        if before == after {
            return;
        }
        let used = self.used.get() + after - before;
        self.used.set(used);
        let published = self.published.get();
        if used.abs_diff(published) >= PUBLISH_STEP || used == 0 {
            self.publish(published, used);
        }
    }

    #[cold]
    fn publish(&self, published: usize, used: usize) {
        let buffered = &self.stats.buffered_bytes;
        if used > published {
            buffered.fetch_add((used - published) as u64, Ordering::Relaxed);
        } else {
            buffered.fetch_sub((published - used) as u64, Ordering::Relaxed);
        }
        self.published.set(used);
    }

    /// Whether the worker holds more than its part.
    #[inline]
    pub(crate) fn over(&self) -> bool {
        self.used.get() > self.limit
    }

    /// Bytes the worker's sessions hold.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.get()
    }

    /// A connection was paused for memory (`true`) or resumed (`false`).
    pub(crate) fn paused(&self, paused: bool) {
        let gauge = &self.stats.paused_for_memory;
        if paused {
            gauge.fetch_add(1, Ordering::Relaxed);
        } else {
            gauge.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A connection was failed with 1013.
    pub(crate) fn closed_one(&self) {
        self.stats.closed_for_memory.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_is_published_in_steps_and_at_zero() {
        let stats = Arc::new(ServerStats::default());
        let b = WorkerBudget::new(
            MemoryBudget {
                total: 2 << 20,
                ..MemoryBudget::default()
            },
            2,
            stats.clone(),
        );
        b.charge(0, 1000);
        assert_eq!(b.used(), 1000);
        assert_eq!(
            stats.buffered_bytes.load(Ordering::Relaxed),
            0,
            "under a step"
        );
        b.charge(0, PUBLISH_STEP);
        assert_eq!(
            stats.buffered_bytes.load(Ordering::Relaxed),
            (PUBLISH_STEP + 1000) as u64
        );
        assert!(!b.over());
        b.charge(0, 1 << 20);
        assert!(b.over(), "past this worker's half of 2 MiB");
        b.charge(1 << 20, 0);
        b.charge(PUBLISH_STEP, 0);
        b.charge(1000, 0);
        assert_eq!(b.used(), 0);
        assert_eq!(stats.buffered_bytes.load(Ordering::Relaxed), 0);
    }
}
