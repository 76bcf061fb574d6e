//! [`SendWebSocket`]: a connection's handle that is `Send + Sync`, for applications on
//! any tokio runtime (`#[tokio::main]`, `tokio::spawn`ed tasks, axum handlers): what
//! [`connect_send`](super::connect_send) and the axum extractor give.
//!
//! The connection runs on one of wsengine's own threads (see `threads`) as an ordinary
//! [`WebSocket`]; two tasks there move messages between it and the handle: a reader takes
//! each message from the connection and puts it in a bounded channel (when the
//! application does not keep up, the reader waits, the connection's inbox fills and the
//! connection stops reading the socket: TCP's flow control reaches the peer), and a
//! writer takes the handle's commands in order and sends them. Each message crosses one
//! channel; where the application's task runs on another thread (a client used from
//! `#[tokio::main]`), that is a thread hop, the price of a `Send` handle. The axum
//! extractor runs its callback on the connection's thread, so there the channels stay on
//! one thread.
//!
//! Backpressure on the way out is the `WebSocket`'s: the bytes the handle has handed to
//! the writer and the connection has not queued yet are bounded by
//! [`max_send_queue`](crate::runtime::SocketOptions::max_send_queue), past which `send`
//! waits and `try_send` answers `Full`, and the writer itself waits on the connection's
//! own bound.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::sync::{mpsc, oneshot};

use super::error::Error;
use super::pubsub::TrySendError;
use super::session::ConnectionStats;
use super::socket::WebSocket;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::error::SendError;
use crate::proto::message::{Message, Utf8Bytes};

/// Messages received and not yet taken by the application, per connection.
const INCOMING: usize = 32;

/// What the handle asks of the connection, in order.
enum Command {
    Send(Message),
    Ping(Bytes),
    Close(CloseCode, String, oneshot::Sender<Result<(), Error>>),
    /// The connection's counters and round-trip time, now.
    Query(oneshot::Sender<(ConnectionStats, Option<Duration>)>),
}

/// What the handle, its writers and the connection's tasks share.
struct Link {
    /// The connection's `max_send_queue`.
    bound: usize,
    /// The peer's address.
    peer_addr: SocketAddr,
    /// Bytes handed to the writer task and not yet queued on the connection.
    in_transit: AtomicUsize,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    /// The connection is closing or closed: no more messages.
    closing: bool,
    /// The connection has finished and its socket is shut.
    finished: bool,
    /// How it ended, for the first `recv` after the last message (then it is `Closed`).
    error: Option<Error>,
    close_frame: Option<CloseFrame>,
    /// Tasks waiting for room to send.
    space: Vec<Waker>,
    /// Tasks waiting for the end.
    finish: Vec<Waker>,
}

impl Link {
    fn state(&self) -> MutexGuard<'_, LinkState> {
        // A panic while holding this lock leaves plain data behind: go on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer queued a message of `len` bytes on the connection.
    fn arrived(&self, len: usize) {
        self.in_transit.fetch_sub(len, Ordering::SeqCst);
        wake_all(&mut self.state().space);
    }

    /// The application closes the connection.
    fn closing(&self) {
        let mut state = self.state();
        state.closing = true;
        wake_all(&mut state.space);
    }

    /// The connection's `recv` said it has ended: `error`, with the closing handshake's
    /// frame if one ran.
    fn ended(&self, error: Error, close_frame: Option<CloseFrame>) {
        let mut state = self.state();
        state.closing = true;
        state.error = Some(error);
        state.close_frame = close_frame;
        wake_all(&mut state.space);
    }

    /// The connection has finished and its socket is shut.
    fn finished(&self, close_frame: Option<CloseFrame>) {
        let mut state = self.state();
        state.closing = true;
        state.finished = true;
        if close_frame.is_some() {
            state.close_frame = close_frame;
        }
        wake_all(&mut state.space);
        wake_all(&mut state.finish);
    }

    /// The reason the connection ended, for `recv`: the first time what the connection
    /// said, then `Closed` with the close frame (1006 without one).
    fn take_end(&self) -> Error {
        let mut state = self.state();
        state.error.take().unwrap_or_else(|| {
            Error::Closed(state.close_frame.clone().unwrap_or(CloseFrame {
                code: CloseCode::ABNORMAL,
                reason: Utf8Bytes::from_static(""),
            }))
        })
    }
}

/// Adds `waker` to `wakers` unless a waker that wakes the same task is there already: a
/// task that polls again and again while it waits keeps one entry.
fn register(wakers: &mut Vec<Waker>, waker: &Waker) {
    if !wakers.iter().any(|w| w.will_wake(waker)) {
        wakers.push(waker.clone());
    }
}

