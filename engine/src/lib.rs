//! wsengine: a fast, correct RFC 6455 WebSocket engine.
//!
//! ```text
//!  application      recv() -> Message (Bytes view, no copy)      send(Message)
//!      ▲                                                            │
//!  runtime/  workers (one per CPU); per connection one session (inbox, budgets, the end)
//!            driven by its driver: io_uring (io-uring crate), tokio (epoll), tokio-uring
//!      ▲  multishot receive into the worker's buffer ring   one send per turn │
//!  proto/    sans-IO core: handshake, frame header, unmask in place, inflate/deflate
//!            (permessage-deflate), UTF-8, reassembly, control frames, close handshake,
//!            limits, deadlines (now in, next deadline out)
//! ```
//!
//! # What it does
//! - [`proto`]: the protocol as a pure state machine. Bytes in, events out; messages in,
//!   bytes out; `now` in, the next deadline out (keepalive, idle and close timeouts). No
//!   sockets, no runtime, no clock: usable under any IO.
//! - [`runtime`]: a thread-per-core server and a client: one pinned worker per CPU with its
//!   own `SO_REUSEPORT` listener, each connection one state machine, backpressure,
//!   keepalive, graceful shutdown. The default io_uring driver runs on the `io-uring` crate
//!   (multishot accept and receive, a provided buffer ring, connections run inline by the
//!   worker's ring task); where the kernel refuses io_uring or is older than 6.0,
//!   [`runtime::Driver::Auto`] falls back to tokio's epoll reactor with one line on stderr.
//!   Handlers are tasks on tokio's current-thread scheduler on every driver.
//!
//! # One byte's way (server, receive, io_uring)
//! kernel → multishot receive into a buffer of the worker's ring (taken only when bytes
//! arrive) → copied into the connection's receive buffer, the ring buffer given back →
//! frame header decoded in place → payload unmasked in place (SIMD) and UTF-8-checked as
//! it arrives → a single-frame message is split off the buffer as `Bytes` → the
//! application's `recv()`. A ping on the way is answered by the core.
//!
//! # One message's way (server, send)
//! `send(message)` → the core writes a 2–10 byte header; small frames are copied next to
//! it, large payloads queued by reference → the connection is marked for the worker's
//! next turn → everything queued for it leaves in one `send` (or `sendmsg`/`writev`) →
//! socket. A full queue makes `send` wait.
//!
//! # Extensions
//! permessage-deflate (RFC 7692) is in the core ([`proto::extensions`]): negotiated at the
//! handshake ([`proto::handshake::Request::accept`], [`proto::handshake::Response::deflate`])
//! and then run by the connection ([`Connection::with_deflate`]). Off unless asked for
//! (`SocketOptions::protocol.deflate`); the runtime lends each worker's shared streams to
//! connections without context takeover. Any other extension is declined, and RSV bits it
//! does not define are protocol errors.
//!
//! # Pub/sub
//! [`runtime::pubsub`]: topics across the workers. A connection subscribes from its
//! handler; [`runtime::WebSocket::publish`], or a [`runtime::Publisher`] from any thread,
//! frames a message once and every worker with subscribers queues that same allocation
//! on its sockets. [`runtime::Sender`] sends to one connection from any thread.
//!
//! # Memory
//! Every per-connection limit holds, and one server-wide budget
//! ([`runtime::MemoryBudget`], default 1 GiB) bounds what all connections hold buffered
//! together: past it, a connection over its share waits (is not read from), and after the
//! budget's wait it is closed with 1013.
//!
//! # Cargo features
//! - `runtime` (default): the server, client, pub/sub and TLS, on tokio's driver.
//! - `io-uring` (default): the io_uring drivers, on Linux (a no-op elsewhere, where
//!   [`runtime::Driver::Auto`] is tokio).
//! - `hyper` (default): `runtime::upgrade`, taking over upgrades in hyper and axum.
//! - `axum`: `runtime::axum::WebSocketUpgrade`, the extractor.
//! - `tracing`: a `tracing` span per connection, with its close code and end cause.
//!
//! With `default-features = false` the crate is the sans-IO core alone: no runtime, no
//! socket, no OS API beyond getrandom (the client's masking keys).
//!
//! # What it does not do
//! - HTTP beyond the upgrade request.

#![warn(missing_docs)]

pub mod proto;
#[cfg(feature = "runtime")]
pub mod runtime;

pub use proto::close::{CloseCode, CloseFrame};
pub use proto::config::Config;
pub use proto::connection::{Connection, Event, State};
pub use proto::error::{ProtocolError, SendError};
pub use proto::message::{Message, Utf8Bytes};
pub use proto::role::Role;

/// The README's examples, compiled as doctests (`no_run`: they listen and connect). Its
/// axum examples need the `axum` feature, which `scripts/test.sh` turns on.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
