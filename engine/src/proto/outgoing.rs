//! The queue of encoded frames waiting for the socket.
//!
//! Small frames (header and payload up to [`INLINE_PAYLOAD_MAX`]) are copied into one
//! contiguous tail buffer, so that every frame queued in one event-loop turn leaves in one
//! `write`. A larger payload is queued as its own `Bytes` chunk after its header, so the IO
//! driver sends it with a vectored write and the payload is never copied. Masked (client)
//! frames are always copied, since masking has to write the payload anyway.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{FrameHeader, MAX_HEADER_LEN};
use super::mask::mask_copy;

/// Payloads up to this many bytes are copied next to their header; larger ones are queued
/// by reference. A copy of 1 KiB costs less than an extra iovec and its page-pinning in the
/// kernel.
pub const INLINE_PAYLOAD_MAX: usize = 1024;

/// Frames already encoded (a publish) up to this many bytes are copied into the tail;
/// larger ones are queued by reference. Lower than [`INLINE_PAYLOAD_MAX`]: a publish goes
/// to many sockets at once, and a copy per subscriber makes each one's memory grow with
/// every message (5,000 subscribers x 1 KiB: 5 MB a publish, their buffers all
/// growing at the same moment, a second of page faults on this machine), where a
/// reference costs 32 bytes and one iovec in the kernel's copy.
pub const ENCODED_INLINE_MAX: usize = 256;

/// The first tail buffer's size; each next one is twice the last, up to [`TAIL_MAX`].
const TAIL_CHUNK: usize = 4096;

/// The largest tail buffer. A full tail is sealed as a chunk and a new one allocated
/// (never grown by reallocation, which doubles its capacity past what it holds): what
/// the queue allocates stays within a frame per buffer of what it holds, so a memory
/// budget that counts queued bytes counts the memory too.
const TAIL_MAX: usize = 64 * 1024;

/// Encoded frames in order, as chunks of bytes to write.
#[derive(Debug, Default)]
pub struct Outgoing {
    /// Chunks sealed before the tail, in order.
    chunks: VecDeque<Bytes>,
    /// Small frames coalesced after the last chunk.
    tail: BytesMut,
    /// Bytes in `chunks` and `tail`.
    queued: usize,
    /// The size the tail buffer was allocated with (0: none yet).
    tail_size: usize,
}

impl Outgoing {
    /// Bytes waiting to be written.
    #[inline]
    pub fn len(&self) -> usize {
        self.queued
    }

    /// Whether nothing is waiting.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    #[inline]
    fn reserve_tail(&mut self, additional: usize) {
        if self.tail.capacity() - self.tail.len() < additional {
            self.new_tail(additional);
        }
    }

