//! Errors of the runtime, grouped by who is at fault.

use std::{fmt, io};

use crate::proto::close::CloseFrame;
use crate::proto::error::{ProtocolError, SendError};
use crate::proto::handshake::{ClientHandshakeError, HandshakeError};

/// An error from the io_uring runtime: the server, the client or a WebSocket handle.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The connection is closed. The frame holds the peer's close code and reason, or a
    /// code that never goes on the wire: 1005 when the peer's close frame had no code,
    /// 1006 when the connection ended without a close frame (reset, vanished peer, idle
    /// timeout).
    Closed(CloseFrame),
    /// The peer broke the protocol; the connection was failed with the error's close code.
    Protocol(ProtocolError),
    /// The application asked for something the protocol does not allow.
    Send(SendError),
    /// The opening handshake from a client was invalid (the server answered with its
    /// HTTP status).
    Handshake(HandshakeError),
    /// We refused an opening handshake with this HTTP status (an invalid request, or the
    /// hook said no); the response went out. From [`Upgrader::accept_stream`](super::upgrade::Upgrader::accept_stream).
    Refused(u16),
    /// The server's answer to our opening handshake was not an acceptable upgrade.
    ClientHandshake(ClientHandshakeError),
    /// A deadline passed: connecting, the opening handshake, or the close handshake.
    Timeout(&'static str),
    /// The URL given to the client is not a usable `ws://` or `wss://` URL.
    InvalidUrl(String),
    /// The kernel refused to create an io_uring instance.
    UringUnavailable(io::Error),
    /// The TLS layer failed: the peer's certificate was refused (expired, another name,
    /// an unknown issuer: see [`rustls::CertificateError`]), the TLS handshake failed, or
    /// a record was corrupt. The alert went out; the connection is over (1006).
    Tls(rustls::Error),
    /// A certificate, key or root file could not be read, or they do not form a valid
    /// TLS configuration.
    TlsConfig(String),
    /// Pub/sub (topics, [`Sender`](super::Sender)) needs a server connection: one a
    /// [`Server`](super::Server) accepted, or one taken over from hyper on wsengine's
    /// threads; this one is a client's, or one an application brought as a stream.
    PubSubUnavailable,
    /// The HTTP proxy refused the tunnel (its status), or did not answer as a proxy.
    Proxy(String),
    /// An IO error on the socket.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed(frame) if frame.reason.is_empty() => {
                write!(f, "connection closed ({})", frame.code)
            }
            Error::Closed(frame) => {
                write!(f, "connection closed ({}: {})", frame.code, frame.reason)
            }
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Send(e) => write!(f, "cannot send: {e}"),
            Error::Handshake(e) => write!(f, "handshake rejected: {e}"),
            Error::Refused(status) => write!(f, "handshake refused with {status}"),
            Error::ClientHandshake(e) => write!(f, "handshake failed: {e}"),
            Error::Timeout(what) => write!(f, "timed out: {what}"),
            Error::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            Error::UringUnavailable(e) => write!(
                f,
                "io_uring is not available: the kernel refused to create a ring ({e}). \
                 This happens under seccomp profiles that block io_uring (Docker, \
                 Kubernetes), with the sysctl kernel.io_uring_disabled set, or on kernels \
                 older than 5.11"
            ),
            Error::Tls(e) => write!(f, "TLS error: {e}"),
            Error::TlsConfig(why) => write!(f, "TLS configuration: {why}"),
            Error::PubSubUnavailable => f.write_str(
                "pub/sub needs a server connection (a wsengine Server's, or one taken over \
                 from hyper), not a client's nor a stream the application brought",
            ),
            Error::Proxy(why) => write!(f, "proxy: {why}"),
            Error::Io(e) => write!(f, "IO error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Protocol(e) => Some(e),
            Error::Send(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::ClientHandshake(e) => Some(e),
            Error::Tls(e) => Some(e),
            Error::UringUnavailable(e) | Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Error::Send(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e)
    }
}
