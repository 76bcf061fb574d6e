//! permessage-deflate (RFC 7692) over the public API: the handshake on both sides, the
//! RFC's byte vectors through a connection in both roles, the RSV1 rules, the limits on
//! inflated messages, and client/server pairs round-tripping random messages under random
//! parameters, cut into reads at random points.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use wsengine::proto::extensions::{DeflateConfig, DeflateParams, StreamPool};
use wsengine::proto::handshake::{Accept, ClientRequest, HandshakeLimits, ServerHandshake};
use wsengine::{CloseCode, Config, Connection, Event, Message, ProtocolError, Role, State};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame with first byte `b0` (FIN, RSV and opcode), masked as a client's if `masked`.
fn frame(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![b0];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn params() -> DeflateParams {
    let mut p = DeflateParams::default();
    p.min_size = 0;
    p
}

fn conn(role: Role, params: Option<DeflateParams>) -> Connection {
    Connection::new(role, Config::default(), BytesMut::new()).with_deflate(params)
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

fn wire(conn: &mut Connection) -> Vec<u8> {
    let mut chunks = Vec::new();
    conn.drain_transmit(&mut chunks);
    chunks.concat()
}

fn text(s: &str) -> Event {
    Event::Message(Message::text(s))
}

/// The receiving side of `role` gets frames masked as its peer would send them.
fn masked_for(role: Role) -> bool {
    role == Role::Server
}

// ---- handshake -----------------------------------------------------------------------

/// A client offering `client` against a server whose hook answers `accept`; returns
/// what each side agreed and the server's response.
fn handshake(
    client: DeflateConfig,
    accept: Accept,
    server_default: &DeflateConfig,
) -> (Option<DeflateParams>, Option<DeflateParams>, String) {
    let (request, mut parser) = ClientRequest::new("example.com", "/chat")
        .deflate(client)
        .build(HandshakeLimits::default())
        .unwrap();
    let request = ServerHandshake::new(HandshakeLimits::default())
        .parse(&mut BytesMut::from(&request[..]))
        .unwrap()
        .unwrap();
    let accepted = request.accept(&accept.or_deflate(server_default)).unwrap();
    let response_text = String::from_utf8(accepted.response.clone()).unwrap();
    let response = parser
        .parse_response(&mut BytesMut::from(&accepted.response[..]))
        .unwrap()
        .unwrap();
    (accepted.deflate, response.deflate(), response_text)
}

#[test]
fn both_sides_agree_on_the_parameters() {
    let on = DeflateConfig::enabled();
    let (server, client, response) = handshake(on.clone(), Accept::new(), &on);
    assert!(
        response.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
        "{response}"
    );
    let (server, client) = (server.unwrap(), client.unwrap());
    assert_eq!(
        (server.server_max_window_bits, server.client_max_window_bits),
        (15, 15)
    );
    assert_eq!(server, client);

    // A server that wants less memory: no context takeover both ways, small windows.
    let mut lean = DeflateConfig::enabled();
    lean.server_no_context_takeover = true;
    lean.client_no_context_takeover = true;
    lean.server_max_window_bits = 10;
    lean.client_max_window_bits = 9;
    let (server, client, response) = handshake(on.clone(), Accept::new(), &lean);
    assert!(response.contains(
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
         client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9\r\n"
    ));
    let (server, client) = (server.unwrap(), client.unwrap());
    for p in [server, client] {
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (10, 9)
        );
    }
}

#[test]
fn the_application_can_refuse_or_choose_per_connection() {
    let on = DeflateConfig::enabled();
    // Refused by the hook: no header, both sides uncompressed.
    let (server, client, response) = handshake(on.clone(), Accept::new().no_compression(), &on);
    assert_eq!((server, client), (None, None));
    assert!(!response.contains("Extensions"), "{response}");
    // Off by default on the server: the same.
    let (server, client, _) = handshake(on.clone(), Accept::new(), &DeflateConfig::default());
    assert_eq!((server, client), (None, None));
    // The hook's own configuration wins over the server's default.
    let mut own = DeflateConfig::enabled();
    own.server_no_context_takeover = true;
    let (server, _, _) = handshake(
        on.clone(),
        Accept::new().deflate(own),
        &DeflateConfig::default(),
    );
    assert!(server.unwrap().server_no_context_takeover);
    // A client that does not offer gets nothing.
    let (server, client, _) = handshake(DeflateConfig::default(), Accept::new(), &on);
    assert_eq!((server, client), (None, None));
}

#[test]
fn the_hook_sees_the_parsed_offers() {
    let raw = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, x-foo\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"10\"\r\n\r\n";
    let request = ServerHandshake::new(HandshakeLimits::default())
        .parse(&mut BytesMut::from(raw.as_bytes()))
        .unwrap()
        .unwrap();
    let offers = request.deflate_offers();
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[0].as_ref().unwrap().server_max_window_bits, Some(8));
    assert_eq!(
        offers[1].as_ref().unwrap().client_max_window_bits,
        Some(Some(10))
    );
    assert_eq!(request.extension_offers().unwrap().len(), 3);
    // The 8-bit server window is declined, the second offer from the second header taken.
    let accepted = request
        .accept(&Accept::new().deflate(DeflateConfig::enabled()))
        .unwrap();
    assert_eq!(accepted.deflate.unwrap().client_max_window_bits, 10);
    assert!(String::from_utf8(accepted.response).unwrap().contains(
        "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n"
    ));
    // accept_response (the runtime's call) writes the same header.
    let response = request
        .accept_response(&Accept::new().deflate(DeflateConfig::enabled()))
        .unwrap();
    assert!(
        String::from_utf8(response)
            .unwrap()
            .contains("client_max_window_bits=10")
    );
}

