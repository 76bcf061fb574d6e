//! 10,000 connections churning through one worker (connect, handshake, an echo, the
//! closing handshake, gone), from four client threads at once: afterwards the server holds
//! the descriptors and memory it held before, and still serves. One test in its own
//! binary, since it counts the whole process's descriptors and memory.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wsengine::runtime::ServerHandle;

mod common;
use common::{masked_frame, one_worker, open_fds, raw_handshake, rss_kib, serve_echo};

/// One connection's life: an echo of `n`, then a clean close and the server's FIN.
fn one_life(addr: SocketAddr, n: usize) {
    let mut s = raw_handshake(addr);
    let text = format!("message {n}");
    s.write_all(&masked_frame(0x1, text.as_bytes())).unwrap();
    let mut echo = vec![0u8; 2 + text.len()];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo[2..], text.as_bytes(), "echo {n}");
    s.write_all(&masked_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    let mut close = [0u8; 4];
    s.read_exact(&mut close).unwrap();
    assert_eq!(close, [0x88, 2, 0x03, 0xe8], "close {n}");
    // The server closes the TCP connection first (RFC 6455 §7.1.1).
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

fn churn(addr: SocketAddr, total: usize) {
    let threads: Vec<_> = (0..4)
        .map(|t| std::thread::spawn(move || (t..total).step_by(4).for_each(|n| one_life(addr, n))))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn wait_idle(server: &ServerHandle) {
    let stats = server.stats();
    let began = Instant::now();
    while stats.open.load(Ordering::SeqCst) != 0
        || stats.accepted.load(Ordering::SeqCst) != stats.upgraded.load(Ordering::SeqCst)
    {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "still open: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ten_thousand_connections_churn_and_leave_nothing_behind() {
    let server = serve_echo(one_worker());
    let addr = server.local_addr();
    // Warm the allocator, the worker's tables and its ring up.
    churn(addr, 1_000);
    wait_idle(&server);
    let fds = open_fds();
    let rss = rss_kib();
    let began = Instant::now();
    churn(addr, 10_000);
    wait_idle(&server);
    let took = began.elapsed();
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() != fds && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    let grown = rss_kib().saturating_sub(rss);
    // A leak of 200 bytes per connection would show as 2,000 KiB.
    assert!(
        grown < 2048,
        "RSS grew by {grown} KiB over 10,000 connections ({took:?})"
    );
    assert_eq!(server.stats().upgraded.load(Ordering::SeqCst), 11_000);
    churn(addr, 4);
    server.shutdown(Duration::from_secs(1));
}
