//! Hostile peers against the io_uring server: a ping flood and a client that sends but
//! never reads (memory stays within the queue bounds, then 1008), slowloris (5,000
//! partial handshakes), and the connection limit (503).

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wsengine::runtime::{Error, ServerHandle, SocketOptions, WebSocket, connect};
use wsengine::{CloseCode, Message};

mod common;
use common::{masked_frame, one_worker, raw_handshake, read_head, serve_echo, upgrade_request};

/// The send queue bound the flood tests use.
const QUEUE: usize = 64 * 1024;
/// The most one read can add to the send queue before the reader sees the bound: the
/// replies to one read's worth of frames (reads are at most 256 KiB).
const ONE_READ: usize = 256 * 1024;

fn stalling_options() -> SocketOptions {
    let mut options = SocketOptions::default();
    options.max_send_queue = QUEUE;
    options.send_stall_timeout = Some(Duration::from_secs(1));
    options
}

/// What a handler saw: the most bytes ever queued for the socket, and how it ended.
type Report = (usize, Result<Message, Error>);

/// A server whose handler echoes (or, with `echo` false, only watches while the core
/// answers pings by itself) and reports the largest `buffered_amount` it saw.
fn watching_server(echo: bool, report: mpsc::Sender<Report>) -> ServerHandle {
    one_worker()
        .socket_options(stalling_options())
        .serve(move |ws: WebSocket, _req| {
            let report = report.clone();
            async move {
                let most = Cell::new(0);
                let watch = async {
                    loop {
                        most.set(most.get().max(ws.buffered_amount()));
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                };
                let serve = async {
                    if !echo {
                        ws.closed().await;
                        return;
                    }
                    while let Ok(message) = ws.recv().await {
                        if ws.send(message).await.is_err() {
                            return;
                        }
                        most.set(most.get().max(ws.buffered_amount()));
                    }
                };
                tokio::select! {
                    _ = watch => {}
                    _ = serve => {}
                }
                // After the end, recv reports why (also when messages were left unread).
                let end = loop {
                    match ws.recv().await {
                        Ok(_) => continue,
                        end => break end,
                    }
                };
                let _ = report.send((most.get(), end));
            }
        })
        .expect("server starts")
}

/// Writes `chunk` over and over without ever reading, until the server ends the
/// connection or `limit` bytes or 20 s have gone. Returns the bytes written.
fn flood_without_reading(mut s: TcpStream, chunk: &[u8], limit: usize) -> usize {
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let began = Instant::now();
    let mut written = 0;
    while written < limit && began.elapsed() < Duration::from_secs(20) {
        match s.write(chunk) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    written
}

fn assert_closed_with_1008(end: Result<Message, Error>) {
    match end {
        Err(Error::Closed(frame)) => {
            assert_eq!(frame.code, CloseCode::POLICY_VIOLATION, "{frame:?}")
        }
        other => panic!("expected a 1008 close, got {other:?}"),
    }
}

#[test]
fn a_ping_flood_from_a_peer_that_never_reads_stays_bounded_and_ends_with_1008() {
    let (tx, rx) = mpsc::channel();
    let server = watching_server(false, tx);
    let raw = raw_handshake(server.local_addr());
    let pings: Vec<u8> = (0..500)
        .flat_map(|_| masked_frame(0x9, &[0x55; 125]))
        .collect();
    // Far more pongs than the kernel's socket buffers hold.
    let flood = std::thread::spawn(move || flood_without_reading(raw, &pings, 256 << 20));
    let (most, end) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the stalled connection ends");
    let written = flood.join().unwrap();
    assert!(
        most <= QUEUE + ONE_READ,
        "{most} bytes of pongs queued (bound {QUEUE} + one read) after {written} bytes of pings"
    );
    assert!(
        written > 8 * (QUEUE + ONE_READ),
        "the flood was too small to test anything"
    );
    assert_closed_with_1008(end);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn an_echo_to_a_peer_that_never_reads_stays_bounded_and_ends_with_1008() {
    let (tx, rx) = mpsc::channel();
    let server = watching_server(true, tx);
    let raw = raw_handshake(server.local_addr());
    let message = masked_frame(0x2, &[0xAB; 1024]);
    let batch: Vec<u8> = (0..64).flat_map(|_| message.iter().copied()).collect();
    let flood = std::thread::spawn(move || flood_without_reading(raw, &batch, 256 << 20));
    let (most, end) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the stalled connection ends");
    let written = flood.join().unwrap();
    // `send` accepts a message while the queue is below the bound.
    assert!(
        most <= QUEUE + 1024 + 4,
        "{most} bytes queued after {written} bytes sent"
    );
    assert!(
        written > 8 * QUEUE,
        "the flood was too small to test anything"
    );
    assert_closed_with_1008(end);
    server.shutdown(Duration::from_secs(1));
}

/// Connects `ws://addr/`, sends a text message and checks its echo.
async fn echo_once(addr: SocketAddr) {
    let (ws, _) = connect(&format!("ws://{addr}/")).await.unwrap();
    ws.send_text("hello").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("hello"));
}

#[test]
fn slowloris_does_not_stop_a_new_client_and_each_is_closed_at_the_handshake_timeout() {
    const SLOW: usize = 5000;
    const TIMEOUT: Duration = Duration::from_secs(4);
    let server = serve_echo(one_worker().handshake_timeout(TIMEOUT));
    let addr = server.local_addr();
    let request = upgrade_request();
    let partial = &request.as_bytes()[..40];
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(partial).unwrap();
        slow.push((s, Instant::now()));
    }
    // A new client is served at once, while all of them wait in their handshakes.
    common::run_client(async move {
        tokio::time::timeout(Duration::from_secs(1), echo_once(addr))
            .await
            .expect("a new client connects and gets its echo within a second");
    });
    // Each slow one is closed at the handshake timeout: not before, and not much after.
    for (mut s, opened) in slow {
        s.set_read_timeout(Some(TIMEOUT * 3)).unwrap();
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => panic!("expected the server to close, got {other:?}"),
            }
        }
        let lived = opened.elapsed();
        assert!(
            lived >= TIMEOUT - Duration::from_millis(20),
            "closed after {lived:?}"
        );
    }
    // Counted just after the socket is shut.
    let rejected = || {
        server
            .stats()
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let began = Instant::now();
    while rejected() < SLOW as u64 && began.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(rejected(), SLOW as u64);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn past_the_connection_limit_new_clients_get_503_until_one_leaves() {
    let server = serve_echo(one_worker().max_connections_per_worker(2));
    let addr = server.local_addr();
    let first = raw_handshake(addr);
    let _second = raw_handshake(addr);
    let mut third = TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    third.write_all(upgrade_request().as_bytes()).unwrap();
    let head = read_head(&mut third);
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let mut rest = Vec::new();
    assert!(third.read_to_end(&mut rest).is_ok(), "closed after the 503");
    // One leaves (a close handshake); then there is room again.
    let mut first = first;
    first
        .write_all(&masked_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    let mut reply = [0u8; 4];
    first.read_exact(&mut reply).unwrap();
    assert_eq!(reply, [0x88, 0x02, 0x03, 0xE8]);
    drop(first);
    let began = Instant::now();
    while server
        .stats()
        .open
        .load(std::sync::atomic::Ordering::Relaxed)
        > 1
    {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "the first never left"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(raw_handshake(addr));
    server.shutdown(Duration::from_secs(1));
}
