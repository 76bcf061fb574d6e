//! wsengine: a fast, correct RFC 6455 WebSocket engine.
//!
//! ```text
//!  application      recv() -> Message (Bytes view, no copy)      send(Message)
//!      ▲                                                            │
//!  runtime/  io_uring driver (tokio-uring): workers, sockets, buffers, timers
//!      ▲  read into the receive buffer             one write/writev per turn │
//!  proto/    sans-IO core: handshake, frame header, unmask in place, UTF-8,
//!            reassembly, control frames, close handshake, limits
//! ```
//!
//! # What it does
//! - [`proto`]: the protocol as a pure state machine. Bytes in, events out; messages in,
//!   bytes out. No sockets, no runtime, no clock: usable under any IO.
//!
//! # What it does not do
//! - Extensions (permessage-deflate): never negotiated; RSV bits are protocol errors.
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
