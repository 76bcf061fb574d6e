//! One worker's part of pub/sub: its subscribers by topic, its connections' senders, and
//! the task that drains its inbox. Single-threaded (`Rc`, `RefCell`), like everything a
//! worker owns.
//!
//! Delivering a publish to a subscriber queues the shared frames on its connection and
//! marks the connection for its driver ([`Shared::wake_driver`]); the driver runs after
//! the publishing handler or the inbox drain yields, so every message for a socket in one
//! turn leaves in one write.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::counters::{Slot, TopicCounters};
use super::fan_out::FanOutWakes;
use super::hub::{Hub, Mesh, Publisher};
use super::inbox::{InboxRx, MeshMessage};
use super::options::SlowSubscriber;
use super::sender::{Sender, SenderState};
use crate::proto::message::Message;
use crate::proto::prepared::PreparedMessage;
use crate::runtime::socket::Shared;

/// The close reason of a subscriber closed by [`SlowSubscriber::Close`].
const SLOW_REASON: &str = "slow subscriber: send queue full";

/// The most inbox messages taken from the queue at once.
const BATCH: usize = 256;

/// The most deliveries (or direct messages) the inbox task makes before the worker's
/// other tasks run: a few hundred microseconds, so that a publish to thousands of
/// subscribers does not hold up handshakes and other connections for the whole batch.
const TURN_DELIVERIES: usize = 2048;

/// How many topics a worker remembers having published to without subscribers of its own.
const PUBLISH_CACHE: usize = 4096;

/// A connection's key in a worker's maps: the address of its `Shared`, unique while the
/// connection is registered (it is forgotten before the `Shared` can be freed).
fn key(conn: &Shared) -> usize {
    std::ptr::from_ref(conn) as usize
}

/// A topic's subscribers on this worker (at least one).
struct LocalTopic {
    /// The topic (also the map's key; its subscribers' entries share it).
    name: Bytes,
    subscribers: Vec<Rc<Shared>>,
    /// Each subscriber's index in `subscribers`, for O(1) removal.
    positions: HashMap<usize, usize>,
    counters: Arc<TopicCounters>,
    /// What a publish does to a subscriber that is full (the topic's policy).
    policy: SlowSubscriber,
}

/// What a worker keeps about one of its connections (only those that subscribed or made a
/// [`Sender`]; the others cost nothing).
#[derive(Default)]
struct ConnEntry {
    topics: Vec<Bytes>,
    sender: Option<Arc<SenderState>>,
}

/// One worker's pub/sub state.
pub(crate) struct WorkerPubSub {
    hub: Arc<Hub>,
    index: usize,
    /// The connections' `max_send_queue`.
    bound: usize,
    topics: RefCell<HashMap<Bytes, LocalTopic>>,
    /// Topics published to from here without subscribers here: their counters, so a
    /// publish finds which workers care without the registry's lock.
    publish_cache: RefCell<HashMap<Bytes, Arc<TopicCounters>>>,
    conns: RefCell<HashMap<usize, ConnEntry>>,
    /// Senders' states (by address) to their connections.
    senders: RefCell<HashMap<usize, Weak<Shared>>>,
    /// Subscribers' driver tasks to wake for deliveries, a batch at a time.
    wakes: Rc<FanOutWakes>,
}

impl WorkerPubSub {
    pub(crate) fn new(hub: Arc<Hub>, index: usize, bound: usize) -> Self {
        WorkerPubSub {
            hub,
            index,
            bound,
            topics: RefCell::default(),
            publish_cache: RefCell::default(),
            conns: RefCell::default(),
            senders: RefCell::default(),
            wakes: Rc::default(),
        }
    }

