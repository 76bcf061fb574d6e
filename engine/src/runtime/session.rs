//! A connection's state beyond the protocol, with no IO, no clock and no awaits: the
//! inbox and its byte budget, the send budget, when to pause reading, why the connection
//! ended, the send stall deadline, and how the TCP connection is ended.
//!
//! Every driver runs a connection the same way, as one state machine: it asks the session
//! whether to read ([`Session::wants_read`]) and into what ([`Session::read_buf`]), hands it
//! what came of the read ([`Session::on_read`]), takes what to write
//! ([`Session::take_transmit`]) and reports what the socket took ([`Session::on_written`]),
//! passes the time ([`Session::handle_timeout`]) and sleeps until
//! [`Session::poll_timeout`], and ends the TCP connection when [`Session::tcp_step`] says
//! so. The application's handle ([`super::socket::WebSocket`]) calls the other methods.
//! Only the driver knows sockets; only this type knows policy; only the core
//! ([`crate::proto`]) knows the protocol.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::budget::{RECHECK, WorkerBudget};
use super::error::Error;
use super::options::SocketOptions;
use super::tls::{Fed, TlsLayer};
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::connection::{Connection, Event, State};
use crate::proto::error::{ProtocolError, SendError};
use crate::proto::extensions::StreamPool;
use crate::proto::frame::{FrameHeader, RSV1};
use crate::proto::message::{Message, Utf8Bytes};
use crate::proto::prepared::PreparedMessage;
use crate::proto::timers::Expired;

/// The close reason of a connection failed for the memory budget (with 1013).
const MEMORY_REASON: &str = "server memory budget exhausted, try again later";

/// The pongs kept for the application (older ones are dropped): at most 16 × 125 bytes.
const PONGS_KEPT: usize = 16;

/// The most a single read asks for, however large the frame in progress.
pub(crate) const MAX_READ: usize = 256 * 1024;

/// Why a connection ended, kept to answer every later `recv` and `send`.
#[derive(Debug, Clone)]
pub(crate) enum End {
    /// The closing handshake ran (either side started it). `None`: no code (1005).
    Closed(Option<CloseFrame>),
    /// The peer broke the protocol.
    Protocol(ProtocolError),
    /// The TCP connection ended without a close frame (1006).
    Abnormal,
    /// A socket error (1006).
    Io(io::ErrorKind),
    /// A deadline passed (1006): idle timeout or the peer never answered our close.
    TimedOut(Expired),
    /// The socket took none of our bytes for [`SocketOptions::send_stall_timeout`]
    /// (1008).
    Stalled,
    /// Paused for the memory budget longer than its wait: failed with 1013.
    OutOfMemory,
    /// The TLS layer failed (a corrupt record, an alert from the peer): 1006.
    Tls(rustls::Error),
}

impl End {
    pub(crate) fn to_error(&self) -> Error {
        match self {
            End::Closed(Some(frame)) => Error::Closed(frame.clone()),
            End::Closed(None) => Error::Closed(no_status()),
            End::Protocol(e) => Error::Protocol(*e),
            End::Abnormal => abnormal(Utf8Bytes::from_static(
                "connection ended without a close frame",
            )),
            End::Io(kind) => abnormal(Utf8Bytes::from(format!("socket error: {kind}"))),
            End::TimedOut(expired) => abnormal(Utf8Bytes::from_static(expired.describe())),
            End::Stalled => Error::Closed(CloseFrame {
                code: CloseCode::POLICY_VIOLATION,
                reason: Utf8Bytes::from_static("the peer stopped reading (send stall timeout)"),
            }),
            End::OutOfMemory => Error::Closed(CloseFrame {
                code: CloseCode::TRY_AGAIN_LATER,
                reason: Utf8Bytes::from_static(MEMORY_REASON),
            }),
            End::Tls(e) => Error::Tls(e.clone()),
        }
    }
}

impl End {
    /// Why, as the application's statistics and traces name it.
    pub(crate) fn cause(&self) -> EndCause {
        match self {
            End::Closed(_) => EndCause::ClosingHandshake,
            End::Protocol(_) => EndCause::ProtocolError,
            End::Abnormal | End::Io(_) => EndCause::Reset,
            End::TimedOut(Expired::Idle) => EndCause::IdleTimeout,
            End::TimedOut(_) => EndCause::CloseTimeout,
            End::Stalled => EndCause::SendStall,
            End::OutOfMemory => EndCause::MemoryBudget,
            End::Tls(_) => EndCause::Tls,
        }
    }

    /// The close code the connection ended with: the closing handshake's (1005 for none),
    /// the one we failed it with (1002, 1007, 1008, 1009, 1013, ...), or 1006 without a
    /// close frame.
    pub(crate) fn close_code(&self) -> CloseCode {
        match self.to_error() {
            Error::Closed(frame) => frame.code,
            Error::Protocol(e) => e.close_code(),
            _ => CloseCode::ABNORMAL,
        }
    }
}

/// Why a connection ended, typed: what [`ServerStats`](super::ServerStats) counts and a
/// `tracing` span records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndCause {
    /// The closing handshake ran, whoever started it (the close code says more).
    ClosingHandshake,
    /// The peer broke the protocol and was failed with its close code.
    ProtocolError,
    /// The TCP connection ended without a close frame: reset, the peer vanished, or a
    /// socket error (1006).
    Reset,
    /// Nothing arrived for the idle timeout (1006).
    IdleTimeout,
    /// The peer never answered our close frame within the close timeout (1006).
    CloseTimeout,
    /// The peer took none of our bytes for the send stall timeout (1008).
    SendStall,
    /// Paused for the memory budget past its wait (1013).
    MemoryBudget,
    /// The TLS layer failed (1006).
    Tls,
}

impl EndCause {
    /// Every cause, in the order of [`ServerStats::ended`](super::ServerStats::ended).
    pub const ALL: [EndCause; 8] = [
        EndCause::ClosingHandshake,
        EndCause::ProtocolError,
        EndCause::Reset,
        EndCause::IdleTimeout,
        EndCause::CloseTimeout,
        EndCause::SendStall,
        EndCause::MemoryBudget,
        EndCause::Tls,
    ];

    /// `closing_handshake`, `protocol_error`, `reset`, `idle_timeout`, ...
    pub fn name(self) -> &'static str {
        match self {
            EndCause::ClosingHandshake => "closing_handshake",
            EndCause::ProtocolError => "protocol_error",
            EndCause::Reset => "reset",
            EndCause::IdleTimeout => "idle_timeout",
            EndCause::CloseTimeout => "close_timeout",
            EndCause::SendStall => "send_stall",
            EndCause::MemoryBudget => "memory_budget",
            EndCause::Tls => "tls",
        }
    }

    /// Its place in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        EndCause::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

impl std::fmt::Display for EndCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A closing handshake whose close frame had no code (1005, which never goes on the wire).
fn no_status() -> CloseFrame {
    CloseFrame {
        code: CloseCode::NO_STATUS,
        reason: Utf8Bytes::default(),
    }
}

/// Closed with 1006, which never goes on the wire: the connection ended without a close
/// frame.
fn abnormal(reason: Utf8Bytes) -> Error {
    Error::Closed(CloseFrame {
        code: CloseCode::ABNORMAL,
        reason,
    })
}

/// What the driver does with the TCP connection next ([`Session::tcp_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpStep {
    /// Keep going.
    Run,
    /// Shut down our sending direction (our FIN), once, then keep reading for the peer's.
    ShutdownWrite,
    /// Close the socket: the connection is over. [`Session::finish`] next.
    Close,
}

