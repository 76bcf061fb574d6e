//! What the application chooses about pub/sub: what happens to a slow subscriber, and how
//! much a worker's inbox may hold.

use crate::proto::close::CloseCode;

/// What a publish does to a subscriber whose send queue is over
/// [`SocketOptions::max_send_queue`](crate::runtime::SocketOptions::max_send_queue)
/// (it reads slower than the topic publishes). Either way its memory stays bounded and the
/// other subscribers are served as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlowSubscriber {
    /// Skip the message for this subscriber and count it as dropped; it gets the next
    /// ones once its queue drains (uWebSockets' default). For market data and presence,
    /// where the latest message matters more than every message.
    #[default]
    Drop,
    /// Close the subscriber with this code (1008 policy violation, or 1013 try again
    /// later) after what is queued, and count the message as dropped. For chat and
    /// orders, where a gap is worse than a reconnect.
    Close(CloseCode),
}

/// Pub/sub settings of a server ([`ServerBuilder::pubsub`](crate::runtime::ServerBuilder::pubsub)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubSubOptions {
    /// The slow-subscriber policy. Default [`SlowSubscriber::Drop`].
    pub slow_subscriber: SlowSubscriber,
    /// Bytes of publishes a worker's inbox may hold from other threads before further
    /// publishes skip that worker (its subscribers count them as dropped): a worker that
    /// cannot keep up does not make the others buffer without bound. Default 64 MiB.
    pub inbox_limit: usize,
}

impl Default for PubSubOptions {
    fn default() -> Self {
        PubSubOptions {
            slow_subscriber: SlowSubscriber::Drop,
            inbox_limit: 64 << 20,
        }
    }
}

impl PubSubOptions {
    /// With `policy` for slow subscribers.
    #[must_use]
    pub fn slow_subscriber(mut self, policy: SlowSubscriber) -> Self {
        self.slow_subscriber = policy;
        self
    }

    /// With `bytes` as each worker's inbox bound.
    #[must_use]
    pub fn inbox_limit(mut self, bytes: usize) -> Self {
        self.inbox_limit = bytes;
        self
    }
}