#[test]
fn the_client_fails_on_answers_that_do_not_fit_its_offer() {
    use wsengine::proto::extensions::{DeflateParam, ExtensionError};
    use wsengine::proto::handshake::ClientHandshakeError as E;
    let answer = |key_line: &str, extensions: &str| {
        let mut offer = DeflateConfig::enabled();
        offer.server_max_window_bits = 12;
        let (request, mut parser) = ClientRequest::new("h", "/")
            .deflate(offer)
            .build(HandshakeLimits::default())
            .unwrap();
        // Take the key from our own request to answer it correctly.
        let request = ServerHandshake::new(HandshakeLimits::default())
            .parse(&mut BytesMut::from(&request[..]))
            .unwrap()
            .unwrap();
        let accept = wsengine::proto::handshake::accept_key(request.key().as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n{key_line}{extensions}\r\n"
        );
        parser
            .parse_response(&mut BytesMut::from(response.as_bytes()))
            .map(|r| r.map(|r| r.deflate()))
    };
    let ext = |v: &str| format!("Sec-WebSocket-Extensions: {v}\r\n");
    assert_eq!(answer("", ""), Ok(Some(None)), "declined: uncompressed");
    assert!(matches!(
        answer("", &ext("permessage-deflate; server_max_window_bits=12")),
        Ok(Some(Some(_)))
    ));
    assert_eq!(
        answer("", &ext("x-foo")),
        Err(E::UnrequestedExtension("x-foo".into()))
    );
    assert_eq!(
        answer(
            "",
            &ext("permessage-deflate; server_max_window_bits=12, x-foo; a=1")
        ),
        Err(E::UnrequestedExtension("x-foo; a=1".into()))
    );
    assert_eq!(
        answer("", &ext("permessage-deflate;;")),
        Err(E::Extension(ExtensionError::Malformed { at: 19 }))
    );
    assert_eq!(
        answer("", &ext("permessage-deflate")),
        Err(E::Extension(ExtensionError::MissingParameter(
            DeflateParam::ServerMaxWindowBits
        )))
    );
    assert_eq!(
        answer("", &ext("permessage-deflate; server_max_window_bits=13")),
        Err(E::Extension(ExtensionError::WindowAboveOffer {
            param: DeflateParam::ServerMaxWindowBits,
            offered: 12,
            answered: 13
        }))
    );
    // Spread over two header lines is still two answers.
    assert_eq!(
        answer(
            &ext("permessage-deflate; server_max_window_bits=12"),
            &ext("permessage-deflate; server_max_window_bits=12")
        ),
        Err(E::Extension(ExtensionError::SeveralAnswers))
    );
}