/// Waiting for the peer's FIN after the closing handshake (RFC 6455 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linger {
    /// Not started.
    No,
    /// Started; its deadline is set at the next `handle_timeout`.
    Asked,
    /// Until then at most.
    Until(Instant),
    /// Over (the FIN came, or the deadline passed).
    Over,
}

/// What [`Session::on_read`] changed, for the driver to wake the application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Received {
    /// New messages in the inbox, or the connection ended: wake `recv`.
    pub(crate) wake_recv: bool,
}

/// The non-IO state of one connection.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) conn: Connection,
    pub(crate) options: Rc<SocketOptions>,
    inbox: VecDeque<Message>,
    inbox_bytes: usize,
    /// The pongs the peer sent, once the application asked for them (the latest
    /// [`PONGS_KEPT`]). Boxed: 8 bytes in every session instead of 32, for a queue most
    /// connections never have.
    #[allow(clippy::box_collection)]
    pongs: Option<Box<VecDeque<Bytes>>>,
    /// Bytes taken by the driver for writing and not yet written.
    in_flight: usize,
    end: Option<End>,
    /// Reads saw the end of the stream or an error: no more reads.
    read_closed: bool,
    /// The last read filled the buffer it was given: more is probably waiting.
    last_read_filled: bool,
    /// The size of reads while data flows: grows while reads fill their buffers.
    read_size: usize,
    /// Since when bytes wait for the socket without it taking any (send stall).
    stalled_since: Option<Instant>,
    /// Our FIN went out (the write side is shut down).
    write_shut: bool,
    linger: Linger,
    /// The socket is closed; nothing more happens.
    finished: bool,
    /// permessage-deflate is negotiated: the core borrows streams from the thread's
    /// [`StreamPool`] at each call (directions without context takeover use them).
    pooled: bool,
    /// Bytes and messages each way since the handshake, and the send queue's peak.
    stats: ConnectionStats,
    /// The worker's memory budget and this connection's charge against it.
    memory: Option<Charge>,
    /// A `wss://` connection's TLS layer: the driver's bytes are ciphertext.
    tls: Option<Box<SessionTls>>,
}

/// A TLS connection's part of the session: reads land in `cipher` and are decrypted into
/// the core's receive buffer; what the core queues is sealed into records at
/// [`Session::take_transmit`].
#[derive(Debug)]
struct SessionTls {
    layer: TlsLayer,
    /// The receive buffer the driver reads ciphertext into; emptied at every read.
    cipher: BytesMut,
    /// The core's plaintext chunks of one write batch (kept for its allocation; empty
    /// between batches).
    batch: Vec<Bytes>,
}

/// What a TLS connection holds besides its buffers, roughly: rustls's connection state
/// with its 4 KiB deframer buffer and both directions' keys (an idle wss connection holds
/// about 7.5 KiB more than a ws one, `TLS_ONLY=1 scripts/idle_memory.sh`).
const TLS_STATE: usize = 8 * 1024;

/// A session's part in its worker's memory budget.
#[derive(Debug)]
struct Charge {
    budget: Rc<WorkerBudget>,
    /// Bytes this session holds, as last charged.
    held: usize,
    /// Of those, its permessage-deflate streams: charged, but not counted against its
    /// share (they do not grow with what the peer sends, and pausing would not shrink
    /// them; a dedicated compressor alone is larger than the default share).
    streams: usize,
    /// The capacity of the receive buffer while a driver holds it for a read in flight.
    lent: usize,
    /// Counted in the stats as paused for memory.
    paused: bool,
    /// Since when it has had to wait for memory, while over its share.
    waiting_since: Option<Instant>,
    /// When to look again whether the budget lets it read (or the wait is over).
    recheck_at: Option<Instant>,
}

impl Charge {
    /// What counts against the connection's share: all it holds but its deflate streams.
    fn against_share(&self) -> usize {
        self.held - self.streams
    }
}

/// Bytes on the wire since the handshake (frames, compressed or not), for the ratio of
/// wire to payload bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireBytes {
    /// Bytes read from the socket.
    pub received: u64,
    /// Bytes the socket took from us.
    pub sent: u64,
}

/// A connection's counters since the handshake ([`WebSocket::stats`]): plain fields of
/// its session, a few additions per message.
///
/// [`WebSocket::stats`]: super::WebSocket::stats
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Bytes on the wire each way.
    pub wire: WireBytes,
    /// Messages the peer sent (whole messages, handed to the application's inbox).
    pub messages_received: u64,
    /// Messages queued for the peer (the application's, and publishes delivered).
    pub messages_sent: u64,
    /// The most bytes the send queue held at once (queued in the core and in flight).
    pub send_queue_peak: usize,
}

thread_local! {
    /// The thread's shared deflate streams: lent to one connection's call at a time, so a
    /// worker holds as many as messages it compresses or inflates at once (at most a few
    /// idle), not one pair per connection. The core stays without thread-locals; this is
    /// the driver lending them.
    static STREAMS: RefCell<StreamPool> = RefCell::new(StreamPool::default());
}

/// Runs `f` with the thread's [`StreamPool`].
fn with_streams<R>(f: impl FnOnce(&mut StreamPool) -> R) -> R {
    STREAMS.with(|pool| f(&mut pool.borrow_mut()))
}

/// Makes room in the core's receive buffer for `incoming` bytes about to be copied in:
/// when a frame starts in them, room for all of it (at most [`MAX_READ`]).
fn reserve_frame(conn: &mut Connection, incoming: &[u8]) {
    let starts = conn.buffered() == 0;
    let want = if starts {
        // RSV1 allowed: this only sizes the buffer; the core checks the bits.
        match FrameHeader::decode_with_rsv(incoming, RSV1) {
            Ok(Some((header, header_len))) => {
                (header_len as u64 + header.payload_len).min(MAX_READ as u64) as usize
            }
            _ => incoming.len(),
        }
    } else {
        // Room for what the frame still needs, but never its whole claimed size at
        // once: the buffer grows as the bytes arrive.
        conn.read_hint().min(MAX_READ)
    };
    let buf = conn.read_buf();
    let spare = buf.capacity() - buf.len();
    // A frame in progress had its room when it started: it grows only when the
    // incoming bytes do not fit, so a frame dripped a byte at a time keeps what it
    // started with rather than growing by the frame's room at every byte.
    let grow = if starts {
        spare < want
    } else {
        spare < incoming.len()
    };
    if grow {
        buf.reserve(want.max(incoming.len()));
    }
}

/// Whether the connection ended with a close frame of ours on the wire (the closing
/// handshake, or a failure we announced): its TCP connection is ended in order.
fn ended_cleanly(end: &Option<End>) -> bool {
    matches!(
        end,
        Some(End::Closed(_) | End::Protocol(_) | End::OutOfMemory)
    )
}

impl Drop for Session {
    fn drop(&mut self) {
        self.release_charge();
    }
}

impl Session {
    /// The session of a connection whose handshake completed.
    pub(crate) fn new(conn: Connection, options: Rc<SocketOptions>) -> Self {
        let read_size = options.read_buffer_size.clamp(1, MAX_READ);
        let pooled = conn.deflate().is_some();
        let pongs = options.keep_pongs.then(Box::default);
        Session {
            conn,
            options,
            inbox: VecDeque::new(),
            inbox_bytes: 0,
            pongs,
            in_flight: 0,
            end: None,
            read_closed: false,
            last_read_filled: false,
            read_size,
            stalled_since: None,
            write_shut: false,
            linger: Linger::No,
            finished: false,
            pooled,
            stats: ConnectionStats::default(),
            memory: None,
            tls: None,
        }
    }

