//! Typed errors of the protocol core, grouped by who is at fault.
//!
//! - [`ProtocolError`]: the peer broke RFC 6455. Each maps to the close code the connection
//!   is failed with (1002, 1007, 1009), permessage-deflate's rules included.
//! - [`SendError`]: the application asked for something the protocol does not allow now.
//! - Handshake errors live in [`handshake`](super::handshake) and map to HTTP statuses.

use std::fmt;

use super::close::CloseCode;

/// The peer broke the protocol; the connection is failed with [`close_code`](Self::close_code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1–3 set without a negotiated extension (§5.2). Carries the three bits.
    ReservedBitsSet(u8),
    /// RSV1 (compressed) on a control frame, with permessage-deflate negotiated
    /// (RFC 7692 §6.1: only data messages are compressed).
    CompressedControlFrame,
    /// RSV1 on a continuation frame (RFC 7692 §6.1: it is set on the first frame of a
    /// message only).
    CompressedContinuation,
    /// A compressed message whose payload is not a valid DEFLATE stream (RFC 7692 §7.2.2).
    /// Closed with 1007, as for an invalid payload.
    InvalidCompressedData,
    /// A reserved opcode (§5.2). Carries the opcode.
    ReservedOpcode(u8),
    /// A control frame with a payload over 125 bytes (§5.5).
    ControlFrameTooLong,
    /// A control frame with FIN clear (§5.5).
    FragmentedControlFrame,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    PayloadLengthMsbSet,
    /// A server received an unmasked frame (§5.1).
    UnmaskedFrame,
    /// A client received a masked frame (§5.1).
    MaskedFrame,
    /// A continuation frame with no fragmented message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress (§5.4).
    ExpectedContinuation,
    /// A text message (or close reason) that is not valid UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame with a one-byte payload (§5.5.1).
    CloseFrameTooShort,
    /// A close frame with a code that may not be sent on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A frame whose claimed length exceeds the configured frame limit.
    FrameTooLarge {
        /// The claimed payload length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A message whose total length exceeds the configured message limit.
    MessageTooLarge {
        /// The length the message would have reached.
        len: u64,
        /// The configured limit.
        max: usize,
    },
}

impl ProtocolError {
    /// The close code the connection is failed with (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::FrameTooLarge { .. } | ProtocolError::MessageTooLarge { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason for the close frame (at most 123 bytes, ASCII).
    pub fn close_reason(&self) -> &'static str {
        match self {
            ProtocolError::ReservedBitsSet(_) => "reserved bits set",
            ProtocolError::CompressedControlFrame => "compressed control frame",
            ProtocolError::CompressedContinuation => "RSV1 on a continuation frame",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::ControlFrameTooLong => "control frame too long",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::PayloadLengthMsbSet => "invalid payload length",
            ProtocolError::UnmaskedFrame => "frame not masked",
            ProtocolError::MaskedFrame => "frame masked by server",
            ProtocolError::UnexpectedContinuation => "unexpected continuation frame",
            ProtocolError::ExpectedContinuation => "expected continuation frame",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::CloseFrameTooShort => "close payload of one byte",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::FrameTooLarge { .. } => "frame too large",
            ProtocolError::MessageTooLarge { .. } => "message too large",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBitsSet(bits) => write!(f, "reserved bits set: {bits:#05b}"),
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            ProtocolError::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            other => f.write_str(other.close_reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The application asked for something the protocol does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was already sent (or the connection failed): no more data frames.
    Closed,
    /// A ping or pong payload over 125 bytes (§5.5).
    ControlPayloadTooLong(usize),
    /// A close reason over 123 bytes (125 minus the 2-byte code).
    CloseReasonTooLong(usize),
    /// A close code that may not be sent (1005, 1006, 1015, or outside the valid ranges).
    InvalidCloseCode(u16),
    /// A prepared (unmasked, server) message on a client connection, whose frames must
    /// be masked (§5.1).
    PreparedOnClient,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("the connection is closing or closed"),
            SendError::ControlPayloadTooLong(n) => {
                write!(f, "control frame payload of {n} bytes exceeds 125")
            }
            SendError::CloseReasonTooLong(n) => write!(f, "close reason of {n} bytes exceeds 123"),
            SendError::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            SendError::PreparedOnClient => {
                f.write_str("a prepared message holds server frames; a client masks its own")
            }
        }
    }
}

impl std::error::Error for SendError {}
