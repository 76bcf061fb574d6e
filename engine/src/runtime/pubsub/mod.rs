//! Pub/sub across the server's workers: topics, broadcasts, and sending to one connection
//! from any thread.
//!
//! | file | concept |
//! |---|---|
//! | `hub` | what the workers share: the topic registry, the inboxes, the [`Publisher`] |
//! | `local` | one worker's subscribers by topic, its inbox task, delivery |
//! | `inbox` | a worker's MPSC inbox, woken once per drain however many pushes |
//! | `fan_out` | subscribers' driver tasks woken a batch at a time, so others keep their turn |
//! | `sender` | [`Sender`]: direct messages to one connection, with its backpressure |
//! | `counters` | per-worker counts of a topic and of the server ([`PubSubStats`]) |
//! | `options` | the slow-subscriber policy and the inbox bound ([`PubSubOptions`]) |
//!
//! # Why this shape
//! A connection lives on the worker that accepted it, and so do its subscriptions: a
//! worker's subscribers of a topic are a plain `Vec` it alone touches. A publish is framed
//! once ([`PreparedMessage`](crate::proto::prepared::PreparedMessage): server frames are
//! unmasked, so the bytes are the same for every subscriber) and the same allocation goes
//! to every worker that has subscribers of the topic, through that worker's inbox; each
//! worker then queues it on its own subscribers. No lock is taken per message: the
//! registry's lock is taken when a worker gains its first subscriber of a topic or loses
//! its last, and when a worker or a [`Publisher`] first meets a topic.
//!
//! Ordering: what one thread publishes to a topic reaches each subscriber in publish
//! order (one FIFO inbox per worker, and a worker's own subscribers are served at once).
//! A subscription takes effect at once for publishes from its worker and for other
//! threads' publishes made after it (the per-worker subscriber counts are atomics).
//!
//! Memory: a subscriber's share is its send queue's bound
//! ([`SocketOptions::max_send_queue`](crate::runtime::SocketOptions::max_send_queue));
//! past it the [`SlowSubscriber`] policy drops the message for it or closes it. A worker's
//! inbox holds at most [`PubSubOptions::inbox_limit`] bytes of publishes. A `Sender`'s
//! messages in transit count against its connection's bound.

mod counters;
mod fan_out;
mod hub;
mod inbox;
mod local;
mod options;
mod sender;

pub use counters::PubSubStats;
pub(crate) use counters::Slots;
pub use hub::Publisher;
pub(crate) use hub::{Hub, Mesh};
pub(crate) use inbox::{Inbox, InboxRx};
pub(crate) use local::WorkerPubSub;
pub use options::{PubSubOptions, SlowSubscriber};
pub use sender::{Sender, TrySendError};