    /// This session over TLS: the driver's bytes are ciphertext, the core's plaintext.
    /// `layer` has completed its handshake (with the opening handshake through it).
    pub(crate) fn with_tls(mut self, layer: TlsLayer) -> Self {
        self.tls = Some(Box::new(SessionTls {
            layer,
            cipher: BytesMut::new(),
            batch: Vec::new(),
        }));
        self.account();
        self
    }

    /// This session with a part in `budget` (our server's connections): what it holds is
    /// charged after every step, and past its share it waits while the budget is spent.
    pub(crate) fn with_budget(mut self, budget: Rc<WorkerBudget>) -> Self {
        self.memory = Some(Charge {
            budget,
            held: 0,
            streams: 0,
            lent: 0,
            paused: false,
            waiting_since: None,
            recheck_at: None,
        });
        self.account();
        self
    }

    // ---- the memory budget ----------------------------------------------------------------

    /// Bytes this connection holds buffered: its receive side (buffer, fragments,
    /// deflate), its unread messages and its send queue.
    fn held(&self) -> usize {
        let lent = self.memory.as_ref().map_or(0, |m| m.lent);
        let tls = self
            .tls
            .as_ref()
            .map_or(0, |t| TLS_STATE + t.cipher.capacity());
        self.conn.buffered_memory() + self.inbox_bytes + self.queued() + lent + tls
    }

    /// The buffer the driver reads into: the core's receive buffer, or the ciphertext
    /// buffer over TLS.
    fn wire_buf(&mut self) -> &mut BytesMut {
        match &mut self.tls {
            Some(tls) => &mut tls.cipher,
            None => self.conn.read_buf(),
        }
    }

    /// Takes the receive buffer for a read that owns it while in flight (tokio-uring);
    /// its capacity stays charged until [`return_read_buf`](Self::return_read_buf).
    // Used by the io_uring drivers only.
    #[cfg_attr(not(uring), allow(dead_code))]
    pub(crate) fn lend_read_buf(&mut self) -> BytesMut {
        let buf = std::mem::take(self.wire_buf());
        if let Some(m) = &mut self.memory {
            m.lent = buf.capacity();
        }
        buf
    }

    /// Puts back the buffer a read owned, before [`on_read`](Self::on_read).
    // Used by the io_uring drivers only.
    #[cfg_attr(not(uring), allow(dead_code))]
    pub(crate) fn return_read_buf(&mut self, buf: BytesMut) {
        *self.wire_buf() = buf;
        if let Some(m) = &mut self.memory {
            m.lent = 0;
        }
    }

    /// Charges what the connection holds now against the budget.
    #[inline]
    fn account(&mut self) {
        if self.memory.is_some() {
            let held = self.held();
            let streams = self.conn.deflate_streams_memory();
            if let Some(m) = &mut self.memory {
                m.budget.charge(m.held, held);
                m.held = held;
                m.streams = streams;
            }
        }
    }

    /// Over its share while the worker's budget is spent: the connection waits.
    #[inline]
    fn over_budget(&self, held: usize) -> bool {
        self.memory
            .as_ref()
            .is_some_and(|m| held > m.budget.per_connection && m.budget.over())
    }

    /// Still receiving and holding more than its share (deflate streams aside).
    fn over_share(&self) -> bool {
        self.end.is_none()
            && self.conn.is_receiving()
            && self
                .memory
                .as_ref()
                .is_some_and(|m| m.against_share() > m.budget.per_connection)
    }

    /// Paused for memory: over its share while the worker's budget is spent; not read
    /// from.
    fn memory_paused(&self) -> bool {
        self.over_share() && self.memory.as_ref().is_some_and(|m| m.budget.over())
    }

    /// `send` waits: the queue is over its bound, or over the connection's share while the
    /// budget is spent (the queue then drains to the peer, and `on_written` wakes it).
    pub(crate) fn send_blocked(&self) -> bool {
        let queued = self.queued();
        queued >= self.options.max_send_queue || (queued > 0 && self.over_budget(queued))
    }

    /// The memory pause's part of `handle_timeout`. A connection that had to wait for
    /// memory (paused while over its share) gets the budget's `wait` from then to bring
    /// what it holds back under its share, reading whenever the budget lets it; past that
    /// it is failed with 1013. Returns whether that changed what the driver does (resume
    /// reading, or write the close frame).
    fn memory_timeout(&mut self, now: Instant) -> bool {
        let paused = self.memory_paused();
        let over_share = self.over_share();
        let Some(m) = &mut self.memory else {
            return false;
        };
        let mut changed = false;
        if paused != m.paused {
            m.paused = paused;
            m.budget.paused(paused);
            changed = !paused;
        }
        if !over_share {
            m.waiting_since = None;
            m.recheck_at = None;
            return changed;
        }
        if paused && m.waiting_since.is_none() {
            m.waiting_since = Some(now);
        }
        // Over its share, it looks again soon whether the budget is spent (by others, too:
        // an idle connection holding a partial message has no events of its own).
        let Some(since) = m.waiting_since else {
            m.recheck_at = Some(now + RECHECK);
            return changed;
        };
        let deadline = since + m.budget.wait;
        if now < deadline {
            m.recheck_at = Some((now + RECHECK).min(deadline));
            return changed;
        }
        if m.paused {
            m.paused = false;
            m.budget.paused(false);
        }
        m.budget.closed_one();
        m.waiting_since = None;
        m.recheck_at = None;
        self.conn
            .fail_with(CloseCode::TRY_AGAIN_LATER, MEMORY_REASON);
        self.set_end(End::OutOfMemory);
        self.account();
        true
    }

    // ---- the driver's side: reading ------------------------------------------------------

    /// Whether the driver should read now. Not while a queue is over its bound and the
    /// connection is not over: then TCP flow control slows the peer, and memory stays
    /// bounded by the two queue limits. The send queue counts too: replies the core queues
    /// by itself (pongs to a peer that floods pings and never reads) must not grow without
    /// bound.
    pub(crate) fn wants_read(&self) -> bool {
        !self.read_closed && !self.finished && !self.reading_paused() && !self.memory_paused()
    }

    fn reading_paused(&self) -> bool {
        self.end.is_none()
            && (self.inbox_bytes > self.options.max_recv_queue
                || self.queued() > self.options.max_send_queue)
    }

    /// Whether data is flowing: the last read filled its buffer, or a frame is in progress.
    // Used by the io_uring drivers only.
    #[cfg_attr(not(uring), allow(dead_code))]
    pub(crate) fn flowing(&self) -> bool {
        self.last_read_filled || self.conn.buffered() > 0
    }

    /// The size a read should have while data flows: at least
    /// [`SocketOptions::read_buffer_size`], larger while reads keep filling their buffers,
    /// and as much as the frame in progress still needs, at most [`MAX_READ`].
    pub(crate) fn read_size(&self) -> usize {
        self.conn.read_hint().max(self.read_size).min(MAX_READ)
    }

    /// The receive buffer, to read into its spare capacity (no copy: single-frame
    /// messages become views of it). Over TLS, the ciphertext buffer.
    pub(crate) fn read_buf(&mut self) -> &mut BytesMut {
        self.wire_buf()
    }

