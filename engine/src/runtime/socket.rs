//! The application's WebSocket handle, and the state it shares with the connection's
//! reader and writer tasks.
//!
//! Each connection runs as three tasks on its worker thread: the reader (socket → core →
//! inbox), the writer (core's outgoing queue → socket, keepalive and close deadlines) and
//! the application's handler holding a [`WebSocket`]. They share one `Shared` through an
//! `Rc`, and wake each other with `LocalNotify`. `send` encodes straight into the core's
//! outgoing queue: every message queued before the writer next runs leaves in one write.
//!
//! The handle is `!Send`: a connection lives on the worker thread that accepted it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use super::buffers::ReadPool;
use super::error::Error;
use super::notify::LocalNotify;
use super::options::SocketOptions;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::connection::{Connection, State};
use crate::proto::message::{Message, Utf8Bytes};
use crate::proto::role::Role;

/// Why a connection ended, kept to answer every later `recv` and `send`.
#[derive(Debug, Clone)]
pub(crate) enum End {
    /// The closing handshake ran (either side started it). `None`: no code (1005).
    Closed(Option<CloseFrame>),
    /// The peer broke the protocol.
    Protocol(crate::proto::error::ProtocolError),
    /// The TCP connection ended without a close frame (1006).
    Abnormal,
    /// A socket error (1006).
    Io(io::ErrorKind),
    /// A deadline passed (1006): idle timeout or the peer never answered our close.
    TimedOut(&'static str),
    /// The socket took none of our bytes for [`SocketOptions::send_stall_timeout`]
    /// (1008).
    Stalled,
}

impl End {
    pub(crate) fn to_error(&self) -> Error {
        match self {
            End::Closed(Some(frame)) => Error::Closed(frame.clone()),
            End::Closed(None) => Error::Closed(CloseFrame {
                code: CloseCode::NO_STATUS,
                reason: Utf8Bytes::default(),
            }),
            End::Protocol(e) => Error::Protocol(*e),
            End::Abnormal => abnormal(Utf8Bytes::from_static(
                "connection ended without a close frame",
            )),
            End::Io(kind) => abnormal(Utf8Bytes::from(format!("socket error: {kind}"))),
            End::TimedOut(what) => abnormal(Utf8Bytes::from_static(what)),
            End::Stalled => Error::Closed(CloseFrame {
                code: CloseCode::POLICY_VIOLATION,
                reason: Utf8Bytes::from_static("the peer stopped reading (send stall timeout)"),
            }),
        }
    }
}

/// Closed with 1006, which never goes on the wire: the connection ended without a close
/// frame.
fn abnormal(reason: Utf8Bytes) -> Error {
    Error::Closed(CloseFrame {
        code: CloseCode::ABNORMAL,
        reason,
    })
}

/// State shared by a connection's tasks.
pub(crate) struct Shared {
    pub(crate) conn: Connection,
    /// Received messages not yet taken by `recv`.
    pub(crate) inbox: VecDeque<Message>,
    pub(crate) inbox_bytes: usize,
    /// Bytes the writer has taken from the core and not finished writing.
    pub(crate) in_flight: usize,
    /// Set once, when the connection ends.
    pub(crate) end: Option<End>,
    /// When something last arrived (for keepalive and idle timeout).
    pub(crate) last_received: Instant,
    /// When we last sent a keepalive ping.
    pub(crate) ping_sent_at: Instant,
    /// When the writer started holding back a pending close frame for unread messages.
    pub(crate) close_pending_since: Option<Instant>,
    /// When our close frame was queued (for the close timeout).
    pub(crate) close_sent_at: Option<Instant>,
    /// The reader saw EOF or an error: no more reads.
    pub(crate) read_closed: bool,
    /// The last read filled the buffer it was given: more is probably waiting.
    pub(crate) last_read_filled: bool,
    /// The writer finished and the socket is shut down.
    pub(crate) finished: bool,
}

impl Shared {
    /// The error for an operation on a connection that can no longer send.
    pub(crate) fn closed_error(&self) -> Error {
        match &self.end {
            Some(end) => end.to_error(),
            None => Error::Send(crate::proto::error::SendError::Closed),
        }
    }

    /// Records the end of the connection (the first reason wins).
    pub(crate) fn set_end(&mut self, end: End) {
        if self.end.is_none() {
            self.end = Some(end);
        }
    }
}

/// A connection's shared state and its wake-up signals.
pub(crate) struct Inner {
    pub(crate) shared: RefCell<Shared>,
    pub(crate) options: SocketOptions,
    pub(crate) peer_addr: SocketAddr,
    /// The worker's registered read buffers, if the server uses them.
    pub(crate) read_pool: Option<Rc<ReadPool>>,
    /// Something for `recv`: a message or the end.
    pub(crate) readable: LocalNotify,
    /// Something for the writer: queued bytes, a close, a deadline change.
    pub(crate) writable: LocalNotify,
    /// Space in the send queue (backpressure released).
    pub(crate) send_space: LocalNotify,
    /// Space in the inbox (the reader may read again).
    pub(crate) recv_space: LocalNotify,
    /// The connection finished.
    pub(crate) finished: LocalNotify,
}

impl Inner {
    pub(crate) fn new(
        conn: Connection,
        options: SocketOptions,
        peer_addr: SocketAddr,
        read_pool: Option<Rc<ReadPool>>,
    ) -> Self {
        Inner {
            shared: RefCell::new(Shared {
                conn,
                inbox: VecDeque::new(),
                inbox_bytes: 0,
                in_flight: 0,
                end: None,
                last_received: Instant::now(),
                ping_sent_at: Instant::now(),
                close_pending_since: None,
                close_sent_at: None,
                read_closed: false,
                last_read_filled: false,
                finished: false,
            }),
            options,
            peer_addr,
            read_pool,
            readable: LocalNotify::default(),
            writable: LocalNotify::default(),
            send_space: LocalNotify::default(),
            recv_space: LocalNotify::default(),
            finished: LocalNotify::default(),
        }
    }

