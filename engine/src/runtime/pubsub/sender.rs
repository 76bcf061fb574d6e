//! A [`Sender`]: messages to one connection from any thread.
//!
//! The connection lives on its worker; a `Sender` reaches it through the worker's inbox.
//! What a `Sender` has pushed and the worker has not yet queued counts against the
//! connection's send bound, and the worker says when the connection's queue is over it,
//! so [`Sender::try_send`] answers `Full` as the handle's `send` would wait, without
//! asking the worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::hub::Hub;
use super::inbox::MeshMessage;
use crate::proto::message::Message;

/// What a [`Sender`] and the connection's worker share.
#[derive(Debug)]
pub(crate) struct SenderState {
    hub: Arc<Hub>,
    worker: usize,
    /// The connection's `max_send_queue`.
    bound: usize,
    /// The connection can no longer send.
    closed: AtomicBool,
    /// The connection's send queue was over its bound when the worker last looked.
    blocked: AtomicBool,
    /// Bytes pushed to the worker and not yet queued on the connection.
    in_transit: AtomicUsize,
    /// A `send` waits for space: the worker notifies `space`.
    waiting: AtomicBool,
    space: Notify,
}

impl SenderState {
    pub(crate) fn new(hub: Arc<Hub>, worker: usize, bound: usize) -> Self {
        SenderState {
            hub,
            worker,
            bound,
            closed: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            in_transit: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            space: Notify::new(),
        }
    }

    /// For the worker: a message of `len` bytes left transit; `blocked` says whether the
    /// connection's queue is now over its bound.
    pub(crate) fn arrived(&self, len: usize, blocked: bool) {
        self.in_transit.fetch_sub(len, Ordering::SeqCst);
        self.blocked.store(blocked, Ordering::SeqCst);
        self.wake();
    }

    /// For the worker: the connection's queue went back under its bound.
    pub(crate) fn unblocked(&self) {
        self.blocked.store(false, Ordering::SeqCst);
        self.wake();
    }

    /// For the worker: the connection is over.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.space.notify_waiters();
    }

    fn wake(&self) {
        if self.waiting.swap(false, Ordering::SeqCst) {
            self.space.notify_waiters();
        }
    }
}

/// Why [`Sender::try_send`] did not take a message; the message comes back.
#[derive(Debug)]
pub enum TrySendError {
    /// The connection's send queue is over its bound: try later, or `send` to wait.
    Full(Message),
    /// The connection is closing or closed.
    Closed(Message),
}

impl std::fmt::Display for TrySendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the connection's send queue is full"),
            TrySendError::Closed(_) => f.write_str("the connection is closed"),
        }
    }
}

impl std::error::Error for TrySendError {}

/// Sends to one connection from any thread: `Send + Sync + Clone`, unlike the
/// [`WebSocket`](crate::runtime::WebSocket) handle, which stays on the connection's
/// worker. Get one with [`WebSocket::sender`](crate::runtime::WebSocket::sender), keep it
/// in shared state (a user's direct-message address), and use it from a
/// `tokio::spawn`ed task, another connection's handler or a plain thread.
///
/// Backpressure is the handle's: [`try_send`](Self::try_send) says `Full` while the
/// connection's send queue is over
/// [`max_send_queue`](crate::runtime::SocketOptions::max_send_queue) (messages in
/// transit to the worker included), and [`send`](Self::send) waits until it is not.
/// Messages from one `Sender` arrive in the order they were sent; once the connection
/// has ended, both fail with `Closed`.
#[derive(Clone, Debug)]
pub struct Sender {
    pub(crate) state: Arc<SenderState>,
}

impl Sender {
    /// Queues `message` for the connection without waiting.
    pub fn try_send(&self, message: Message) -> Result<(), TrySendError> {
        let state = &*self.state;
        if state.closed.load(Ordering::SeqCst) {
            return Err(TrySendError::Closed(message));
        }
        let len = message.len();
        let in_transit = state.in_transit.load(Ordering::SeqCst);
        // One message always goes when nothing is in transit, however large (as a
        // handle's send goes when the queue is under its bound).
        if state.blocked.load(Ordering::SeqCst)
            || (in_transit > 0 && in_transit + len > state.bound)
        {
            return Err(TrySendError::Full(message));
        }
        let Some(inbox) = state.hub.mesh.get().map(|m| &m.inboxes[state.worker]) else {
            return Err(TrySendError::Closed(message));
        };
        state.in_transit.fetch_add(len, Ordering::SeqCst);
        let direct = MeshMessage::Direct {
            to: self.state.clone(),
            message,
        };
        match inbox.push(direct) {
            Ok(()) => Ok(()),
            Err(MeshMessage::Direct { message, .. }) => {
                state.in_transit.fetch_sub(len, Ordering::SeqCst);
                state.close();
                Err(TrySendError::Closed(message))
            }
            Err(MeshMessage::Publish { .. }) => unreachable!("pushed a direct message"),
        }
    }

    /// Queues `message` for the connection, waiting while its send queue is over its
    /// bound. Works on any runtime (the wake-up is a `tokio::sync::Notify`). Fails with
    /// the message once the connection is closing or closed.
    pub async fn send(&self, mut message: Message) -> Result<(), TrySendError> {
        loop {
            let space = self.state.space.notified();
            tokio::pin!(space);
            // Registered before trying, so a wake-up between the try and the await is
            // not lost.
            space.as_mut().enable();
            self.state.waiting.store(true, Ordering::SeqCst);
            match self.try_send(message) {
                Err(TrySendError::Full(back)) => {
                    message = back;
                    space.await;
                }
                other => return other,
            }
        }
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::SeqCst)
    }
}
