//! An in-memory client/server pair over the protocol core: whatever one side sends, the
//! other receives, however the byte stream is cut into reads.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use wsengine::{CloseCode, Config, Connection, Event, Message, Role};

fn pair(fragment_size: Option<usize>) -> (Connection, Connection) {
    let mut config = Config::default();
    config.fragment_size = fragment_size;
    (
        Connection::new(Role::Client, config.clone(), BytesMut::new()),
        Connection::new(Role::Server, config, BytesMut::new()),
    )
}

fn wire(conn: &mut Connection) -> Vec<u8> {
    let mut chunks = Vec::new();
    conn.drain_transmit(&mut chunks);
    chunks.concat()
}

/// Feeds `bytes` to `conn` in pieces ending at `cuts`, collecting every event.
fn receive(conn: &mut Connection, bytes: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        conn.feed(&bytes[at..cut]);
        at = cut;
        while let Some(event) = conn.poll_event().expect("valid stream") {
            events.push(event);
        }
    }
    events
}

fn message_strategy() -> impl Strategy<Value = Message> {
    prop_oneof![
        "\\PC{0,300}".prop_map(Message::text),
        proptest::collection::vec(any::<u8>(), 0..3000).prop_map(Message::binary),
    ]
}

fn sorted_cuts(len: usize, raw: Vec<usize>) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.into_iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn client_to_server_in_any_split(
        messages in proptest::collection::vec(message_strategy(), 1..12),
        fragment in prop_oneof![Just(None), (1usize..200).prop_map(Some)],
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let (mut client, mut server) = pair(fragment);
        for m in &messages {
            client.send(m).unwrap();
        }
        let bytes = wire(&mut client);
        let cuts = sorted_cuts(bytes.len(), raw_cuts);
        let expected: Vec<Event> = messages.into_iter().map(Event::Message).collect();
        prop_assert_eq!(receive(&mut server, &bytes, &cuts), expected);
    }

    #[test]
    fn server_to_client_in_any_split(
        messages in proptest::collection::vec(message_strategy(), 1..12),
        fragment in prop_oneof![Just(None), (1usize..200).prop_map(Some)],
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let (mut client, mut server) = pair(fragment);
        for m in &messages {
            server.send(m).unwrap();
        }
        let bytes = wire(&mut server);
        let cuts = sorted_cuts(bytes.len(), raw_cuts);
        let expected: Vec<Event> = messages.into_iter().map(Event::Message).collect();
        prop_assert_eq!(receive(&mut client, &bytes, &cuts), expected);
    }
}

#[test]
fn a_stream_fed_one_byte_at_a_time_equals_the_stream_fed_whole() {
    let (mut client, mut server) = pair(Some(7));
    let messages = [
        Message::text("héllo wörld, 한국어 text split across fragments"),
        Message::binary(vec![0xAB; 70_000]),
        Message::text(""),
        Message::binary(Vec::new()),
        Message::text("€".repeat(50)),
    ];
    for m in &messages {
        client.send(m).unwrap();
    }
    client
        .send_ping(Bytes::from_static(b"are you there"))
        .unwrap();
    client.close(CloseCode::NORMAL, "done").unwrap();
    let bytes = wire(&mut client);

    let whole = receive(
        &mut Connection::new(Role::Server, Config::default(), BytesMut::new()),
        &bytes,
        &[],
    );
    let cuts: Vec<usize> = (1..bytes.len()).collect();
    let bytewise = receive(&mut server, &bytes, &cuts);
    assert_eq!(whole, bytewise);
    assert_eq!(whole.len(), messages.len() + 2);
    assert!(matches!(whole.last(), Some(Event::Close(Some(c))) if c.reason.as_str() == "done"));
}

#[test]
fn every_single_split_point_of_a_small_stream() {
    let (mut client, _) = pair(Some(3));
    client.send(&Message::text("a€𝄞 fragmented")).unwrap();
    client.send(&Message::binary(vec![1u8; 300])).unwrap();
    client.send_ping(Bytes::from_static(b"x")).unwrap();
    let bytes = wire(&mut client);
    let reference = receive(&mut pair(None).1, &bytes, &[]);
    for i in 0..=bytes.len() {
        for j in (i..=bytes.len()).step_by(7) {
            assert_eq!(
                receive(&mut pair(None).1, &bytes, &[i, j]),
                reference,
                "cuts {i} {j}"
            );
        }
    }
}

#[test]
fn close_handshake_between_the_pair() {
    let (mut client, mut server) = pair(None);
    client.close(CloseCode(4001), "bye").unwrap();
    let events = receive(&mut server, &wire(&mut client), &[]);
    assert!(matches!(&events[..], [Event::Close(Some(c))] if c.code == CloseCode(4001)));
    let reply = wire(&mut server);
    assert!(server.is_closed());
    let events = receive(&mut client, &reply, &[]);
    assert!(matches!(&events[..], [Event::Close(Some(c))] if c.code == CloseCode(4001)));
    assert!(client.is_closed());
}

#[test]
fn ping_is_answered_by_the_core() {
    let (mut client, mut server) = pair(None);
    client.send_ping(Bytes::from_static(b"123")).unwrap();
    receive(&mut server, &wire(&mut client), &[]);
    let events = receive(&mut client, &wire(&mut server), &[]);
    assert_eq!(events, vec![Event::Pong(Bytes::from_static(b"123"))]);
}
