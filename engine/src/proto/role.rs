//! Client or server: the protocol rules that differ by side, decided once per connection.
//!
//! Instead of `if is_server` checks scattered through the hot path, every rule that depends on
//! the side is a method here, so a reviewer can check all of them in one place.

/// Which side of the connection this endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepted the TCP connection and answered the opening handshake.
    Server,
    /// Opened the TCP connection and sent the opening handshake.
    Client,
}

impl Role {
    /// Whether frames this endpoint sends are masked.
    ///
    /// RFC 6455 §5.1: a client MUST mask all frames it sends; a server MUST NOT mask any.
    #[inline]
    pub const fn masks_outgoing(self) -> bool {
        matches!(self, Role::Client)
    }

    /// Whether frames this endpoint receives must be masked.
    ///
    /// RFC 6455 §5.1: a server MUST close the connection on an unmasked frame; a client MUST
    /// close the connection on a masked frame.
    #[inline]
    pub const fn expects_masked(self) -> bool {
        matches!(self, Role::Server)
    }

    /// Whether this endpoint closes the TCP connection as soon as the close handshake is done.
    ///
    /// RFC 6455 §7.1.1: the server SHOULD close the underlying TCP connection first; the
    /// client SHOULD wait for the server to do so (so that the server holds TIME_WAIT), and
    /// closes it itself only after a timeout.
    #[inline]
    pub const fn closes_tcp_first(self) -> bool {
        matches!(self, Role::Server)
    }
}
