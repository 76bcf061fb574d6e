//! permessage-deflate, decode against encode: whatever one side compresses and sends (any
//! agreed parameters, fragmentation, shared streams or not), the other inflates exactly,
//! however the stream is cut. Then arbitrary bytes into a negotiated connection (RSV1
//! frames of garbage included) must fail cleanly, never panic.

#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsengine::proto::extensions::{DeflateParams, StreamPool};
use wsengine::{Config, Connection, Event, Message, Role};

#[derive(Arbitrary, Debug)]
struct Input {
    client_sends: bool,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_bits: u8,
    client_bits: u8,
    level: u8,
    min_size: u8,
    shared: bool,
    fragment: Option<u8>,
    messages: Vec<(bool, Vec<u8>)>,
    cuts: Vec<u16>,
    garbage: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut params = DeflateParams::default();
    params.server_no_context_takeover = input.server_no_context_takeover;
    params.client_no_context_takeover = input.client_no_context_takeover;
    params.server_max_window_bits = 9 + input.server_bits % 7;
    params.client_max_window_bits = 9 + input.client_bits % 7;
    params.level = input.level % 10;
    params.min_size = usize::from(input.min_size);
    let mut config = Config::default();
    config.fragment_size = input.fragment.map(|f| usize::from(f) + 1);
    config.max_message_size = 1 << 20;
    let (sender_role, receiver_role) = if input.client_sends {
        (Role::Client, Role::Server)
    } else {
        (Role::Server, Role::Client)
    };
    let mut sender =
        Connection::new(sender_role, config.clone(), BytesMut::new()).with_deflate(params);
    let mut receiver =
        Connection::new(receiver_role, config.clone(), BytesMut::new()).with_deflate(params);
    let (mut send_pool, mut receive_pool) = (StreamPool::new(1), StreamPool::new(1));
    let mut expected = Vec::new();
    for (is_text, payload) in input.messages {
        let message = if is_text {
            Message::text(String::from_utf8_lossy(&payload).into_owned())
        } else {
            Message::binary(payload)
        };
        if input.shared {
            sender.send_with(&message, &mut send_pool).unwrap();
        } else {
            sender.send(&message).unwrap();
        }
        expected.push(Event::Message(message));
    }
    let mut chunks = Vec::new();
    sender.drain_transmit(&mut chunks);
    let stream = chunks.concat();
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| usize::from(c) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut got = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        receiver.feed(&stream[at..cut]);
        at = cut;
        loop {
            let next = if input.shared {
                receiver.poll_event_with(&mut receive_pool)
            } else {
                receiver.poll_event()
            };
            match next.expect("a valid stream") {
                Some(event) => got.push(event),
                None => break,
            }
        }
    }
    assert_eq!(got, expected);

    // Arbitrary bytes: errors are fine, panics are not; what is held stays bounded.
    let mut victim = Connection::new(receiver_role, config, BytesMut::new()).with_deflate(params);
    victim.feed(&input.garbage);
    while let Ok(Some(_)) = victim.poll_event() {}
    assert!(victim.deflate_memory() <= (1 << 20) + 1 + (64 << 10));
});
