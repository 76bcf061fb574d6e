//! The core's deadlines driven by a fake clock: keepalive pings, the idle timeout, the
//! close timeout and the close hold, with no sleeping. Time is an `Instant` the test moves
//! by hand; the core only ever sees the `now` it is given.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use wsengine::proto::timers::Expired;
use wsengine::{CloseCode, Config, Connection, Event, Message, Role, State};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn config(ping: Option<u64>, idle: Option<u64>) -> Config {
    let mut config = Config::default();
    config.ping_interval = ping.map(secs);
    config.idle_timeout = idle.map(secs);
    config.close_timeout = secs(5);
    config
}

fn wire(conn: &mut Connection) -> Vec<u8> {
    let mut chunks = Vec::new();
    conn.drain_transmit(&mut chunks);
    chunks.concat()
}

/// Delivers everything `from` has queued to `to`, returning the events it produced.
fn deliver(from: &mut Connection, to: &mut Connection) -> Vec<Event> {
    let bytes = wire(from);
    to.feed(&bytes);
    let mut events = Vec::new();
    while let Ok(Some(event)) = to.poll_event() {
        events.push(event);
    }
    events
}

fn pair(server_config: Config) -> (Connection, Connection) {
    (
        Connection::new(Role::Client, Config::default(), BytesMut::new()),
        Connection::new(Role::Server, server_config, BytesMut::new()),
    )
}

#[test]
fn a_quiet_connection_is_pinged_every_interval_and_its_pongs_keep_it_open() {
    let t0 = Instant::now();
    let (mut client, mut server) = pair(config(Some(10), Some(25)));
    assert_eq!(server.handle_timeout(t0), None);
    assert_eq!(server.poll_timeout(), Some(t0 + secs(10)));
    // Nothing due before the deadline.
    assert_eq!(server.handle_timeout(t0 + secs(9)), None);
    assert!(wire(&mut server).is_empty());
    // At the deadline: a ping (RFC 6455 §5.5.2), unmasked, numbered 1 (8 bytes).
    assert_eq!(server.handle_timeout(t0 + secs(10)), None);
    let ping = wire(&mut server);
    assert_eq!(ping, [&[0x89, 0x08][..], &1u64.to_be_bytes()].concat());
    let number = Bytes::copy_from_slice(&1u64.to_be_bytes());
    // The client answers; the pong's arrival counts as activity at the next call.
    client.feed(&ping);
    assert_eq!(
        client.poll_event().unwrap(),
        Some(Event::Ping(number.clone()))
    );
    assert_eq!(server.rtt(), None, "not answered yet");
    assert_eq!(deliver(&mut client, &mut server), [Event::Pong(number)]);
    let t12 = t0 + secs(12);
    assert_eq!(server.handle_timeout(t12), None);
    assert_eq!(server.poll_timeout(), Some(t12 + secs(10)));
    // Timed from the call that queued it to the call after its pong arrived.
    assert_eq!(server.rtt(), Some(secs(2)));
    // Long after, with the client answering each ping, still open.
    let mut now = t12;
    for _ in 0..10 {
        now = server.poll_timeout().unwrap();
        assert_eq!(server.handle_timeout(now), None);
        client.feed(&wire(&mut server));
        while client.poll_event().unwrap().is_some() {}
        deliver(&mut client, &mut server);
    }
    assert!(now > t0 + secs(100));
    assert_eq!(server.state(), State::Open);
}