    /// The receive buffer with at least [`read_size`](Self::read_size) bytes of spare
    /// capacity, for a readiness driver that reads only when bytes are there.
    pub(crate) fn reserve_read(&mut self) -> &mut BytesMut {
        let want = self.read_size();
        let buf = self.wire_buf();
        // Grown only when a quarter of a read's room is left: a frame that arrives a few
        // bytes at a time (a peer that claims a large frame and drips it) must not grow
        // the buffer by a read's size at every read.
        if buf.capacity() - buf.len() < want.div_ceil(4) {
            buf.reserve(want);
        }
        buf
    }

    /// Makes room in the receive buffer for `incoming` bytes about to be copied in (a
    /// driver that receives into buffers of its own): when a frame starts in them, room
    /// for all of it (at most [`MAX_READ`]), so that a large frame is copied once and the
    /// buffer is not grown (and copied again) on the way.
    // Used by the io_uring drivers only.
    #[cfg_attr(not(uring), allow(dead_code))]
    pub(crate) fn reserve_for(&mut self, incoming: &[u8]) {
        match &mut self.tls {
            // Ciphertext: it is decrypted (and the buffer emptied) at every read.
            Some(tls) => tls.cipher.reserve(incoming.len()),
            None => reserve_frame(&mut self.conn, incoming),
        }
    }

    /// A read completed: `n` bytes were appended to the receive buffer (0: the end of the
    /// stream), and `filled` says whether they filled the space it had. Runs the core over
    /// them: messages to the inbox, pongs and close replies queued.
    pub(crate) fn on_read(&mut self, n: usize, filled: bool) -> Received {
        self.received(n, filled, None)
    }

    /// Bytes received into a buffer of the driver's own (the io_uring driver's ring
    /// buffer): copied into the receive buffer, or over TLS handed to rustls straight from
    /// there (no copy of ours), then as [`on_read`](Self::on_read).
    // Used by the io_uring drivers only.
    #[cfg_attr(not(uring), allow(dead_code))]
    pub(crate) fn deliver(&mut self, incoming: &[u8], filled: bool) -> Received {
        if self.tls.is_some() {
            return self.received(incoming.len(), filled, Some(incoming));
        }
        self.reserve_for(incoming);
        self.read_buf().extend_from_slice(incoming);
        self.on_read(incoming.len(), filled)
    }

    /// [`on_read`](Self::on_read), with the ciphertext in `external` rather than in the
    /// TLS receive buffer.
    fn received(&mut self, n: usize, filled: bool, external: Option<&[u8]>) -> Received {
        if n == 0 {
            self.on_read_end(None);
            return Received { wake_recv: true };
        }
        self.stats.wire.received += n as u64;
        self.last_read_filled = filled;
        if filled {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        }
        let mut peer_closed = false;
        if let Some(tls) = &mut self.tls {
            let conn = &mut self.conn;
            let receiving = conn.is_receiving();
            let cipher = external.unwrap_or(&tls.cipher);
            let fed = tls.layer.feed(cipher, |plain| {
                // After the peer's close frame, plaintext is only looked through for
                // the end of the stream.
                if receiving {
                    reserve_frame(conn, plain);
                    conn.read_buf().extend_from_slice(plain);
                }
            });
            tls.cipher.clear();
            match fed {
                Ok(Fed::Open) => {}
                Ok(Fed::PeerClosed) => peer_closed = true,
                Err(e) => {
                    // The alert goes out at the next take_transmit; nothing more is read.
                    self.read_closed = true;
                    self.conn.abort();
                    self.set_end(End::Tls(e));
                    self.account();
                    return Received { wake_recv: true };
                }
            }
        }
        if !self.conn.is_receiving() {
            // After the peer's close frame (or a protocol error): read only to see its FIN.
            self.conn.read_buf().clear();
            if peer_closed {
                self.on_read_end(None);
            }
            self.account();
            return Received {
                wake_recv: peer_closed,
            };
        }
        let mut received = self.process();
        if peer_closed {
            // The peer's close_notify: its end of the stream, as a FIN is without TLS.
            self.on_read_end(None);
            received.wake_recv = true;
        }
        self.account();
        received
    }

    /// A read failed (`Some`) or found the end of the stream (`None`).
    pub(crate) fn on_read_end(&mut self, error: Option<io::ErrorKind>) {
        self.read_closed = true;
        if self.conn.is_receiving() {
            // The TCP connection ended before the closing handshake: 1006.
            self.conn.abort();
        }
        self.set_end(match error {
            Some(kind) => End::Io(kind),
            None => End::Abnormal,
        });
        if self.linger == Linger::Asked || matches!(self.linger, Linger::Until(_)) {
            self.linger = Linger::Over;
        }
        self.account();
    }

    /// Runs the core over what is buffered (also the bytes that came with the handshake).
    pub(crate) fn process(&mut self) -> Received {
        let mut wake_recv = false;
        loop {
            let event = if self.pooled {
                with_streams(|pool| self.conn.poll_event_with(pool))
            } else {
                self.conn.poll_event()
            };
            match event {
                Ok(Some(Event::Message(message))) => {
                    self.stats.messages_received += 1;
                    self.inbox_bytes += message.len();
                    self.inbox.push_back(message);
                    wake_recv = true;
                }
                Ok(Some(Event::Pong(payload))) => {
                    if let Some(pongs) = &mut self.pongs {
                        if pongs.len() == PONGS_KEPT {
                            pongs.pop_front();
                        }
                        pongs.push_back(payload);
                        wake_recv = true;
                    }
                }
                Ok(Some(Event::Ping(_))) => {}
                Ok(Some(Event::Close(frame))) => {
                    self.set_end(End::Closed(frame));
                    wake_recv = true;
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    self.set_end(End::Protocol(e));
                    wake_recv = true;
                    break;
                }
            }
        }
        Received { wake_recv }
    }

    /// After the bytes were taken into messages: an empty receive buffer that is larger
    /// than a flowing read needs is let go, so that a quiet connection holds no buffer.
    pub(crate) fn release_idle_buffer(&mut self) {
        let read_size = self.read_size();
        let buf = self.conn.read_buf();
        if buf.is_empty()
            && buf.capacity() > 0
            && (!self.last_read_filled || buf.capacity() > 2 * read_size)
        {
            *buf = BytesMut::new();
            self.account();
        }
        if let Some(tls) = &mut self.tls
            && tls.cipher.capacity() > 0
            && (!self.last_read_filled || tls.cipher.capacity() > 2 * read_size)
        {
            tls.cipher = BytesMut::new();
            self.account();
        }
    }

    // ---- the driver's side: writing ------------------------------------------------------

    /// Moves everything queued for the socket to `out` (one write or `writev` of it all).
    /// Our close frame stays back while the application has unread messages from before
    /// the peer's close (at most the close timeout); replies never do.
    pub(crate) fn take_transmit(&mut self, out: &mut Vec<Bytes>) {
        if self.conn.state() == State::ClosePending {
            self.conn.hold_close(!self.inbox.is_empty());
        }
        let before = out.len();
        match &mut self.tls {
            None => self.conn.drain_transmit(out),
            Some(tls) => {
                self.conn.drain_transmit(&mut tls.batch);
                // After the closing handshake (or the close frame of a failure), our
                // close_notify, before our FIN.
                let notify = ended_cleanly(&self.end)
                    && self.conn.is_closed()
                    && !self.conn.wants_transmit();
                tls.layer.seal(&tls.batch, notify, out);
                tls.batch.clear();
            }
        }
        self.in_flight += out[before..].iter().map(Bytes::len).sum::<usize>();
        self.account();
    }

