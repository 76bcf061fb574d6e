//! The permessage-deflate codec (RFC 7692 §7.2): a connection's compressor and
//! decompressor, allocated on first use.
//!
//! # Receiving
//! A compressed message's payload is a raw DEFLATE stream cut at a sync flush, without the
//! flush's last four bytes. [`Inflater::inflate`] is fed each piece of payload as it arrives
//! and appends what it inflates to the message; [`Inflater::finish`] appends the
//! `00 00 ff ff` the sender removed (§7.2.2) and hands the message over.
//!
//! Each piece is inflated into the message's own buffer, grown in steps and never past the
//! message limit plus one byte, then the new bytes are UTF-8-checked (text) and the size
//! checked. So a zip bomb stops at the limit (1009) with at most `limit + 1` bytes held, and
//! invalid UTF-8 fails (1007) as soon as it is inflated.
//!
//! # Sending
//! [`Compressor::compress`] deflates a whole message with a sync flush and strips the
//! trailing `00 00 ff ff` (§7.2.1); the connection then frames it with RSV1 on the first
//! frame.
//!
//! # Memory
//! A stream exists only between the first message that needs it and, without context
//! takeover, the end of that message. See
//! [`DeflateConfig`](super::negotiation::DeflateConfig) for the sizes.
//!
//! # Shared streams
//! A direction without context takeover needs a stream only while one message is
//! compressed or inflated. A [`StreamPool`], owned by the caller (one per worker thread,
//! say), lends such streams to connections for the duration of a call
//! ([`Connection::send_with`], [`Connection::poll_event_with`]) and takes them back,
//! reset, when the message is done: a worker then holds as many streams as it has messages
//! in flight at once (uWebSockets' `SHARED_COMPRESSOR`, without its restriction to whole
//! messages: a connection keeps its lent decompressor across reads until its message ends),
//! and no allocation per message. The core stays free of thread-locals: the pool is lent.
//!
//! [`Connection::send_with`]: crate::proto::connection::Connection::send_with
//! [`Connection::poll_event_with`]: crate::proto::connection::Connection::poll_event_with

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::proto::error::ProtocolError;
use crate::proto::utf8::Utf8Validator;

/// What a sync flush ends with, removed by the sender and restored by the receiver
/// (RFC 7692 §7.2.1, §7.2.2).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The smallest step the inflated message's buffer grows by.
const MIN_GROW: usize = 4096;

/// Bytes allocated by a decompressor: zlib-rs allocates the full 2^15 window (+64)
/// whatever the negotiated size, plus about 7 KiB of state. (Pages are touched as the
/// window fills: after one 1 KiB message the resident cost is about 20 KiB.)
pub const INFLATE_STREAM_BYTES: usize = (1 << 15) + 64 + 7 * 1024;

/// Bytes allocated by a compressor with a window of `window_bits`, as zlib-rs 0.6 lays it
/// out: window and chain `4 × 2^w`, a hash head of 64 Ki entries (128 KiB, fixed), and
/// the symbol and pending buffers of memLevel 8 (112 KiB; flate2 does not expose memLevel),
/// about 4 KiB of state: 372 KiB at w = 15, 246 KiB at w = 9. C zlib's
/// `2^(w+2) + 2^(memLevel+9)` (256 / 130 KiB) is less. Measured resident after a first
/// 1.2 KB message: 316 KiB (w = 15), 192 KiB (w = 9).
pub const fn deflate_stream_bytes(window_bits: u8) -> usize {
    (4 << window_bits as usize) + (240 << 10) + (4 << 10)
}

/// Inflates the compressed messages of one direction.
#[derive(Debug)]
pub struct Inflater {
    window_bits: u8,
    no_context_takeover: bool,
    /// Boxed: flate2's stream handle is 152 bytes inline, which an idle negotiated
    /// connection would otherwise carry.
    stream: Option<Box<Decompress>>,
    /// Keep the (reset) stream after a message without context takeover, for a
    /// [`StreamPool`] to take back, instead of freeing it.
    park: bool,
    /// A message is being inflated (the stream holds its state).
    active: bool,
    /// The message being inflated.
    out: Vec<u8>,
    /// The sender ended the DEFLATE stream (a block with BFINAL set, §7.2.3.4): the rest of
    /// this message is ignored, and the next starts a new stream.
    ended: bool,
}

