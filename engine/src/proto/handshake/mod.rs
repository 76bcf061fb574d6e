//! The opening handshake (RFC 6455 §4): an HTTP/1.1 upgrade request and its 101 answer.
//!
//! ```text
//!  server: bytes ─▶ ServerHandshake::parse ─▶ Request ─▶ application decides
//!                                                         ├─ Accept ─▶ 101 response bytes
//!                                                         │   (+ agreed permessage-deflate)
//!                                                         └─ Reject ─▶ 4xx/5xx response bytes
//!  client: ClientRequest::build ─▶ request bytes + ClientHandshake
//!          bytes ─▶ ClientHandshake::parse_response ─▶ Response (validated) or typed error
//!                                                      (+ agreed permessage-deflate)
//! ```
//!
//! Parsing is incremental (the head may arrive over many reads) and takes exactly the head
//! out of the buffer: bytes after the blank line are already frames and stay where they
//! are. Every invalid request becomes a typed [`HandshakeError`] that renders a complete
//! HTTP response with its status (400, 405, 426, 431).

mod accept_key;
mod client;
mod error;
mod head;
mod server;
#[cfg(test)]
mod tests;

pub use accept_key::accept_key;
pub use client::{ClientHandshake, ClientRequest, Response};
pub use error::{ClientHandshakeError, HandshakeError};
pub use server::{Accept, Accepted, Reject, Request, ServerHandshake};

/// Size limits of a handshake head; past them the server answers 431.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandshakeLimits {
    /// The largest request (or response) head in bytes, request line and headers included.
    /// Default 16 KiB: held per connection only while it handshakes.
    pub max_head_bytes: usize,
    /// The most header lines. Default 64; each costs 32 bytes of parser state per parse.
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}
