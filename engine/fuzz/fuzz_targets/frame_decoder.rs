//! The frame decoder with UTF-8 checks and reassembly, in both roles: arbitrary bytes fed
//! whole and fed in arbitrary pieces must give the same events and the same error, never a
//! panic, and a failed connection must have queued a close frame with the error's code.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsengine::{Config, Connection, Event, ProtocolError, Role};

fn run(role: Role, stream: &[u8], cuts: &[usize]) -> (Vec<Event>, Option<ProtocolError>, Vec<u8>) {
    let mut config = Config::default();
    config.max_frame_size = 1 << 16;
    config.max_message_size = 1 << 17;
    let mut conn = Connection::new(role, config, BytesMut::new());
    let mut events = Vec::new();
    let mut error = None;
    let mut at = 0;
    'feed: for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        conn.feed(&stream[at..cut]);
        at = cut;
        loop {
            match conn.poll_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    let mut out = Vec::new();
    conn.drain_transmit(&mut out);
    (events, error, out.concat())
}

fuzz_target!(|input: (bool, Vec<u16>, &[u8])| {
    let (client, raw_cuts, stream) = input;
    let role = if client { Role::Client } else { Role::Server };
    let mut cuts: Vec<usize> = raw_cuts.iter().map(|&c| usize::from(c) % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let whole = run(role, stream, &[]);
    let pieces = run(role, stream, &cuts);
    // Fail-fast UTF-8 may fail a frame earlier when fed in pieces, but never differently.
    assert_eq!(whole.1, pieces.1);
    assert_eq!(whole.0, pieces.0);
    if let Some(err) = whole.1 {
        // The failed connection queued a close frame with the error's code (after any
        // pongs): the peer, decoding what it wrote, ends with that close.
        let peer_role = if client { Role::Server } else { Role::Client };
        let (peer_events, peer_error, _) = run(peer_role, &whole.2, &[]);
        assert_eq!(peer_error, None);
        match peer_events.last() {
            Some(Event::Close(Some(frame))) => assert_eq!(frame.code, err.close_code()),
            other => panic!("expected a close frame with {}, got {other:?}", err.close_code()),
        }
    }
});
