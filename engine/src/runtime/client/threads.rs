//! The client threads: where connections opened from outside our runtimes run.
//!
//! A [`WebSocket`](crate::runtime::WebSocket) is `!Send`: its connection's state machine
//! and its handle share state without locks, on one thread. An application on tokio's
//! multi-threaded runtime (or any other) cannot host that, so
//! [`connect_send`](super::connect_send) runs the connection on one of these threads, each
//! a runtime of ours on the default driver (io_uring where the kernel allows it), and
//! hands the application a `Send` handle that talks to it through channels.
//!
//! The threads are made on first use, one per CPU (at most 4: a client's connections
//! are few and mostly idle), and live as long as the process. Connections are spread
//! over them in turn.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::super::error::Error;
use super::super::executor::{Driver, LocalRuntime};
use super::super::uring::RingConfig;

/// Work for a client thread: makes the future to run there (it need not be `Send`).
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// The most client threads.
const MAX_THREADS: usize = 4;

/// Buffers in each client thread's io_uring buffer ring: 64 × 16 KiB, a quarter of a
/// server worker's (a client thread's connections are few).
const RING_BUFFERS: u16 = 64;

struct ClientThreads {
    jobs: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

fn threads() -> &'static ClientThreads {
    static THREADS: OnceLock<ClientThreads> = OnceLock::new();
    THREADS.get_or_init(|| {
        let count = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
        let jobs = (0..count).filter_map(|i| start_thread(i).ok()).collect();
        ClientThreads {
            jobs,
            next: AtomicUsize::new(0),
        }
    })
}

/// Starts client thread `index`; its jobs go to the sender returned.
fn start_thread(index: usize) -> std::io::Result<mpsc::UnboundedSender<Job>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    std::thread::Builder::new()
        .name(format!("wsengine-client-{index}"))
        .spawn(move || {
            let ring = RingConfig {
                buffers: RING_BUFFERS,
                ..RingConfig::default()
            };
            let Ok(runtime) = LocalRuntime::with_ring(Driver::Auto, ring) else {
                // Dropping `rx` makes every job sent here fail: `spawn` says so.
                return;
            };
            runtime.block_on(async move {
                while let Some(job) = rx.recv().await {
                    tokio::task::spawn_local(job());
                }
            });
        })?;
    Ok(tx)
}

/// Runs the future `make` returns on a client thread, as a task local to it.
pub(super) fn spawn<F, Fut>(make: F) -> Result<(), Error>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let threads = threads();
    let unavailable = || {
        Error::Io(std::io::Error::other(
            "wsengine's client threads could not start",
        ))
    };
    if threads.jobs.is_empty() {
        return Err(unavailable());
    }
    let index = threads.next.fetch_add(1, Ordering::Relaxed) % threads.jobs.len();
    let job: Job = Box::new(move || Box::pin(make()));
    threads.jobs[index].send(job).map_err(|_| unavailable())
}
