//! Decode against encode: whatever messages one side sends (with or without fragmentation),
//! the other side receives exactly, however the stream is cut.

#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsengine::{Config, Connection, Event, Message, Role};

#[derive(Arbitrary, Debug)]
struct Input {
    client_sends: bool,
    fragment: Option<u8>,
    messages: Vec<(bool, Vec<u8>)>,
    cuts: Vec<u16>,
}

fuzz_target!(|input: Input| {
    let mut config = Config::default();
    config.fragment_size = input.fragment.map(|f| usize::from(f) + 1);
    let (sender_role, receiver_role) = if input.client_sends {
        (Role::Client, Role::Server)
    } else {
        (Role::Server, Role::Client)
    };
    let mut sender = Connection::new(sender_role, config.clone(), BytesMut::new());
    let mut receiver = Connection::new(receiver_role, config, BytesMut::new());
    let mut expected = Vec::new();
    for (is_text, payload) in input.messages {
        let message = if is_text {
            Message::text(String::from_utf8_lossy(&payload).into_owned())
        } else {
            Message::binary(payload)
        };
        sender.send(&message).unwrap();
        expected.push(Event::Message(message));
    }
    let mut chunks = Vec::new();
    sender.drain_transmit(&mut chunks);
    let stream = chunks.concat();
    let mut cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c) % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let mut got = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        receiver.feed(&stream[at..cut]);
        at = cut;
        while let Some(event) = receiver.poll_event().expect("a valid stream") {
            got.push(event);
        }
    }
    assert_eq!(got, expected);
});
