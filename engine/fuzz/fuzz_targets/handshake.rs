//! The handshake parsers: arbitrary bytes, whole or in two pieces, must give the same
//! outcome (request, need-more, or the same error), never a panic; an accepted request
//! leaves exactly the bytes after its head; every error renders a parseable response.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsengine::proto::handshake::{Accept, ClientRequest, HandshakeLimits, ServerHandshake};

fn outcome(stream: &[u8], cut: usize) -> (Result<Option<String>, String>, Vec<u8>) {
    let mut parser = ServerHandshake::new(HandshakeLimits::default());
    let mut buf = BytesMut::from(&stream[..cut]);
    let mut result = parser.parse(&mut buf);
    // The rest arrives whatever the first parse said: after an accepted request it is
    // the frame stream and must stay in the buffer untouched.
    buf.extend_from_slice(&stream[cut..]);
    if let Ok(None) = result {
        result = parser.parse(&mut buf);
    }
    let summary = match result {
        Ok(Some(request)) => {
            let response = request.accept_response(&Accept::new()).expect("plain accept");
            assert!(response.starts_with(b"HTTP/1.1 101 "));
            Ok(Some(format!("{} {}", request.uri(), request.key())))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            let response = e.to_response();
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut parsed = httparse::Response::new(&mut headers);
            assert!(matches!(parsed.parse(&response), Ok(httparse::Status::Complete(_))));
            assert_eq!(parsed.code, Some(e.status()));
            Err(e.to_string())
        }
    };
    (summary, buf.to_vec())
}

fuzz_target!(|input: (u16, &[u8])| {
    let (cut, data) = input;
    // Half the time, start from a valid request so the fuzzer explores past the basics.
    let mut stream = Vec::new();
    if cut % 2 == 0 {
        let (request, _) = ClientRequest::new("h", "/").build(HandshakeLimits::default()).unwrap();
        stream.extend_from_slice(&request[..request.len().min(usize::from(cut / 2))]);
    }
    stream.extend_from_slice(data);
    let cut = usize::from(cut) % (stream.len() + 1);
    let whole = outcome(&stream, stream.len());
    let split = outcome(&stream, cut);
    assert_eq!(whole.0, split.0);
    if let Ok(Some(_)) = whole.0 {
        assert_eq!(whole.1, split.1);
    }
});