#[test]
fn an_extension_header_of_the_applications_own_is_refused_when_negotiating() {
    let (request, _) = ClientRequest::new("h", "/")
        .deflate(DeflateConfig::enabled())
        .build(HandshakeLimits::default())
        .unwrap();
    let request = ServerHandshake::new(HandshakeLimits::default())
        .parse(&mut BytesMut::from(&request[..]))
        .unwrap()
        .unwrap();
    let accept = Accept::new().header("Sec-WebSocket-Extensions", "permessage-deflate");
    assert!(
        request
            .accept(&accept.clone().deflate(DeflateConfig::enabled()))
            .is_err()
    );
    // Without negotiation it goes out as before.
    assert!(request.accept_response(&accept).is_ok());
}

// ---- RFC 7692 §7.2.3 vectors, both roles ------------------------------------------------

#[test]
fn rfc_7692_vectors_decode_in_both_roles() {
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    for role in [Role::Server, Role::Client] {
        let m = masked_for(role);
        // §7.2.3.1: one frame, then the same message fragmented into two frames.
        let mut c = conn(role, Some(params()));
        assert_eq!(
            run(&mut c, &frame(0xc1, &hello, m)).unwrap(),
            [text("Hello")]
        );
        let mut c = conn(role, Some(params()));
        let mut bytes = frame(0x41, &hello[..3], m);
        bytes.extend(frame(0x80, &hello[3..], m));
        assert_eq!(run(&mut c, &bytes).unwrap(), [text("Hello")]);
        // §7.2.3.2: the second message with context takeover.
        let mut c = conn(role, Some(params()));
        let mut bytes = frame(0xc1, &hello, m);
        bytes.extend(frame(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00], m));
        assert_eq!(run(&mut c, &bytes).unwrap(), [text("Hello"), text("Hello")]);
        // §7.2.3.3: a block with no compression.
        let mut c = conn(role, Some(params()));
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(
            run(&mut c, &frame(0xc1, &stored, m)).unwrap(),
            [text("Hello")]
        );
        // §7.2.3.4: a block with BFINAL set.
        let mut c = conn(role, Some(params()));
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(
            run(&mut c, &frame(0xc1, &bfinal, m)).unwrap(),
            [text("Hello")]
        );
        // §7.2.3.5: two DEFLATE blocks in one message.
        let mut c = conn(role, Some(params()));
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(run(&mut c, &frame(0xc1, &two, m)).unwrap(), [text("Hello")]);
    }
}

