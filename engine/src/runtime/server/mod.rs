//! The server: a builder, the worker threads, and a handle to stop them.
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` | the builder, the statistics and the handle |
//! | `worker` | one core's thread: its runtime, accept loop, registry and shutdown |
//! | `accept` | the accept policy: the upgrade request, the hook, the answer (also the hyper path's) |
//! | `listener` | one `SO_REUSEPORT` socket per worker |
//!
//! Thread-per-core: each worker is an OS thread pinned to one CPU with its own io_uring
//! runtime and its own `SO_REUSEPORT` listener on the same address, so connections are
//! spread by the kernel and no state is shared on the hot path. Only the handshake hook,
//! the handler factory and a few statistics counters are shared (read-only or atomic).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use self::listener::{another, bind_reuseport};
use crate::runtime::budget::MemoryBudget;
use crate::runtime::error::Error;
use crate::runtime::executor::Driver;
use crate::runtime::executor::resolve;
use crate::runtime::options::SocketOptions;
use crate::runtime::pubsub::{Hub, Inbox, Mesh, PubSubOptions, Publisher, Slots};
use crate::runtime::session::{ConnectionStats, EndCause};
use crate::runtime::socket::WebSocket;
use crate::runtime::tls::ServerTls;
use crate::runtime::uring::DEFAULT_RING_ENTRIES;
mod accept;
mod listener;
mod worker;

use crate::proto::close::CloseCode;
use crate::proto::handshake::{Accept, HandshakeLimits, Reject, Request};
#[cfg(feature = "hyper")]
pub(crate) use accept::{Policy, answer, handshake_with};

/// Decides whether to accept an upgrade request: origin checks, authentication and
/// subprotocol choice happen here.
pub type HandshakeHook = dyn Fn(&Request) -> Result<Accept, Reject> + Send + Sync;

/// The application's per-connection handler, boxed.
pub(crate) type BoxHandler =
    dyn Fn(WebSocket, Request) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync;

/// Counters shared by the workers.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// TCP connections accepted.
    pub accepted: AtomicU64,
    /// Opening handshakes completed (WebSocket connections established).
    pub upgraded: AtomicU64,
    /// Connections turned away: invalid handshake, rejected by the hook, handshake timeout,
    /// or over the connection limit.
    pub rejected: AtomicU64,
    /// WebSocket connections open now.
    pub open: AtomicU64,
    /// Bytes the connections hold buffered (the memory budget's sum; each worker's part
    /// is published when it has moved by 64 KiB).
    pub buffered_bytes: AtomicU64,
    /// Connections paused now because the memory budget is spent (not read from).
    pub paused_for_memory: AtomicU64,
    /// Connections failed with 1013 after being paused for memory for the budget's wait.
    pub closed_for_memory: AtomicU64,
    /// Bytes read from the sockets of connections that have ended (on the wire: TLS
    /// records, compressed frames as they went).
    pub bytes_received: AtomicU64,
    /// Bytes written to the sockets of connections that have ended.
    pub bytes_sent: AtomicU64,
    /// Messages received on connections that have ended.
    pub messages_received: AtomicU64,
    /// Messages sent on connections that have ended.
    pub messages_sent: AtomicU64,
    /// Connections ended, by cause: [`ended`](Self::ended) reads one.
    ended: [AtomicU64; EndCause::ALL.len()],
    /// Connections ended, by close code: [`close_codes`](Self::close_codes) reads them.
    close_codes: Mutex<BTreeMap<u16, u64>>,
}

/// Everything a worker needs, shared read-only.
pub(crate) struct ServerShared {
    pub(crate) options: SocketOptions,
    pub(crate) handshake_timeout: Duration,
    pub(crate) handshake_limits: HandshakeLimits,
    pub(crate) max_connections_per_worker: usize,
    pub(crate) on_handshake: Option<Arc<HandshakeHook>>,
    pub(crate) handler: Arc<BoxHandler>,
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) ring_entries: u32,
    /// Resolved: `Uring` or `Tokio`.
    pub(crate) driver: Driver,
    pub(crate) pin_workers: bool,
    /// The io_uring driver's provided buffer ring: count and size.
    pub(crate) receive_buffers: (u16, usize),
    pub(crate) memory_budget: MemoryBudget,
    pub(crate) workers: usize,
    /// `wss://`: every connection's TLS configuration.
    pub(crate) tls: Option<ServerTls>,
    /// Pub/sub: the topic registry and the workers' inboxes.
    pub(crate) hub: Arc<Hub>,
}

/// Configures and starts a [`Server`].
#[must_use]
pub struct ServerBuilder {
    addr: SocketAddr,
    workers: usize,
    options: SocketOptions,
    handshake_timeout: Duration,
    handshake_limits: HandshakeLimits,
    max_connections_per_worker: usize,
    backlog: i32,
    ring_entries: u32,
    driver: Driver,
    pin_workers: bool,
    receive_buffers: (u16, usize),
    memory_budget: MemoryBudget,
    on_handshake: Option<Arc<HandshakeHook>>,
    tls: Option<ServerTls>,
    hub: Arc<Hub>,
    pubsub: PubSubOptions,
}

