//! The application's WebSocket handle, and the cell it shares with the connection's driver.
//!
//! A connection is one state machine (`Session`) driven by one task of its worker's
//! driver; the application's handler is another task holding a [`WebSocket`]. They share a
//! `Shared` through an `Rc`: the handle's methods borrow the session for a plain method
//! call (never across an await) and wake the driver when there is something for it to do.
//! `send` encodes straight into the core's outgoing queue and wakes the driver, which runs
//! after the handler yields: every message queued in one turn leaves in one write.
//!
//! The handle is `!Send`: a connection lives on the worker thread that accepted it. It
//! is also a `futures` [`Stream`] of messages and a [`Sink`] for them, so the ecosystem's
//! combinators (`next`, `forward`, `split`) work on it; both are the same `poll_*`
//! methods the async ones are built on.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;

use super::error::Error;
use super::notify::LocalNotify;
use super::pubsub::{Publisher, Sender, WorkerPubSub};
use super::session::{ConnectionStats, Session, WireBytes};
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::extensions::DeflateParams;
use crate::proto::message::{Message, Utf8Bytes};
use crate::proto::role::Role;

/// How the handle tells a driver that runs connections inline (without a task per
/// connection) that this one has work.
pub(crate) trait Kick {
    /// Marks the connection for the driver's next turn and wakes the driver.
    fn kick(&self);

    /// The same for a delivery of a fan-out (a publish to many): the driver may spread
    /// such sockets over a few turns, so that connections with their own replies to
    /// send do not wait behind thousands of subscribers' writes.
    fn kick_fan_out(&self) {
        self.kick();
    }
}

/// What a connection's handle and its driver share.
pub(crate) struct Shared {
    pub(crate) session: RefCell<Session>,
    pub(crate) peer_addr: SocketAddr,
    /// Something for `recv`: a message or the end.
    readable: LocalNotify,
    /// Space in the send queue (backpressure released), or the end.
    send_space: LocalNotify,
    /// The connection finished.
    finished: LocalNotify,
    /// The driver's task, woken when the handle gives it work.
    driver: RefCell<Option<Waker>>,
    /// Instead of a task: how a driver that runs connections inline (io_uring) is told.
    kick: RefCell<Option<Rc<dyn Kick>>>,
    /// Set by [`wake_driver`](Self::wake_driver), taken by the driver.
    kicked: Cell<bool>,
    /// What the handler did since it last waited, in [`HANDLER_WORK`]'s units: `recv`
    /// yields once it reaches that, so a handler with messages ready lets the worker's
    /// other tasks (handshakes, other connections) run.
    work: Cell<u32>,
    /// The worker's pub/sub state (server connections of a [`Server`](super::Server)).
    pubsub: Option<Rc<WorkerPubSub>>,
    /// The connection's `tracing` span (feature `tracing`).
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

/// How much work a handler does between two waits before `recv` yields, in units of one
/// delivery to a subscriber (about 0.1 µs): a few hundred microseconds.
const HANDLER_WORK: u32 = 2048;

/// A message taken with `recv`, in those units: 32 of them make a yield.
const WORK_PER_MESSAGE: u32 = HANDLER_WORK / 32;

impl Shared {
    /// The handler's publish visited `n` subscribers.
    fn did_deliveries(&self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.work.set(self.work.get().saturating_add(n));
    }

    pub(crate) fn new(session: Session, peer_addr: SocketAddr) -> Self {
        #[cfg(feature = "tracing")]
        let role = session.conn.role();
        Shared {
            session: RefCell::new(session),
            peer_addr,
            readable: LocalNotify::default(),
            send_space: LocalNotify::default(),
            finished: LocalNotify::default(),
            driver: RefCell::new(None),
            kick: RefCell::new(None),
            kicked: Cell::new(false),
            work: Cell::new(0),
            pubsub: None,
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                "websocket",
                peer = %peer_addr,
                role = ?role,
                path = tracing::field::Empty,
                subprotocol = tracing::field::Empty,
                close_code = tracing::field::Empty,
                end_cause = tracing::field::Empty,
            ),
        }
    }