impl Inflater {
    /// A decompressor for a peer compressing with at most `window_bits` (8–15; 8 is
    /// inflated with 9, which reads a 256-byte window's stream correctly). With
    /// `no_context_takeover` the stream is freed after every message. Allocates nothing.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Inflater {
            window_bits: window_bits.clamp(9, 15),
            no_context_takeover,
            stream: None,
            park: false,
            active: false,
            out: Vec::new(),
            ended: false,
        }
    }

    /// Inflates the next piece of a compressed message, appending to the message. `utf8`:
    /// the validator of a text message, fed the new inflated bytes. Fails with
    /// [`ProtocolError::InvalidCompressedData`], [`ProtocolError::InvalidUtf8`] or
    /// [`ProtocolError::MessageTooLarge`] (past `max` inflated bytes, with at most
    /// `max + 1` held).
    pub fn inflate(
        &mut self,
        input: &[u8],
        max: usize,
        utf8: Option<&mut Utf8Validator>,
    ) -> Result<(), ProtocolError> {
        if input.is_empty() {
            return Ok(());
        }
        self.run(input, FlushDecompress::None, max, utf8)
    }

    /// Ends the message: restores the tail, and returns the inflated bytes. The caller
    /// finishes the UTF-8 validator. Frees the stream without context takeover.
    pub fn finish(
        &mut self,
        max: usize,
        utf8: Option<&mut Utf8Validator>,
    ) -> Result<Bytes, ProtocolError> {
        if !self.ended {
            // RFC 7692 §7.2.2: append 0x00 0x00 0xff 0xff to the tail end of the payload.
            self.run(&TAIL, FlushDecompress::Sync, max, utf8)?;
        }
        let mut out = std::mem::take(&mut self.out);
        // A buffer grown by doubling may be up to twice the message: give the excess back
        // before the application keeps it.
        if out.capacity() - out.len() > MIN_GROW.max(out.len() / 4) {
            out.shrink_to_fit();
        }
        self.end_message(&out);
        Ok(Bytes::from(out))
    }

    /// Drops the message in progress and the stream (the connection failed).
    pub fn release(&mut self) {
        self.out = Vec::new();
        self.stream = None;
        self.ended = false;
        self.active = false;
    }

    /// Bytes held: the stream, if allocated, and the message buffer.
    pub fn memory(&self) -> usize {
        self.out.capacity()
            + if self.stream.is_some() {
                INFLATE_STREAM_BYTES
            } else {
                0
            }
    }

    /// Whether the decompression stream is allocated.
    pub fn has_stream(&self) -> bool {
        self.stream.is_some()
    }

    fn end_message(&mut self, message: &[u8]) {
        // RFC 7692 §7.2.2: without context takeover each message may be inflated with an
        // empty window.
        if self.no_context_takeover {
            match &mut self.stream {
                Some(s) if self.park => s.reset(false),
                _ => self.stream = None,
            }
        } else if self.ended
            && let Some(s) = &mut self.stream
        {
            // After a BFINAL block (§7.2.3.4) zlib takes no more input: the next message
            // is a new stream, which may still refer back to this one's bytes, so they
            // become its dictionary. (History from before this message is not carried: a
            // sender that ends its stream per message and refers further back is not
            // one seen in practice.)
            s.reset(false);
            let window = 1usize << self.window_bits;
            if s.set_dictionary(&message[message.len().saturating_sub(window)..])
                .is_err()
            {
                self.stream = None;
            }
        }
        self.ended = false;
        self.active = false;
    }

    /// Takes a stream from `pool` if this direction has no context takeover and holds
    /// none, and keeps the stream at the end of a message for [`give_back`](Self::give_back).
    pub fn borrow_from(&mut self, pool: &mut StreamPool) {
        if self.no_context_takeover {
            self.park = true;
            if self.stream.is_none() {
                self.stream = pool.take_inflate(self.window_bits);
            }
        }
    }

    /// Returns the stream to `pool` unless a message is still being inflated (then the
    /// connection keeps it until the message ends).
    pub fn give_back(&mut self, pool: &mut StreamPool) {
        if self.no_context_takeover {
            self.park = false;
            if !self.active
                && let Some(s) = self.stream.take()
            {
                pool.put_inflate(self.window_bits, s);
            }
        }
    }

    fn run(
        &mut self,
        mut input: &[u8],
        flush: FlushDecompress,
        max: usize,
        mut utf8: Option<&mut Utf8Validator>,
    ) -> Result<(), ProtocolError> {
        if self.ended {
            // RFC 7692 §7.2.3.4's own example has a byte after its final block: what
            // follows the end of the DEFLATE stream is ignored.
            return Ok(());
        }
        let window_bits = self.window_bits;
        self.active = true;
        let stream = self
            .stream
            .get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, window_bits)));
        let cap_limit = max.saturating_add(1);
        loop {
            if self.out.len() == self.out.capacity() {
                // Grow by doubling, at least MIN_GROW (or 4x the input, a typical ratio),
                // never past the limit plus one byte: that byte is what proves the limit
                // was passed.
                let len = self.out.len();
                let target = (len * 2)
                    .max(len + MIN_GROW)
                    .max(input.len().saturating_mul(4))
                    .min(cap_limit);
                if target <= len {
                    // len == max + 1: already reported below; unreachable in practice.
                    return Err(ProtocolError::MessageTooLarge {
                        len: len as u64,
                        max,
                    });
                }
                self.out.reserve_exact(target - len);
            }
            let (in_before, out_before) = (stream.total_in(), self.out.len());
            let status = stream
                .decompress_vec(input, &mut self.out, flush)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            let consumed = (stream.total_in() - in_before) as usize;
            input = input.get(consumed..).unwrap_or_default();
            // The receive pipeline: inflate → UTF-8 → limit.
            if let Some(v) = utf8.as_deref_mut() {
                v.feed(&self.out[out_before..])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            if self.out.len() > max {
                return Err(ProtocolError::MessageTooLarge {
                    len: self.out.len() as u64,
                    max,
                });
            }
            let room = self.out.len() < self.out.capacity();
            if status == Status::StreamEnd {
                self.ended = true;
                return Ok(());
            }
            if input.is_empty() && room {
                return Ok(());
            }
            if consumed == 0 && self.out.len() == out_before && room {
                // No progress with input and room: zlib is stuck on corrupt data.
                return Err(ProtocolError::InvalidCompressedData);
            }
        }
    }
}

