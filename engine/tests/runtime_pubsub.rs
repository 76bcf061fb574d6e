//! Pub/sub over real sockets: topics across two workers, publishes from a handler and from
//! other threads, slow subscribers under both policies, `Sender`s from a multi-threaded
//! tokio runtime, unsubscribe and close while publishes are in flight, and how many
//! payload allocations a publish costs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsengine::runtime::{
    Error, PubSubOptions, Publisher, Sender, ServerBuilder, ServerHandle, SlowSubscriber,
    SocketOptions, TrySendError, WebSocket, connect,
};
use wsengine::{CloseCode, Message};

mod common;
use common::{builder, run_client};

// ---- counting payload-sized allocations ---------------------------------------------------

/// Counts allocations of at least [`BIG`] bytes made on threads other than the client's.
struct Counting;

/// Allocations this large are payload copies in the allocation test (16 KiB messages);
/// nothing else a server allocates on this path is.
const BIG: usize = 16 * 1024;

static BIG_ALLOCS: AtomicUsize = AtomicUsize::new(0);

/// The allocation test runs alone: the others hold this for reading while they run.
static ALONE: RwLock<()> = RwLock::new(());

/// For every test but the allocation test.
fn beside_others() -> RwLockReadGuard<'static, ()> {
    ALONE.read().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// This thread's allocations are not counted (the test's clients).
    static UNCOUNTED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= BIG && !UNCOUNTED.with(Cell::get) {
            BIG_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= BIG && !UNCOUNTED.with(Cell::get) {
            BIG_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---- the server under test ----------------------------------------------------------------

/// A server whose connections take commands as text messages:
/// `sub T` → subscribe to T, answer `subscribed T`; `unsub T` → unsubscribe, answer
/// `unsubscribed T`; `pub T BODY` → publish BODY to T; `others T BODY` → publish to T but
/// not to this connection; `sender` → register a [`Sender`] in `senders` by the
/// connection's port, answer `sender`. Anything else is ignored.
fn command_server(
    builder: ServerBuilder,
    senders: Arc<Mutex<HashMap<u16, Sender>>>,
) -> ServerHandle {
    builder
        .serve(move |ws: WebSocket, _req| {
            let senders = senders.clone();
            async move {
                while let Ok(m) = ws.recv().await {
                    let Message::Text(t) = m else { continue };
                    let text = t.as_str();
                    let reply = if let Some(topic) = text.strip_prefix("sub ") {
                        ws.subscribe(topic).unwrap();
                        format!("subscribed {topic}")
                    } else if let Some(topic) = text.strip_prefix("unsub ") {
                        assert!(ws.unsubscribe(topic));
                        format!("unsubscribed {topic}")
                    } else if let Some(rest) = text.strip_prefix("pub ") {
                        let (topic, body) = rest.split_once(' ').unwrap();
                        ws.publish(topic, &Message::text(body.to_string())).unwrap();
                        continue;
                    } else if let Some(rest) = text.strip_prefix("others ") {
                        let (topic, body) = rest.split_once(' ').unwrap();
                        ws.publish_to_others(topic, &Message::text(body.to_string()))
                            .unwrap();
                        continue;
                    } else if text == "sender" {
                        let sender = ws.sender().unwrap();
                        senders
                            .lock()
                            .unwrap()
                            .insert(ws.peer_addr().port(), sender);
                        "sender".to_string()
                    } else {
                        continue;
                    };
                    if ws.send_text(reply).await.is_err() {
                        break;
                    }
                }
            }
        })
        .expect("server starts")
}

fn two_workers() -> ServerBuilder {
    builder().workers(2)
}

/// A command server on two workers whose connections queue at most 128 KiB (a stalled
/// subscriber is over its bound after a few publishes), with `pubsub`'s policies.
fn small_queues_server(pubsub: PubSubOptions) -> (ServerHandle, SocketAddr, Publisher) {
    let mut options = SocketOptions::default();
    options.max_send_queue = 128 * 1024;
    let builder = two_workers().socket_options(options).pubsub(pubsub);
    let server = command_server(builder, Arc::default());
    let (addr, publisher) = (server.local_addr(), server.publisher());
    (server, addr, publisher)
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// Connects and subscribes to `topic`; returns once the server said so.
async fn subscriber(addr: SocketAddr, topic: &str) -> WebSocket {
    let (ws, _) = connect(&url(addr)).await.unwrap();
    ws.send_text(format!("sub {topic}")).await.unwrap();
    let m = ws.recv().await.unwrap();
    assert_eq!(m, Message::text(format!("subscribed {topic}")));
    ws
}

/// Waits until `publisher` counts `n` subscribers of `topic` (the other worker's
/// subscriptions are atomics it reads), at most 10 s.
fn wait_subscribers(publisher: &Publisher, topic: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.subscribers(topic) != n {
        assert!(
            Instant::now() < deadline,
            "{} subscribers of {topic}, expected {n}",
            publisher.subscribers(topic)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A payload with a sequence number in its first 4 bytes, `len` bytes in all.
fn numbered(seq: u32, len: usize) -> Message {
    let mut payload = vec![(seq % 251) as u8; len.max(4)];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    Message::binary(payload)
}

fn seq_of(m: &Message) -> u32 {
    u32::from_be_bytes(m.payload()[..4].try_into().unwrap())
}

/// Reads a closed subscriber's messages to the end: they are numbered 0, 1, 2, ...
/// without a gap. Returns how many there were, and the end.
async fn drain_in_order(ws: &WebSocket) -> (u32, Error) {
    let mut next = 0;
    loop {
        match ws.recv().await {
            Ok(m) => {
                assert_eq!(seq_of(&m), next);
                next += 1;
            }
            Err(e) => return (next, e),
        }
    }
}

// ---- tests --------------------------------------------------------------------------------

#[test]
fn publisher_and_sender_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Publisher>();
    check::<Sender>();
}

/// Many subscribers spread over two workers; another thread publishes 1 KiB messages;
/// each subscriber gets every one, in order, and the counts add up exactly.
#[test]
fn every_subscriber_on_both_workers_gets_every_publish_in_order() {
    let _others = beside_others();
    const SUBSCRIBERS: usize = 2000;
    const PUBLISHES: u32 = 200;
    let server = command_server(two_workers(), Arc::default());
    let addr = server.local_addr();
    let publisher = server.publisher();
    let clients = std::thread::spawn(move || {
        UNCOUNTED.with(|u| u.set(true));
        run_client(async move {
            let mut subs = Vec::new();
            for _ in 0..SUBSCRIBERS {
                subs.push(subscriber(addr, "ticks").await);
            }
            let tasks: Vec<_> = subs
                .into_iter()
                .map(|ws| {
                    tokio::task::spawn_local(async move {
                        for expected in 0..PUBLISHES {
                            let m = ws.recv().await.unwrap();
                            assert_eq!(seq_of(&m), expected);
                            assert_eq!(m.len(), 1024);
                        }
                        ws.close(CloseCode::NORMAL, "").await.unwrap();
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    wait_subscribers(&publisher, "ticks", SUBSCRIBERS);
    for seq in 0..PUBLISHES {
        publisher.publish("ticks", numbered(seq, 1024));
    }
    let stats = publisher.topic_stats("ticks");
    clients.join().unwrap();
    assert_eq!(stats.published, u64::from(PUBLISHES));
    // Every worker has counted every publish for every subscriber by the time each
    // subscriber has them all; the counts add up exactly.
    assert_eq!(
        publisher.stats().delivered,
        u64::from(PUBLISHES) * SUBSCRIBERS as u64
    );
    assert_eq!(publisher.stats().dropped, 0);
    wait_subscribers(&publisher, "ticks", 0);
    assert_eq!(publisher.topics(), 0);
    assert_eq!(publisher.stats().subscribers, 0);
}

/// A handler's publish reaches its own worker's subscribers and the other worker's, in
/// publish order; `publish_to_others` skips the sender.
#[test]
fn a_handler_publishes_to_both_workers_in_order_and_can_skip_itself() {
    let _others = beside_others();
    const SUBSCRIBERS: usize = 40;
    const PUBLISHES: usize = 300;
    let server = command_server(two_workers(), Arc::default());
    let addr = server.local_addr();
    let publisher = server.publisher();
    run_client(async move {
        let mut subs = Vec::new();
        for _ in 0..SUBSCRIBERS {
            subs.push(subscriber(addr, "room").await);
        }
        wait_subscribers(&publisher, "room", SUBSCRIBERS);
        // The first subscriber publishes: half to everyone, half to the others only.
        let speaker = subs[0].clone();
        for i in 0..PUBLISHES {
            let verb = if i % 2 == 0 { "pub" } else { "others" };
            speaker.send_text(format!("{verb} room {i}")).await.unwrap();
        }
        for (n, ws) in subs.iter().enumerate() {
            let mine = n == 0;
            for i in (0..PUBLISHES).filter(|i| !mine || i % 2 == 0) {
                let m = ws.recv().await.unwrap();
                assert_eq!(m, Message::text(i.to_string()), "subscriber {n}");
            }
        }
        // Nothing more is on its way: a marker published now is the next message.
        speaker.send_text("pub room end").await.unwrap();
        for ws in &subs {
            assert_eq!(ws.recv().await.unwrap(), Message::text("end"));
        }
        let stats = publisher.topic_stats("room");
        assert_eq!(stats.published, PUBLISHES as u64 + 1);
        // Each publish counted once per subscriber, the sender aside for `others`.
        let expected = (PUBLISHES as u64 + 1) * SUBSCRIBERS as u64 - (PUBLISHES as u64 / 2);
        assert_eq!(stats.delivered, expected);
        assert_eq!(stats.dropped, 0);
    });
}

/// A subscriber that stops reading, with "drop": the others get every message, its drops
/// are counted exactly, and what the server holds for it stays under its bound.
#[test]
fn a_subscriber_that_never_reads_loses_messages_not_memory_with_drop() {
    let _others = beside_others();
    const PUBLISHES: u32 = 1000;
    const LEN: usize = 16 * 1024;
    let mut options = SocketOptions::default();
    options.max_send_queue = 256 * 1024;
    let server = command_server(two_workers().socket_options(options), Arc::default());
    let addr = server.local_addr();
    let publisher = server.publisher();
    let stats = server.stats().clone();
    run_client(async move {
        let stalled = subscriber(addr, "feed").await;
        let mut readers = Vec::new();
        for _ in 0..3 {
            readers.push(subscriber(addr, "feed").await);
        }
        wait_subscribers(&publisher, "feed", 4);
        let mut peak = 0;
        for seq in 0..PUBLISHES {
            publisher.publish("feed", numbered(seq, LEN));
            for ws in &readers {
                assert_eq!(seq_of(&ws.recv().await.unwrap()), seq);
            }
            peak = peak.max(stats.buffered_bytes.load(Ordering::Relaxed));
        }
        let topic = publisher.topic_stats("feed");
        assert_eq!(topic.published, u64::from(PUBLISHES));
        assert_eq!(topic.delivered + topic.dropped, u64::from(PUBLISHES) * 4);
        // The readers got every one (checked above): the drops are all the stalled one's.
        assert!(topic.delivered >= u64::from(PUBLISHES) * 3, "{topic:?}");
        // It got what its queue, both sockets' buffers and its client's inbox hold (a
        // few MiB), then nothing.
        let got = u64::from(PUBLISHES) - topic.dropped;
        assert!(got * (LEN as u64) < 12 << 20, "{topic:?}");
        // The stalled subscriber's queue (bound 256 KiB, one message past it) and the
        // client's own unread inbox are all that is held (the budget's published sum
        // moves in 64 KiB steps).
        assert!(peak < 2 << 20, "the server held {peak} bytes");
        // What it got is in order without a repeat. Gaps are allowed: "drop" drops the
        // publish that finds the queue full, and a later one fits again whenever the
        // kernel has taken a little more of the queue (CI saw 228 dropped, 229 sent).
        let mut last = None;
        for _ in 0..got {
            let seq = seq_of(&stalled.recv().await.unwrap());
            assert!(
                seq < PUBLISHES && last.is_none_or(|last| seq > last),
                "{last:?} then {seq}"
            );
            last = Some(seq);
        }
    });
}

/// With "close with 1008", a subscriber that stops reading is closed after what was
/// queued for it; the others keep getting every message.
#[test]
fn a_slow_subscriber_is_closed_with_the_chosen_code() {
    let _others = beside_others();
    const LEN: usize = 16 * 1024;
    let (_server, addr, publisher) = small_queues_server(
        PubSubOptions::default()
            .slow_subscriber(SlowSubscriber::Close(CloseCode::POLICY_VIOLATION)),
    );
    run_client(async move {
        let stalled = subscriber(addr, "orders").await;
        let reader = subscriber(addr, "orders").await;
        wait_subscribers(&publisher, "orders", 2);
        let mut seq = 0;
        // Publish until the stalled one is closed (its queue and both sockets' buffers
        // fill first: a few MiB at most).
        while publisher.topic_stats("orders").dropped == 0 {
            assert!(seq < 5_000, "the slow subscriber was never closed");
            publisher.publish("orders", numbered(seq, LEN));
            assert_eq!(seq_of(&reader.recv().await.unwrap()), seq);
            seq += 1;
            if seq.is_multiple_of(64) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        // It reads now: messages in order without a gap, then the close with 1008.
        let (next, end) = drain_in_order(&stalled).await;
        match end {
            Error::Closed(frame) => {
                assert_eq!(frame.code, CloseCode::POLICY_VIOLATION);
                assert_eq!(frame.reason.as_str(), "slow subscriber: send queue full");
            }
            other => panic!("expected a close, got {other:?}"),
        }
        assert!(next > 0 && next < seq, "got {next} of {seq}");
        // The reader is still served.
        publisher.publish("orders", numbered(seq, LEN));
        assert_eq!(seq_of(&reader.recv().await.unwrap()), seq);
    });
}

/// Policies per topic: on a server whose default drops, a `room:` topic closes its slow
/// subscriber with 1013 while a `md:` one only drops; each stalled subscriber ends as
/// its topic says, and the counts add up for both.
#[test]
fn each_topic_gets_its_own_slow_subscriber_policy() {
    let _others = beside_others();
    const LEN: usize = 16 * 1024;
    let (_server, addr, publisher) = small_queues_server(
        PubSubOptions::default()
            .slow_subscriber(SlowSubscriber::Drop)
            .topic_policy("room:", SlowSubscriber::Close(CloseCode::TRY_AGAIN_LATER)),
    );
    run_client(async move {
        let chat_stalled = subscriber(addr, "room:1").await;
        let feed_stalled = subscriber(addr, "md:AAPL").await;
        wait_subscribers(&publisher, "room:1", 1);
        wait_subscribers(&publisher, "md:AAPL", 1);
        // Publish to both until each has dropped some (the chat's subscriber is then
        // closed; the feed's keeps its connection).
        let mut seq = 0;
        while publisher.topic_stats("room:1").dropped == 0
            || publisher.topic_stats("md:AAPL").dropped == 0
        {
            assert!(seq < 5_000, "no drops after {seq} publishes");
            publisher.publish("room:1", numbered(seq, LEN));
            publisher.publish("md:AAPL", numbered(seq, LEN));
            seq += 1;
            if seq.is_multiple_of(16) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        // The chat's subscriber: what was queued, in order, then 1013.
        let (_, end) = drain_in_order(&chat_stalled).await;
        match end {
            Error::Closed(frame) => assert_eq!(frame.code, CloseCode::TRY_AGAIN_LATER),
            other => panic!("expected 1013, got {other:?}"),
        }
        // The feed's subscriber is still open: it drains, in order with gaps, and gets
        // the next publish.
        let mut last = None;
        let mut received = 0u64;
        loop {
            let m = tokio::time::timeout(Duration::from_millis(300), feed_stalled.recv()).await;
            match m {
                Ok(Ok(m)) => {
                    let s = seq_of(&m);
                    assert!(last.is_none_or(|l| s > l), "{s} after {last:?}");
                    last = Some(s);
                    received += 1;
                }
                Ok(Err(e)) => panic!("the feed's subscriber ended: {e}"),
                Err(_) => break,
            }
        }
        publisher.publish("md:AAPL", numbered(seq, LEN));
        assert_eq!(seq_of(&feed_stalled.recv().await.unwrap()), seq);
        let feed = publisher.topic_stats("md:AAPL");
        assert_eq!(
            feed.delivered + feed.dropped,
            u64::from(seq) + 1,
            "{feed:?}"
        );
        assert_eq!(feed.delivered, received + 1, "{feed:?}");
    });
}

/// `Sender`s used from tasks of a multi-threaded tokio runtime: every message arrives, in
/// order per sender; `try_send` answers `Full` under backpressure; once the connection is
/// gone both fail with `Closed`.
#[test]
fn senders_work_from_a_multi_threaded_tokio_runtime() {
    let _others = beside_others();
    const PER_TASK: u32 = 500;
    const TASKS: u32 = 4;
    let senders: Arc<Mutex<HashMap<u16, Sender>>> = Arc::default();
    let server = command_server(two_workers(), senders.clone());
    let addr = server.local_addr();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        run_client(async move {
            let (ws, _) = connect(&url(addr)).await.unwrap();
            ws.send_text("sender").await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), Message::text("sender"));
            ready_tx.send(()).unwrap();
            let mut next = [0u32; TASKS as usize];
            for _ in 0..PER_TASK * TASKS {
                let m = ws.recv().await.unwrap();
                let Message::Text(t) = m else {
                    panic!("text expected")
                };
                let (task, n) = t.as_str().split_once(':').unwrap();
                let task: usize = task.parse().unwrap();
                assert_eq!(n.parse::<u32>().unwrap(), next[task]);
                next[task] += 1;
            }
            // Stop reading until the senders filled the queue, then close.
            done_rx.recv().unwrap();
            ws.close(CloseCode::NORMAL, "").await.unwrap();
        })
    });
    ready_rx.recv().unwrap();
    let sender = senders.lock().unwrap().values().next().unwrap().clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let sender = sender.clone();
                tokio::spawn(async move {
                    for n in 0..PER_TASK {
                        sender
                            .send(Message::text(format!("{task}:{n}")))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    // The client read them all; now it reads no more: a big message at a time fills the
    // 1 MiB queue (and the socket buffers), and `try_send` answers `Full`.
    let big = Message::binary(Bytes::from(vec![0u8; 256 * 1024]));
    let deadline = Instant::now() + Duration::from_secs(20);
    let full = loop {
        match sender.try_send(big.clone()) {
            Ok(()) => std::thread::sleep(Duration::from_millis(1)),
            Err(TrySendError::Full(_)) => break true,
            Err(TrySendError::Closed(_)) => panic!("closed while open"),
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(full, "try_send never answered Full");
    done_tx.send(()).unwrap();
    client.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sender.is_closed() {
        assert!(Instant::now() < deadline, "the sender never saw the close");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(matches!(
        sender.try_send(Message::text("late")),
        Err(TrySendError::Closed(_))
    ));
    assert!(matches!(
        rt.block_on(sender.send(Message::text("late"))),
        Err(TrySendError::Closed(_))
    ));
}

/// Unsubscribe and close while another thread publishes without pause: nothing arrives
/// after the unsubscribe's answer, and every count goes back to zero.
#[test]
fn unsubscribe_and_close_during_publishes_leave_nothing_behind() {
    let _others = beside_others();
    // A client whose runtime ends mid-close stops reading while the server still owes
    // it queued publishes and its close reply: the send stall timeout ends those.
    let mut options = SocketOptions::default();
    options.send_stall_timeout = Some(Duration::from_secs(2));
    let server = command_server(two_workers().socket_options(options), Arc::default());
    let addr = server.local_addr();
    let publisher = server.publisher();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let publisher = publisher.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                publisher.publish("busy", numbered(n, 64));
                n += 1;
                if n.is_multiple_of(256) {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        })
    };
    run_client(async move {
        for round in 0..20 {
            let mut subs = Vec::new();
            for _ in 0..10 {
                subs.push(subscriber(addr, "busy").await);
            }
            for (i, ws) in subs.into_iter().enumerate() {
                if (i + round) % 2 == 0 {
                    ws.send_text("unsub busy").await.unwrap();
                    // Publishes before the answer may arrive; none after it.
                    loop {
                        let m = ws.recv().await.unwrap();
                        if m == Message::text("unsubscribed busy") {
                            break;
                        }
                        assert_eq!(m.len(), 64);
                    }
                    ws.send_text("ping?").await.unwrap();
                    let quiet = tokio::time::timeout(Duration::from_millis(20), ws.recv()).await;
                    assert!(quiet.is_err(), "a message after unsubscribe: {quiet:?}");
                    ws.close(CloseCode::NORMAL, "").await.unwrap();
                } else {
                    // Closed while subscribed, in the middle of the flood.
                    drop(ws);
                }
            }
        }
    });
    wait_subscribers(&publisher, "busy", 0);
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert_eq!(publisher.topics(), 0);
    assert_eq!(publisher.stats().subscribers, 0);
    let stats = publisher.stats();
    assert!(stats.published > 0 && stats.delivered > 0, "{stats:?}");
}

/// A publish of a 16 KiB message to 200 subscribers on two workers allocates its payload
/// once (the frames, shared by every subscriber and both workers), not once per
/// subscriber or per worker.
#[test]
fn a_publish_allocates_its_payload_once_whatever_the_subscribers() {
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    const SUBSCRIBERS: usize = 200;
    const PUBLISHES: u32 = 20;
    let server = command_server(two_workers(), Arc::default());
    let addr = server.local_addr();
    let publisher = server.publisher();
    let (subscribed_tx, subscribed_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let clients = std::thread::spawn(move || {
        UNCOUNTED.with(|u| u.set(true));
        run_client(async move {
            let mut subs = Vec::new();
            for _ in 0..SUBSCRIBERS {
                subs.push(subscriber(addr, "big").await);
            }
            subscribed_tx.send(()).unwrap();
            // The publishes are counted while nobody reads, then all are read.
            tokio::task::spawn_blocking(move || go_rx.recv().unwrap())
                .await
                .unwrap();
            for ws in &subs {
                for seq in 0..PUBLISHES {
                    assert_eq!(seq_of(&ws.recv().await.unwrap()), seq);
                }
            }
        })
    });
    subscribed_rx.recv().unwrap();
    wait_subscribers(&publisher, "big", SUBSCRIBERS);
    let messages: Vec<Message> = (0..PUBLISHES).map(|seq| numbered(seq, BIG)).collect();
    let before = BIG_ALLOCS.load(Ordering::Relaxed);
    for message in messages {
        publisher.publish("big", message);
    }
    // Every delivery is done (queued on its socket) before counting.
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.topic_stats("big").delivered < u64::from(PUBLISHES) * SUBSCRIBERS as u64 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            publisher.topic_stats("big")
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let allocations = BIG_ALLOCS.load(Ordering::Relaxed) - before;
    go_tx.send(()).unwrap();
    clients.join().unwrap();
    // Per publish: the prepared frames, nothing per subscriber or per worker.
    assert!(
        allocations <= PUBLISHES as usize,
        "{allocations} allocations of {BIG}+ bytes for {PUBLISHES} publishes"
    );
}

/// Pub/sub on a connection not accepted by a server (a client's) is refused.
#[test]
fn a_client_connection_cannot_subscribe() {
    let _others = beside_others();
    let server = command_server(two_workers(), Arc::default());
    let addr = server.local_addr();
    run_client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        assert!(matches!(ws.subscribe("x"), Err(Error::PubSubUnavailable)));
        assert!(matches!(ws.sender(), Err(Error::PubSubUnavailable)));
        assert!(!ws.unsubscribe("x"));
    });
}
