//! Per-connection settings of the runtime, each default with what it costs.

use std::time::Duration;

use crate::proto::config::Config;

/// How a connection is driven: protocol limits plus buffering, backpressure and keepalive.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Protocol limits and behaviour (frame and message size, auto-pong, fragmentation)
    /// and the deadlines the core keeps (close timeout, keepalive `ping_interval`,
    /// `idle_timeout`).
    pub protocol: Config,
    /// Bytes queued for the socket (encoded, not yet written) above which `send` waits
    /// (backpressure). Default 1 MiB. A message is always accepted when the queue is below
    /// the bound, so one message may take it over. Cost: up to this much per slow reader.
    pub max_send_queue: usize,
    /// Bytes of received messages the application has not taken with `recv` above which
    /// the connection stops reading from the socket (TCP flow control then slows the
    /// peer). Default 1 MiB.
    pub max_recv_queue: usize,
    /// The smallest read while data is flowing (a read filled its buffer, or a frame is
    /// in progress): the receive buffer is grown to at least this much free space before
    /// such a read. Default 4 KiB. Larger reads take more frames per syscall. A
    /// connection with nothing flowing reads into a 512-byte buffer instead, so an idle
    /// connection holds at most that much for its pending read.
    pub read_buffer_size: usize,
    /// Drop the connection when the socket accepts none of the bytes queued for it for
    /// this long: a peer that stopped reading (or vanished) while we have data for it.
    /// The application sees [`Error::Closed`](super::Error::Closed) with 1008 (policy
    /// violation: the peer broke our buffering policy; 1013 "try again later" would
    /// invite it to come back and do the same). No close frame can reach a peer that
    /// does not read, so the TCP connection is simply ended. Default 30 s; `None` waits
    /// forever, with memory still bounded by [`max_send_queue`](Self::max_send_queue).
    pub send_stall_timeout: Option<Duration>,
    /// Keep the pongs the peer sends (the 16 latest) for
    /// [`WebSocket::recv_pong`](super::WebSocket::recv_pong) from the connection's start.
    /// Default `false`: pongs are kept only once the application first asks for one.
    pub keep_pongs: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            protocol: Config::default(),
            max_send_queue: 1 << 20,
            max_recv_queue: 1 << 20,
            read_buffer_size: 4096,
            send_stall_timeout: Some(Duration::from_secs(30)),
            keep_pongs: false,
        }
    }
}