#[test]
fn rfc_7692_hello_is_sent_as_the_vector() {
    let mut p = params();
    p.level = 6;
    let mut server = conn(Role::Server, Some(p));
    server.send(&Message::text("Hello")).unwrap();
    // §7.2.3.1, RSV1 set: 0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00.
    assert_eq!(
        wire(&mut server),
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
    // A client masks the same compressed bytes; the server reads them back.
    let mut client = conn(Role::Client, Some(p));
    client.send(&Message::text("Hello")).unwrap();
    let bytes = wire(&mut client);
    assert_eq!((bytes[0], bytes[1]), (0xc1, 0x87));
    let mut server = conn(Role::Server, Some(p));
    assert_eq!(run(&mut server, &bytes).unwrap(), [text("Hello")]);
}

#[test]
fn below_the_threshold_and_control_frames_go_uncompressed() {
    let mut p = params();
    p.min_size = 10;
    let mut server = conn(Role::Server, Some(p));
    server.send(&Message::text("short")).unwrap();
    server
        .send_ping(Bytes::from_static(b"0123456789abcdef"))
        .unwrap();
    assert_eq!(
        wire(&mut server),
        [&[0x81, 5][..], b"short", &[0x89, 16], b"0123456789abcdef"].concat()
    );
    assert_eq!(server.deflate_memory(), 0, "nothing allocated yet");
}

// ---- RSV1 rules ----------------------------------------------------------------------

#[track_caller]
fn assert_fails(mut c: Connection, bytes: &[u8], err: ProtocolError, code: u16) {
    assert_eq!(run(&mut c, bytes), Err(err));
    assert_eq!(err.close_code(), CloseCode(code));
    assert_eq!(c.state(), State::ClosePending);
    assert_eq!(sent_close_code(&wire(&mut c)), code);
}

/// The code of the close frame at the start of `out`, unmasking a client's.
fn sent_close_code(out: &[u8]) -> u16 {
    assert_eq!(out[0], 0x88, "{out:02x?}");
    let code = if out[1] & 0x80 != 0 {
        [out[6] ^ out[2], out[7] ^ out[3]]
    } else {
        [out[2], out[3]]
    };
    u16::from_be_bytes(code)
}

#[test]
fn rsv1_only_on_the_first_frame_of_a_negotiated_data_message() {
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    for role in [Role::Server, Role::Client] {
        let m = masked_for(role);
        // Not negotiated: RSV1 is a reserved bit.
        assert_fails(
            conn(role, None),
            &frame(0xc1, &hello, m),
            ProtocolError::ReservedBitsSet(4),
            1002,
        );
        // Negotiated: never on control frames...
        for op in [0x8, 0x9, 0xA] {
            assert_fails(
                conn(role, Some(params())),
                &frame(0xc0 | op, b"", m),
                ProtocolError::CompressedControlFrame,
                1002,
            );
        }
        // ...nor on a continuation, compressed message or not.
        let mut bytes = frame(0x41, &hello[..3], m);
        bytes.extend(frame(0xc0, &hello[3..], m));
        assert_fails(
            conn(role, Some(params())),
            &bytes,
            ProtocolError::CompressedContinuation,
            1002,
        );
        let mut bytes = frame(0x01, b"He", m);
        bytes.extend(frame(0xc0, b"llo", m));
        assert_fails(
            conn(role, Some(params())),
            &bytes,
            ProtocolError::CompressedContinuation,
            1002,
        );
        // RSV2 and RSV3 stay reserved.
        assert_fails(
            conn(role, Some(params())),
            &frame(0xa1, b"x", m),
            ProtocolError::ReservedBitsSet(2),
            1002,
        );
        assert_fails(
            conn(role, Some(params())),
            &frame(0x91, b"x", m),
            ProtocolError::ReservedBitsSet(1),
            1002,
        );
        // An uncompressed message on a negotiated connection, with a ping between the
        // fragments of a compressed one.
        let mut c = conn(role, Some(params()));
        let mut bytes = frame(0x81, b"plain", m);
        bytes.extend(frame(0x41, &hello[..3], m));
        bytes.extend(frame(0x89, b"p", m));
        bytes.extend(frame(0x80, &hello[3..], m));
        let events = run(&mut c, &bytes).unwrap();
        assert_eq!(
            events,
            [
                text("plain"),
                Event::Ping(Bytes::from_static(b"p")),
                text("Hello")
            ]
        );
    }
}

#[test]
fn corrupt_compressed_data_gives_1007() {
    assert_fails(
        conn(Role::Server, Some(params())),
        &frame(0xc2, &[0xff, 0xff, 0xff], true),
        ProtocolError::InvalidCompressedData,
        1007,
    );
}

// ---- limits on the inflated bytes -------------------------------------------------------

/// `payload` compressed as a peer would send it (tail stripped).
fn compressed(payload: &[u8], role: Role) -> Vec<u8> {
    let mut p = params();
    p.level = 9;
    let mut sender = conn(role, Some(p));
    sender.send(&Message::binary(payload.to_vec())).unwrap();
    let bytes = wire(&mut sender);
    // Read it back as the other side would, to get the payload without the header.
    let (_, header_len) = wsengine::proto::frame::FrameHeader::decode_with_rsv(&bytes, 0b100)
        .unwrap()
        .unwrap();
    let mut payload = bytes[header_len..].to_vec();
    if role == Role::Client {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= bytes[header_len - 4 + i % 4];
        }
    }
    payload
}

