//! One worker: a thread pinned to a core, its io_uring runtime, its listener, and the
//! connections it accepted. Nothing here is shared with other workers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::watch;

use super::accept::handshake;
use super::{ServerShared, ServerStats};
use crate::proto::close::CloseCode;
use crate::proto::connection::Connection;
use crate::proto::handshake::Reject;
use crate::proto::role::Role;
use crate::runtime::budget::WorkerBudget;
#[cfg(uring)]
use crate::runtime::driver::uring::UringListener;
use crate::runtime::driver::{Acceptor, Transport};
use crate::runtime::error::Error;
use crate::runtime::executor::Driver;
use crate::runtime::executor::LocalRuntime;
use crate::runtime::handshake_io::HandshakeIo;
use crate::runtime::notify::LocalNotify;
use crate::runtime::options::SocketOptions;
use crate::runtime::pubsub::{InboxRx, WorkerPubSub};
use crate::runtime::session::{EndCause, Session};
use crate::runtime::socket::{Shared, WebSocket};
use crate::runtime::uring::RingConfig;

/// A connection the worker knows of, for graceful shutdown.
struct Entry<T> {
    stream: Rc<T>,
    /// Set once the handshake completed.
    inner: Option<Rc<Shared>>,
}

/// The worker's connections.
struct Registry<T> {
    entries: RefCell<HashMap<u64, Entry<T>>>,
    next_id: Cell<u64>,
    /// WebSocket connections open (past the handshake).
    open: Cell<usize>,
    shutting_down: Cell<bool>,
    changed: LocalNotify,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            entries: RefCell::default(),
            next_id: Cell::default(),
            open: Cell::default(),
            shutting_down: Cell::default(),
            changed: LocalNotify::default(),
        }
    }
}

impl<T> Registry<T> {
    fn insert(&self, stream: Rc<T>) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.entries.borrow_mut().insert(
            id,
            Entry {
                stream,
                inner: None,
            },
        );
        id
    }

    fn remove(&self, id: u64) {
        if let Some(entry) = self.entries.borrow_mut().remove(&id)
            && entry.inner.is_some()
        {
            self.open.set(self.open.get() - 1);
        }
        self.changed.notify();
    }
}

