//! A worker's inbox: what other threads hand it (publishes for its subscribers, direct
//! messages for its connections), and how it is woken.
//!
//! Any thread pushes into a lock-free MPSC queue (`std::sync::mpsc`, crossbeam's list
//! channel inside); the worker drains it in one go on its own thread. The wake-up is sent
//! only by the push that finds the inbox not already pending: while the worker has not yet
//! drained, further pushes cost the queue operation alone, whatever the publish rate. The
//! wake-up is a `tokio::sync::Notify`, which every driver's runtime observes (the io_uring
//! driver sleeps in tokio's reactor too).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use tokio::sync::Notify;

use super::sender::SenderState;
use crate::proto::message::Message;
use crate::proto::prepared::PreparedMessage;
use std::sync::Arc;

/// What a worker is handed.
pub(crate) enum MeshMessage {
    /// A publish to `topic`, framed once, for this worker's subscribers.
    Publish {
        topic: Bytes,
        message: PreparedMessage,
    },
    /// A message for one connection of this worker, from its [`Sender`](super::Sender).
    Direct {
        to: Arc<SenderState>,
        message: Message,
    },
}

/// The sending side of a worker's inbox, shared by every thread.
#[derive(Debug)]
pub(crate) struct Inbox {
    tx: mpsc::Sender<MeshMessage>,
    /// A wake-up is on its way and the worker has not drained since.
    pending: AtomicBool,
    wake: Notify,
    /// Bytes of publishes pushed and not yet drained (direct messages are bounded by
    /// their connection's send queue instead).
    bytes: AtomicUsize,
}

impl std::fmt::Debug for MeshMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeshMessage::Publish { topic, message } => f
                .debug_struct("Publish")
                .field("topic", topic)
                .field("len", &message.payload_len())
                .finish(),
            MeshMessage::Direct { message, .. } => f
                .debug_struct("Direct")
                .field("len", &message.len())
                .finish(),
        }
    }
}

/// The worker's side: the queue's receiver.
pub(crate) struct InboxRx(mpsc::Receiver<MeshMessage>);

impl Inbox {
    pub(crate) fn new() -> (Inbox, InboxRx) {
        let (tx, rx) = mpsc::channel();
        let inbox = Inbox {
            tx,
            pending: AtomicBool::new(false),
            wake: Notify::new(),
            bytes: AtomicUsize::new(0),
        };
        (inbox, InboxRx(rx))
    }

    /// Bytes of publishes waiting in the inbox.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Hands `message` to the worker. Returns it if the worker is gone (the server
    /// stopped).
    pub(crate) fn push(&self, message: MeshMessage) -> Result<(), MeshMessage> {
        if let MeshMessage::Publish { message, .. } = &message {
            self.bytes
                .fetch_add(message.wire().len(), Ordering::Relaxed);
        }
        if let Err(mpsc::SendError(message)) = self.tx.send(message) {
            if let MeshMessage::Publish { message, .. } = &message {
                self.bytes
                    .fetch_sub(message.wire().len(), Ordering::Relaxed);
            }
            return Err(message);
        }
        // AcqRel: the worker's `swap(false)` before it drains sees our message.
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// For the worker: waits for a wake-up, then returns the messages pushed so far, at
    /// most `max` (the rest stay pending for the next call).
    pub(crate) async fn next_batch(
        &self,
        rx: &InboxRx,
        batch: &mut VecDeque<MeshMessage>,
        max: usize,
    ) {
        loop {
            self.wake.notified().await;
            // Cleared before draining: a push after this sees `false` and wakes us again.
            self.pending.swap(false, Ordering::AcqRel);
            batch.extend(rx.0.try_iter().take(max));
            if batch.len() == max {
                // More may wait: come back without a wake-up from a pusher.
                self.pending.store(true, Ordering::Release);
                self.wake.notify_one();
            }
            if !batch.is_empty() {
                return;
            }
        }
    }

    /// For the worker: a publish of `len` wire bytes was taken from the queue.
    pub(crate) fn drained(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::Relaxed);
    }
}
