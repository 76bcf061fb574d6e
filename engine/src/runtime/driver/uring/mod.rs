//! The io_uring driver on the `io-uring` crate: one ring per worker, multishot accept,
//! multishot receive into a provided buffer ring, one send in flight per connection, and
//! the connections' state machines run inline by the worker's ring task.
//!
//! # Why this shape
//! A connection costs what its bytes cost, and little else:
//! - **No buffer while idle.** A multishot receive is armed once per connection; the kernel
//!   takes a buffer from the worker's ring ([`buf_ring`]) only when bytes arrive. The
//!   bytes are copied into the connection's receive buffer (small frames cost a small
//!   copy; messages stay `Bytes` the application may keep or move) and the ring buffer
//!   goes back at once.
//! - **No task per connection.** The ring task reaps completions and runs each
//!   connection's [`Session`](crate::runtime::session::Session) right there: bytes in,
//!   messages to the handler's inbox, replies queued. A handler's `send` marks its
//!   connection and wakes the ring task ([`Kick`]); at its next turn everything queued for
//!   a connection leaves in one send (`send`, or `sendmsg` with an iovec list).
//! - **Few kernel crossings.** One `io_uring_enter` per turn submits every send and reaps
//!   every completion, and only when there is something to submit or the kernel flagged
//!   pending work. The ring uses `SINGLE_ISSUER` + `COOP_TASKRUN` (no interrupts for
//!   completions while the worker runs; the `TASKRUN` flag says when to enter); an
//!   eventfd registered with the ring wakes tokio's reactor when the worker sleeps, so
//!   handlers keep tokio's timers, channels and `spawn_local`. Not `DEFER_TASKRUN`: a
//!   worker sleeping in tokio's reactor hears of deferred work only through that eventfd,
//!   which a kernel may signal milliseconds late (see `ring::make_uring`).
//! - **Deadlines without a timer per connection.** Each connection's next deadline goes
//!   into the worker's heap; the ring task sleeps until the earliest.
//!
//! The handshake (server and client) and accept use the same sockets through async
//! methods ([`Transport`](super::Transport), [`Acceptor`](super::Acceptor)), so the
//! worker's accept policy is the same code on every driver.

mod buf_ring;
mod ring;
mod socket;

pub(crate) use ring::Ring;
pub(crate) use socket::{UringListener, adopt, connect};
