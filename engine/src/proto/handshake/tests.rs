//! The opening handshake against RFC 6455 §4: vectors, every rejection with its status,
//! every split of the byte stream, and the client's checks of the server's answer.

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;

/// RFC 6455 §1.2's example request.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn parse(bytes: &[u8]) -> Result<Option<Request>, HandshakeError> {
    ServerHandshake::new(HandshakeLimits::default()).parse(&mut BytesMut::from(bytes))
}

fn request_with(replace: &str, with: &str) -> String {
    assert!(RFC_REQUEST.contains(replace));
    RFC_REQUEST.replacen(replace, with, 1)
}

#[track_caller]
fn assert_rejected(request: &str, expected: HandshakeError, status: u16) {
    let err = parse(request.as_bytes()).expect_err("rejected");
    assert_eq!(err, expected);
    assert_eq!(err.status(), status);
    // A complete HTTP response whose Content-Length matches its body.
    let response = err.to_response();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = parsed.parse(&response).unwrap() else {
        panic!("incomplete response");
    };
    assert_eq!(parsed.code, Some(status));
    let length: usize = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
        .unwrap();
    assert_eq!(response.len() - head_len, length);
}

#[test]
fn rfc_example_request_is_accepted_and_answered() {
    let request = parse(RFC_REQUEST.as_bytes()).unwrap().unwrap();
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.origin(), Some("http://example.com"));
    assert_eq!(
        request.protocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );
    let response = request
        .accept_response(&Accept::new().protocol("chat"))
        .unwrap();
    let text = String::from_utf8(response).unwrap();
    assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(text.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
    assert!(!text.contains("Extensions"));
    assert!(text.ends_with("\r\n\r\n"));
}

#[test]
fn browser_variants_are_accepted() {
    // Firefox: a Connection list; mixed case everywhere.
    let firefox = request_with("Connection: Upgrade", "Connection: keep-alive, Upgrade");
    assert!(parse(firefox.as_bytes()).unwrap().is_some());
    let mixed = request_with("Upgrade: websocket", "upgrade: WebSocket")
        .replace("Connection: Upgrade", "CONNECTION: upgrade");
    assert!(parse(mixed.as_bytes()).unwrap().is_some());
}