fn wake_all(wakers: &mut Vec<Waker>) {
    for waker in wakers.drain(..) {
        waker.wake();
    }
}

/// Sends to a [`SendWebSocket`]'s connection from any task or thread: `Send + Sync +
/// Clone`, with the handle's backpressure. The connection is closed with 1000 once the
/// handle and every writer are dropped.
#[derive(Clone)]
pub struct WebSocketWriter {
    link: Arc<Link>,
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for WebSocketWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketWriter")
            .field("in_transit", &self.link.in_transit.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl WebSocketWriter {
    /// Queues `message` without waiting: `Full` while the bytes on their way to the
    /// connection exceed its `max_send_queue` (one message always goes when none is on
    /// its way), `Closed` once it is closing.
    pub fn try_send(&self, message: Message) -> Result<(), TrySendError> {
        if self.link.state().closing {
            return Err(TrySendError::Closed(message));
        }
        let len = message.len();
        let in_transit = self.link.in_transit.load(Ordering::SeqCst);
        if in_transit > 0 && in_transit + len > self.link.bound {
            return Err(TrySendError::Full(message));
        }
        self.queue(message)
    }

    /// Queues `message` whatever is on its way (the sink, after `poll_ready`).
    fn queue(&self, message: Message) -> Result<(), TrySendError> {
        let len = message.len();
        self.link.in_transit.fetch_add(len, Ordering::SeqCst);
        self.commands.send(Command::Send(message)).map_err(|back| {
            self.link.in_transit.fetch_sub(len, Ordering::SeqCst);
            match back.0 {
                Command::Send(message) => TrySendError::Closed(message),
                _ => unreachable!("sent a message"),
            }
        })
    }

    /// Whether a message of `len` bytes would be taken now: `Ready(Ok)` if so, `Pending`
    /// (waking `cx` when the connection takes some) if not, `Ready(Err)` once closing.
    fn poll_room(&self, len: usize, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut state = self.link.state();
        if state.closing {
            return Poll::Ready(Err(Error::Send(SendError::Closed)));
        }
        let in_transit = self.link.in_transit.load(Ordering::SeqCst);
        if in_transit == 0 || in_transit + len <= self.link.bound {
            return Poll::Ready(Ok(()));
        }
        register(&mut state.space, cx.waker());
        Poll::Pending
    }

    /// Queues `message`, waiting while the bytes on their way to the connection exceed
    /// its `max_send_queue`. Fails once the connection is closing.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_room(message.len(), cx)).await?;
        self.queue(message)
            .map_err(|_| Error::Send(SendError::Closed))
    }

    /// A text message; see [`send`](Self::send).
    pub async fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.send(Message::Text(text.into())).await
    }