#[test]
fn zip_bomb_fails_with_1009_holding_at_most_the_limit() {
    let max = 1 << 20;
    let mut config = Config::default();
    config.max_message_size = max;
    let bomb = compressed(&vec![0u8; 64 << 20], Role::Client);
    assert!(bomb.len() < 128 * 1024, "{} bytes", bomb.len());
    let mut server = Connection::new(Role::Server, config, BytesMut::new()).with_deflate(params());
    let bytes = frame(0xc2, &bomb, true);
    // Fed in 1 KiB reads: it fails as soon as the inflated size passes the limit, long
    // before the whole frame has arrived.
    let mut fed = 0;
    let mut peak = 0;
    let err = loop {
        let end = (fed + 1024).min(bytes.len());
        server.feed(&bytes[fed..end]);
        fed = end;
        match server.poll_event() {
            Ok(None) => {}
            Ok(Some(e)) => panic!("unexpected {e:?}"),
            Err(e) => break e,
        }
        peak = peak.max(server.deflate_memory());
        assert!(fed < bytes.len(), "never failed");
    };
    assert!(matches!(err, ProtocolError::MessageTooLarge { max: m, .. } if m == max));
    assert_eq!(err.close_code(), CloseCode::MESSAGE_TOO_BIG);
    assert!(fed < bytes.len() / 4, "fed {fed} of {}", bytes.len());
    // What the connection held: the message buffer (at most the limit plus one byte) and
    // one inflate stream.
    assert!(peak <= max + 1 + 48 * 1024, "peak {peak}");
    assert_eq!(&wire(&mut server)[..4], &[0x88, 0x13, 0x03, 0xf1]);
    assert_eq!(server.deflate_memory(), 0, "released on failure");
}

#[test]
fn the_limit_is_on_the_inflated_size_of_a_fragmented_message() {
    let mut config = Config::default();
    config.max_message_size = 10_000;
    let z = compressed(&[b'a'; 10_001], Role::Client);
    let mut server =
        Connection::new(Role::Server, config.clone(), BytesMut::new()).with_deflate(params());
    let mut bytes = frame(0x42, &z[..z.len() / 2], true);
    bytes.extend(frame(0x80, &z[z.len() / 2..], true));
    assert!(matches!(
        run(&mut server, &bytes),
        Err(ProtocolError::MessageTooLarge { max: 10_000, .. })
    ));
    // Exactly at the limit is fine.
    let z = compressed(&[b'a'; 10_000], Role::Client);
    let mut server = Connection::new(Role::Server, config, BytesMut::new()).with_deflate(params());
    let events = run(&mut server, &frame(0xc2, &z, true)).unwrap();
    assert_eq!(
        events,
        [Event::Message(Message::binary(vec![b'a'; 10_000]))]
    );
}

