//! A scripted peer sends raw bytes to the protocol core; each RFC 6455 rule is checked with
//! the close code it must fail the connection with and the exact close frame on the wire.

use bytes::{Bytes, BytesMut};
use wsengine::proto::frame::{FrameHeader, OpCode};
use wsengine::{CloseCode, Config, Connection, Event, Message, ProtocolError, Role, State};

/// Masks `payload` with a fixed key and frames it as a client would.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

fn server_with(config: Config) -> Connection {
    Connection::new(Role::Server, config, BytesMut::new())
}

fn server() -> Connection {
    server_with(Config::default())
}

/// Feeds `bytes` and collects events until the core needs more or fails.
fn run(conn: &mut Connection, bytes: &[u8]) -> Result<Vec<Event>, ProtocolError> {
    conn.feed(bytes);
    let mut events = Vec::new();
    while let Some(event) = conn.poll_event()? {
        events.push(event);
    }
    Ok(events)
}

fn transmitted(conn: &mut Connection) -> Vec<u8> {
    let mut chunks = Vec::new();
    conn.drain_transmit(&mut chunks);
    chunks.concat()
}

/// The close frame a server sends with `code` and `reason`.
fn server_close(code: u16, reason: &str) -> Vec<u8> {
    let mut out = vec![0x88, 2 + reason.len() as u8];
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    out
}

#[track_caller]
fn assert_fails(bytes: &[u8], expected: ProtocolError) {
    let mut conn = server();
    let err = run(&mut conn, bytes).expect_err("must fail");
    assert_eq!(err, expected);
    // Nothing more is received; our close frame goes out at the next drain.
    assert_eq!(conn.state(), State::ClosePending);
    let close = server_close(expected.close_code().0, expected.close_reason());
    assert_eq!(transmitted(&mut conn), close);
    assert_eq!(conn.state(), State::Closed);
    // Nothing more comes out of a failed connection.
    assert_eq!(run(&mut conn, &client_frame(true, 1, b"more")), Ok(vec![]));
}

#[test]
fn rfc_5_7_masked_hello_is_delivered() {
    let mut conn = server();
    let events = run(
        &mut conn,
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    )
    .unwrap();
    assert_eq!(events, vec![Event::Message(Message::text("Hello"))]);
}

