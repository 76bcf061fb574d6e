//! TLS (`wss://`) for both roles and every driver, with rustls.
//!
//! | file | concept |
//! |---|---|
//! | `config` | what the application configures: [`ServerTls`] (replaceable certificate), [`ClientTls`] (trust) |
//! | `layer` | one connection's record layer, with no IO: ciphertext in, plaintext out, one record per write batch |
//!
//! TLS sits between the driver and the session's protocol core, inside the session: a
//! driver reads ciphertext into the buffer the session gives it and writes the buffers
//! the session hands out, exactly as without TLS, so every driver (io_uring, tokio,
//! tokio-uring) speaks TLS without a line of its own, and the core sees plaintext. The
//! TLS handshake runs before the opening handshake, inside the same handshake timeout;
//! the handshake hook sees the SNI name ([`Request::tls_server_name`]).
//!
//! Closing: after the WebSocket closing handshake our `close_notify` goes out before our
//! FIN. A peer's `close_notify` is its end of stream; a TCP end without one is 1006, as
//! without TLS. A TLS failure (a corrupt record, a certificate the client refuses) ends
//! the connection with [`Error::Tls`](crate::runtime::Error::Tls) after the alert.
//!
//! [`Request::tls_server_name`]: crate::proto::handshake::Request::tls_server_name

mod config;
mod layer;

pub use config::{ClientTls, ServerTls, certs_from_pem, key_from_pem};
pub(crate) use layer::{Fed, TlsLayer};
/// rustls itself, for configurations of the application's own.
pub use rustls;
