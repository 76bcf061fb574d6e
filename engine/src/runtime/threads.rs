//! wsengine's own threads for connections that do not start on one of our runtimes:
//! clients opened from any other runtime ([`connect_send`](super::connect_send)) and
//! connections taken over from hyper or axum ([`upgrade`](super::upgrade)).
//!
//! A [`WebSocket`](crate::runtime::WebSocket) is `!Send`: its connection's state machine
//! and its handle share state without locks, on one thread. An application on tokio's
//! multi-threaded runtime (or any other) cannot host that, so these connections run here,
//! each thread a runtime of ours on the default driver (io_uring where the kernel allows
//! it), and the application gets a `Send` handle or a handler that runs here too.
//!
//! The threads are made on first use, one per CPU, and live as long as the process.
//! Connections are spread over them in turn.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use super::error::Error;
use super::executor::{Driver, LocalRuntime};
#[cfg(feature = "hyper")]
use super::pubsub::Publisher;
use super::pubsub::{Hub, Inbox, InboxRx, Mesh, PubSubOptions, Slots, WorkerPubSub};
use super::uring::RingConfig;

/// Work for one of the threads: makes the future to run there (it need not be `Send`).
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Buffers in each thread's io_uring buffer ring: 64 × 16 KiB, a quarter of a server
/// worker's (these threads' connections are fewer).
const RING_BUFFERS: u16 = 64;

/// Submission queue entries of each thread's ring, a quarter of a worker's: with the
/// buffers, about 1.2 MiB per thread.
const RING_ENTRIES: u32 = 1024;

struct Threads {
    /// Each thread's job queue; `None` where the thread could not start.
    jobs: Vec<Option<mpsc::UnboundedSender<Job>>>,
    next: AtomicUsize,
    /// Pub/sub among the connections taken over from hyper, one worker per thread.
    #[cfg_attr(not(feature = "hyper"), allow(dead_code))]
    hub: Arc<Hub>,
}

thread_local! {
    /// On one of these threads: its part of the pub/sub.
    static PUBSUB: RefCell<Option<Rc<WorkerPubSub>>> = const { RefCell::new(None) };
}

/// The send bound a thread's pub/sub uses for its `Sender`s: the default
/// `max_send_queue` (the connections' own options apply to what they queue).
const SENDER_BOUND: usize = 1 << 20;

fn threads() -> &'static Threads {
    static THREADS: OnceLock<Threads> = OnceLock::new();
    THREADS.get_or_init(|| {
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hub = Arc::new(Hub::default());
        let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..count).map(|_| Inbox::new()).unzip();
        let _ = hub.mesh.set(Mesh {
            inboxes,
            totals: Slots::new(count),
            fragment_size: None,
            options: PubSubOptions::default(),
        });
        let jobs = receivers
            .into_iter()
            .enumerate()
            .map(|(i, inbox)| start_thread(i, inbox, hub.clone()).ok())
            .collect();
        Threads {
            jobs,
            next: AtomicUsize::new(0),
            hub,
        }
    })
}

/// Starts thread `index` with its pub/sub inbox; its jobs go to the sender returned.
fn start_thread(
    index: usize,
    inbox: InboxRx,
    hub: Arc<Hub>,
) -> std::io::Result<mpsc::UnboundedSender<Job>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    std::thread::Builder::new()
        .name(format!("wsengine-pool-{index}"))
        .spawn(move || {
            let ring = RingConfig {
                entries: RING_ENTRIES,
                buffers: RING_BUFFERS,
                ..RingConfig::default()
            };
            let Ok(runtime) = LocalRuntime::with_ring(Driver::Auto, ring) else {
                // Dropping `rx` makes every job sent here fail: `spawn` says so.
                return;
            };
            runtime.block_on(async move {
                let pubsub = Rc::new(WorkerPubSub::new(hub, index, SENDER_BOUND));
                tokio::task::spawn_local(pubsub.clone().run(inbox));
                tokio::task::spawn_local(pubsub.run_wakes());
                PUBSUB.with(|p| *p.borrow_mut() = Some(pubsub));
                while let Some(job) = rx.recv().await {
                    tokio::task::spawn_local(job());
                }
            });
        })?;
    Ok(tx)
}

/// This thread's part of the pub/sub, on one of these threads.
#[cfg(feature = "hyper")]
pub(crate) fn pubsub() -> Option<Rc<WorkerPubSub>> {
    PUBSUB.with(|p| p.borrow().clone())
}

/// A [`Publisher`] to the topics of the connections taken over from hyper.
#[cfg(feature = "hyper")]
pub(crate) fn publisher() -> Publisher {
    threads().hub.publisher()
}

/// Runs the future `make` returns on one of the threads, as a task local to it.
pub(crate) fn spawn<F, Fut>(make: F) -> Result<(), Error>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let threads = threads();
    let unavailable = || {
        Error::Io(std::io::Error::other(
            "wsengine's connection threads could not start",
        ))
    };
    // In turn, skipping a thread that could not start.
    let count = threads.jobs.len();
    let first = threads.next.fetch_add(1, Ordering::Relaxed);
    let Some(jobs) = (0..count).find_map(|i| threads.jobs[(first + i) % count].as_ref()) else {
        return Err(unavailable());
    };
    let job: Job = Box::new(move || Box::pin(make()));
    jobs.send(job).map_err(|_| unavailable())
}