    /// The socket took `n` of the bytes in flight. Returns whether the send queue just
    /// went back under its bound (wake `send`).
    pub(crate) fn on_written(&mut self, n: usize) -> bool {
        let was_blocked = self.send_blocked();
        self.in_flight = self.in_flight.saturating_sub(n);
        self.stats.wire.sent += n as u64;
        // Progress: the stall wait starts again from the next turn.
        self.stalled_since = None;
        self.account();
        was_blocked && !self.send_blocked()
    }

    /// A write failed: the connection is over (1006).
    pub(crate) fn on_write_error(&mut self, kind: io::ErrorKind) {
        self.conn.abort();
        self.in_flight = 0;
        self.set_end(End::Io(kind));
        self.account();
    }

    /// Bytes taken by the driver and not yet written; 0 once the connection was aborted
    /// (the driver then drops what it holds).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    // ---- the driver's side: time and the end ---------------------------------------------

    /// Passes the time: the core's deadlines (keepalive, idle, close timeout, close hold),
    /// the send stall, and the wait for the peer's FIN. Call it at the end of every turn
    /// in which something happened, and when [`poll_timeout`](Self::poll_timeout) comes.
    /// Returns whether it made work for the driver: a frame to write (a keepalive ping, a
    /// released close frame) or an end.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.finished {
            return false;
        }
        let transmit_before = self.conn.wants_transmit();
        let mut changed = false;
        if let Some(expired) = self.conn.handle_timeout(now) {
            self.set_end(End::TimedOut(expired));
            changed = true;
        }
        if self.in_flight > 0
            && let Some(stall) = self.options.send_stall_timeout
        {
            let since = *self.stalled_since.get_or_insert(now);
            if now >= since + stall {
                // No close frame can reach a peer that does not read: end the connection.
                self.conn.abort();
                self.in_flight = 0;
                self.set_end(End::Stalled);
                changed = true;
            }
        }
        match self.linger {
            Linger::Asked => {
                self.linger = Linger::Until(now + self.options.protocol.close_timeout);
            }
            Linger::Until(until) if now >= until => {
                self.linger = Linger::Over;
                changed = true;
            }
            _ => {}
        }
        changed |= self.memory_timeout(now);
        // The core's deadlines may have freed memory (a released compressor).
        self.account();
        changed || (!transmit_before && self.conn.wants_transmit())
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run, if ever.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let mut at = self.conn.poll_timeout();
        let mut consider = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        if let (Some(since), Some(stall)) = (self.stalled_since, self.options.send_stall_timeout)
            && self.in_flight > 0
        {
            consider(since + stall);
        }
        if let Linger::Until(until) = self.linger {
            consider(until);
        }
        if let Some(recheck) = self.memory.as_ref().and_then(|m| m.recheck_at) {
            consider(recheck);
        }
        at
    }

    /// What to do with the TCP connection, in RFC 6455 §7.1.1's order: once the closing
    /// handshake is done and everything is written, the server shuts its side first and
    /// both wait (at most the close timeout) for the peer's FIN, so that our close frame is
    /// not lost to a reset from unread data; a connection that failed otherwise is closed
    /// at once.
    pub(crate) fn tcp_step(&mut self) -> TcpStep {
        if self.finished {
            return TcpStep::Close;
        }
        let tls_pending = self.tls.as_ref().is_some_and(|t| t.layer.wants_write());
        if !self.conn.is_closed() || self.in_flight > 0 || self.conn.wants_transmit() || tls_pending
        {
            return TcpStep::Run;
        }
        if !ended_cleanly(&self.end) || self.read_closed || self.linger == Linger::Over {
            return TcpStep::Close;
        }
        if self.linger == Linger::No {
            self.linger = Linger::Asked;
        }
        if self.conn.role().closes_tcp_first() && !self.write_shut {
            self.write_shut = true;
            return TcpStep::ShutdownWrite;
        }
        TcpStep::Run
    }

    /// The socket is closed: the connection is over for good.
    pub(crate) fn finish(&mut self) {
        self.conn.abort();
        self.in_flight = 0;
        self.set_end(End::Abnormal);
        self.finished = true;
        self.inbox.clear();
        self.inbox_bytes = 0;
        self.release_charge();
    }

    /// Gives back everything charged, and ends a memory pause.
    fn release_charge(&mut self) {
        if let Some(m) = &mut self.memory {
            m.budget.charge(m.held, 0);
            m.held = 0;
            m.recheck_at = None;
            m.waiting_since = None;
            if m.paused {
                m.paused = false;
                m.budget.paused(false);
            }
        }
    }

    /// Whether the socket is closed.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Ends the connection from outside (the server's shutdown past its grace period):
    /// nothing more is read or written.
    pub(crate) fn abort(&mut self) {
        self.conn.abort();
        self.in_flight = 0;
        self.set_end(End::Abnormal);
        self.account();
    }

    // ---- the application's side ----------------------------------------------------------

    /// Bytes waiting for the socket: queued in the core and in flight.
    pub(crate) fn queued(&self) -> usize {
        self.conn.pending_transmit() + self.in_flight
    }

    /// The next message, the end, or `None` (wait). The flag says whether the driver must
    /// be woken: reading may resume, or a held close frame may now go out.
    pub(crate) fn recv(&mut self) -> (Option<Result<Message, Error>>, bool) {
        if let Some(message) = self.inbox.pop_front() {
            let was_paused = self.reading_paused();
            self.inbox_bytes -= message.len();
            self.account();
            let wake = (was_paused && !self.reading_paused())
                || (self.inbox.is_empty() && self.conn.state() == State::ClosePending);
            return (Some(Ok(message)), wake);
        }
        match &self.end {
            Some(end) => (Some(Err(end.to_error())), false),
            None => (None, false),
        }
    }

    /// Queues `message` if the send queue is under its bound: `Ok(true)`; `Ok(false)`:
    /// wait for space.
    pub(crate) fn try_send(&mut self, message: &Message) -> Result<bool, Error> {
        if !self.send_ready()? {
            return Ok(false);
        }
        self.send_admitted(message)?;
        Ok(true)
    }

    /// Queues a published message unless the send queue is over its bound: `Ok(true)`
    /// queued, `Ok(false)` the subscriber is too slow for it (the caller's policy decides).
    pub(crate) fn try_send_prepared(&mut self, message: &PreparedMessage) -> Result<bool, Error> {
        if !self.conn.can_send() {
            return Err(self.closed_error());
        }
        if self.send_blocked() {
            return Ok(false);
        }
        self.conn.send_prepared(message)?;
        self.account();
        self.queued_message();
        Ok(true)
    }

    /// Queues `message` whatever the queue holds: a [`Sender`](super::pubsub::Sender)'s
    /// message, admitted against the bound when it was sent.
    pub(crate) fn send_admitted(&mut self, message: &Message) -> Result<(), Error> {
        if !self.conn.can_send() {
            return Err(self.closed_error());
        }
        if self.pooled {
            with_streams(|pool| self.conn.send_with(message, pool))?;
        } else {
            self.conn.send(message)?;
        }
        self.account();
        self.queued_message();
        Ok(())
    }

    /// Queues a ping. During a pending close, fails with the reason the connection ends.
    pub(crate) fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
        if self.conn.state() != State::Open {
            return Err(self.closed_error());
        }
        self.conn.send_ping(payload)?;
        self.account();
        Ok(())
    }

    /// Starts the closing handshake if the connection is open; returns whether it did.
    pub(crate) fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<bool, Error> {
        if self.conn.state() != State::Open {
            return Ok(false);
        }
        self.conn.close(code, reason)?;
        self.account();
        Ok(true)
    }

    /// Bytes on the wire so far.
    pub(crate) fn wire_bytes(&self) -> WireBytes {
        self.stats.wire
    }

    /// The connection's counters so far.
    pub(crate) fn stats(&self) -> ConnectionStats {
        self.stats
    }

    /// Counts a message just queued for the peer and the queue's new size.
    #[inline]
    fn queued_message(&mut self) {
        self.stats.messages_sent += 1;
        self.stats.send_queue_peak = self.stats.send_queue_peak.max(self.queued());
    }

    /// Whether the connection has ended (nothing more can be sent).
    pub(crate) fn is_ended(&self) -> bool {
        self.end.is_some()
    }

    /// The close frame of a closing handshake that ran (either side started it; 1005
    /// when the peer's had no code); `None` while open and for any other end.
    pub(crate) fn close_frame(&self) -> Option<CloseFrame> {
        match &self.end {
            Some(End::Closed(Some(frame))) => Some(frame.clone()),
            Some(End::Closed(None)) => Some(no_status()),
            _ => None,
        }
    }

    /// Whether a message may be queued now: `Ok(true)`; `Ok(false)`: wait for space
    /// (what [`try_send`](Self::try_send) checks before it queues).
    pub(crate) fn send_ready(&self) -> Result<bool, Error> {
        if !self.conn.can_send() {
            return Err(self.closed_error());
        }
        Ok(!self.send_blocked())
    }

    /// The error for an operation on a connection that can no longer send.
    pub(crate) fn closed_error(&self) -> Error {
        match &self.end {
            Some(end) => end.to_error(),
            None => Error::Send(SendError::Closed),
        }
    }

    /// From now on, keep the pongs the peer sends.
    pub(crate) fn keep_pongs(&mut self) {
        self.pongs.get_or_insert_with(Box::default);
    }

    /// The oldest pong kept; once none is left and the connection has ended, why.
    pub(crate) fn take_pong(&mut self) -> Option<Result<Bytes, Error>> {
        if let Some(pong) = self.pongs.as_mut().and_then(|p| p.pop_front()) {
            return Some(Ok(pong));
        }
        self.end.as_ref().map(|end| Err(end.to_error()))
    }

    /// Why the connection ended and its close code, once it has.
    pub(crate) fn end_cause(&self) -> Option<(EndCause, CloseCode)> {
        self.end.as_ref().map(|end| (end.cause(), end.close_code()))
    }

    /// Records the end of the connection (the first reason wins).
    fn set_end(&mut self, end: End) {
        if self.end.is_none() {
            self.end = Some(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::config::Config;
    use crate::proto::role::Role;
    use std::time::Duration;

    fn session(options: SocketOptions) -> Session {
        let conn = Connection::new(Role::Server, options.protocol.clone(), BytesMut::new());
        Session::new(conn, Rc::new(options))
    }

    /// A masked client frame.
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut client = Connection::new(Role::Client, Config::default(), BytesMut::new());
        match opcode {
            0x1 => client
                .send(&Message::text(String::from_utf8(payload.to_vec()).unwrap()))
                .unwrap(),
            0x2 => client.send(&Message::binary(payload.to_vec())).unwrap(),
            0x8 => client.close(CloseCode::NORMAL, "").unwrap(),
            _ => unreachable!(),
        }
        let mut out = Vec::new();
        client.drain_transmit(&mut out);
        out.concat()
    }

    fn deliver(s: &mut Session, bytes: &[u8]) -> Received {
        let buf = s.reserve_read();
        buf.extend_from_slice(bytes);
        s.on_read(bytes.len(), false)
    }

    fn written(s: &mut Session) -> Vec<u8> {
        let mut out = Vec::new();
        s.take_transmit(&mut out);
        let bytes = out.concat();
        s.on_written(bytes.len());
        bytes
    }

    #[test]
    fn replies_leave_while_the_close_frame_is_held_for_unread_messages() {
        let t0 = Instant::now();
        let mut s = session(SocketOptions::default());
        let mut input = client_frame(0x2, b"one");
        input.extend(client_frame(0x2, b"two"));
        input.extend(client_frame(0x8, b""));
        assert!(deliver(&mut s, &input).wake_recv);
        s.handle_timeout(t0);
        // The application answers the first message; the second is still unread.
        let (Some(Ok(first)), _) = s.recv() else {
            panic!()
        };
        s.try_send(&first).unwrap();
        let out = written(&mut s);
        assert_eq!(
            out,
            [0x82, 3, b'o', b'n', b'e'],
            "the reply, without the close"
        );
        s.handle_timeout(t0);
        assert_eq!(s.tcp_step(), TcpStep::Run);
        // The last unread message is taken: the driver is woken, and the close goes out.
        let (Some(Ok(second)), wake) = s.recv() else {
            panic!()
        };
        assert!(wake);
        s.try_send(&second).unwrap();
        let out = written(&mut s);
        assert_eq!(out, [0x82, 3, b't', b'w', b'o', 0x88, 2, 0x03, 0xe8]);
        assert_eq!(s.tcp_step(), TcpStep::ShutdownWrite);
    }

    #[test]
    fn the_hold_ends_after_the_close_timeout() {
        let t0 = Instant::now();
        let mut s = session(SocketOptions::default());
        let mut input = client_frame(0x2, b"unread");
        input.extend(client_frame(0x8, b""));
        deliver(&mut s, &input);
        assert!(written(&mut s).is_empty());
        s.handle_timeout(t0);
        let at = s.poll_timeout().unwrap();
        assert_eq!(at, t0 + Config::default().close_timeout);
        s.handle_timeout(at);
        assert_eq!(written(&mut s), [0x88, 2, 0x03, 0xe8]);
    }

    #[test]
    fn a_socket_that_takes_nothing_for_the_stall_timeout_ends_with_1008() {
        let t0 = Instant::now();
        let options = SocketOptions {
            send_stall_timeout: Some(Duration::from_secs(3)),
            ..SocketOptions::default()
        };
        let mut s = session(options);
        s.try_send(&Message::binary(vec![1u8; 100])).unwrap();
        let mut out = Vec::new();
        s.take_transmit(&mut out);
        // More is queued behind the write that does not finish.
        s.try_send(&Message::binary(vec![2u8; 100])).unwrap();
        s.handle_timeout(t0);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        // Some progress restarts the wait.
        s.on_written(10);
        let t2 = t0 + Duration::from_secs(2);
        s.handle_timeout(t2);
        assert_eq!(s.poll_timeout(), Some(t2 + Duration::from_secs(3)));
        s.handle_timeout(t2 + Duration::from_secs(3));
        assert!(s.is_ended());
        let Err(Error::Closed(frame)) = s.recv().0.unwrap() else {
            panic!()
        };
        assert_eq!(frame.code, CloseCode::POLICY_VIOLATION);
        // What was queued is dropped with the connection: nothing holds the close back.
        assert_eq!(s.queued(), 0);
        assert_eq!(s.tcp_step(), TcpStep::Close);
    }

    #[test]
    fn reading_pauses_over_the_inbox_bound_and_resumes_under_it() {
        let options = SocketOptions {
            max_recv_queue: 10,
            ..SocketOptions::default()
        };
        let mut s = session(options);
        deliver(&mut s, &client_frame(0x2, &[7; 8]));
        assert!(s.wants_read());
        deliver(&mut s, &client_frame(0x2, &[7; 8]));
        assert!(!s.wants_read(), "16 unread bytes are over the bound of 10");
        let (Some(Ok(_)), wake) = s.recv() else {
            panic!()
        };
        assert!(wake, "back under the bound: the driver reads again");
        assert!(s.wants_read());
    }

    #[test]
    fn a_ping_during_a_pending_close_reports_the_peers_close() {
        let mut s = session(SocketOptions::default());
        let mut input = client_frame(0x2, b"unread");
        input.extend(client_frame(0x8, b""));
        deliver(&mut s, &input);
        let Err(Error::Closed(frame)) = s.ping(Bytes::new()) else {
            panic!()
        };
        assert_eq!(frame.code, CloseCode::NORMAL);
    }

    #[test]
    fn the_end_of_the_stream_mid_message_is_1006() {
        let mut s = session(SocketOptions::default());
        let frame = client_frame(0x2, &[1; 50]);
        deliver(&mut s, &frame[..20]);
        assert!(s.on_read(0, false).wake_recv);
        let Err(Error::Closed(frame)) = s.recv().0.unwrap() else {
            panic!()
        };
        assert_eq!(frame.code, CloseCode::ABNORMAL);
        assert_eq!(s.tcp_step(), TcpStep::Close);
    }

    #[test]
    fn a_client_waits_for_the_servers_fin_at_most_the_close_timeout() {
        let t0 = Instant::now();
        let options = SocketOptions::default();
        let conn = Connection::new(Role::Client, options.protocol.clone(), BytesMut::new());
        let mut s = Session::new(conn, Rc::new(options));
        s.start_close(CloseCode::NORMAL, "").unwrap();
        written(&mut s);
        // The server's close frame (unmasked).
        deliver(&mut s, &[0x88, 2, 0x03, 0xe8]);
        assert_eq!(s.tcp_step(), TcpStep::Run, "the client does not shut first");
        s.handle_timeout(t0);
        let until = s.poll_timeout().unwrap();
        assert_eq!(until, t0 + Config::default().close_timeout);
        s.handle_timeout(until);
        assert_eq!(s.tcp_step(), TcpStep::Close);
    }

    // ---- the memory budget ------------------------------------------------------------

    use crate::runtime::budget::MemoryBudget;
    use crate::runtime::server::ServerStats;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    /// A worker budget of `total` bytes (one worker), 1 KiB per connection, 1 s wait.
    fn budget(total: usize) -> (Rc<WorkerBudget>, Arc<ServerStats>) {
        let stats = Arc::new(ServerStats::default());
        let budget = MemoryBudget {
            total,
            per_connection: 1024,
            wait: Duration::from_secs(1),
        };
        (Rc::new(WorkerBudget::new(budget, 1, stats.clone())), stats)
    }

    fn budgeted(b: &Rc<WorkerBudget>) -> Session {
        session(SocketOptions::default()).with_budget(b.clone())
    }

    /// The first `len` bytes of a masked binary frame claiming 1 MiB.
    fn partial_frame(len: usize) -> Vec<u8> {
        let mut frame = client_frame(0x2, &vec![7u8; 1 << 20]);
        frame.truncate(len);
        frame
    }

    #[test]
    fn past_its_share_while_the_budget_is_spent_a_connection_is_paused_then_failed_with_1013() {
        let t0 = Instant::now();
        let (b, stats) = budget(64 * 1024);
        let mut big = budgeted(&b);
        let mut small = budgeted(&b);
        // Within the budget: reading goes on.
        deliver(&mut big, &partial_frame(32 * 1024));
        assert!(big.wants_read());
        deliver(&mut big, &partial_frame(100 * 1024)[32 * 1024..]);
        assert!(b.over());
        big.handle_timeout(t0);
        assert!(!big.wants_read(), "over its share and the budget: paused");
        assert_eq!(stats.paused_for_memory.load(Ordering::Relaxed), 1);
        let recheck = big.poll_timeout().unwrap();
        assert!(recheck <= t0 + RECHECK);
        // A connection within its share is still served, small messages included.
        assert!(small.wants_read());
        deliver(&mut small, &client_frame(0x1, b"hi"));
        assert!(matches!(small.recv(), (Some(Ok(_)), _)));
        // The wait passes: 1013, nothing more is read, the memory is given back.
        assert!(!big.handle_timeout(t0 + Duration::from_millis(500)));
        assert!(big.handle_timeout(t0 + Duration::from_secs(1)));
        let out = written(&mut big);
        assert_eq!(&out[..4], &[0x88, out[1], 0x03, 0xF5], "close 1013");
        assert!(matches!(
            big.recv(),
            (Some(Err(Error::Closed(f))), _) if f.code == CloseCode::TRY_AGAIN_LATER
        ));
        assert_eq!(stats.paused_for_memory.load(Ordering::Relaxed), 0);
        assert_eq!(stats.closed_for_memory.load(Ordering::Relaxed), 1);
        assert!(!b.over());
        drop((big, small));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_paused_connection_resumes_when_others_give_memory_back() {
        let t0 = Instant::now();
        let (b, stats) = budget(64 * 1024);
        let mut hog = budgeted(&b);
        let mut waiting = budgeted(&b);
        deliver(&mut hog, &partial_frame(80 * 1024));
        deliver(&mut waiting, &partial_frame(8 * 1024));
        waiting.handle_timeout(t0);
        assert!(!waiting.wants_read());
        assert_eq!(stats.paused_for_memory.load(Ordering::Relaxed), 1);
        drop(hog);
        // At the recheck it finds the budget free and reads again.
        assert!(waiting.handle_timeout(t0 + RECHECK));
        assert!(waiting.wants_read());
        assert_eq!(stats.paused_for_memory.load(Ordering::Relaxed), 0);
        // Still over its share: it looks again soon, and has until the wait is over to
        // get under it.
        assert_eq!(waiting.poll_timeout(), Some(t0 + 2 * RECHECK));
        assert!(!waiting.handle_timeout(t0 + 2 * RECHECK));
        // The frame completes: the wait is forgotten.
        deliver(&mut waiting, &partial_frame(1 << 21)[8 * 1024..]);
        assert!(matches!(waiting.recv(), (Some(Ok(_)), _)));
        waiting.release_idle_buffer();
        waiting.handle_timeout(t0 + 3 * RECHECK);
        assert_eq!(waiting.poll_timeout(), None);
        assert!(waiting.wants_read());
    }

    #[test]
    fn deflate_streams_are_charged_but_do_not_count_against_the_share() {
        let t0 = Instant::now();
        let (b, stats) = budget(64 * 1024);
        let params = crate::proto::extensions::DeflateParams {
            min_size: 0,
            ..Default::default()
        };
        let conn =
            Connection::new(Role::Server, Config::default(), BytesMut::new()).with_deflate(params);
        let mut s = Session::new(conn, Rc::new(SocketOptions::default())).with_budget(b.clone());
        s.try_send(&Message::text("compressible ".repeat(1000)))
            .unwrap();
        let _ = written(&mut s);
        assert!(
            s.conn.deflate_streams_memory() >= 128 * 1024,
            "a compressor"
        );
        assert!(
            b.over(),
            "charged: the worker's part is spent by the streams alone"
        );
        // Yet this connection holds nothing the peer makes grow: it is not paused and
        // does not poll the budget; its one deadline is the compressor's idle release.
        s.handle_timeout(t0);
        assert!(s.wants_read());
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));
        assert_eq!(stats.paused_for_memory.load(Ordering::Relaxed), 0);
        drop(s);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn send_waits_past_its_share_while_the_budget_is_spent_and_wakes_as_it_drains() {
        let (b, _stats) = budget(16 * 1024);
        let mut s = budgeted(&b);
        let mut hog = budgeted(&b);
        deliver(&mut hog, &partial_frame(20 * 1024));
        assert!(b.over());
        // The first message goes (nothing queued); the next waits: the queue is past the
        // share while the budget is spent.
        assert!(s.try_send(&Message::binary(vec![1u8; 4096])).unwrap());
        assert!(!s.try_send(&Message::binary(vec![2u8; 10])).unwrap());
        let mut out = Vec::new();
        s.take_transmit(&mut out);
        assert!(s.on_written(4100), "drained: send wakes");
        assert!(s.try_send(&Message::binary(vec![2u8; 10])).unwrap());
    }

    proptest::proptest! {
        /// After any steps on any sessions of one worker, and their end, nothing is
        /// charged: the budget's sum is what the sessions hold, and 0 when they are gone.
        #[test]
        fn the_charge_returns_to_zero(steps in proptest::collection::vec((0usize..4, 0u8..8, 1usize..70_000), 1..60)) {
            let t0 = Instant::now();
            let (b, stats) = budget(128 * 1024);
            let mut sessions: Vec<Session> = (0..4).map(|_| budgeted(&b)).collect();
            for (i, (who, what, n)) in steps.into_iter().enumerate() {
                let s = &mut sessions[who];
                match what {
                    0 => { deliver(s, &client_frame(0x2, &vec![1u8; n % 3000])); }
                    1 => { deliver(s, &partial_frame(n.min(60_000))); }
                    2 => { let _ = s.recv(); }
                    3 => { let _ = s.try_send(&Message::binary(vec![3u8; n])); }
                    4 => { let mut out = Vec::new(); s.take_transmit(&mut out);
                           let len = out.iter().map(Bytes::len).sum::<usize>();
                           s.on_written(len / 2); }
                    5 => { s.handle_timeout(t0 + Duration::from_millis(400 * i as u64)); }
                    6 => { s.release_idle_buffer(); }
                    _ => { let _ = s.start_close(CloseCode::NORMAL, ""); }
                }
                let held: usize = sessions.iter().map(Session::held).sum();
                proptest::prop_assert_eq!(b.used(), held);
            }
            sessions.truncate(2);
            sessions[0].finish();
            drop(sessions);
            proptest::prop_assert_eq!(b.used(), 0);
            proptest::prop_assert_eq!(stats.paused_for_memory.load(Ordering::Relaxed), 0);
            proptest::prop_assert_eq!(stats.buffered_bytes.load(Ordering::Relaxed), 0);
        }
    }

    /// A TLS client layer and a server session over TLS, their handshake done in memory.
    fn tls_pair() -> (TlsLayer, Session) {
        use crate::runtime::tls::{ClientTls, ServerTls};
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = made.cert.pem();
        let server_tls =
            ServerTls::from_pem(cert.as_bytes(), made.signing_key.serialize_pem().as_bytes())
                .unwrap();
        let client_tls = ClientTls::from_ca_pem(cert.as_bytes()).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = client_tls.connect(name).unwrap();
        let mut server = server_tls.accept().unwrap();
        for _ in 0..10 {
            let to_server = client.take_records_vec();
            server.feed(&to_server, |_| panic!("plaintext")).unwrap();
            let to_client = server.take_records_vec();
            client.feed(&to_client, |_| panic!("plaintext")).unwrap();
            if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
                break;
            }
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        let session = session(SocketOptions::default()).with_tls(server);
        (client, session)
    }

    /// Messages as the client's records: each frame sealed on its own (a record each), a
    /// close last.
    fn client_records(client: &mut TlsLayer) -> Vec<u8> {
        let mut wire = Vec::new();
        for frame in [
            client_frame(0x1, "héllo".as_bytes()),
            client_frame(0x2, &[7u8; 1000]),
            client_frame(0x1, b"third"),
            client_frame(0x8, b""),
        ] {
            wire.extend(client.seal_vec(&frame));
        }
        wire
    }

    fn inbox(s: &mut Session) -> Vec<Message> {
        std::iter::from_fn(|| s.recv().0.and_then(Result::ok)).collect()
    }

    #[test]
    fn tls_records_decrypt_into_the_same_messages_at_every_split() {
        let expected = vec![
            Message::text("héllo"),
            Message::binary(vec![7u8; 1000]),
            Message::text("third"),
        ];
        let (mut client, _) = tls_pair();
        let len = client_records(&mut client).len();
        for cut in 0..=len {
            let (mut client, mut s) = tls_pair();
            let wire = client_records(&mut client);
            for piece in [&wire[..cut], &wire[cut..]] {
                if !piece.is_empty() {
                    deliver(&mut s, piece);
                }
            }
            assert_eq!(inbox(&mut s), expected, "split at {cut} of {len}");
            assert!(s.is_ended(), "split at {cut}: the close frame came");
        }
    }

    #[test]
    fn the_close_reply_leaves_in_a_record_followed_by_close_notify() {
        let (mut client, mut s) = tls_pair();
        let wire = client_records(&mut client);
        deliver(&mut s, &wire);
        assert_eq!(inbox(&mut s).len(), 3);
        let out = written(&mut s);
        let mut plain = Vec::new();
        let fed = client.feed(&out, |p| plain.extend_from_slice(p)).unwrap();
        // Our close frame (1000), then close_notify: the peer sees the end of TLS.
        assert_eq!(plain, [0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(fed, Fed::PeerClosed);
        assert_eq!(s.tcp_step(), TcpStep::ShutdownWrite);
    }

    #[test]
    fn a_corrupt_record_ends_the_session_with_the_tls_error_and_an_alert() {
        let (mut client, mut s) = tls_pair();
        let mut wire = client.seal_vec(&client_frame(0x1, b"tampered"));
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert!(deliver(&mut s, &wire).wake_recv);
        assert!(matches!(s.recv().0, Some(Err(Error::Tls(_)))));
        assert!(!s.wants_read());
        // The alert goes out, then the socket is closed.
        let out = written(&mut s);
        let alert = client.feed(&out, |_| panic!("plaintext"));
        assert!(
            matches!(alert, Err(rustls::Error::AlertReceived(_))),
            "{alert:?}"
        );
        assert_eq!(s.tcp_step(), TcpStep::Close);
    }

    #[test]
    fn many_small_frames_of_one_turn_leave_as_one_record() {
        let (mut client, mut s) = tls_pair();
        for i in 0..100 {
            s.try_send(&Message::text(format!("message {i}"))).unwrap();
        }
        let out = written(&mut s);
        // One application-data record: a 5-byte header and its length covers it all.
        assert_eq!(out[0], 0x17);
        let record_len = u16::from_be_bytes([out[3], out[4]]) as usize;
        assert_eq!(5 + record_len, out.len(), "one record");
        let mut plain = Vec::new();
        client.feed(&out, |p| plain.extend_from_slice(p)).unwrap();
        assert_eq!(
            plain.len(),
            (0..100)
                .map(|i| 2 + format!("message {i}").len())
                .sum::<usize>()
        );
    }
}