#[test]
fn each_rejection_has_its_status() {
    assert_rejected(
        &RFC_REQUEST.replacen("GET", "POST", 1),
        HandshakeError::MethodNotAllowed,
        405,
    );
    assert_rejected(
        &RFC_REQUEST.replacen("HTTP/1.1", "HTTP/1.0", 1),
        HandshakeError::UnsupportedHttpVersion,
        400,
    );
    assert_rejected(
        &request_with("Host: server.example.com\r\n", ""),
        HandshakeError::MissingHost,
        400,
    );
    assert_rejected(
        &request_with("Upgrade: websocket\r\n", ""),
        HandshakeError::NotWebSocketUpgrade,
        426,
    );
    assert_rejected(
        &request_with("Upgrade: websocket", "Upgrade: h2c"),
        HandshakeError::NotWebSocketUpgrade,
        426,
    );
    assert_rejected(
        &request_with("Connection: Upgrade", "Connection: keep-alive"),
        HandshakeError::MissingConnectionUpgrade,
        400,
    );
    assert_rejected(
        &request_with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
        HandshakeError::InvalidKey,
        400,
    );
    assert_rejected(
        &request_with("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
        HandshakeError::InvalidKey,
        400,
    );
    assert_rejected(
        &request_with("dGhlIHNhbXBsZSBub25jZQ==", "not base64!!"),
        HandshakeError::InvalidKey,
        400,
    );
    assert_rejected(
        &request_with(
            "Origin:",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin:",
        ),
        HandshakeError::InvalidKey,
        400,
    );
    assert_rejected(
        &request_with("Version: 13", "Version: 8"),
        HandshakeError::UnsupportedVersion,
        426,
    );
    assert_rejected(
        &request_with("Sec-WebSocket-Version: 13\r\n", ""),
        HandshakeError::UnsupportedVersion,
        426,
    );
    assert!(
        String::from_utf8(HandshakeError::UnsupportedVersion.to_response())
            .unwrap()
            .contains("\r\nSec-WebSocket-Version: 13\r\n")
    );
    assert_rejected(
        "GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
        HandshakeError::Malformed("invalid header name"),
        400,
    );
}

#[test]
fn oversized_heads_get_431_even_without_the_blank_line() {
    let mut parser = ServerHandshake::new(HandshakeLimits::default());
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nX-Long: "[..]);
    buf.extend_from_slice(&vec![b'a'; 16 * 1024]);
    assert_eq!(
        parser.parse(&mut buf).unwrap_err(),
        HandshakeError::HeadTooLarge
    );
    let many: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
    let request = request_with("Origin:", &format!("{many}Origin:"));
    assert_rejected(&request, HandshakeError::TooManyHeaders, 431);
}

#[test]
fn every_split_gives_the_same_request_and_keeps_the_frames_after_it() {
    let frames: &[u8] = &[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut stream = RFC_REQUEST.as_bytes().to_vec();
    stream.extend_from_slice(frames);
    for cut in 0..=stream.len() {
        let mut parser = ServerHandshake::new(HandshakeLimits::default());
        let mut buf = BytesMut::new();
        let mut request = None;
        for piece in [&stream[..cut], &stream[cut..]] {
            buf.extend_from_slice(piece);
            if request.is_none() {
                request = parser.parse(&mut buf).unwrap();
            }
        }
        let request = request.expect("complete");
        assert_eq!(request.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(&buf[..], frames, "cut {cut}");
    }
    // One byte at a time.
    let mut parser = ServerHandshake::new(HandshakeLimits::default());
    let mut buf = BytesMut::new();
    let mut done = None;
    for &b in &stream {
        buf.extend_from_slice(&[b]);
        if done.is_none() {
            done = parser.parse(&mut buf).unwrap();
        }
    }
    assert!(done.is_some());
    assert_eq!(&buf[..], frames);
}

#[test]
fn query_cookies_and_headers() {
    let request = request_with("GET /chat", "GET /chat?room=7&x=1").replace(
        "Origin:",
        "Cookie: session=abc; theme=\"dark\"\r\nCookie: a=b\r\nOrigin:",
    );
    let request = parse(request.as_bytes()).unwrap().unwrap();
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.query(), Some("room=7&x=1"));
    assert_eq!(request.uri(), "/chat?room=7&x=1");
    assert_eq!(
        request.cookies().collect::<Vec<_>>(),
        [("session", "abc"), ("theme", "dark"), ("a", "b")]
    );
    assert_eq!(request.cookie("a"), Some("b"));
    assert_eq!(request.header_str("HOST"), Some("server.example.com"));
    assert_eq!(request.headers().count(), 9);
}

#[test]
fn accepting_an_unoffered_protocol_is_an_error() {
    let request = parse(RFC_REQUEST.as_bytes()).unwrap().unwrap();
    assert_eq!(
        request
            .accept_response(&Accept::new().protocol("mqtt"))
            .unwrap_err(),
        HandshakeError::ProtocolNotOffered("mqtt".into())
    );
    assert!(
        request
            .accept_response(&Accept::new().header("Bad\r\nName", "x"))
            .is_err()
    );
    let ok = request
        .accept_response(&Accept::new().header("Set-Cookie", "id=1"))
        .unwrap();
    assert!(
        String::from_utf8(ok)
            .unwrap()
            .contains("\r\nSet-Cookie: id=1\r\n")
    );
}

#[test]
fn reject_renders_a_full_response() {
    let response = Reject::new(403, "origin not allowed")
        .header("X-Why", "policy")
        .to_response();
    let text = String::from_utf8(response).unwrap();
    assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"));
    assert!(text.contains("X-Why: policy\r\n"));
    assert!(text.ends_with("\r\n\r\norigin not allowed\n"));
    assert_eq!(Reject::new(200, "").status(), 500);
}

/// A server's answer to `request`, built by our own server code.
fn server_answer(request: &[u8], accept: Accept) -> Vec<u8> {
    let req = parse(request).unwrap().unwrap();
    req.accept_response(&accept).unwrap()
}

#[test]
fn client_request_round_trips_through_the_server() {
    let (bytes, mut client) = ClientRequest::new("127.0.0.1:9001", "/echo?x=1")
        .protocol("v1")
        .protocol("v2")
        .origin("http://localhost")
        .header("Authorization", "Bearer t")
        .build(HandshakeLimits::default())
        .unwrap();
    let request = parse(&bytes).unwrap().unwrap();
    assert_eq!(request.uri(), "/echo?x=1");
    assert_eq!(request.protocols().collect::<Vec<_>>(), ["v1", "v2"]);
    assert_eq!(request.header_str("authorization"), Some("Bearer t"));
    let answer = server_answer(&bytes, Accept::new().protocol("v2"));
    // The answer in every split, with a frame right after it.
    let mut stream = answer.clone();
    stream.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    for cut in 0..=stream.len() {
        let mut parser = ClientHandshake::clone_for_test(&client);
        let mut buf = BytesMut::from(&stream[..cut]);
        let mut response = parser.parse_response(&mut buf).unwrap();
        buf.extend_from_slice(&stream[cut..]);
        if response.is_none() {
            response = parser.parse_response(&mut buf).unwrap();
        }
        assert_eq!(response.unwrap().protocol(), Some("v2"));
        assert_eq!(&buf[..], &[0x81, 0x02, b'h', b'i'], "cut {cut}");
    }
    let mut buf = BytesMut::from(&answer[..]);
    assert!(client.parse_response(&mut buf).unwrap().is_some());
}

#[test]
fn client_rejects_bad_answers() {
    let build = || {
        ClientRequest::new("h", "/")
            .protocol("v1")
            .build(HandshakeLimits::default())
            .unwrap()
    };
    let check = |answer: String, expected: ClientHandshakeError| {
        let (_, mut parser) = build();
        let mut buf = BytesMut::from(answer.as_bytes());
        assert_eq!(parser.parse_response(&mut buf).unwrap_err(), expected);
    };
    let (bytes, _) = build();
    let good = String::from_utf8(server_answer(&bytes, Accept::new())).unwrap();
    // Our key is random, so the good answer is for another key: wrong accept.
    check(good.clone(), ClientHandshakeError::WrongAcceptKey);
    check(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into(),
        ClientHandshakeError::Status(403),
    );
    check(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n".into(),
        ClientHandshakeError::MissingUpgrade,
    );
    check(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".into(),
        ClientHandshakeError::MissingConnectionUpgrade,
    );
    // The right accept key, plus an unrequested protocol or extension.
    let (bytes, parser) = build();
    let right = String::from_utf8(server_answer(&bytes, Accept::new())).unwrap();
    let with = |extra: &str| right.replacen("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n"), 1);
    for (answer, expected) in [
        (
            with("Sec-WebSocket-Protocol: v9"),
            ClientHandshakeError::UnofferedProtocol("v9".into()),
        ),
        (
            with("Sec-WebSocket-Extensions: permessage-deflate"),
            ClientHandshakeError::UnrequestedExtension("permessage-deflate".into()),
        ),
    ] {
        let mut parser = ClientHandshake::clone_for_test(&parser);
        let mut buf = BytesMut::from(answer.as_bytes());
        assert_eq!(parser.parse_response(&mut buf).unwrap_err(), expected);
    }
    assert!(matches!(
        ClientRequest::new("h", "/")
            .header("X-Evil", "a\r\nInjected: 1")
            .build(HandshakeLimits::default()),
        Err(ClientHandshakeError::InvalidHeader(_))
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        let cut = cut.min(bytes.len());
        let mut parser = ServerHandshake::new(HandshakeLimits::default());
        let mut buf = BytesMut::from(&bytes[..cut]);
        if let Ok(None) = parser.parse(&mut buf) {
            buf.extend_from_slice(&bytes[cut..]);
            let _ = parser.parse(&mut buf);
        }
    }

    #[test]
    fn header_noise_around_a_valid_request(noise in "[A-Za-z0-9-]{1,20}", value in "[ -~]{0,40}") {
        let request = request_with("Origin:", &format!("X-{noise}: {value}\r\nOrigin:"));
        prop_assert!(parse(request.as_bytes()).unwrap().is_some());
    }
}