#[test]
fn invalid_utf8_in_inflated_text_fails_fast_with_1007() {
    let mut payload = "ok ".repeat(1000).into_bytes();
    payload[5] = 0xc0;
    let z = compressed(&payload, Role::Client);
    // Only the first fragment has arrived: the invalid byte is already inflated and seen.
    let mut server = conn(Role::Server, Some(params()));
    assert_eq!(
        run(&mut server, &frame(0x41, &z, true)),
        Err(ProtocolError::InvalidUtf8)
    );
    assert_eq!(sent_close_code(&wire(&mut server)), 1007);
    // A text message that ends inside a character fails at its end.
    let z = compressed("€".as_bytes().get(..2).unwrap(), Role::Client);
    assert_fails(
        conn(Role::Server, Some(params())),
        &frame(0xc1, &z, true),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

// ---- memory --------------------------------------------------------------------------

#[test]
fn streams_are_allocated_on_first_use_and_freed_without_context_takeover() {
    let big = Message::text("hello hello hello ".repeat(200));
    // Context takeover: the streams stay between messages.
    let mut client = conn(Role::Client, Some(params()));
    let mut server = conn(Role::Server, Some(params()));
    assert_eq!((client.deflate_memory(), server.deflate_memory()), (0, 0));
    client.send(&big).unwrap();
    let sent = wire(&mut client);
    assert!(sent.len() < 200, "compressed: {} bytes", sent.len());
    assert!(client.deflate_memory() >= 128 * 1024);
    assert_eq!(
        run(&mut server, &sent).unwrap(),
        [Event::Message(big.clone())]
    );
    assert!(server.deflate_memory() > 32 * 1024);
    client.release_compressor();
    assert_eq!(client.deflate_memory(), 0);
    // After a release the next message still reads (a fresh stream refers to nothing old).
    client.send(&big).unwrap();
    assert_eq!(
        run(&mut server, &wire(&mut client)).unwrap(),
        [Event::Message(big.clone())]
    );

    // No context takeover either way: nothing is held between messages.
    let mut p = params();
    p.server_no_context_takeover = true;
    p.client_no_context_takeover = true;
    let mut client = conn(Role::Client, Some(p));
    let mut server = conn(Role::Server, Some(p));
    for _ in 0..3 {
        client.send(&big).unwrap();
        assert_eq!(client.deflate_memory(), 0);
        assert_eq!(
            run(&mut server, &wire(&mut client)).unwrap(),
            [Event::Message(big.clone())]
        );
        assert_eq!(server.deflate_memory(), 0);
        server.send(&big).unwrap();
        assert_eq!(
            run(&mut client, &wire(&mut server)).unwrap(),
            [Event::Message(big.clone())]
        );
    }
}

#[test]
fn an_idle_dedicated_compressor_is_freed_by_the_cores_deadline() {
    let big = Message::text("hello hello hello ".repeat(200));
    let mut p = params();
    p.compressor_idle_release = Some(Duration::from_secs(30));
    let mut server = conn(Role::Server, Some(p));
    let mut client = conn(Role::Client, Some(p));
    let t0 = Instant::now();
    server.handle_timeout(t0);
    assert_eq!(server.poll_timeout(), None, "no stream, no deadline");
    server.send(&big).unwrap();
    assert!(server.deflate_memory() >= 128 * 1024);
    server.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_secs(31)));
    // Used again at 20 s: the deadline moves.
    server.send(&big).unwrap();
    server.handle_timeout(t0 + Duration::from_secs(20));
    assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    server.handle_timeout(t0 + Duration::from_secs(49));
    assert!(server.deflate_memory() >= 128 * 1024);
    server.handle_timeout(t0 + Duration::from_secs(50));
    assert_eq!(server.deflate_memory(), 0, "released at its deadline");
    assert_eq!(server.poll_timeout(), None);
    // Both messages read, then one compressed by a fresh stream after the release.
    server.send(&big).unwrap();
    let events = run(&mut client, &wire(&mut server)).unwrap();
    assert_eq!(events, vec![Event::Message(big.clone()); 3]);

    // None: kept for the connection's lifetime.
    p.compressor_idle_release = None;
    let mut server = conn(Role::Server, Some(p));
    server.handle_timeout(t0);
    server.send(&big).unwrap();
    server.handle_timeout(t0 + Duration::from_secs(3600));
    assert_eq!(server.poll_timeout(), None);
    assert!(server.deflate_memory() >= 128 * 1024);
}