    /// Seals the tail (if it holds anything) and starts a new one with room for
    /// `additional` bytes.
    #[cold]
    fn new_tail(&mut self, additional: usize) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        } else if self.tail.try_reclaim(additional) {
            // Everything written from this buffer has been sent and dropped: the same
            // allocation again, rather than a new one for a connection that keeps
            // sending. (What cost the fan-out its page faults was copying each publish
            // per subscriber, fixed in `push_encoded`; this saves an allocation only.)
            return;
        }
        self.tail_size = (self.tail_size * 2).clamp(TAIL_CHUNK, TAIL_MAX);
        self.tail = BytesMut::with_capacity(self.tail_size.max(additional));
    }

    /// Queues an unmasked frame. `header.mask` must be `None`.
    // Always inlined: with a second caller (compressed frames) it was outlined, and the
    // header's encoding then stopped folding the constant RSV of the uncompressed path.
    #[inline(always)]
    pub fn push(&mut self, header: &FrameHeader, payload: &Bytes) {
        debug_assert!(header.mask.is_none());
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        self.queued += head_len + payload.len();
        if payload.len() <= INLINE_PAYLOAD_MAX {
            self.reserve_tail(head_len + payload.len());
            self.tail.put_slice(&head[..head_len]);
            self.tail.put_slice(payload);
        } else {
            self.reserve_tail(head_len);
            self.tail.put_slice(&head[..head_len]);
            self.chunks.push_back(self.tail.split().freeze());
            self.chunks.push_back(payload.clone());
        }
    }

    /// Queues frames already encoded (a [`PreparedMessage`](super::prepared::PreparedMessage)):
    /// copied next to the other small frames up to [`ENCODED_INLINE_MAX`], queued by
    /// reference (the same allocation on every connection) when larger.
    #[inline]
    pub fn push_encoded(&mut self, wire: &Bytes) {
        self.queued += wire.len();
        if wire.len() <= ENCODED_INLINE_MAX {
            self.reserve_tail(wire.len());
            self.tail.put_slice(wire);
        } else {
            if !self.tail.is_empty() {
                self.chunks.push_back(self.tail.split().freeze());
            }
            self.chunks.push_back(wire.clone());
        }
    }

    /// Queues a masked frame: the header with its key, then the payload masked while copied.
    pub fn push_masked(&mut self, header: &FrameHeader, key: [u8; 4], payload: &[u8]) {
        let header = FrameHeader {
            mask: Some(key),
            ..*header
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        self.queued += head_len + payload.len();
        self.reserve_tail(head_len + payload.len());
        self.tail.put_slice(&head[..head_len]);
        let start = self.tail.len();
        // Grow by the payload's length, then mask straight from `payload` into it.
        self.tail.resize(start + payload.len(), 0);
        mask_copy(&mut self.tail[start..], payload, key, 0);
    }

    /// Moves every queued chunk, in order, to the end of `out`, leaving the queue empty.
    pub fn drain_into(&mut self, out: &mut Vec<Bytes>) {
        out.extend(self.chunks.drain(..));
        if !self.tail.is_empty() {
            out.push(self.tail.split().freeze());
        }
        self.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::OpCode;

    fn header(len: usize) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: len as u64,
        }
    }

    #[test]
    fn small_frames_coalesce_into_one_chunk() {
        let mut q = Outgoing::default();
        for _ in 0..100 {
            q.push(&header(20), &Bytes::from_static(&[7; 20]));
        }
        assert_eq!(q.len(), 100 * 22);
        let mut out = Vec::new();
        q.drain_into(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 2200);
        assert!(q.is_empty());
    }

    #[test]
    fn a_drained_buffer_is_used_again_once_what_was_sent_from_it_is_gone_and_never_before() {
        let frame = |b: u8| (header(1000), Bytes::from(vec![b; 1000]));
        let wire = |b: u8| [&[0x82, 126, 3, 0xe8][..], &[b; 1000][..]].concat();
        // Four frames fill the first 4 KiB buffer but 80 bytes; drained, they are in flight.
        let mut q = Outgoing::default();
        for b in 0..4 {
            let (h, p) = frame(b);
            q.push(&h, &p);
        }
        let mut in_flight = Vec::new();
        q.drain_into(&mut in_flight);
        let first = in_flight[0].as_ptr();
        // Still held: the next frame does not fit, and takes a new buffer; the bytes in
        // flight stay as they were.
        let (h, p) = frame(9);
        q.push(&h, &p);
        let mut next = Vec::new();
        q.drain_into(&mut next);
        assert_ne!(next[0].as_ptr(), first);
        assert_eq!(
            in_flight.concat(),
            (0..4).flat_map(wire).collect::<Vec<u8>>()
        );
        assert_eq!(next.concat(), wire(9));

        // The same, but with what was sent gone: the buffer is used again, from its start.
        let mut q = Outgoing::default();
        for b in 0..4 {
            let (h, p) = frame(b);
            q.push(&h, &p);
        }
        let mut sent = Vec::new();
        q.drain_into(&mut sent);
        let first = sent[0].as_ptr();
        drop(sent);
        let (h, p) = frame(9);
        q.push(&h, &p);
        let mut next = Vec::new();
        q.drain_into(&mut next);
        assert_eq!(next[0].as_ptr(), first);
        assert_eq!(next.concat(), wire(9));
    }

    #[test]
    fn a_long_queue_of_small_frames_is_held_in_bounded_buffers_in_order() {
        // 8 MiB of 1 KiB frames for a peer that does not read: sealed buffers of at most
        // TAIL_MAX, each filled to within a frame (a buffer grown by doubling would hold
        // up to twice what it queues), the bytes in order.
        let mut q = Outgoing::default();
        let mut expected = Vec::new();
        for i in 0..8192u32 {
            let payload = Bytes::from(vec![i as u8; 1024]);
            q.push(&header(1024), &payload);
            expected.extend_from_slice(&[0x82, 126, 4, 0]);
            expected.extend_from_slice(&payload);
            assert!(q.tail.capacity() <= TAIL_MAX);
        }
        assert_eq!(q.len(), expected.len());
        let mut out = Vec::new();
        q.drain_into(&mut out);
        let sealed = &out[..out.len() - 1];
        assert!(sealed.len() >= expected.len() / TAIL_MAX);
        for chunk in sealed {
            assert!(chunk.len() <= TAIL_MAX);
            assert!(
                chunk.len() >= TAIL_CHUNK.min(TAIL_MAX) - 1028,
                "{}",
                chunk.len()
            );
        }
        assert_eq!(out.concat(), expected);
    }

    #[test]
    fn large_payload_is_queued_by_reference() {
        let mut q = Outgoing::default();
        let big = Bytes::from(vec![1u8; 64 * 1024]);
        q.push(&header(5), &Bytes::from_static(b"hello"));
        q.push(&header(big.len()), &big);
        q.push(&header(2), &Bytes::from_static(b"hi"));
        let mut out = Vec::new();
        q.drain_into(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(
            &out[0][..],
            &[
                0x82, 5, b'h', b'e', b'l', b'l', b'o', 0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0
            ][..]
        );
        // The same allocation, not a copy.
        assert_eq!(out[1].as_ptr(), big.as_ptr());
        assert_eq!(&out[2][..], &[0x82, 2, b'h', b'i']);
    }

    #[test]
    fn masked_frame_matches_rfc_example() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let mut q = Outgoing::default();
        let h = FrameHeader {
            opcode: OpCode::Text,
            ..header(5)
        };
        q.push_masked(&h, [0x37, 0xfa, 0x21, 0x3d], b"Hello");
        let mut out = Vec::new();
        q.drain_into(&mut out);
        assert_eq!(
            &out[0][..],
            &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }
}
