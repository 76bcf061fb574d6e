//! What the application chooses about pub/sub: what happens to a slow subscriber (for the
//! server, and per topic), and how much a worker's inbox may hold.

use bytes::Bytes;

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
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubSubOptions {
    /// The slow-subscriber policy of topics no [`topic_policy`](Self::topic_policy)
    /// names. Default [`SlowSubscriber::Drop`].
    pub slow_subscriber: SlowSubscriber,
    /// Policies by topic name or name prefix; the longest that matches wins.
    topic_policies: Vec<(Bytes, SlowSubscriber)>,
    /// Bytes of publishes a worker's inbox may hold from other threads before further
    /// publishes skip that worker (its subscribers count them as dropped): a worker that
    /// cannot keep up does not make the others buffer without bound. Default 64 MiB.
    pub inbox_limit: usize,
}

impl Default for PubSubOptions {
    fn default() -> Self {
        PubSubOptions {
            slow_subscriber: SlowSubscriber::Drop,
            topic_policies: Vec::new(),
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

    /// With `policy` for the topics whose name is `prefix` or starts with it (a market
    /// data feed under `"md:"` dropping, a chat under `"room:"` closing with 1013); the
    /// longest prefix that matches a topic wins, and topics none matches get
    /// [`slow_subscriber`](Self::slow_subscriber)'s. A topic's policy is looked up once
    /// per worker, when the worker gets its first subscriber of it.
    #[must_use]
    pub fn topic_policy(mut self, prefix: impl AsRef<[u8]>, policy: SlowSubscriber) -> Self {
        let prefix = Bytes::copy_from_slice(prefix.as_ref());
        self.topic_policies.retain(|(p, _)| *p != prefix);
        self.topic_policies.push((prefix, policy));
        self
    }

    /// The slow-subscriber policy of `topic`.
    pub fn policy_for(&self, topic: &[u8]) -> SlowSubscriber {
        self.topic_policies
            .iter()
            .filter(|(prefix, _)| topic.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.slow_subscriber, |(_, policy)| *policy)
    }

    /// With `bytes` as each worker's inbox bound.
    #[must_use]
    pub fn inbox_limit(mut self, bytes: usize) -> Self {
        self.inbox_limit = bytes;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_prefix_decides_else_the_servers_policy() {
        let close = SlowSubscriber::Close(CloseCode::TRY_AGAIN_LATER);
        let options = PubSubOptions::default()
            .slow_subscriber(SlowSubscriber::Drop)
            .topic_policy("room:", close)
            .topic_policy("room:lobby", SlowSubscriber::Drop)
            .topic_policy("orders", SlowSubscriber::Close(CloseCode::POLICY_VIOLATION));
        assert_eq!(options.policy_for(b"room:42"), close);
        assert_eq!(options.policy_for(b"room:lobby"), SlowSubscriber::Drop);
        assert_eq!(options.policy_for(b"room:lobby2"), SlowSubscriber::Drop);
        assert_eq!(
            options.policy_for(b"orders"),
            SlowSubscriber::Close(CloseCode::POLICY_VIOLATION)
        );
        assert_eq!(options.policy_for(b"md:AAPL"), SlowSubscriber::Drop);
        // A prefix given again replaces its policy.
        let options = options.topic_policy("room:", SlowSubscriber::Drop);
        assert_eq!(options.policy_for(b"room:42"), SlowSubscriber::Drop);
    }
}