    /// A binary message; see [`send`](Self::send).
    pub async fn send_binary(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Message::Binary(payload.into())).await
    }

    /// Queues a ping (at most 125 bytes) after the messages already queued.
    pub fn ping(&self, payload: Bytes) -> Result<(), Error> {
        if payload.len() > 125 {
            return Err(Error::Send(SendError::ControlPayloadTooLong(payload.len())));
        }
        if self.link.state().closing {
            return Err(Error::Send(SendError::Closed));
        }
        self.commands
            .send(Command::Ping(payload))
            .map_err(|_| Error::Send(SendError::Closed))
    }

    /// Closes the connection after the messages already queued: a close frame with
    /// `code` and `reason` (at most 123 bytes), then waits until the peer answers or the
    /// close timeout passes and the socket is shut. Messages that arrive meanwhile can
    /// still be taken with `recv`.
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        // The connection's own checks, here, so that a refused close leaves it open.
        if !code.is_valid_on_wire() {
            return Err(Error::Send(SendError::InvalidCloseCode(code.0)));
        }
        if reason.len() > 123 {
            return Err(Error::Send(SendError::CloseReasonTooLong(reason.len())));
        }
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Close(code, reason.to_string(), tx))
            .is_err()
        {
            // The connection's tasks are gone: it has finished.
            return Ok(());
        }
        match rx.await {
            Ok(result) => result?,
            Err(_) => return Ok(()),
        }
        self.closed().await;
        Ok(())
    }

    /// Waits until the connection has finished and its socket is shut.
    pub async fn closed(&self) {
        poll_fn(|cx| self.poll_closed(cx)).await
    }

    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.link.state();
        if state.finished {
            return Poll::Ready(());
        }
        register(&mut state.finish, cx.waker());
        Poll::Pending
    }

    /// Whether the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.link.state().closing
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.link.peer_addr
    }

    /// The connection's counters ([`WebSocket::stats`]), asked of its thread: answered
    /// after the messages queued before the call. Fails once the connection is gone.
    pub async fn stats(&self) -> Result<ConnectionStats, Error> {
        self.query().await.map(|(stats, _)| stats)
    }

    /// The round-trip time of the last keepalive ping answered ([`WebSocket::rtt`]), asked
    /// of the connection's thread as [`stats`](Self::stats) is.
    pub async fn rtt(&self) -> Result<Option<Duration>, Error> {
        self.query().await.map(|(_, rtt)| rtt)
    }

    async fn query(&self) -> Result<(ConnectionStats, Option<Duration>), Error> {
        let (tx, rx) = oneshot::channel();
        let gone = || Error::Send(SendError::Closed);
        self.commands.send(Command::Query(tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// The close frame of the closing handshake once the connection has finished after
    /// one: the peer's code and reason (1005 for none). `None` before, and after an end
    /// without one.
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.link.state().close_frame.clone()
    }
}

/// A connection usable from any runtime and any thread (`Send + Sync`): what
/// [`ConnectOptions::connect_send`](super::ConnectOptions::connect_send) returns.
///
/// It has the [`WebSocket`]'s API: [`recv`](Self::recv), [`send`](Self::send),
/// [`try_send`](Self::try_send), [`ping`](Self::ping), [`close`](Self::close), and it is
/// a `futures` `Stream` and `Sink` with the same rules (as on `WebSocket`, the inherent
/// `send` and `close` come before `SinkExt`'s: call those as `SinkExt::send(&mut ws, m)`): the stream ends (`None`) after a
/// closing handshake, any other end is one `Err` and then `None`. For sending from
/// other tasks, [`writer`](Self::writer) gives a `Clone` [`WebSocketWriter`]; for halves,
/// `futures::StreamExt::split`, or `writer()` beside the handle.
pub struct SendWebSocket {
    incoming: mpsc::Receiver<Message>,
    writer: WebSocketWriter,
    stream_ended: bool,
    /// The sink's close: not started (`None`), sent and waiting for its result, or sent.
    sink_closing: Option<Option<oneshot::Receiver<Result<(), Error>>>>,
}

impl std::fmt::Debug for SendWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendWebSocket")
            .field("closed", &self.writer.is_closed())
            .finish_non_exhaustive()
    }
}

impl SendWebSocket {
    /// The handle for `ws` (a connection on this thread), and the future that moves its
    /// messages; the caller runs the future here.
    pub(crate) fn attach(
        ws: WebSocket,
        max_send_queue: usize,
    ) -> (SendWebSocket, impl Future<Output = ()>) {
        let link = Arc::new(Link {
            bound: max_send_queue,
            peer_addr: ws.peer_addr(),
            in_transit: AtomicUsize::new(0),
            state: Mutex::new(LinkState::default()),
        });
        let (incoming_tx, incoming) = mpsc::channel(INCOMING);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let handle = SendWebSocket {
            incoming,
            writer: WebSocketWriter {
                link: link.clone(),
                commands,
            },
            stream_ended: false,
            sink_closing: None,
        };
        (handle, run(ws, link, incoming_tx, commands_rx))
    }

    /// The next message. Once the connection has ended and every message before the end
    /// has been taken, the reason, as [`WebSocket::recv`] gives it: [`Error::Closed`] with
    /// the close frame (1005 for none, 1006 for an end without one), or the error that
    /// ended it ([`Error::Protocol`], ...) the first time and `Closed` after.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        match self.incoming.recv().await {
            Some(message) => Ok(message),
            None => Err(self.writer.link.take_end()),
        }
    }

    /// A [`WebSocketWriter`] for other tasks or threads.
    pub fn writer(&self) -> WebSocketWriter {
        self.writer.clone()
    }

    /// Queues `message` without waiting; see [`WebSocketWriter::try_send`].
    pub fn try_send(&self, message: Message) -> Result<(), TrySendError> {
        self.writer.try_send(message)
    }

    /// Queues `message`, waiting while the send queue is full; see
    /// [`WebSocketWriter::send`].
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        self.writer.send(message).await
    }

    /// A text message; see [`send`](Self::send).
    pub async fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.writer.send_text(text).await
    }

    /// A binary message; see [`send`](Self::send).
    pub async fn send_binary(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.send_binary(payload).await
    }

    /// Queues a ping (at most 125 bytes); see [`WebSocketWriter::ping`].
    pub fn ping(&self, payload: Bytes) -> Result<(), Error> {
        self.writer.ping(payload)
    }

    /// Closes with `code` and `reason` and waits for the socket to shut; see
    /// [`WebSocketWriter::close`].
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.writer.close(code, reason).await
    }

    /// Waits until the connection has finished and its socket is shut.
    pub async fn closed(&self) {
        self.writer.closed().await
    }

    /// Whether the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.writer.is_closed()
    }

    /// The closing handshake's frame, once one has run; see
    /// [`WebSocketWriter::close_frame`].
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.writer.close_frame()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.writer.peer_addr()
    }

    /// The connection's counters; see [`WebSocketWriter::stats`].
    pub async fn stats(&self) -> Result<ConnectionStats, Error> {
        self.writer.stats().await
    }

    /// The keepalive's round-trip time; see [`WebSocketWriter::rtt`].
    pub async fn rtt(&self) -> Result<Option<Duration>, Error> {
        self.writer.rtt().await
    }
}