#[test]
fn rfc_5_7_fragmented_text_and_ping_pong() {
    let mut conn = server();
    let mut bytes = client_frame(false, 0x1, b"Hel");
    bytes.extend(client_frame(true, 0x9, b"Hello")); // a ping between fragments
    bytes.extend(client_frame(true, 0x0, b"lo"));
    let events = run(&mut conn, &bytes).unwrap();
    assert_eq!(
        events,
        vec![
            Event::Ping(Bytes::from_static(b"Hello")),
            Event::Message(Message::text("Hello"))
        ]
    );
    // RFC 6455 §5.7: "Unmasked Pong response": 0x8a 0x05 0x48 0x65 0x6c 0x6c 0x6f.
    assert_eq!(
        transmitted(&mut conn),
        [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
}

#[test]
fn single_frame_message_is_a_view_of_the_receive_buffer() {
    let mut conn = server();
    let frame = client_frame(true, 0x2, &[9u8; 300]);
    conn.read_buf().extend_from_slice(&frame);
    let buf_start = conn.read_buf().as_ptr() as usize;
    let Some(Event::Message(Message::Binary(payload))) = conn.poll_event().unwrap() else {
        panic!("expected a binary message");
    };
    // The payload starts right after the 8-byte header, in the same allocation.
    assert_eq!(payload.as_ptr() as usize, buf_start + 8);
    assert_eq!(&payload[..], &[9u8; 300][..]);
}

#[test]
fn masking_rules_by_role() {
    // RFC 6455 §5.1: a server fails on an unmasked frame (1002).
    assert_fails(&[0x81, 0x02, b'h', b'i'], ProtocolError::UnmaskedFrame);
    // And a client on a masked one.
    let mut client = Connection::new(Role::Client, Config::default(), BytesMut::new());
    assert_eq!(
        run(&mut client, &client_frame(true, 1, b"hi")),
        Err(ProtocolError::MaskedFrame)
    );
    assert_eq!(client.state(), State::ClosePending);
}

#[test]
fn header_rules_give_1002() {
    assert_fails(
        &client_frame(true, 0x41, b""),
        ProtocolError::ReservedBitsSet(4),
    );
    assert_fails(
        &client_frame(true, 0x3, b""),
        ProtocolError::ReservedOpcode(3),
    );
    assert_fails(
        &client_frame(true, 0xB, b""),
        ProtocolError::ReservedOpcode(0xB),
    );
    assert_fails(
        &client_frame(true, 0x9, &[0; 126]),
        ProtocolError::ControlFrameTooLong,
    );
    assert_fails(
        &client_frame(false, 0x9, b""),
        ProtocolError::FragmentedControlFrame,
    );
    assert_fails(
        &[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ProtocolError::PayloadLengthMsbSet,
    );
}

#[test]
fn fragmentation_rules_give_1002() {
    assert_fails(
        &client_frame(true, 0x0, b"x"),
        ProtocolError::UnexpectedContinuation,
    );
    let mut bytes = client_frame(false, 0x1, b"a");
    bytes.extend(client_frame(true, 0x2, b"b"));
    assert_fails(&bytes, ProtocolError::ExpectedContinuation);
}

#[test]
fn invalid_utf8_gives_1007_and_fails_fast() {
    assert_fails(
        &client_frame(true, 0x1, &[0xFF]),
        ProtocolError::InvalidUtf8,
    );
    // A message ending mid-character.
    let mut bytes = client_frame(false, 0x1, &[0xE2, 0x82]);
    bytes.extend(client_frame(true, 0x0, b""));
    assert_fails(&bytes, ProtocolError::InvalidUtf8);
    // Fail fast: the first part of a frame whose payload is already invalid fails before
    // the rest of the frame arrives (Autobahn 6.4.2).
    let frame = client_frame(
        true,
        0x1,
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited",
    );
    let mut conn = server();
    assert_eq!(run(&mut conn, &frame[..6 + 12]), Ok(vec![]));
    assert_eq!(
        run(&mut conn, &frame[18..19]),
        Err(ProtocolError::InvalidUtf8)
    );
}

#[test]
fn size_limits_give_1009_before_the_payload_arrives() {
    let mut config = Config::default();
    config.max_frame_size = 1000;
    config.max_message_size = 1500;
    // A header claiming 2^40 bytes fails at once: nothing of that size is allocated.
    let mut conn = server_with(config.clone());
    let header = [0x82, 0xFF, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let err = run(&mut conn, &header).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::MESSAGE_TOO_BIG);
    assert!(conn.read_buf().capacity() < 4096);
    assert_eq!(&transmitted(&mut conn)[..4], &[0x88, 17, 0x03, 0xF1]);
    // Fragments within the frame limit that add up past the message limit.
    let mut conn = server_with(config);
    let mut bytes = client_frame(false, 0x2, &[0; 1000]);
    bytes.extend(client_frame(true, 0x0, &[0; 600]));
    assert_eq!(
        run(&mut conn, &bytes),
        Err(ProtocolError::MessageTooLarge {
            len: 1600,
            max: 1500
        })
    );
}

#[test]
fn close_handshake_initiated_by_peer() {
    let mut conn = server();
    let events = run(&mut conn, &client_frame(true, 0x8, b"\x0f\xa0bye")).unwrap();
    let Event::Close(Some(close)) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode(4000), "bye")
    );
    // Messages that arrived before the close can still be answered; then the reply
    // echoes the code, and the connection is done.
    assert_eq!(conn.state(), State::ClosePending);
    conn.send(&Message::text("echo")).unwrap();
    let mut expected = vec![0x81, 4, b'e', b'c', b'h', b'o'];
    expected.extend(server_close(4000, ""));
    assert_eq!(transmitted(&mut conn), expected);
    assert!(conn.is_closed());
    assert_eq!(
        conn.send(&Message::text("late")),
        Err(wsengine::SendError::Closed)
    );
    // An empty close is answered with 1000.
    let mut conn = server();
    assert_eq!(
        run(&mut conn, &client_frame(true, 0x8, b"")).unwrap(),
        vec![Event::Close(None)]
    );
    assert_eq!(transmitted(&mut conn), server_close(1000, ""));
}

#[test]
fn close_handshake_initiated_by_us() {
    let mut conn = server();
    conn.close(CloseCode::GOING_AWAY, "shutdown").unwrap();
    assert_eq!(conn.state(), State::CloseSent);
    assert_eq!(transmitted(&mut conn), server_close(1001, "shutdown"));
    assert_eq!(
        conn.send(&Message::text("no")),
        Err(wsengine::SendError::Closed)
    );
    // Data still arrives until the peer's close.
    let mut bytes = client_frame(true, 0x1, b"last");
    bytes.extend(client_frame(true, 0x8, b"\x03\xe9"));
    let events = run(&mut conn, &bytes).unwrap();
    assert_eq!(events.len(), 2);
    assert!(conn.is_closed());
    // No second close frame.
    assert_eq!(transmitted(&mut conn), Vec::<u8>::new());
}

#[test]
fn close_payload_rules() {
    assert_fails(
        &client_frame(true, 0x8, b"\x03"),
        ProtocolError::CloseFrameTooShort,
    );
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        assert_fails(
            &client_frame(true, 0x8, &code.to_be_bytes()),
            ProtocolError::InvalidCloseCode(code),
        );
    }
    assert_fails(
        &client_frame(true, 0x8, b"\x03\xe8\xff"),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn application_send_rules() {
    let mut conn = server();
    assert_eq!(
        conn.send_ping(Bytes::from(vec![0; 126])),
        Err(wsengine::SendError::ControlPayloadTooLong(126))
    );
    assert_eq!(
        conn.close(CloseCode::ABNORMAL, ""),
        Err(wsengine::SendError::InvalidCloseCode(1006))
    );
    assert_eq!(
        conn.close(CloseCode::NORMAL, &"x".repeat(124)),
        Err(wsengine::SendError::CloseReasonTooLong(124))
    );
}

#[test]
fn auto_pong_can_be_turned_off_and_pongs_are_ignored() {
    let mut config = Config::default();
    config.auto_pong = false;
    let mut conn = server_with(config);
    let mut bytes = client_frame(true, 0x9, b"p");
    bytes.extend(client_frame(true, 0xA, b"unsolicited"));
    let events = run(&mut conn, &bytes).unwrap();
    assert_eq!(
        events,
        vec![
            Event::Ping(Bytes::from_static(b"p")),
            Event::Pong(Bytes::from_static(b"unsolicited"))
        ]
    );
    assert_eq!(transmitted(&mut conn), Vec::<u8>::new());
}

#[test]
fn server_frames_are_unmasked_and_client_frames_masked() {
    let mut server = server();
    server.send(&Message::text("Hello")).unwrap();
    // RFC 6455 §5.7: a single-frame unmasked text message.
    assert_eq!(
        transmitted(&mut server),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    let mut client = Connection::new(Role::Client, Config::default(), BytesMut::new());
    client.send(&Message::text("Hello")).unwrap();
    client.send(&Message::text("Hello")).unwrap();
    let bytes = transmitted(&mut client);
    let (h1, _) = FrameHeader::decode(&bytes).unwrap().unwrap();
    let (h2, _) = FrameHeader::decode(&bytes[11..]).unwrap().unwrap();
    assert_eq!((h1.opcode, h1.payload_len), (OpCode::Text, 5));
    // A fresh key per frame.
    assert!(h1.mask.is_some() && h2.mask.is_some());
    assert_ne!(h1.mask, h2.mask);
}

#[test]
fn leftover_handshake_bytes_are_the_start_of_the_stream() {
    let leftover = BytesMut::from(&client_frame(true, 0x1, b"early")[..]);
    let mut conn = Connection::new(Role::Server, Config::default(), leftover);
    assert_eq!(
        conn.poll_event().unwrap(),
        Some(Event::Message(Message::text("early")))
    );
}