/// Compresses the messages of one direction.
#[derive(Debug)]
pub struct Compressor {
    /// 0: never compress (the peer allowed only a window of 8, which zlib cannot produce).
    window_bits: u8,
    no_context_takeover: bool,
    level: u8,
    min_size: usize,
    /// Boxed, as [`Inflater`]'s.
    stream: Option<Box<Compress>>,
    /// See [`Inflater`]'s: keep the reset stream for a [`StreamPool`].
    park: bool,
}

impl Compressor {
    /// A compressor with at most `window_bits` (8 means: send everything uncompressed),
    /// zlib `level` (0–9), compressing messages of at least `min_size` bytes. With
    /// `no_context_takeover` the stream is freed after every message. Allocates nothing.
    pub fn new(window_bits: u8, no_context_takeover: bool, level: u8, min_size: usize) -> Self {
        Compressor {
            window_bits: if window_bits < 9 {
                0
            } else {
                window_bits.min(15)
            },
            no_context_takeover,
            level: level.min(9),
            min_size,
            stream: None,
            park: false,
        }
    }

    /// Whether a message of `len` bytes would be compressed.
    #[inline]
    pub fn wants(&self, len: usize) -> bool {
        self.window_bits != 0 && len >= self.min_size
    }

    /// The compressed payload of a message (tail stripped), or `None` to send it
    /// uncompressed: below the threshold, a window this side cannot produce, or (without
    /// context takeover, where the choice is free, and with a threshold above 0) when
    /// compressing did not make it smaller.
    pub fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        if !self.wants(payload.len()) {
            return None;
        }
        let (level, window_bits) = (self.level, self.window_bits);
        let stream = self.stream.get_or_insert_with(|| {
            Box::new(Compress::new_with_window_bits(
                Compression::new(u32::from(level)),
                false,
                window_bits,
            ))
        });
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = stream.total_in();
            if stream
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                // A fresh stream next time: the peer never saw this output, and a new
                // stream's output refers to nothing before it, so either side's window
                // stays consistent.
                self.stream = None;
                return None;
            }
            input = input
                .get((stream.total_in() - before) as usize..)
                .unwrap_or_default();
            // A sync flush is complete when it returns with output room left.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        // RFC 7692 §7.2.1: remove the 4 octets 0x00 0x00 0xff 0xff at the tail end.
        if !out.ends_with(&TAIL) {
            self.stream = None;
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        if self.no_context_takeover {
            match &mut self.stream {
                Some(s) if self.park => s.reset(),
                _ => self.stream = None,
            }
            // No window to keep in step with the peer's: send whichever is smaller (unless
            // a threshold of 0 asks for every message compressed).
            if out.len() >= payload.len() && self.min_size > 0 {
                return None;
            }
        }
        Some(Bytes::from(out))
    }

    /// Frees the stream. Safe between messages even with context takeover: a new stream's
    /// output refers to nothing the peer has not got.
    pub fn release(&mut self) {
        self.stream = None;
    }

    /// Takes a stream from `pool` if this direction has no context takeover and holds
    /// none; it is kept, reset, after the message for [`give_back`](Self::give_back).
    pub fn borrow_from(&mut self, pool: &mut StreamPool) {
        if self.no_context_takeover && self.window_bits != 0 {
            self.park = true;
            if self.stream.is_none() {
                self.stream = pool.take_deflate(self.window_bits, self.level);
            }
        }
    }

    /// Returns the stream to `pool`.
    pub fn give_back(&mut self, pool: &mut StreamPool) {
        if self.no_context_takeover {
            self.park = false;
            if let Some(s) = self.stream.take() {
                pool.put_deflate(self.window_bits, self.level, s);
            }
        }
    }

    /// Bytes held by the stream, if allocated.
    pub fn memory(&self) -> usize {
        if self.stream.is_some() {
            deflate_stream_bytes(self.window_bits)
        } else {
            0
        }
    }

    /// Whether the compression stream is allocated.
    pub fn has_stream(&self) -> bool {
        self.stream.is_some()
    }
}