#[test]
fn a_client_told_to_use_a_window_of_8_sends_uncompressed() {
    let mut p = params();
    p.client_max_window_bits = 8;
    let mut client = conn(Role::Client, Some(p));
    client.send(&Message::text("a".repeat(2000))).unwrap();
    let bytes = wire(&mut client);
    assert_eq!(bytes[0], 0x81, "RSV1 clear");
    // And the server inflates a peer's 8-bit window (with 9) when one does compress.
    let mut server = conn(Role::Server, Some(p));
    assert_eq!(run(&mut server, &bytes).unwrap().len(), 1);
}

fn lean() -> DeflateParams {
    let mut p = params();
    p.server_no_context_takeover = true;
    p.client_no_context_takeover = true;
    p
}

/// Feeds all of `bytes` and collects events, inflating with streams lent by `pool`.
fn run_with(conn: &mut Connection, bytes: &[u8], pool: &mut StreamPool) -> Vec<Event> {
    conn.feed(bytes);
    let mut events = Vec::new();
    while let Some(event) = conn.poll_event_with(pool).expect("valid stream") {
        events.push(event);
    }
    events
}

#[test]
fn shared_streams_are_lent_per_message_and_reused() {
    let big = Message::text("shared streams, one per message in flight ".repeat(100));
    let mut server_pool = StreamPool::default();
    let mut client_pool = StreamPool::default();
    let mut servers: Vec<Connection> = (0..3).map(|_| conn(Role::Server, Some(lean()))).collect();
    let mut clients: Vec<Connection> = (0..3).map(|_| conn(Role::Client, Some(lean()))).collect();
    for _ in 0..4 {
        for (client, server) in clients.iter_mut().zip(&mut servers) {
            client.send_with(&big, &mut client_pool).unwrap();
            let bytes = wire(client);
            assert_eq!(bytes[0], 0xc1, "compressed");
            assert_eq!(
                run_with(server, &bytes, &mut server_pool),
                [Event::Message(big.clone())]
            );
            server.send_with(&big, &mut server_pool).unwrap();
            assert_eq!(
                run_with(client, &wire(server), &mut client_pool),
                [Event::Message(big.clone())]
            );
            // Between messages the connections hold nothing; the pools one of each.
            assert_eq!((client.deflate_memory(), server.deflate_memory()), (0, 0));
            assert_eq!(server_pool.idle(), (1, 1));
            assert_eq!(client_pool.idle(), (1, 1));
        }
    }
    assert!(server_pool.memory() > 32 * 1024);

    // A message still arriving keeps its stream; another connection meanwhile gets its
    // own, and both end up in the pool.
    let mut pool = StreamPool::default();
    let mut a = conn(Role::Server, Some(lean()));
    let mut b = conn(Role::Server, Some(lean()));
    let mut sender = conn(Role::Client, Some(lean()));
    sender.send(&big).unwrap();
    let whole = wire(&mut sender);
    let half = whole.len() / 2;
    assert_eq!(run_with(&mut a, &whole[..half], &mut pool), []);
    assert!(a.deflate_memory() > 0, "kept mid-message");
    assert_eq!(pool.idle(), (0, 0));
    assert_eq!(
        run_with(&mut b, &whole, &mut pool),
        [Event::Message(big.clone())]
    );
    assert_eq!(pool.idle(), (1, 0));
    assert_eq!(
        run_with(&mut a, &whole[half..], &mut pool),
        [Event::Message(big.clone())]
    );
    assert_eq!(pool.idle(), (2, 0));
    assert_eq!(a.deflate_memory(), 0);

    // With context takeover the pool is not used: the streams are the connection's.
    let mut pool = StreamPool::default();
    let mut c = conn(Role::Client, Some(params()));
    c.send_with(&big, &mut pool).unwrap();
    assert_eq!(pool.idle(), (0, 0));
    assert!(c.deflate_memory() > 0);
}