/// A WebSocket server on io_uring. Start one with [`Server::builder`].
pub struct Server;

impl Server {
    /// A builder listening on `addr` (port 0 picks a free port; see
    /// [`ServerHandle::local_addr`]).
    pub fn builder(addr: SocketAddr) -> ServerBuilder {
        ServerBuilder {
            addr,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            options: SocketOptions::default(),
            handshake_timeout: Duration::from_secs(10),
            handshake_limits: HandshakeLimits::default(),
            max_connections_per_worker: 100_000,
            backlog: 4096,
            ring_entries: DEFAULT_RING_ENTRIES,
            driver: Driver::Auto,
            pin_workers: true,
            receive_buffers: (256, 16 * 1024),
            memory_budget: MemoryBudget::default(),
            on_handshake: None,
            tls: None,
            hub: Arc::default(),
            pubsub: PubSubOptions::default(),
        }
    }
}

impl ServerBuilder {
    /// Serve `wss://`: every connection speaks TLS with `tls`'s configuration (keep a
    /// clone to [`replace`](ServerTls::replace) the certificate while the server runs).
    /// The TLS handshake counts against the [handshake timeout](Self::handshake_timeout);
    /// a plain HTTP request gets a 400 in the clear. Default: plain `ws://`.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Pub/sub settings: the slow-subscriber policy and each worker's inbox bound (see
    /// [`PubSubOptions`]).
    pub fn pubsub(mut self, options: PubSubOptions) -> Self {
        self.pubsub = options;
        self
    }

    /// A [`Publisher`] to this server's topics, before it starts (to move into the
    /// handler or another thread). What it publishes before the server runs reaches no
    /// one.
    pub fn publisher(&self) -> Publisher {
        self.hub.publisher()
    }

    /// Worker threads. Default: the number of CPUs.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Per-connection settings (protocol limits, backpressure, keepalive).
    pub fn socket_options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// The deadline for a client to complete the opening handshake. Default 10 s; a
    /// connection still handshaking then is closed (slowloris protection).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Size limits of the upgrade request (431 past them).
    pub fn handshake_limits(mut self, limits: HandshakeLimits) -> Self {
        self.handshake_limits = limits;
        self
    }

    /// The memory budget for everything the connections hold buffered (see
    /// [`MemoryBudget`]): default 1 GiB in all, 256 KiB per connection whatever the
    /// budget, 10 s paused before 1013.
    pub fn memory_budget(mut self, budget: MemoryBudget) -> Self {
        self.memory_budget = budget;
        self
    }

    /// Open connections per worker above which new ones get HTTP 503. Default 100,000.
    pub fn max_connections_per_worker(mut self, max: usize) -> Self {
        self.max_connections_per_worker = max;
        self
    }

    /// The listen backlog of each worker's socket. Default 4096 (the kernel caps it at
    /// `net.core.somaxconn`).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Submission queue entries of each worker's ring. Default 4096.
    pub fn ring_entries(mut self, entries: u32) -> Self {
        self.ring_entries = entries;
        self
    }

    /// The IO driver. Default [`Driver::Auto`]: io_uring where the kernel allows it,
    /// otherwise tokio's epoll reactor, with one line on stderr saying why. Handlers are
    /// the same on both; [`ServerHandle::driver`] tells which one runs.
    pub fn driver(mut self, driver: Driver) -> Self {
        self.driver = driver;
        self
    }

