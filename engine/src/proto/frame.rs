//! The frame header (RFC 6455 §5.2): decoded as a view of the first bytes of the receive
//! buffer, and encoded into a small stack buffer.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```
//!
//! Decoding checks the rules that need nothing but the header itself (reserved bits and
//! opcodes, control frame limits, the 64-bit length's top bit). Rules that depend on the role
//! (masking) or on earlier frames (continuations) are checked by
//! [`Connection`](super::connection::Connection).

use super::error::ProtocolError;

/// The longest header: 2 bytes, 8 bytes of extended length, 4 bytes of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (RFC 6455 §5.2, §11.8). Reserved opcodes are not representable: decoding
/// one is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: a continuation of a fragmented message.
    Continuation = 0x0,
    /// 0x1: the first (or only) frame of a text message.
    Text = 0x1,
    /// 0x2: the first (or only) frame of a binary message.
    Binary = 0x2,
    /// 0x8: the close control frame.
    Close = 0x8,
    /// 0x9: the ping control frame.
    Ping = 0x9,
    /// 0xA: the pong control frame.
    Pong = 0xA,
}

impl OpCode {
    /// The opcode for a 4-bit value, or `None` for the reserved values 0x3–0x7 and 0xB–0xF.
    #[inline]
    pub const fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// Control frames have opcodes with the high bit set (RFC 6455 §5.5).
    #[inline]
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// RSV1 in [`FrameHeader::rsv`]: permessage-deflate's "compressed" bit (RFC 7692 §6).
pub const RSV1: u8 = 0b100;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1–RSV3 as the low three bits (RSV1 is `0b100`). Non-zero only with a negotiated
    /// extension: permessage-deflate's RSV1 ([`RSV1`]).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold the whole header, and otherwise the
    /// header with the number of bytes it took.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        Self::decode_with_rsv(buf, 0)
    }

    /// Like [`decode`](Self::decode), accepting the RSV bits in `allowed` (those of the
    /// negotiated extensions: [`RSV1`] with permessage-deflate). Which frames may carry
    /// them is the extension's rule, checked by the connection.
    #[inline]
    pub fn decode_with_rsv(
        buf: &[u8],
        allowed: u8,
    ) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Ok(None),
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        // RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defining them was negotiated.
        if rsv & !allowed != 0 {
            return Err(ProtocolError::ReservedBitsSet(rsv));
        }
        // RFC 6455 §5.2: on an unknown opcode the receiving endpoint MUST fail the connection.
        let opcode =
            OpCode::from_bits(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            // RFC 6455 §5.5: control frames MUST have a payload length of 125 bytes or less
            // and MUST NOT be fragmented.
            if len7 > MAX_CONTROL_PAYLOAD as u8 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        let (payload_len, mut at) = match len7 {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    let len = u64::from_be_bytes(a);
                    // RFC 6455 §5.2: the most significant bit MUST be 0.
                    if len >> 63 != 0 {
                        return Err(ProtocolError::PayloadLengthMsbSet);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            match buf.get(at..at + 4) {
                Some(k) => {
                    at += 4;
                    Some([k[0], k[1], k[2], k[3]])
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            at,
        )))
    }

    /// The number of bytes [`encode`](Self::encode) writes for this header.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes the header into `out` and returns how many bytes it wrote.
    ///
    /// Lengths use the minimal encoding (RFC 6455 §5.2: "the minimal number of bytes MUST be
    /// used to encode the length").
    #[inline]
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match self.payload_len {
            n @ 0..=125 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::decode(bytes).unwrap().unwrap()
    }

    #[test]
    fn rfc_5_7_single_frame_unmasked_text() {
        // "A single-frame unmasked text message": 0x81 0x05 0x48 0x65 0x6c 0x6c 0x6f ("Hello")
        let (h, n) = decode_all(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(n, 2);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.mask, None);
        assert_eq!(h.payload_len, 5);
    }

    #[test]
    fn rfc_5_7_masked_text_header() {
        let (h, n) = decode_all(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f]);
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.payload_len, 5);
    }

    #[test]
    fn rfc_5_7_fragmented_and_control_headers() {
        let (h, _) = decode_all(&[0x01, 0x03]);
        assert!(!h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        let (h, _) = decode_all(&[0x80, 0x02]);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Continuation);
        let (h, _) = decode_all(&[0x89, 0x05]);
        assert_eq!(h.opcode, OpCode::Ping);
        let (h, _) = decode_all(&[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(h.opcode, OpCode::Pong);
    }

    #[test]
    fn rfc_5_7_extended_lengths() {
        // 256 bytes binary message in a single unmasked frame: 0x82 0x7E 0x0100
        let (h, n) = decode_all(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
        // 64KiB binary message in a single unmasked frame: 0x82 0x7F 0x0000000000010000
        let (h, n) = decode_all(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn partial_headers_need_more() {
        let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for cut in 0..full.len() {
            assert_eq!(
                FrameHeader::decode(&full[..cut]).unwrap(),
                None,
                "cut {cut}"
            );
        }
        assert_eq!(decode_all(&full).1, 14);
    }

    #[test]
    fn header_rules() {
        assert_eq!(
            FrameHeader::decode(&[0xC1, 0x00]),
            Err(ProtocolError::ReservedBitsSet(4))
        );
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 0x00]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
        assert_eq!(
            FrameHeader::decode(&[0x89, 126, 0, 126]),
            Err(ProtocolError::ControlFrameTooLong)
        );
        assert_eq!(
            FrameHeader::decode(&[0x09, 0x00]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::decode(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::PayloadLengthMsbSet)
        );
    }

    #[test]
    fn rsv_mask() {
        assert_eq!(
            FrameHeader::decode_with_rsv(&[0xC1, 0x00], RSV1)
                .unwrap()
                .unwrap()
                .0
                .rsv,
            RSV1
        );
        // RSV2 and RSV3 stay errors with deflate negotiated.
        assert_eq!(
            FrameHeader::decode_with_rsv(&[0xE1, 0x00], RSV1),
            Err(ProtocolError::ReservedBitsSet(6))
        );
        assert_eq!(
            FrameHeader::decode_with_rsv(&[0x91, 0x00], RSV1),
            Err(ProtocolError::ReservedBitsSet(1))
        );
    }

    #[test]
    fn encode_decode_round_trip_at_length_boundaries() {
        for len in [
            0u64,
            1,
            125,
            126,
            127,
            65535,
            65536,
            u32::MAX as u64 + 7,
            (1 << 63) - 1,
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for opcode in [OpCode::Text, OpCode::Binary, OpCode::Continuation] {
                    let h = FrameHeader {
                        fin: len % 2 == 0,
                        rsv: 0,
                        opcode,
                        mask,
                        payload_len: len,
                    };
                    let mut out = [0u8; MAX_HEADER_LEN];
                    let n = h.encode(&mut out);
                    assert_eq!(n, h.encoded_len());
                    assert_eq!(decode_all(&out[..n]), (h, n));
                }
            }
        }
    }

    #[test]
    fn encode_is_rfc_byte_exact() {
        let mut out = [0u8; MAX_HEADER_LEN];
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: 65536,
        };
        let n = h.encode(&mut out);
        assert_eq!(&out[..n], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Text,
            mask: Some([0x37, 0xfa, 0x21, 0x3d]),
            payload_len: 5,
        };
        let n = h.encode(&mut out);
        assert_eq!(&out[..n], &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
    }
}