// ---- round trips -----------------------------------------------------------------------

fn message_strategy() -> impl Strategy<Value = Message> {
    prop_oneof![
        "\\PC{0,300}".prop_map(Message::text),
        // Compressible text, long enough to pass thresholds and span windows.
        ("[a-c ]{0,40}", 0usize..200).prop_map(|(s, n)| Message::text(s.repeat(n))),
        proptest::collection::vec(any::<u8>(), 0..3000).prop_map(Message::binary),
        proptest::collection::vec(0u8..3, 0..5000).prop_map(Message::binary),
    ]
}

fn params_strategy() -> impl Strategy<Value = DeflateParams> {
    (
        any::<bool>(),
        any::<bool>(),
        9u8..=15,
        9u8..=15,
        0u8..=9,
        prop_oneof![Just(0usize), 0usize..2000],
    )
        .prop_map(|(snct, cnct, sw, cw, level, min_size)| {
            let mut p = DeflateParams::default();
            p.server_no_context_takeover = snct;
            p.client_no_context_takeover = cnct;
            p.server_max_window_bits = sw;
            p.client_max_window_bits = cw;
            p.level = level;
            p.min_size = min_size;
            p
        })
}

/// Feeds `bytes` to `conn` in pieces ending at `cuts`, collecting every event; with a
/// pool, inflating with its streams.
fn receive(
    conn: &mut Connection,
    bytes: &[u8],
    cuts: &[usize],
    mut pool: Option<&mut StreamPool>,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        conn.feed(&bytes[at..cut]);
        at = cut;
        loop {
            let next = match pool.as_deref_mut() {
                Some(pool) => conn.poll_event_with(pool),
                None => conn.poll_event(),
            };
            match next.expect("valid stream") {
                Some(event) => events.push(event),
                None => break,
            }
        }
    }
    events
}

fn sorted_cuts(len: usize, raw: Vec<usize>) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.into_iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn round_trip_both_ways_in_any_split(
        messages in proptest::collection::vec(message_strategy(), 1..10),
        p in params_strategy(),
        fragment in prop_oneof![Just(None), (1usize..300).prop_map(Some)],
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..20),
        shared in any::<bool>(),
    ) {
        let mut config = Config::default();
        config.fragment_size = fragment;
        let mut client = Connection::new(Role::Client, config.clone(), BytesMut::new()).with_deflate(p);
        let mut server = Connection::new(Role::Server, config, BytesMut::new()).with_deflate(p);
        // Shared streams: one pool per side, as one per worker thread would be.
        let (mut client_pool, mut server_pool) = (StreamPool::new(1), StreamPool::new(1));
        for m in &messages {
            if shared {
                client.send_with(m, &mut client_pool).unwrap();
            } else {
                client.send(m).unwrap();
            }
        }
        let bytes = wire(&mut client);
        let cuts = sorted_cuts(bytes.len(), raw_cuts.clone());
        let got = receive(&mut server, &bytes, &cuts, shared.then_some(&mut server_pool));
        let want: Vec<Event> = messages.iter().cloned().map(Event::Message).collect();
        prop_assert_eq!(&got, &want);
        // And back: the server echoes them.
        for m in &messages {
            if shared {
                server.send_with(m, &mut server_pool).unwrap();
            } else {
                server.send(m).unwrap();
            }
        }
        let bytes = wire(&mut server);
        let cuts = sorted_cuts(bytes.len(), raw_cuts);
        prop_assert_eq!(receive(&mut client, &bytes, &cuts, shared.then_some(&mut client_pool)), want);
    }
}