    /// The request's path and the subprotocol agreed, for the connection's span
    /// (feature `tracing`; nothing without it).
    pub(crate) fn with_request(self, path: &str, subprotocol: Option<&str>) -> Self {
        #[cfg(feature = "tracing")]
        {
            self.span.record("path", path);
            if let Some(protocol) = subprotocol {
                self.span.record("subprotocol", protocol);
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (path, subprotocol);
        self
    }

    /// A server connection takes part in its worker's pub/sub.
    pub(crate) fn with_pubsub(mut self, pubsub: Rc<WorkerPubSub>) -> Self {
        self.pubsub = Some(pubsub);
        self
    }

    /// For a driver that runs this connection inline: `kick` is how the handle wakes it.
    #[cfg_attr(not(uring), allow(dead_code))]
    pub(crate) fn set_kick(&self, kick: Rc<dyn Kick>) {
        *self.kick.borrow_mut() = Some(kick);
    }

    /// Wakes the driver's task: something was queued, closed, or read.
    #[inline]
    pub(crate) fn wake_driver(&self) {
        if self.kicked.replace(true) {
            // Already told since the driver last looked.
            return;
        }
        if let Some(kick) = self.kick.borrow().as_ref() {
            kick.kick();
        } else {
            self.wake_deferred();
        }
    }

    /// [`wake_driver`](Self::wake_driver) for a publish's delivery: an inline driver is
    /// told with [`Kick::kick_fan_out`]. Returns `false` when the connection's driver is a
    /// task, marked as told but not woken: the caller wakes it later with
    /// [`wake_deferred`](Self::wake_deferred) (see `pubsub::fan_out`).
    pub(crate) fn wake_driver_for_fan_out(&self) -> bool {
        if self.kicked.replace(true) {
            return true;
        }
        match self.kick.borrow().as_ref() {
            Some(kick) => {
                kick.kick_fan_out();
                true
            }
            None => false,
        }
    }

    /// Wakes the connection's driver task (a wake-up deferred by
    /// [`wake_driver_for_fan_out`](Self::wake_driver_for_fan_out)).
    pub(crate) fn wake_deferred(&self) {
        if let Some(waker) = self.driver.borrow().as_ref() {
            waker.wake_by_ref();
        }
    }

    /// Whether the handle kicked the driver since it last took the kick (the connection
    /// is then in one of the driver's queues).
    #[inline]
    #[cfg_attr(not(uring), allow(dead_code))]
    pub(crate) fn is_kicked(&self) -> bool {
        self.kicked.get()
    }

    /// For an inline driver: whether the handle kicked it since the last call.
    #[inline]
    #[cfg_attr(not(uring), allow(dead_code))]
    pub(crate) fn take_kicked(&self) -> bool {
        self.kicked.replace(false)
    }

    /// The driver's task is the one polled with `waker`; returns whether it was woken by
    /// the handle since the last call.
    #[inline]
    pub(crate) fn driver_polled(&self, waker: &Waker) -> bool {
        let mut slot = self.driver.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
        self.kicked.replace(false)
    }

    /// For the driver: messages arrived, or the connection ended.
    #[inline]
    pub(crate) fn wake_recv(&self) {
        self.readable.notify();
    }

    /// For the driver: the send queue went back under its bound.
    #[inline]
    pub(crate) fn wake_send(&self) {
        self.send_space.notify();
        if let Some(pubsub) = &self.pubsub {
            pubsub.send_space(self);
        }
    }

    /// For the driver: the socket is closed; everyone waiting is told.
    pub(crate) fn finished(&self) {
        #[cfg(feature = "tracing")]
        if let Some((cause, code)) = self.session.borrow().end_cause() {
            self.span.record("close_code", code.0);
            self.span.record("end_cause", cause.name());
            tracing::debug!(
                parent: &self.span,
                close_code = code.0,
                end_cause = cause.name(),
                "websocket connection ended"
            );
        }
        self.driver.borrow_mut().take();
        self.kick.borrow_mut().take();
        self.readable.notify();
        self.send_space.notify();
        self.finished.notify();
        if let Some(pubsub) = &self.pubsub {
            pubsub.forget(self);
        }
    }

    /// Starts the closing handshake if the connection is open; returns whether it did.
    pub(crate) fn start_close(&self, code: CloseCode, reason: &str) -> Result<bool, Error> {
        let started = self.session.borrow_mut().start_close(code, reason)?;
        if started {
            self.wake_driver();
        }
        Ok(started)
    }

    /// Ends the connection without a closing handshake (the server's shutdown past its
    /// grace period).
    pub(crate) fn abort(&self) {
        self.session.borrow_mut().abort();
        self.readable.notify();
        self.wake_driver();
    }
}

/// Closes the connection with 1000 when the application drops its last handle while the
/// connection is still open.
struct HandleGuard(Rc<Shared>);

impl Drop for HandleGuard {
    fn drop(&mut self) {
        let _ = self.0.start_close(CloseCode::NORMAL, "");
    }
}

/// A WebSocket connection, server or client side.
///
/// Cheap to clone (all clones are the same connection), so one task can `recv` while
/// another `send`s: a clone is the read half, another the write half. When the last clone
/// is dropped while the connection is open, it is closed with 1000.
///
/// It is a [`Stream`] of `Result<Message, Error>` that ends (`None`) after a closing
/// handshake, whoever started it and whatever the code ([`close_frame`](Self::close_frame)
/// has it), and yields one `Err` before it ends any other way (1006, a protocol error, a
/// stall, TLS). It is a [`Sink<Message>`](Sink) with the backpressure of
/// [`send`](Self::send); closing the sink closes the connection with 1000 and waits for
/// the socket to shut. So `while let Some(message) = ws.next().await` and
/// `rx.forward(tx)` work as with tokio-tungstenite.
///
/// Handles stay on the worker thread of their connection (`!Send`); from another thread,
/// send through a [`Sender`] (`Send + Sync + Clone`).
///
/// ```no_run
/// use futures_util::StreamExt;
/// use wsengine::Message;
/// use wsengine::runtime::{Error, WebSocket};
///
/// async fn echo(ws: WebSocket) -> Result<(), Error> {
///     // `forward` ends when the peer closes and then closes our side with 1000.
///     let (tx, rx) = (ws.clone(), ws);
///     rx.forward(tx).await
/// }
///
/// async fn count_texts(mut ws: WebSocket) -> Result<usize, Error> {
///     let mut texts = 0;
///     while let Some(message) = ws.next().await {
///         if let Message::Text(_) = message? {
///             texts += 1;
///         }
///     }
///     println!("closed: {:?}", ws.close_frame());
///     Ok(texts)
/// }
/// ```
#[derive(Clone)]
pub struct WebSocket {
    guard: Rc<HandleGuard>,
    role: Role,
    /// This handle's stream has ended (its `None` or its one `Err` was returned).
    stream_ended: bool,
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
    pub(crate) fn new(shared: Rc<Shared>, role: Role) -> Self {
        WebSocket {
            guard: Rc::new(HandleGuard(shared)),
            role,
            stream_ended: false,
        }
    }

    #[inline]
    fn inner(&self) -> &Shared {
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
    ///
    /// A handler that finds message after message ready yields to the worker's other
    /// tasks now and then (as tokio's channels do), more often when it publishes to many
    /// subscribers: its connection cannot hold up the others.
    pub async fn recv(&self) -> Result<Message, Error> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll: `Pending` wakes `cx` when a message or the end
    /// arrives (or at once, to yield to the worker's other tasks, as `recv` does).
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        let inner = self.inner();
        if inner.work.get() >= HANDLER_WORK {
            // Yield: back of the worker's queue, behind the tasks ready now.
            inner.work.set(0);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let (next, wake) = inner.session.borrow_mut().recv();
        if wake {
            inner.wake_driver();
        }
        match next {
            Some(result) => {
                inner.work.set(inner.work.get() + WORK_PER_MESSAGE);
                Poll::Ready(result)
            }
            None => {
                inner.work.set(0);
                inner.readable.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// Queues a message; every message queued before the driver next runs leaves in one
    /// write.
    ///
    /// Waits while the bytes queued for the socket exceed
    /// [`SocketOptions::max_send_queue`](super::SocketOptions::max_send_queue)
    /// (backpressure). Fails once the connection is closing or closed.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        let inner = self.inner();
        loop {
            if inner.session.borrow_mut().try_send(&message)? {
                inner.wake_driver();
                return Ok(());
            }
            inner.send_space.notified().await;
        }
    }

    /// Whether [`send`](Self::send) would queue at once: `Ready(Ok)` while the send
    /// queue is under its bound, `Pending` (waking `cx` when it drains) while over it,
    /// and the reason the connection ends once it is closing.
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let inner = self.inner();
        match inner.session.borrow().send_ready() {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => {
                inner.send_space.register(cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Queues `message` whatever the send queue holds (after
    /// [`poll_send_ready`](Self::poll_send_ready) said there was room).
    fn queue(&self, message: &Message) -> Result<(), Error> {
        let inner = self.inner();
        inner.session.borrow_mut().send_admitted(message)?;
        inner.wake_driver();
        Ok(())
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
    /// it alive against the idle timeout. Fails with the reason the connection ends once
    /// it is closing.
    pub fn ping(&self, payload: Bytes) -> Result<(), Error> {
        let inner = self.inner();
        inner.session.borrow_mut().ping(payload)?;
        inner.wake_driver();
        Ok(())
    }

    /// The next pong the peer sends: the answer to a [`ping`](Self::ping), or one it sends
    /// unasked (a heartbeat), with its payload. Pongs are kept from the first call on (or
    /// from the start, with [`SocketOptions::keep_pongs`](super::SocketOptions::keep_pongs)),
    /// the 16 latest; call it (or set the option) before sending the ping whose answer
    /// you want. The keepalive's own pongs are timed by [`rtt`](Self::rtt). Once the
    /// connection has ended and no pong is left, the reason, as `recv` gives it.
    pub async fn recv_pong(&self) -> Result<Bytes, Error> {
        std::future::poll_fn(|cx| self.poll_pong(cx)).await
    }

    /// [`recv_pong`](Self::recv_pong) as a poll.
    pub fn poll_pong(&self, cx: &mut Context<'_>) -> Poll<Result<Bytes, Error>> {
        let inner = self.inner();
        let mut session = inner.session.borrow_mut();
        session.keep_pongs();
        match session.take_pong() {
            Some(result) => Poll::Ready(result),
            None => {
                inner.readable.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// The round-trip time of the last keepalive ping
    /// ([`Config::ping_interval`](crate::Config::ping_interval)) that was answered, as
    /// fine as the worker's turns; `None` until one is (and always without keepalive).
    pub fn rtt(&self) -> Option<std::time::Duration> {
        self.inner().session.borrow().conn.rtt()
    }

    /// Bytes queued for the socket and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.inner().session.borrow().queued()
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
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// [`closed`](Self::closed) as a poll.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.inner();
        if inner.session.borrow().is_finished() {
            return Poll::Ready(());
        }
        inner.finished.register(cx.waker());
        Poll::Pending
    }

    /// The close frame of the closing handshake, once one has run (whoever started it):
    /// the peer's code and reason, 1005 when its frame had no code. `None` while the
    /// connection is open and when it ended without one (the error `recv` returns says
    /// why).
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.inner().session.borrow().close_frame()
    }

    /// The permessage-deflate parameters the handshake agreed, if any.
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.inner().session.borrow().conn.deflate().copied()
    }

    /// Bytes read from and written to the socket since the handshake: frames as they
    /// went on the wire (compressed ones compressed), for the ratio of wire bytes to
    /// payload bytes.
    pub fn wire_bytes(&self) -> WireBytes {
        self.inner().session.borrow().wire_bytes()
    }

    /// Messages and bytes each way since the handshake, and the send queue's high-water
    /// mark: a copy of the session's counters, cheap to read at any time.
    pub fn stats(&self) -> ConnectionStats {
        self.inner().session.borrow().stats()
    }

    /// Whether the connection has ended (nothing more can be sent).
    pub fn is_closed(&self) -> bool {
        self.inner().session.borrow().is_ended()
    }

    // ---- pub/sub -----------------------------------------------------------------------

    /// The worker's pub/sub, for a connection that can still send.
    fn pubsub(&self) -> Result<&Rc<WorkerPubSub>, Error> {
        let inner = self.inner();
        let Some(pubsub) = &inner.pubsub else {
            return Err(Error::PubSubUnavailable);
        };
        let session = inner.session.borrow();
        if !session.conn.can_send() {
            return Err(session.closed_error());
        }
        Ok(pubsub)
    }

    /// Subscribes this connection to `topic` (any bytes or string): every message
    /// published to it from now on, from any worker or [`Publisher`], is queued on this
    /// connection. Returns `false` if it was already subscribed. The subscription ends
    /// with [`unsubscribe`](Self::unsubscribe) or when the connection finishes.
    ///
    /// Fails with [`Error::PubSubUnavailable`] on a client's connection and on a stream
    /// the application brought (`accept_stream`), and with the reason it ends once the
    /// connection is closing. A connection taken over from hyper or axum shares the
    /// topics of every such connection in the process
    /// ([`upgrade::publisher`](super::upgrade::publisher)), not a `Server`'s.
    pub fn subscribe(&self, topic: impl AsRef<[u8]>) -> Result<bool, Error> {
        let pubsub = self.pubsub()?;
        Ok(pubsub.subscribe(&self.guard.0, topic.as_ref()))
    }

    /// Unsubscribes from `topic`; returns whether it was subscribed. Nothing published
    /// after this returns reaches the connection.
    pub fn unsubscribe(&self, topic: impl AsRef<[u8]>) -> bool {
        self.inner()
            .pubsub
            .as_ref()
            .is_some_and(|p| p.unsubscribe(self.inner(), topic.as_ref()))
    }

    /// The topics this connection is subscribed to.
    pub fn subscriptions(&self) -> Vec<Bytes> {
        self.inner()
            .pubsub
            .as_ref()
            .map(|p| p.subscriptions(self.inner()))
            .unwrap_or_default()
    }

    /// Publishes `message` to every subscriber of `topic` on every worker, this
    /// connection included if it is subscribed. The message is framed once; this
    /// worker's subscribers have it queued when this returns, the other workers' get it
    /// through their inboxes. Never waits: a subscriber whose send queue is full gets the
    /// server's [`SlowSubscriber`](super::SlowSubscriber) policy.
    pub fn publish(&self, topic: impl AsRef<[u8]>, message: &Message) -> Result<(), Error> {
        let pubsub = self.pubsub()?;
        let visited = pubsub.publish(topic.as_ref(), message, None);
        self.inner().did_deliveries(visited);
        Ok(())
    }

    /// [`publish`](Self::publish) to everyone on `topic` but this connection.
    pub fn publish_to_others(
        &self,
        topic: impl AsRef<[u8]>,
        message: &Message,
    ) -> Result<(), Error> {
        let pubsub = self.pubsub()?;
        let visited = pubsub.publish(topic.as_ref(), message, Some(self.inner()));
        self.inner().did_deliveries(visited);
        Ok(())
    }

    /// A [`Sender`] to this connection, usable from any thread (`Send + Sync + Clone`).
    pub fn sender(&self) -> Result<Sender, Error> {
        let pubsub = self.pubsub()?;
        Ok(pubsub.sender(&self.guard.0))
    }

    /// A [`Publisher`] to the server's topics, usable from any thread.
    pub fn publisher(&self) -> Result<Publisher, Error> {
        Ok(self.pubsub()?.publisher())
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stream_ended {
            return Poll::Ready(None);
        }
        match self.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(message)) => Poll::Ready(Some(Ok(message))),
            Poll::Ready(Err(e)) => {
                self.stream_ended = true;
                if self.close_frame().is_some() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(e)))
                }
            }
        }
    }
}

impl Sink<Message> for WebSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_send_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.queue(&message)
    }

    /// Ready at once: what is queued is the driver's, which writes it in its next turn
    /// (all of it in one write); [`buffered_amount`](WebSocket::buffered_amount) says
    /// what is still to go.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    /// Closes with 1000 (after what is queued) unless a close already started, and
    /// waits until the socket is shut.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner().start_close(CloseCode::NORMAL, "")?;
        self.poll_closed(cx).map(Ok)
    }
}