    /// The task that wakes subscribers' driver tasks for deliveries (see
    /// [`FanOutWakes`]): spawned once per worker, beside [`run`](Self::run).
    pub(crate) fn run_wakes(&self) -> impl std::future::Future<Output = ()> + 'static {
        self.wakes.clone().run()
    }

    /// A [`Publisher`] to the same hub.
    pub(crate) fn publisher(&self) -> Publisher {
        self.hub.publisher()
    }

    fn mesh(&self) -> &Mesh {
        self.hub
            .mesh
            .get()
            .expect("the mesh is set before the workers start")
    }

    /// Subscribes `conn` to `topic`; `false` if it already was.
    pub(crate) fn subscribe(&self, conn: &Rc<Shared>, topic: &[u8]) -> bool {
        let id = key(conn);
        let mut topics = self.topics.borrow_mut();
        let name = if let Some(local) = topics.get_mut(topic) {
            if local.positions.contains_key(&id) {
                return false;
            }
            local.positions.insert(id, local.subscribers.len());
            local.subscribers.push(conn.clone());
            local
                .counters
                .slots
                .slot(self.index)
                .subscribers
                .fetch_add(1, Ordering::AcqRel);
            local.name.clone()
        } else {
            // This worker's first subscriber: under the registry's lock, so the topic
            // cannot be retired by another worker's last unsubscribe meanwhile.
            let name = Bytes::copy_from_slice(topic);
            let workers = self.mesh().workers();
            let counters = {
                let mut registry = self.hub.topics.write().unwrap_or_else(|e| e.into_inner());
                let counters = registry
                    .entry(name.clone())
                    .or_insert_with(|| Arc::new(TopicCounters::new(workers)))
                    .clone();
                counters
                    .slots
                    .slot(self.index)
                    .subscribers
                    .store(1, Ordering::Release);
                counters
            };
            self.publish_cache.borrow_mut().remove(topic);
            topics.insert(
                name.clone(),
                LocalTopic {
                    name: name.clone(),
                    subscribers: vec![conn.clone()],
                    positions: HashMap::from([(id, 0)]),
                    counters,
                    policy: self.mesh().options.policy_for(topic),
                },
            );
            name
        };
        drop(topics);
        self.mesh()
            .totals
            .slot(self.index)
            .subscribers
            .fetch_add(1, Ordering::Relaxed);
        self.conns
            .borrow_mut()
            .entry(id)
            .or_default()
            .topics
            .push(name);
        true
    }

    /// Unsubscribes `conn` from `topic`; `false` if it was not subscribed. No message
    /// published after this returns reaches it.
    pub(crate) fn unsubscribe(&self, conn: &Shared, topic: &[u8]) -> bool {
        let id = key(conn);
        let mut conns = self.conns.borrow_mut();
        let Some(entry) = conns.get_mut(&id) else {
            return false;
        };
        let Some(at) = entry.topics.iter().position(|t| t == topic) else {
            return false;
        };
        entry.topics.swap_remove(at);
        if entry.topics.is_empty() && entry.sender.is_none() {
            conns.remove(&id);
        }
        drop(conns);
        self.remove_subscriber(topic, id);
        true
    }

    /// The topics `conn` is subscribed to.
    pub(crate) fn subscriptions(&self, conn: &Shared) -> Vec<Bytes> {
        self.conns
            .borrow()
            .get(&key(conn))
            .map(|e| e.topics.clone())
            .unwrap_or_default()
    }

    fn remove_subscriber(&self, topic: &[u8], id: usize) {
        let mut topics = self.topics.borrow_mut();
        let Some(local) = topics.get_mut(topic) else {
            return;
        };
        let Some(at) = local.positions.remove(&id) else {
            return;
        };
        let gone = local.subscribers.swap_remove(at);
        if let Some(moved) = local.subscribers.get(at) {
            local.positions.insert(key(moved), at);
        }
        self.mesh()
            .totals
            .slot(self.index)
            .subscribers
            .fetch_sub(1, Ordering::Relaxed);
        let slot = local.counters.slots.slot(self.index);
        if local.subscribers.is_empty() {
            // This worker's last subscriber: under the lock, retire the topic if no
            // worker has subscribers left.
            let mut registry = self.hub.topics.write().unwrap_or_else(|e| e.into_inner());
            slot.subscribers.store(0, Ordering::Release);
            if local.counters.slots.subscribers() == 0
                && registry
                    .get(topic)
                    .is_some_and(|c| Arc::ptr_eq(c, &local.counters))
            {
                registry.remove(topic);
                local.counters.retired.store(true, Ordering::Release);
            }
            drop(registry);
            topics.remove(topic);
        } else {
            slot.subscribers.fetch_sub(1, Ordering::AcqRel);
        }
        drop(topics);
        // The connection's handle may be the last one elsewhere: dropped after the maps
        // are released.
        drop(gone);
    }

    /// Publishes from a handler of this worker: frames the message once, hands it to the
    /// other workers with subscribers, and queues it on this worker's subscribers now
    /// (all but `exclude`).
    /// Returns how many of this worker's subscribers it visited.
    pub(crate) fn publish(
        &self,
        topic: &[u8],
        message: &Message,
        exclude: Option<&Shared>,
    ) -> usize {
        let mesh = self.mesh();
        Slot::add(&mesh.totals.slot(self.index).published, 1);
        let Some(counters) = self.counters(topic) else {
            return 0;
        };
        Slot::add(&counters.slots.slot(self.index).published, 1);
        let prepared = mesh.fan_out(Some(self.index), topic, &counters, message);
        self.deliver(topic, &prepared, exclude.map(key))
    }

    /// The topic's counters, if it has subscribers anywhere.
    fn counters(&self, topic: &[u8]) -> Option<Arc<TopicCounters>> {
        if let Some(local) = self.topics.borrow().get(topic) {
            return Some(local.counters.clone());
        }
        let mut cache = self.publish_cache.borrow_mut();
        if let Some(counters) = cache.get(topic) {
            if !counters.is_retired() {
                return Some(counters.clone());
            }
            cache.remove(topic);
        }
        let counters = self.hub.lookup(topic)?;
        if cache.len() >= PUBLISH_CACHE {
            cache.clear();
        }
        cache.insert(Bytes::copy_from_slice(topic), counters.clone());
        Some(counters)
    }

    /// Queues `message` on this worker's subscribers of `topic` (but `exclude`), each
    /// counted once as delivered or dropped; returns how many it visited.
    fn deliver(&self, topic: &[u8], message: &PreparedMessage, exclude: Option<usize>) -> usize {
        let topics = self.topics.borrow();
        let Some(local) = topics.get(topic) else {
            return 0;
        };
        let policy = local.policy;
        let (mut delivered, mut dropped) = (0u64, 0u64);
        for subscriber in &local.subscribers {
            if exclude == Some(key(subscriber)) {
                continue;
            }
            let queued = subscriber.session.borrow_mut().try_send_prepared(message);
            match queued {
                Ok(true) => {
                    delivered += 1;
                    if !subscriber.wake_driver_for_fan_out() {
                        self.wakes.defer(subscriber);
                    }
                }
                Ok(false) => {
                    dropped += 1;
                    if let SlowSubscriber::Close(code) = policy {
                        let _ = subscriber.start_close(code, SLOW_REASON);
                    }
                }
                // Closing: it leaves the topic when its connection finishes.
                Err(_) => dropped += 1,
            }
        }
        let slot = local.counters.slots.slot(self.index);
        Slot::add(&slot.delivered, delivered);
        Slot::add(&slot.dropped, dropped);
        let totals = self.mesh().totals.slot(self.index);
        Slot::add(&totals.delivered, delivered);
        Slot::add(&totals.dropped, dropped);
        local.subscribers.len()
    }

    /// A [`Sender`] for `conn` (the same state for every call).
    pub(crate) fn sender(&self, conn: &Rc<Shared>) -> Sender {
        let id = key(conn);
        let mut conns = self.conns.borrow_mut();
        let entry = conns.entry(id).or_default();
        let state = entry
            .sender
            .get_or_insert_with(|| {
                let state = Arc::new(SenderState::new(self.hub.clone(), self.index, self.bound));
                self.senders
                    .borrow_mut()
                    .insert(Arc::as_ptr(&state) as usize, Rc::downgrade(conn));
                state
            })
            .clone();
        Sender { state }
    }

    /// For the connection's driver: `conn`'s send queue went back under its bound.
    pub(crate) fn send_space(&self, conn: &Shared) {
        if let Some(state) = self
            .conns
            .borrow()
            .get(&key(conn))
            .and_then(|e| e.sender.as_ref())
        {
            state.unblocked();
        }
    }

    /// For the connection's driver: `conn` finished; it leaves every topic and its
    /// senders fail from now on.
    pub(crate) fn forget(&self, conn: &Shared) {
        let id = key(conn);
        let Some(entry) = self.conns.borrow_mut().remove(&id) else {
            return;
        };
        for topic in &entry.topics {
            self.remove_subscriber(topic, id);
        }
        if let Some(state) = entry.sender {
            self.senders
                .borrow_mut()
                .remove(&(Arc::as_ptr(&state) as usize));
            state.close();
        }
    }

    /// The worker's inbox task: drains what other threads hand it, until the worker ends.
    pub(crate) async fn run(self: Rc<Self>, rx: InboxRx) {
        // Allocated once, at the worker's start.
        let mut batch = VecDeque::with_capacity(BATCH);
        loop {
            let inbox = &self.mesh().inboxes[self.index];
            if batch.is_empty() {
                inbox.next_batch(&rx, &mut batch, BATCH).await;
            }
            let mut work = 0;
            while work < TURN_DELIVERIES
                && let Some(message) = batch.pop_front()
            {
                work += match message {
                    MeshMessage::Publish { topic, message } => {
                        inbox.drained(message.wire().len());
                        1 + self.deliver(&topic, &message, None)
                    }
                    MeshMessage::Direct { to, message } => {
                        self.direct(&to, &message);
                        1
                    }
                };
            }
            // Let the driver write what was queued (one write per socket for the whole
            // batch) and the other tasks run: a waiting permit would otherwise let this
            // loop run on while other threads keep publishing, starving the worker.
            crate::runtime::executor::yield_to_worker().await;
        }
    }

    /// A [`Sender`]'s message arrives at its connection.
    fn direct(&self, to: &Arc<SenderState>, message: &Message) {
        let conn = self
            .senders
            .borrow()
            .get(&(Arc::as_ptr(to) as usize))
            .and_then(Weak::upgrade);
        let Some(conn) = conn else {
            to.arrived(message.len(), false);
            to.close();
            return;
        };
        let result = conn.session.borrow_mut().send_admitted(message);
        let blocked = conn.session.borrow().send_blocked();
        to.arrived(message.len(), blocked);
        match result {
            Ok(()) => conn.wake_driver(),
            Err(_) => to.close(),
        }
    }
}