    /// Pin worker `i` to CPU `i` (modulo the CPU count). Default on.
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.pin_workers = pin;
        self
    }

    /// The io_uring driver's receive buffers: a ring of `count` buffers (a power of two,
    /// at most 32768) of `size` bytes per worker, which the kernel fills only when bytes
    /// arrive, so idle connections hold none. Default 256 × 16 KiB (4 MiB per worker).
    /// Fewer buffers than busy connections is correct, only slower: a receive that finds
    /// the ring empty is armed again once buffers come back. Received bytes are copied
    /// once into the connection's receive buffer and the ring buffer is returned at once.
    pub fn receive_buffers(mut self, count: u16, size: usize) -> Self {
        self.receive_buffers = (count.max(1), size.max(64));
        self
    }

    /// Decides on each upgrade request: accept (optionally choosing a subprotocol and
    /// adding headers) or reject with an HTTP status. Default: accept every valid request
    /// without a subprotocol.
    pub fn on_handshake<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Request) -> Result<Accept, Reject> + Send + Sync + 'static,
    {
        self.on_handshake = Some(Arc::new(hook));
        self
    }

    /// Starts the workers and serves every accepted WebSocket with `handler`, which runs
    /// as a task on the connection's worker (its future need not be `Send`).
    ///
    /// Returns once every worker listens, or the first error: the address could not be
    /// bound, or the kernel refused io_uring ([`Error::UringUnavailable`]).
    pub fn serve<H, F>(self, handler: H) -> Result<ServerHandle, Error>
    where
        H: Fn(WebSocket, Request) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + 'static,
    {
        let handler: Arc<BoxHandler> = Arc::new(move |ws, req| Box::pin(handler(ws, req)));
        let first = bind_reuseport(self.addr, self.backlog)?;
        let local_addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..self.workers {
            listeners.push(another(&listeners[0], local_addr, self.backlog)?);
        }
        let stats = Arc::new(ServerStats::default());
        let driver = resolve(self.driver, self.ring_entries);
        let (inboxes, receivers): (Vec<_>, Vec<_>) =
            (0..self.workers).map(|_| Inbox::new()).unzip();
        let mesh = Mesh {
            inboxes,
            totals: Slots::new(self.workers),
            fragment_size: self.options.protocol.fragment_size,
            options: self.pubsub.clone(),
        };
        // A builder's hub is new and `serve` consumes the builder: set once.
        let _ = self.hub.mesh.set(mesh);
        let shared = Arc::new(ServerShared {
            options: self.options,
            handshake_timeout: self.handshake_timeout,
            handshake_limits: self.handshake_limits,
            max_connections_per_worker: self.max_connections_per_worker,
            on_handshake: self.on_handshake,
            handler,
            stats: stats.clone(),
            ring_entries: self.ring_entries,
            driver,
            pin_workers: self.pin_workers,
            receive_buffers: self.receive_buffers,
            memory_budget: self.memory_budget,
            workers: self.workers,
            tls: self.tls,
            hub: self.hub.clone(),
        });
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(None);
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut threads = Vec::new();
        for (index, (listener, inbox)) in listeners.into_iter().zip(receivers).enumerate() {
            let shared = shared.clone();
            let shutdown = shutdown_rx.clone();
            let ready = ready_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("wsengine-worker-{index}"))
                .spawn(move || worker::run(index, listener, inbox, shared, shutdown, ready))?;
            threads.push(thread);
        }
        drop(ready_tx);
        let handle = ServerHandle {
            local_addr,
            shutdown: shutdown_tx,
            threads,
            stats,
            driver,
            hub: self.hub,
        };
        for _ in 0..handle.threads.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    handle.shutdown(Duration::ZERO);
                    return Err(e);
                }
                Err(_) => {
                    handle.shutdown(Duration::ZERO);
                    return Err(Error::Io(std::io::Error::other("a worker thread died")));
                }
            }
        }
        Ok(handle)
    }
}

/// A running server: its address, statistics, and graceful shutdown.
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<Option<Duration>>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<ServerStats>,
    driver: Driver,
    hub: Arc<Hub>,
}

impl ServerHandle {
    /// A [`Publisher`] to the server's topics, for any thread.
    pub fn publisher(&self) -> Publisher {
        self.hub.publisher()
    }

    /// The driver the workers run on: [`Driver::Uring`] or [`Driver::Tokio`].
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The address the workers listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters over all workers.
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// Graceful shutdown: every worker stops accepting, sends close 1001 ("going away") to
    /// each open connection, waits up to `grace` for them to finish, drops the rest, and
    /// exits. Returns when all workers have exited.
    pub fn shutdown(mut self, grace: Duration) {
        let _ = self.shutdown.send(Some(grace));
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }

    /// A handle that can start the shutdown from another thread (e.g. a signal handler
    /// thread) while this one waits in [`join`](Self::join).
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        ShutdownTrigger(self.shutdown.clone())
    }

    /// Waits until the workers exit (after a [`ShutdownTrigger`] fired).
    pub fn join(mut self) {
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let _ = self.shutdown.send(Some(Duration::ZERO));
            for thread in self.threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

/// Starts a server's graceful shutdown from any thread.
#[derive(Clone)]
pub struct ShutdownTrigger(tokio::sync::watch::Sender<Option<Duration>>);

impl ShutdownTrigger {
    /// Starts the graceful shutdown with `grace` for open connections to close.
    pub fn shutdown(&self, grace: Duration) {
        let _ = self.0.send(Some(grace));
    }
}

impl ServerStats {
    /// Connections that ended for `cause`.
    pub fn ended(&self, cause: EndCause) -> u64 {
        self.ended[cause.index()].load(Ordering::Relaxed)
    }

    /// Connections that have ended, by close code (1000, 1001, 1005 for a closing
    /// handshake without a code, 1006 without a close frame, 1008, 1013, ...), in code
    /// order.
    pub fn close_codes(&self) -> Vec<(u16, u64)> {
        let codes = self.close_codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.iter().map(|(code, n)| (*code, *n)).collect()
    }

    /// Counts a connection that has ended: why, its close code, and its traffic.
    pub(crate) fn count_end(&self, cause: EndCause, code: CloseCode, stats: &ConnectionStats) {
        self.ended[cause.index()].fetch_add(1, Ordering::Relaxed);
        *self
            .close_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code.0)
            .or_default() += 1;
        self.bytes_received
            .fetch_add(stats.wire.received, Ordering::Relaxed);
        self.bytes_sent
            .fetch_add(stats.wire.sent, Ordering::Relaxed);
        self.messages_received
            .fetch_add(stats.messages_received, Ordering::Relaxed);
        self.messages_sent
            .fetch_add(stats.messages_sent, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: i64) {
        if n >= 0 {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            counter.fetch_sub(n.unsigned_abs(), Ordering::Relaxed);
        }
    }
}