impl Stream for SendWebSocket {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stream_ended {
            return Poll::Ready(None);
        }
        match self.incoming.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(message)) => Poll::Ready(Some(Ok(message))),
            Poll::Ready(None) => {
                self.stream_ended = true;
                if self.writer.close_frame().is_some() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(self.writer.link.take_end())))
                }
            }
        }
    }
}

impl Sink<Message> for SendWebSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.writer.poll_room(0, cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.writer
            .queue(message)
            .map_err(|_| Error::Send(SendError::Closed))
    }

    /// Ready at once: a message the sink took is on its way to the connection, in order,
    /// and leaves with the connection's next write, as with the `WebSocket`'s sink (a
    /// flush that waited for the connection's thread to take it would cost every
    /// `SinkExt::send` a round trip between tasks).
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    /// Closes with 1000 after what was sent, and waits for the socket to shut.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.sink_closing.is_none() {
            let (tx, rx) = oneshot::channel();
            let command = Command::Close(CloseCode::NORMAL, String::new(), tx);
            if self.writer.commands.send(command).is_err() {
                return Poll::Ready(Ok(()));
            }
            self.sink_closing = Some(Some(rx));
        }
        if let Some(Some(started)) = self.sink_closing.as_mut()
            && let Poll::Ready(result) = Pin::new(started).poll(cx)
        {
            self.sink_closing = Some(None);
            if let Ok(Err(e)) = result {
                return Poll::Ready(Err(e));
            }
        }
        self.writer.poll_closed(cx).map(Ok)
    }
}

/// The connection's side: its reader and writer tasks, until it has finished.
async fn run(
    ws: WebSocket,
    link: Arc<Link>,
    incoming: mpsc::Sender<Message>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    {
        let (ws, link) = (ws.clone(), link.clone());
        tokio::task::spawn_local(async move {
            loop {
                match ws.recv().await {
                    Ok(message) => {
                        if incoming.send(message).await.is_err() {
                            // The handle is gone; writers may still send.
                            return;
                        }
                    }
                    Err(e) => {
                        // Stored before `incoming` is dropped: a `recv` that finds the
                        // channel closed finds the reason.
                        link.ended(e, ws.close_frame());
                        return;
                    }
                }
            }
        });
    }
    let finished = {
        let (ws, link) = (ws.clone(), link.clone());
        tokio::task::spawn_local(async move {
            ws.closed().await;
            link.finished(ws.close_frame());
        })
    };
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send(message)) => {
                    let len = message.len();
                    // A failure means the connection is closing: the reader says why.
                    let _ = ws.send(message).await;
                    link.arrived(len);
                }
                Some(Command::Ping(payload)) => {
                    let _ = ws.ping(payload);
                }
                Some(Command::Query(reply)) => {
                    let _ = reply.send((ws.stats(), ws.rtt()));
                }
                Some(Command::Close(code, reason, done)) => {
                    link.closing();
                    // Fails at once if the close frame cannot go (a bad code, a reason
                    // too long, closing already); otherwise ends with the connection.
                    let _ = done.send(ws.close(code, &reason).await);
                }
                None => {
                    // The handle and every writer are gone.
                    let _ = ws.close(CloseCode::NORMAL, "").await;
                    break;
                }
            },
            () = ws.closed() => break,
        }
    }
    let _ = finished.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counted(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_task_that_polls_again_while_it_waits_is_registered_once() {
        let task = Arc::new(Counted(AtomicUsize::new(0)));
        let other = Arc::new(Counted(AtomicUsize::new(0)));
        let mut wakers = Vec::new();
        for _ in 0..1000 {
            // Each poll has a clone of the task's waker.
            register(&mut wakers, &Waker::from(task.clone()));
        }
        register(&mut wakers, &Waker::from(other.clone()));
        assert_eq!(wakers.len(), 2);
        wake_all(&mut wakers);
        assert!(wakers.is_empty());
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert_eq!(other.0.load(Ordering::SeqCst), 1);
    }
}