    /// Starts the closing handshake if the connection is open; returns whether it did.
    pub(crate) fn start_close(&self, code: CloseCode, reason: &str) -> Result<bool, Error> {
        let mut s = self.shared.borrow_mut();
        if s.conn.state() != State::Open {
            return Ok(false);
        }
        s.conn.close(code, reason)?;
        s.close_sent_at = Some(Instant::now());
        drop(s);
        self.writable.notify();
        Ok(true)
    }
}

/// Closes the connection with 1000 when the application drops its last handle while the
/// connection is still open.
struct HandleGuard(Rc<Inner>);

impl Drop for HandleGuard {
    fn drop(&mut self) {
        let _ = self.0.start_close(CloseCode::NORMAL, "");
    }
}

/// A WebSocket connection, server or client side.
///
/// Cheap to clone (all clones are the same connection), so one task can `recv` while
/// another `send`s. When the last clone is dropped while the connection is open, it is
/// closed with 1000.
#[derive(Clone)]
pub struct WebSocket {
    guard: Rc<HandleGuard>,
    role: Role,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.role)
            .field("peer_addr", &self.inner().peer_addr)
            .finish()
    }
}

impl WebSocket {
    pub(crate) fn new(inner: Rc<Inner>, role: Role) -> Self {
        WebSocket {
            guard: Rc::new(HandleGuard(inner)),
            role,
        }
    }

    #[inline]
    fn inner(&self) -> &Inner {
        &self.guard.0
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner().peer_addr
    }

    /// The next message.
    ///
    /// Pings are answered and pongs consumed without the application's help. Once the
    /// connection has ended, every call returns the reason: [`Error::Closed`] with the
    /// peer's close code (1005 for none, 1006 when it ended without a close frame), or
    /// [`Error::Protocol`] when the peer broke the protocol.
    pub async fn recv(&self) -> Result<Message, Error> {
        let inner = self.inner();
        loop {
            {
                let mut s = inner.shared.borrow_mut();
                if let Some(message) = s.inbox.pop_front() {
                    let was_full = s.inbox_bytes > inner.options.max_recv_queue;
                    s.inbox_bytes -= message.len();
                    if was_full && s.inbox_bytes <= inner.options.max_recv_queue {
                        inner.recv_space.notify();
                    }
                    if s.inbox.is_empty() && s.conn.state() == State::ClosePending {
                        // The writer holds our close frame until the application has
                        // taken (and maybe answered) these messages.
                        inner.writable.notify();
                    }
                    return Ok(message);
                }
                if let Some(end) = &s.end {
                    return Err(end.to_error());
                }
            }
            inner.readable.notified().await;
        }
    }

    /// Queues a message; every message queued before the writer runs leaves in one write.
    ///
    /// Waits while the bytes queued for the socket exceed
    /// [`SocketOptions::max_send_queue`] (backpressure). Fails once the connection is
    /// closing or closed.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        let inner = self.inner();
        loop {
            {
                let mut s = inner.shared.borrow_mut();
                if !s.conn.can_send() {
                    return Err(s.closed_error());
                }
                let queued = s.conn.pending_transmit() + s.in_flight;
                if queued < inner.options.max_send_queue {
                    s.conn.send(&message)?;
                    drop(s);
                    inner.writable.notify();
                    return Ok(());
                }
            }
            inner.send_space.notified().await;
        }
    }

    /// A text message; see [`send`](Self::send).
    pub async fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.send(Message::Text(text.into())).await
    }

    /// A binary message; see [`send`](Self::send).
    pub async fn send_binary(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Binary(payload.into())).await
    }

    /// Queues a ping (at most 125 bytes). Its pong is consumed by the connection and keeps
    /// it alive against the idle timeout.
    pub fn ping(&self, payload: Bytes) -> Result<(), Error> {
        let inner = self.inner();
        let mut s = inner.shared.borrow_mut();
        if !s.conn.can_send() {
            return Err(s.closed_error());
        }
        s.conn.send_ping(payload)?;
        drop(s);
        inner.writable.notify();
        Ok(())
    }

    /// Bytes queued for the socket and not yet written.
    pub fn buffered_amount(&self) -> usize {
        let s = self.inner().shared.borrow();
        s.conn.pending_transmit() + s.in_flight
    }

    /// Closes the connection: sends a close frame with `code` and `reason` (at most 123
    /// bytes) and waits until the peer answers or the close timeout passes and the TCP
    /// connection is shut. Messages that arrive meanwhile can still be taken with `recv`.
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let inner = self.inner();
        inner.start_close(code, reason)?;
        self.closed().await;
        Ok(())
    }

    /// Waits until the connection has finished (closed, failed, or dropped) and its
    /// socket is shut.
    pub async fn closed(&self) {
        let inner = self.inner();
        loop {
            if inner.shared.borrow().finished {
                return;
            }
            inner.finished.notified().await;
        }
    }

    /// Whether the connection has ended (nothing more can be sent).
    pub fn is_closed(&self) -> bool {
        self.inner().shared.borrow().end.is_some()
    }
}