/// The worker thread's body. Reports on `ready` once it listens (or why it cannot).
pub(crate) fn run(
    index: usize,
    listener: std::net::TcpListener,
    inbox: InboxRx,
    shared: Arc<ServerShared>,
    shutdown: watch::Receiver<Option<Duration>>,
    ready: mpsc::Sender<Result<(), Error>>,
) {
    if shared.pin_workers
        && let Some(cores) = core_affinity::get_core_ids()
        && !cores.is_empty()
    {
        core_affinity::set_for_current(cores[index % cores.len()]);
    }
    let ring = RingConfig {
        entries: shared.ring_entries,
        buffers: shared.receive_buffers.0,
        buffer_size: shared.receive_buffers.1,
    };
    let runtime = match LocalRuntime::with_ring(shared.driver, ring) {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // A second descriptor of the same socket, to shut it down at the end: that ends the
    // in-flight accept.
    let control = match listener.try_clone() {
        Ok(control) => control,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    let driver = runtime.driver();
    runtime.block_on(async move {
        // This worker's pub/sub, the task that drains its inbox, and the one that wakes
        // subscribers for deliveries.
        let pubsub = Rc::new(WorkerPubSub::new(
            shared.hub.clone(),
            index,
            shared.options.max_send_queue,
        ));
        tokio::task::spawn_local(pubsub.clone().run(inbox));
        tokio::task::spawn_local(pubsub.run_wakes());
        match driver {
            Driver::Tokio => {
                let listener = listener
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::TcpListener::from_std(listener));
                listen(listener, ready, control, shared, pubsub, shutdown).await;
            }
            #[cfg(uring)]
            Driver::Uring => {
                let listener = UringListener::from_std(listener);
                listen(listener, ready, control, shared, pubsub, shutdown).await;
            }
            #[cfg(uring)]
            _ => {
                let listener = Ok(tokio_uring::net::TcpListener::from_std(listener));
                listen(listener, ready, control, shared, pubsub, shutdown).await;
            }
            // A runtime is only ever made for a driver that is built.
            #[cfg(not(uring))]
            _ => unreachable!("no io_uring driver in this build"),
        }
    });
}

/// Reports on `ready` whether the worker's listener could be taken into its driver, then
/// serves it.
async fn listen<A: Acceptor>(
    listener: std::io::Result<A>,
    ready: mpsc::Sender<Result<(), Error>>,
    control: std::net::TcpListener,
    shared: Arc<ServerShared>,
    pubsub: Rc<WorkerPubSub>,
    shutdown: watch::Receiver<Option<Duration>>,
) {
    match listener {
        Ok(listener) => {
            let _ = ready.send(Ok(()));
            serve(listener, control, shared, pubsub, shutdown).await;
        }
        Err(e) => {
            let _ = ready.send(Err(e.into()));
        }
    }
}

async fn serve<A: Acceptor>(
    listener: A,
    control: std::net::TcpListener,
    shared: Arc<ServerShared>,
    pubsub: Rc<WorkerPubSub>,
    mut shutdown: watch::Receiver<Option<Duration>>,
) {
    let registry = Rc::new(Registry::<A::Stream>::default());
    // One copy of the connection settings per worker, shared by its connections.
    let options = Rc::new(shared.options.clone());
    // This worker's part of the memory budget, charged by its sessions.
    let budget = Rc::new(WorkerBudget::new(
        shared.memory_budget,
        shared.workers,
        shared.stats.clone(),
    ));
    let grace = loop {
        if let Some(grace) = *shutdown.borrow_and_update() {
            break grace;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    ServerStats::add(&shared.stats.accepted, 1);
                    let id = registry.insert(Rc::new(stream));
                    tokio::task::spawn_local(connection(
                        id,
                        peer,
                        registry.clone(),
                        shared.clone(),
                        options.clone(),
                        budget.clone(),
                        pubsub.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE/ENFILE) or memory: back off
                    // instead of spinning; the pending connections wait in the backlog.
                    if out_of_resources(&e) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            },
            changed = shutdown.changed() => if changed.is_err() {
                break Duration::ZERO;
            },
        }
    };
    // Stop accepting: shutting the listening socket's read side ends the in-flight accept.
    let _ = socket2::SockRef::from(&control).shutdown(Shutdown::Read);
    drop(listener);
    drop(control);
    registry.shutting_down.set(true);
    let open: Vec<Rc<Shared>> = registry
        .entries
        .borrow()
        .values()
        .filter_map(|e| e.inner.clone())
        .collect();
    for inner in &open {
        let _ = inner.start_close(CloseCode::GOING_AWAY, "server shutting down");
    }
    drop(open);
    let deadline = tokio::time::Instant::now() + grace;
    while !registry.entries.borrow().is_empty() {
        tokio::select! {
            _ = registry.changed.notified() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // Past the grace period: end what is left. Shutting a socket ends its in-flight reads
    // and writes (and a handshake's), and aborting a session makes its driver close it.
    let left: Vec<Entry<A::Stream>> = registry
        .entries
        .borrow()
        .values()
        .map(|e| Entry {
            stream: e.stream.clone(),
            inner: e.inner.clone(),
        })
        .collect();
    for entry in &left {
        let _ = entry.stream.shutdown(Shutdown::Both);
        if let Some(inner) = &entry.inner {
            inner.abort();
        }
    }
    drop(left);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while !registry.entries.borrow().is_empty() {
        tokio::select! {
            _ = registry.changed.notified() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
}

/// One accepted TCP connection: the opening handshake, then the application's handler.
async fn connection<T: Transport>(
    id: u64,
    peer: SocketAddr,
    registry: Rc<Registry<T>>,
    shared: Arc<ServerShared>,
    options: Rc<SocketOptions>,
    budget: Rc<WorkerBudget>,
    pubsub: Rc<WorkerPubSub>,
) {
    let stream = match registry.entries.borrow().get(&id) {
        Some(entry) => entry.stream.clone(),
        None => return,
    };
    let _ = stream.set_nodelay();
    let mut io = match &shared.tls {
        None => HandshakeIo::plain(&*stream),
        Some(tls) => match tls.accept() {
            Ok(layer) => HandshakeIo::tls(&*stream, layer),
            Err(_) => {
                reject(id, &*stream, &registry, &shared);
                return;
            }
        },
    };
    let handshake = tokio::time::timeout(shared.handshake_timeout, handshake(&mut io, &shared));
    let (request, accepted, leftover) = match handshake.await {
        Ok(Ok(done)) => done,
        Ok(Err(rejection)) => {
            if let Some(response) = rejection {
                let _ = io.write_all(response).await;
            }
            reject(id, &*stream, &registry, &shared);
            return;
        }
        Err(_elapsed) => {
            reject(id, &*stream, &registry, &shared);
            return;
        }
    };
    if registry.shutting_down.get() || registry.open.get() >= shared.max_connections_per_worker {
        let response = Reject::new(503, "server at capacity or shutting down").to_response();
        let _ = io.write_all(response).await;
        reject(id, &*stream, &registry, &shared);
        return;
    }
    if io.write_all(accepted.response).await.is_err() {
        reject(id, &*stream, &registry, &shared);
        return;
    }
    // The handshake buffer goes with the connection only if frames arrived in it; an
    // idle connection then holds no buffer but its first read's.
    let leftover = if leftover.is_empty() {
        BytesMut::new()
    } else {
        leftover
    };
    let conn = Connection::new(Role::Server, shared.options.protocol.clone(), leftover)
        .with_deflate(accepted.deflate);
    let mut session = Session::new(conn, options.clone()).with_budget(budget);
    if let Some(layer) = io.into_tls() {
        session = session.with_tls(layer);
    }
    let inner = Rc::new(
        Shared::new(session, peer)
            .with_pubsub(pubsub)
            .with_request(request.path(), accepted.protocol.as_deref()),
    );
    if let Some(entry) = registry.entries.borrow_mut().get_mut(&id) {
        entry.inner = Some(inner.clone());
    }
    registry.open.set(registry.open.get() + 1);
    ServerStats::add(&shared.stats.upgraded, 1);
    ServerStats::add(&shared.stats.open, 1);
    let on_finish = {
        let registry = registry.clone();
        let stats = shared.stats.clone();
        let ended = Rc::downgrade(&inner);
        move || {
            ServerStats::add(&stats.open, -1);
            if let Some(inner) = ended.upgrade() {
                let session = inner.session.borrow();
                let (cause, code) = session
                    .end_cause()
                    .unwrap_or((EndCause::Reset, CloseCode::ABNORMAL));
                stats.count_end(cause, code, &session.stats());
            }
            registry.remove(id);
        }
    };
    // The handler gets a task of its own, and so does the connection's state machine,
    // so that this task (sized for the handshake) ends here.
    tokio::task::spawn_local((shared.handler)(
        WebSocket::new(inner.clone(), Role::Server),
        request,
    ));
    tokio::task::spawn_local(stream.drive(inner, Box::new(on_finish)));
}

fn reject<T: Transport>(id: u64, stream: &T, registry: &Registry<T>, shared: &ServerShared) {
    let _ = stream.shutdown(Shutdown::Both);
    registry.remove(id);
    shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
}

/// Whether an accept failed for want of descriptors (`EMFILE`, `ENFILE`) or memory.
#[cfg(unix)]
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether an accept failed for want of descriptors or memory.
#[cfg(not(unix))]
fn out_of_resources(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::OutOfMemory
}