/// Streams kept between messages for connections without context takeover, to be lent
/// per call: one pool per thread, owned by the caller (see the module docs).
///
/// Holds at most `max_idle` idle streams of each kind; a connection that finds the pool
/// empty allocates, and its stream joins the pool afterwards (or is freed past the cap).
/// Streams differ by window (and, for compressors, level), so a pool serving one
/// configuration keeps one kind of each.
#[derive(Debug)]
pub struct StreamPool {
    inflate: Vec<(u8, Box<Decompress>)>,
    deflate: Vec<((u8, u8), Box<Compress>)>,
    max_idle: usize,
}

impl Default for StreamPool {
    /// A pool keeping up to 4 idle streams of each kind (about 1.2 MiB at most).
    fn default() -> Self {
        StreamPool::new(4)
    }
}

impl StreamPool {
    /// A pool keeping up to `max_idle` idle streams of each kind.
    pub fn new(max_idle: usize) -> Self {
        StreamPool {
            inflate: Vec::new(),
            deflate: Vec::new(),
            max_idle,
        }
    }

    /// Idle (decompressors, compressors) held.
    pub fn idle(&self) -> (usize, usize) {
        (self.inflate.len(), self.deflate.len())
    }

    /// Bytes held by the idle streams.
    pub fn memory(&self) -> usize {
        self.inflate.len() * INFLATE_STREAM_BYTES
            + self
                .deflate
                .iter()
                .map(|((w, _), _)| deflate_stream_bytes(*w))
                .sum::<usize>()
    }