#[test]
fn a_peer_that_sends_nothing_is_dropped_at_the_idle_timeout() {
    let t0 = Instant::now();
    let (_client, mut server) = pair(config(Some(10), Some(25)));
    server.handle_timeout(t0);
    // Pings at 10 and 20 go unanswered.
    for at in [10, 20] {
        assert_eq!(server.poll_timeout(), Some(t0 + secs(at)));
        assert_eq!(server.handle_timeout(t0 + secs(at)), None);
        let seq: u64 = at / 10;
        assert_eq!(
            wire(&mut server),
            [&[0x89, 0x08][..], &seq.to_be_bytes()].concat()
        );
    }
    assert_eq!(server.poll_timeout(), Some(t0 + secs(25)));
    assert_eq!(server.handle_timeout(t0 + secs(25)), Some(Expired::Idle));
    assert_eq!(server.state(), State::Closed);
    assert!(
        wire(&mut server).is_empty(),
        "no close frame after an abort"
    );
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn messages_count_as_activity_for_the_idle_timeout() {
    let t0 = Instant::now();
    let (mut client, mut server) = pair(config(None, Some(30)));
    server.handle_timeout(t0);
    client.send(&Message::text("still here")).unwrap();
    deliver(&mut client, &mut server);
    assert_eq!(server.handle_timeout(t0 + secs(20)), None);
    assert_eq!(server.poll_timeout(), Some(t0 + secs(50)));
    assert_eq!(server.handle_timeout(t0 + secs(49)), None);
    assert_eq!(server.handle_timeout(t0 + secs(50)), Some(Expired::Idle));
}

#[test]
fn no_deadline_without_keepalive_settings() {
    let t0 = Instant::now();
    let (_client, mut server) = pair(config(None, None));
    assert_eq!(server.handle_timeout(t0), None);
    assert_eq!(server.poll_timeout(), None);
    assert_eq!(server.handle_timeout(t0 + secs(1_000_000)), None);
    assert_eq!(server.state(), State::Open);
}

#[test]
fn our_close_is_given_up_after_the_close_timeout() {
    let t0 = Instant::now();
    let (_client, mut server) = pair(config(Some(1), None));
    server.handle_timeout(t0);
    server.close(CloseCode::NORMAL, "bye").unwrap();
    wire(&mut server);
    // The close timeout counts from the call after the close was queued; no more pings.
    let t1 = t0 + secs(1);
    assert_eq!(server.handle_timeout(t1), None);
    assert!(wire(&mut server).is_empty());
    assert_eq!(server.poll_timeout(), Some(t1 + secs(5)));
    assert_eq!(server.handle_timeout(t1 + secs(4)), None);
    assert_eq!(
        server.handle_timeout(t1 + secs(5)),
        Some(Expired::CloseUnanswered)
    );
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn an_answered_close_needs_no_timer() {
    let t0 = Instant::now();
    let (mut client, mut server) = pair(config(None, None));
    server.handle_timeout(t0);
    server.close(CloseCode::NORMAL, "").unwrap();
    server.handle_timeout(t0);
    assert_eq!(server.poll_timeout(), Some(t0 + secs(5)));
    deliver(&mut server, &mut client);
    deliver(&mut client, &mut server);
    assert_eq!(server.state(), State::Closed);
    assert_eq!(server.handle_timeout(t0 + secs(1)), None);
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn a_held_close_lets_replies_out_and_goes_last() {
    let t0 = Instant::now();
    let (mut client, mut server) = pair(config(None, None));
    server.handle_timeout(t0);
    client.send(&Message::binary(&b"question"[..])).unwrap();
    client.close(CloseCode::NORMAL, "").unwrap();
    let events = deliver(&mut client, &mut server);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(server.state(), State::ClosePending);
    // The application has not answered yet: the close frame waits; nothing else is queued.
    server.hold_close(true);
    assert!(!server.wants_transmit());
    assert!(wire(&mut server).is_empty());
    server.handle_timeout(t0);
    assert_eq!(server.poll_timeout(), Some(t0 + secs(5)));
    // Its reply leaves at once, without the close.
    server.send(&Message::binary(&b"answer"[..])).unwrap();
    assert_eq!(wire(&mut server), b"\x82\x06answer");
    // Read and answered: the hold ends and the close (echoing 1000) goes last.
    server.hold_close(false);
    assert!(server.wants_transmit());
    assert_eq!(wire(&mut server), [0x88, 0x02, 0x03, 0xe8]);
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn a_close_is_held_at_most_the_close_timeout() {
    let t0 = Instant::now();
    let (mut client, mut server) = pair(config(None, None));
    client.send(&Message::text("unread")).unwrap();
    client.close(CloseCode::NORMAL, "").unwrap();
    deliver(&mut client, &mut server);
    server.hold_close(true);
    server.handle_timeout(t0);
    assert_eq!(server.handle_timeout(t0 + secs(4)), None);
    assert!(wire(&mut server).is_empty());
    assert_eq!(server.handle_timeout(t0 + secs(5)), None);
    // Released for good: asking again does not hold it.
    server.hold_close(true);
    assert_eq!(wire(&mut server), [0x88, 0x02, 0x03, 0xe8]);
}

/// Only the keepalive ping's own pong is timed: an unsolicited pong, one with another
/// payload, or the answer to the application's ping leave `rtt` alone.
#[test]
fn rtt_times_only_the_keepalive_pings_own_pong() {
    let t0 = Instant::now();
    let (mut client, mut server) = pair(config(Some(10), None));
    server.handle_timeout(t0);
    server.handle_timeout(t0 + secs(10));
    let ping = wire(&mut server);
    // Pongs that are not its answer: empty, another number, the application's ping's.
    client.send_pong(Bytes::new()).unwrap();
    client
        .send_pong(Bytes::copy_from_slice(&2u64.to_be_bytes()))
        .unwrap();
    server
        .send_ping(Bytes::copy_from_slice(&1u64.to_be_bytes()[..7]))
        .unwrap();
    client.feed(&wire(&mut server));
    while client.poll_event().unwrap().is_some() {}
    assert_eq!(deliver(&mut client, &mut server).len(), 3);
    server.handle_timeout(t0 + secs(11));
    assert_eq!(server.rtt(), None);
    // Its answer, arriving before the call at 10.25 s.
    client.feed(&ping);
    while client.poll_event().unwrap().is_some() {}
    deliver(&mut client, &mut server);
    server.handle_timeout(t0 + Duration::from_millis(10_250));
    assert_eq!(server.rtt(), Some(Duration::from_millis(250)));
    // A repeat of the same pong changes nothing.
    client
        .send_pong(Bytes::copy_from_slice(&1u64.to_be_bytes()))
        .unwrap();
    deliver(&mut client, &mut server);
    server.handle_timeout(t0 + secs(12));
    assert_eq!(server.rtt(), Some(Duration::from_millis(250)));
}
