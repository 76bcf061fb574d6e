//! Limits and behaviour of a connection, each default with what it costs.

use std::time::Duration;

use super::extensions::DeflateConfig;

/// Per-connection protocol settings.
///
/// Memory: the receive side holds at most one frame (up to `max_frame_size`) plus one
/// fragmented message being reassembled (up to `max_message_size`); nothing of a claimed size
/// is allocated before the bytes arrive, so an idle connection costs nothing here.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted; a larger claimed length fails the connection with
    /// 1009 as soon as the header arrives. Default 64 MiB.
    pub max_frame_size: usize,
    /// The largest message accepted, summed over its fragments; 1009 past it. Default 64 MiB.
    /// Cost: a peer may make the connection hold this much while it sends.
    pub max_message_size: usize,
    /// Answer each ping with a pong of the same payload (RFC 6455 §5.5.2). Default on.
    pub auto_pong: bool,
    /// Split outgoing messages larger than this into frames of this size. Default `None`
    /// (one frame per message). Costs a frame header per fragment; no payload is copied.
    pub fragment_size: Option<usize>,
    /// How long to wait for the peer's close frame after sending ours, before dropping the
    /// TCP connection (RFC 6455 §7.1.1). Default 5 s. The same bound applies to holding
    /// our reply to the peer's close while the application still reads the messages that
    /// came before it.
    pub close_timeout: Duration,
    /// Send a ping when nothing was received for this long. Default `None`. Costs one
    /// 10-byte frame per quiet interval (its 8-byte payload numbers it, so that its pong
    /// gives [`Connection::rtt`](super::connection::Connection::rtt)).
    pub ping_interval: Option<Duration>,
    /// End the connection (the application sees 1006) when nothing at all was received for
    /// this long, e.g. a peer that vanished without a FIN. Default `None`. With a ping
    /// interval shorter than this, a live peer's pongs keep the connection open.
    pub idle_timeout: Option<Duration>,
    /// permessage-deflate: what the driver offers (client) or accepts (server) at the
    /// handshake. Default off. The connection itself compresses only once given the
    /// negotiated parameters ([`Connection::with_deflate`]); see [`DeflateConfig`] for the
    /// memory each direction costs.
    ///
    /// [`Connection::with_deflate`]: super::connection::Connection::with_deflate
    pub deflate: DeflateConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 64 << 20,
            max_message_size: 64 << 20,
            auto_pong: true,
            fragment_size: None,
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            idle_timeout: None,
            deflate: DeflateConfig::default(),
        }
    }
}
