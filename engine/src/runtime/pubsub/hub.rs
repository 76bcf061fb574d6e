//! What the workers share: the topic registry, their inboxes, the counts, and the
//! [`Publisher`] that reaches them from any thread.
//!
//! The registry maps a topic to its [`TopicCounters`], whose per-worker subscriber counts
//! say which workers care: a publish is framed once and pushed only to those workers'
//! inboxes. The registry's lock is taken when a worker gets its first subscriber of a
//! topic or loses its last (so a topic's counters are never retired while a worker is
//! joining), and by a publisher the first time it meets a topic; a publish from a worker
//! reads its own cache and the counters' atomics, no lock.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;

use super::counters::{PubSubStats, Slot, Slots, TopicCounters};
use super::inbox::{Inbox, MeshMessage};
use super::options::PubSubOptions;
use crate::proto::message::Message;
use crate::proto::prepared::PreparedMessage;

/// The part that exists once the workers run.
#[derive(Debug)]
pub(crate) struct Mesh {
    pub(crate) inboxes: Vec<Inbox>,
    /// The server's counts, a slot per worker and one for the outside.
    pub(crate) totals: Slots,
    /// Server connections' framing (`Config::fragment_size`).
    pub(crate) fragment_size: Option<usize>,
    pub(crate) options: PubSubOptions,
}

impl Mesh {
    pub(crate) fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Frames `message` once and hands it to every worker other than `from` that has
    /// subscribers of `topic`; a worker whose inbox is over its limit gets nothing and
    /// its subscribers count the publish as dropped. Returns the prepared message.
    pub(crate) fn fan_out(
        &self,
        from: Option<usize>,
        topic: &[u8],
        counters: &TopicCounters,
        message: &Message,
    ) -> PreparedMessage {
        let prepared = PreparedMessage::new(message, self.fragment_size);
        let mut name: Option<Bytes> = None;
        for (index, (inbox, slot)) in self
            .inboxes
            .iter()
            .zip(counters.slots.workers())
            .enumerate()
        {
            if Some(index) == from {
                continue;
            }
            let subscribers = slot.subscribers.load(std::sync::atomic::Ordering::Acquire);
            if subscribers == 0 {
                continue;
            }
            if inbox.bytes() > self.options.inbox_limit {
                Slot::add(&slot.dropped, subscribers as u64);
                Slot::add(&self.totals.slot(index).dropped, subscribers as u64);
                continue;
            }
            let topic = name
                .get_or_insert_with(|| Bytes::copy_from_slice(topic))
                .clone();
            let _ = inbox.push(MeshMessage::Publish {
                topic,
                message: prepared.clone(),
            });
        }
        prepared
    }
}

/// The server's pub/sub state, shared by the workers and every [`Publisher`].
#[derive(Debug, Default)]
pub(crate) struct Hub {
    pub(crate) mesh: OnceLock<Mesh>,
    /// Topics with a subscriber somewhere.
    pub(crate) topics: RwLock<HashMap<Bytes, Arc<TopicCounters>>>,
}

impl Hub {
    /// A [`Publisher`] to this hub.
    pub(crate) fn publisher(self: &Arc<Self>) -> Publisher {
        Publisher { hub: self.clone() }
    }

    /// The topic's counters if it has subscribers.
    pub(crate) fn lookup(&self, topic: &[u8]) -> Option<Arc<TopicCounters>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .cloned()
    }
}

/// Publishes to the server's topics from anywhere: a handler, another worker, a
/// `tokio::spawn`ed task, a plain thread. `Send + Sync + Clone`; get one from
/// [`ServerBuilder::publisher`](crate::runtime::ServerBuilder::publisher) (before the
/// server starts, e.g. to move into the handler) or
/// [`ServerHandle::publisher`](crate::runtime::ServerHandle::publisher).
///
/// Messages one thread publishes to a topic reach every subscriber in the order they
/// were published. A connection's own
/// [`WebSocket::publish`](crate::runtime::WebSocket::publish) does the same and delivers
/// to its worker's subscribers at once, without the inbox.
#[derive(Clone, Debug)]
pub struct Publisher {
    pub(crate) hub: Arc<Hub>,
}

impl Publisher {
    /// Publishes `message` to every subscriber of `topic`, on every worker. Never waits:
    /// a subscriber whose send queue is full gets the server's
    /// [`SlowSubscriber`](super::SlowSubscriber) policy. Before the server runs, or after
    /// it stopped, nothing is delivered.
    pub fn publish(&self, topic: impl AsRef<[u8]>, message: Message) {
        let Some(mesh) = self.hub.mesh.get() else {
            return;
        };
        let topic = topic.as_ref();
        let outside = mesh.workers();
        Slot::add(&mesh.totals.slot(outside).published, 1);
        let Some(counters) = self.hub.lookup(topic) else {
            return;
        };
        Slot::add(&counters.slots.slot(outside).published, 1);
        mesh.fan_out(None, topic, &counters, &message);
    }

    /// The topic's counts: subscribers now, and since its first subscriber, messages
    /// published, delivered and dropped. All zero for a topic without subscribers.
    pub fn topic_stats(&self, topic: impl AsRef<[u8]>) -> PubSubStats {
        self.hub
            .lookup(topic.as_ref())
            .map(|c| c.slots.stats())
            .unwrap_or_default()
    }

    /// Subscribers of `topic` now, over every worker.
    pub fn subscribers(&self, topic: impl AsRef<[u8]>) -> usize {
        self.hub
            .lookup(topic.as_ref())
            .map_or(0, |c| c.slots.subscribers())
    }

    /// The server's counts since it started (subscribers: subscriptions now).
    pub fn stats(&self) -> PubSubStats {
        self.hub
            .mesh
            .get()
            .map(|m| m.totals.stats())
            .unwrap_or_default()
    }

    /// Topics with at least one subscriber now.
    pub fn topics(&self) -> usize {
        self.hub
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}