    fn take_inflate(&mut self, window_bits: u8) -> Option<Box<Decompress>> {
        let at = self.inflate.iter().rposition(|(w, _)| *w == window_bits)?;
        Some(self.inflate.swap_remove(at).1)
    }

    fn put_inflate(&mut self, window_bits: u8, stream: Box<Decompress>) {
        if self.inflate.len() < self.max_idle {
            self.inflate.push((window_bits, stream));
        }
    }

    fn take_deflate(&mut self, window_bits: u8, level: u8) -> Option<Box<Compress>> {
        let at = self
            .deflate
            .iter()
            .rposition(|(k, _)| *k == (window_bits, level))?;
        Some(self.deflate.swap_remove(at).1)
    }

    fn put_deflate(&mut self, window_bits: u8, level: u8, stream: Box<Compress>) {
        if self.deflate.len() < self.max_idle {
            self.deflate.push(((window_bits, level), stream));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_all(inf: &mut Inflater, pieces: &[&[u8]]) -> Result<Bytes, ProtocolError> {
        for p in pieces {
            inf.inflate(p, 1 << 20, None)?;
        }
        inf.finish(1 << 20, None)
    }

    // RFC 7692 §7.2.3.1: "Hello" compressed: 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00.
    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    #[test]
    fn rfc_7692_hello_in_every_split() {
        for cut in 0..=HELLO.len() {
            let mut inf = Inflater::new(15, false);
            let out = inflate_all(&mut inf, &[&HELLO[..cut], &HELLO[cut..]]).unwrap();
            assert_eq!(&out[..], b"Hello", "cut {cut}");
        }
    }

    #[test]
    fn rfc_7692_context_takeover_second_message() {
        // §7.2.3.2: the second "Hello" with the first's window: 0xf2 0x00 0x11 0x00 0x00.
        let mut inf = Inflater::new(15, false);
        assert_eq!(&inflate_all(&mut inf, &[&HELLO]).unwrap()[..], b"Hello");
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        assert_eq!(&inflate_all(&mut inf, &[&second]).unwrap()[..], b"Hello");
        // Without context takeover the same bytes refer to a window that is gone.
        let mut fresh = Inflater::new(15, true);
        assert_eq!(&inflate_all(&mut fresh, &[&HELLO]).unwrap()[..], b"Hello");
        assert!(!fresh.has_stream(), "freed after the message");
        assert_eq!(
            inflate_all(&mut fresh, &[&second]),
            Err(ProtocolError::InvalidCompressedData)
        );
    }

    #[test]
    fn rfc_7692_no_compression_and_bfinal_blocks() {
        // §7.2.3.3: a stored block: 0x00 0x05 0x00 0xfa 0xff "Hello" 0x00.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
        ];
        let mut inf = Inflater::new(15, false);
        assert_eq!(&inflate_all(&mut inf, &[&stored]).unwrap()[..], b"Hello");
        // §7.2.3.4: with BFINAL set: 0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00 (the last byte
        // is after the end of the stream).
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        for split in 0..=bfinal.len() {
            let mut inf = Inflater::new(15, false);
            let out = inflate_all(&mut inf, &[&bfinal[..split], &bfinal[split..]]).unwrap();
            assert_eq!(&out[..], b"Hello");
            // The next message starts a new stream, with this one as its window: the
            // context-takeover second "Hello" (§7.2.3.2) still reads.
            let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
            assert_eq!(&inflate_all(&mut inf, &[&second]).unwrap()[..], b"Hello");
            assert_eq!(&inflate_all(&mut inf, &[&HELLO]).unwrap()[..], b"Hello");
        }
        // §7.2.3.5: two DEFLATE blocks in one message.
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        let mut inf = Inflater::new(15, false);
        assert_eq!(&inflate_all(&mut inf, &[&two]).unwrap()[..], b"Hello");
    }

    #[test]
    fn rfc_7692_hello_compresses_to_the_vector() {
        // Level 6 is what the RFC's example used; the first message matches byte for byte.
        let mut c = Compressor::new(15, false, 6, 0);
        assert_eq!(&c.compress(b"Hello").unwrap()[..], &HELLO);
        // The second message with the first's window is shorter and inflates back.
        let second = c.compress(b"Hello").unwrap();
        assert!(second.len() < HELLO.len(), "{second:02x?}");
        let mut inf = Inflater::new(15, false);
        inflate_all(&mut inf, &[&HELLO]).unwrap();
        assert_eq!(&inflate_all(&mut inf, &[&second]).unwrap()[..], b"Hello");
    }

    #[test]
    fn garbage_is_invalid_compressed_data() {
        let mut inf = Inflater::new(15, false);
        // BTYPE 11 is reserved.
        assert_eq!(
            inf.inflate(&[0xff, 0xff, 0xff], 1 << 20, None),
            Err(ProtocolError::InvalidCompressedData)
        );
    }

    #[test]
    fn zip_bomb_stops_at_the_limit_plus_one_byte() {
        let zeros = vec![0u8; 8 << 20];
        let mut c = Compressor::new(15, true, 9, 0);
        let bomb = c.compress(&zeros).unwrap();
        assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
        let max = 100_000;
        let mut inf = Inflater::new(15, false);
        let mut failed = None;
        for piece in bomb.chunks(512) {
            if let Err(e) = inf.inflate(piece, max, None) {
                failed = Some(e);
                break;
            }
            assert!(inf.out.capacity() <= max + 1);
        }
        assert!(matches!(
            failed,
            Some(ProtocolError::MessageTooLarge { max: 100_000, .. })
        ));
        assert!(inf.out.capacity() <= max + 1, "{}", inf.out.capacity());
        assert!(inf.memory() <= max + 1 + INFLATE_STREAM_BYTES);
    }

    #[test]
    fn invalid_utf8_fails_as_soon_as_inflated() {
        let mut text = vec![b'a'; 100_000];
        text[10] = 0xff;
        let mut c = Compressor::new(15, true, 1, 0);
        let z = c.compress(&text).unwrap();
        let mut inf = Inflater::new(15, false);
        let mut v = Utf8Validator::new();
        // The whole payload at once: fails before the end of the message.
        assert_eq!(
            inf.inflate(&z, 1 << 20, Some(&mut v)),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn small_and_incompressible_messages_go_uncompressed() {
        let mut c = Compressor::new(15, true, 1, 16);
        assert_eq!(c.compress(b"short"), None);
        let mut rng = fastrand::Rng::with_seed(7);
        let random: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
        assert_eq!(
            c.compress(&random),
            None,
            "no context takeover: the smaller one"
        );
        assert!(!c.has_stream());
        // A threshold of 0: every message compressed, even when it grows.
        let mut c = Compressor::new(15, true, 1, 0);
        let out = c.compress(&random).expect("compressed although larger");
        assert!(out.len() >= random.len());
        assert!(c.compress(b"x").is_some());
        // With context takeover the compressed form is always sent (the window moved).
        let mut c = Compressor::new(15, false, 1, 16);
        assert!(c.compress(&random).is_some());
        assert!(c.has_stream());
        assert_eq!(c.memory(), 372 * 1024);
        // A window of 8: never compressed.
        let mut c = Compressor::new(8, false, 1, 0);
        assert_eq!(c.compress(&[b'a'; 1000]), None);
    }
}
