//! A message encoded once as server frames, to be queued on many connections.
//!
//! Server frames are unmasked (RFC 6455 §5.1), so the bytes of a message on the wire are
//! the same for every connection that shares the framing settings: a broadcast to
//! thousands of sockets can frame the message once and queue the same bytes everywhere.
//! [`PreparedMessage`] is those bytes (every frame of the message, headers included) in
//! one `Bytes`, cheap to clone and `Send`, so one allocation serves every subscriber on
//! every worker. [`Outgoing::push_encoded`](super::outgoing::Outgoing::push_encoded)
//! copies a small one next to the socket's other frames (one write per turn) and queues a
//! large one by reference.
//!
//! A prepared message is never compressed: an uncompressed message is valid on a
//! connection that negotiated permessage-deflate (RFC 7692 §6: RSV1 clear), so it can go
//! to every connection whatever it negotiated.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use super::message::Message;

/// A data message framed once for server connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedMessage {
    wire: Bytes,
    payload_len: usize,
}

impl PreparedMessage {
    /// Frames `message` as a server sends it: one frame, or frames of `fragment_size`
    /// payload bytes when it is longer (as [`Config::fragment_size`] does for
    /// [`Connection::send`]).
    ///
    /// [`Config::fragment_size`]: super::config::Config::fragment_size
    /// [`Connection::send`]: super::connection::Connection::send
    pub fn new(message: &Message, fragment_size: Option<usize>) -> Self {
        let (opcode, payload) = match message {
            Message::Text(t) => (OpCode::Text, t.as_bytes()),
            Message::Binary(b) => (OpCode::Binary, b),
        };
        let size = fragment_size
            .filter(|&s| s > 0 && payload.len() > s)
            .unwrap_or(payload.len().max(1));
        let frames = payload.len().div_ceil(size).max(1);
        let mut wire = BytesMut::with_capacity(payload.len() + frames * MAX_HEADER_LEN);
        let mut at = 0;
        let mut op = opcode;
        loop {
            let end = (at + size).min(payload.len());
            let header = FrameHeader {
                fin: end == payload.len(),
                rsv: 0,
                opcode: op,
                mask: None,
                payload_len: (end - at) as u64,
            };
            let mut head = [0u8; MAX_HEADER_LEN];
            let n = header.encode(&mut head);
            wire.put_slice(&head[..n]);
            wire.put_slice(&payload[at..end]);
            if header.fin {
                break;
            }
            op = OpCode::Continuation;
            at = end;
        }
        PreparedMessage {
            wire: wire.freeze(),
            payload_len: payload.len(),
        }
    }

    /// The frames as they go on the wire.
    #[inline]
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The message's payload length.
    #[inline]
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::config::Config;
    use crate::proto::connection::Connection;
    use crate::proto::role::Role;
    use proptest::prelude::*;

    /// What `Connection::send` queues for `message` on a server connection.
    fn sent(message: &Message, fragment_size: Option<usize>) -> Vec<u8> {
        let config = Config {
            fragment_size,
            ..Config::default()
        };
        let mut conn = Connection::new(Role::Server, config, BytesMut::new());
        conn.send(message).unwrap();
        let mut out = Vec::new();
        conn.drain_transmit(&mut out);
        out.concat()
    }

    #[test]
    fn rfc_6455_single_frame_unmasked_text() {
        // RFC 6455 §5.7: "A single-frame unmasked text message".
        let m = PreparedMessage::new(&Message::text("Hello"), None);
        assert_eq!(&m.wire()[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(m.payload_len(), 5);
    }

    #[test]
    fn rfc_6455_fragmented_unmasked_text() {
        // RFC 6455 §5.7: "A fragmented unmasked text message" ("Hel", then "lo").
        let m = PreparedMessage::new(&Message::text("Hello"), Some(3));
        assert_eq!(
            &m.wire()[..],
            &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        );
    }

    #[test]
    fn empty_and_256_byte_and_64_kib_binary() {
        let m = PreparedMessage::new(&Message::binary(Bytes::new()), Some(10));
        assert_eq!(&m.wire()[..], &[0x82, 0x00]);
        // RFC 6455 §5.7: 256 bytes of binary data in a single unmasked message.
        let m = PreparedMessage::new(&Message::binary(vec![7u8; 256]), None);
        assert_eq!(&m.wire()[..4], &[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(m.wire().len(), 4 + 256);
        // 64 KiB in a single unmasked message: the 8-byte length.
        let m = PreparedMessage::new(&Message::binary(vec![1u8; 65536]), None);
        assert_eq!(&m.wire()[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    proptest! {
        #[test]
        fn same_bytes_as_a_connection_sends(
            payload in proptest::collection::vec(any::<u8>(), 0..3000),
            text in any::<bool>(),
            fragment in proptest::option::of(0usize..1500),
        ) {
            let message = if text {
                Message::text(String::from_utf8_lossy(&payload).into_owned())
            } else {
                Message::binary(payload)
            };
            let prepared = PreparedMessage::new(&message, fragment);
            prop_assert_eq!(&prepared.wire()[..], &sent(&message, fragment)[..]);
            prop_assert_eq!(prepared.payload_len(), message.len());
        }
    }
}
