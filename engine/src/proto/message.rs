//! Messages (RFC 6455 §5.6) and the reassembly of fragmented ones (§5.4).
//!
//! A message that arrived in one frame is a `Bytes` view of the receive buffer: unmasked in
//! place and sliced off, never copied. A fragmented message has to be made contiguous, so its
//! fragments are copied into one buffer as they arrive (the only payload copy on the receive
//! path), with the message size limit checked before each copy.

use std::fmt;
use std::ops::Deref;

use bytes::{Bytes, BytesMut};

use super::error::ProtocolError;
use super::utf8::{InvalidUtf8, Utf8Validator};

/// `Bytes` known to hold valid UTF-8: a text message's payload, without a copy.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps bytes that the caller has validated.
    #[inline]
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }

    /// A static string, without a copy.
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// Validates `bytes` as UTF-8 and wraps them without a copy.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, InvalidUtf8> {
        let mut v = Utf8Validator::new();
        v.feed(&bytes)?;
        v.finish()?;
        Ok(Utf8Bytes(bytes))
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor validates the bytes as UTF-8 (`from_validated` is called
        // only on payloads the streaming validator accepted, `try_from_bytes` validates, the
        // `From` impls take `str`/`String`), and `Bytes` is immutable, so they stay valid.
        // Validating again on every access would cost a second pass over each text message.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    #[inline]
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Converts into the underlying bytes.
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = InvalidUtf8;
    fn try_from(bytes: Bytes) -> Result<Self, InvalidUtf8> {
        Utf8Bytes::try_from_bytes(bytes)
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A complete WebSocket data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message: valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Message::Binary(payload.into())
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload's bytes.
    pub fn payload(&self) -> &Bytes {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// Converts into the payload's bytes.
    pub fn into_payload(self) -> Bytes {
        match self {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// The type of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Text (opcode 0x1).
    Text,
    /// Binary (opcode 0x2).
    Binary,
}

/// Reassembles a fragmented message (RFC 6455 §5.4).
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    kind: Option<MessageKind>,
    buf: BytesMut,
}

impl Assembler {
    /// The kind of the fragmented message in progress, if any.
    #[inline]
    pub(crate) fn in_progress(&self) -> Option<MessageKind> {
        self.kind
    }

    /// Starts a message with its first fragment.
    pub(crate) fn start(&mut self, kind: MessageKind, fragment: &[u8]) {
        debug_assert!(self.kind.is_none());
        self.kind = Some(kind);
        self.buf.extend_from_slice(fragment);
    }

    /// Marks a compressed message in progress: its bytes are inflated elsewhere, only the
    /// kind is kept here (for the continuation rules).
    pub(crate) fn start_compressed(&mut self, kind: MessageKind) {
        debug_assert!(self.kind.is_none());
        self.kind = Some(kind);
    }

    /// Ends a compressed message started with [`start_compressed`](Self::start_compressed).
    pub(crate) fn finish_compressed(&mut self) -> Option<MessageKind> {
        self.kind.take()
    }

    /// Appends a continuation fragment. The caller has checked the message size limit.
    pub(crate) fn push(&mut self, fragment: &[u8]) {
        self.buf.extend_from_slice(fragment);
    }

    /// Ends the message. The caller has validated UTF-8 for text.
    pub(crate) fn finish(&mut self) -> Option<Message> {
        let payload = self.buf.split().freeze();
        // Give back the capacity of a large message instead of keeping it for the next one.
        self.buf = BytesMut::new();
        Some(match self.kind.take()? {
            MessageKind::Text => Message::Text(Utf8Bytes::from_validated(payload)),
            MessageKind::Binary => Message::Binary(payload),
        })
    }

    /// Bytes allocated for the fragments received so far.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Checks that adding `len` bytes keeps the message within `max`.
    pub(crate) fn check_limit(&self, len: u64, max: usize) -> Result<(), ProtocolError> {
        let total = self.buf.len() as u64 + len;
        if total > max as u64 {
            return Err(ProtocolError::MessageTooLarge { len: total, max });
        }
        Ok(())
    }
}
