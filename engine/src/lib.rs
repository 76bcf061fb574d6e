//! wsengine: a fast, correct RFC 6455 WebSocket engine.
//!
//! ```text
//!  application      recv() -> Message (Bytes view, no copy)      send(Message)
//!      ▲                                                            │
//!  runtime/  io_uring driver (tokio-uring): workers, sockets, buffers, timers
//!      ▲  read into the receive buffer             one write/writev per turn │
//!  proto/    sans-IO core: handshake, frame header, unmask in place, inflate/deflate
//!            (permessage-deflate), UTF-8, reassembly, control frames, close handshake,
//!            limits
//! ```
//!
//! # What it does
//! - [`proto`]: the protocol as a pure state machine. Bytes in, events out; messages in,
//!   bytes out. No sockets, no runtime, no clock: usable under any IO.
//! - [`runtime`]: a thread-per-core server and a client on io_uring (`tokio-uring`): one
//!   pinned worker per CPU with its own ring and `SO_REUSEPORT` listener, a reader and a
//!   writer task per connection, backpressure, keepalive, graceful shutdown. Where the
//!   kernel refuses io_uring it fails with [`runtime::Error::UringUnavailable`].
//!
//! # One byte's way (server, receive)
//! socket → the worker's read, straight into the connection's receive buffer → frame
//! header decoded in place → payload unmasked in place (SIMD) and UTF-8-checked as it
//! arrives → a single-frame message is split off the buffer as `Bytes` (no copy) → the
//! application's `recv()`. A ping on the way is answered by the core.
//!
//! # One message's way (server, send)
//! `send(message)` → the core writes a 2–10 byte header; small frames are copied next to
//! it, large payloads queued by reference → when the writer task next runs, everything
//! queued leaves in one `write` (or `writev`) → socket. A full queue makes `send` wait.
//!
//! # Extensions
//! permessage-deflate (RFC 7692) is in the core ([`proto::extensions`]): negotiated at the
//! handshake ([`proto::handshake::Request::accept`], [`proto::handshake::Response::deflate`])
//! and then run by the connection ([`Connection::with_deflate`]). Off unless asked for;
//! any other extension is declined, and RSV bits it does not define are protocol errors.
//!
//! # What it does not do
//! - TLS: terminate it in front (a proxy) or wrap the stream yourself.
//! - HTTP beyond the upgrade request.

#![warn(missing_docs)]

pub mod proto;
pub mod runtime;

pub use proto::close::{CloseCode, CloseFrame};
pub use proto::config::Config;
pub use proto::connection::{Connection, Event, State};
pub use proto::error::{ProtocolError, SendError};
pub use proto::message::{Message, Utf8Bytes};
pub use proto::role::Role;
