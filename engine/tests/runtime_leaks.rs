//! Abrupt peers leak nothing: after rounds of resets mid-handshake, mid-frame and
//! mid-close, and peers that vanish with unread echoes, the server holds the same file
//! descriptors and no more memory than before, and still serves. One test in its own
//! binary, since it counts the whole process's descriptors and memory.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wsengine::Message;
use wsengine::runtime::{ServerHandle, connect};

mod common;
use common::{
    masked_frame, one_worker, open_fds, raw_handshake, reset, rss_kib, serve_echo, upgrade_request,
};

/// Every way a peer can break off, `n` times each.
fn abrupt_round(addr: SocketAddr, n: usize) {
    let request = upgrade_request();
    for _ in 0..n {
        // Reset in the middle of the handshake.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&request.as_bytes()[..30]).unwrap();
        reset(s);
        // Reset in the middle of a frame.
        let mut s = raw_handshake(addr);
        s.write_all(&masked_frame(0x2, &[7; 1000])[..500]).unwrap();
        reset(s);
        // Reset in the middle of the closing handshake: our close sent, theirs unread.
        let mut s = raw_handshake(addr);
        s.write_all(&masked_frame(0x8, &1000u16.to_be_bytes()))
            .unwrap();
        reset(s);
        // Messages sent, echoes never read, then a FIN.
        let mut s = raw_handshake(addr);
        for _ in 0..10 {
            s.write_all(&masked_frame(0x1, b"unread echo")).unwrap();
        }
        drop(s);
    }
}

/// Waits until the server has finished with every connection it accepted.
fn wait_idle(server: &ServerHandle) {
    let stats = server.stats();
    let began = Instant::now();
    loop {
        let accepted = stats.accepted.load(Ordering::SeqCst);
        let done = stats.rejected.load(Ordering::SeqCst) + stats.upgraded.load(Ordering::SeqCst);
        if accepted == done && stats.open.load(Ordering::SeqCst) == 0 {
            return;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "connections still open: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) for the descriptor count to come back to `to`.
fn wait_fds(to: usize) -> usize {
    let began = Instant::now();
    while open_fds() != to && began.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    open_fds()
}

#[test]
fn abrupt_peers_leak_no_descriptor_and_no_memory() {
    const PER_ROUND: usize = 100;
    let server = serve_echo(one_worker());
    let addr = server.local_addr();
    // A first round warms the allocator and the worker's tables up.
    abrupt_round(addr, PER_ROUND);
    wait_idle(&server);
    let fds = open_fds();
    let rss = rss_kib();
    for _ in 0..5 {
        abrupt_round(addr, PER_ROUND);
    }
    wait_idle(&server);
    assert_eq!(wait_fds(fds), fds, "file descriptors leaked");
    let grown = rss_kib().saturating_sub(rss);
    // 2,000 connections went by; a leak of even 1 KiB each would show as 2,000 KiB.
    assert!(
        grown < 1024,
        "RSS grew by {grown} KiB over 2,000 connections"
    );
    common::run_client(async move {
        let (ws, _) = connect(&format!("ws://{addr}/")).await.unwrap();
        ws.send_text("still serving").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("still serving"));
    });
    server.shutdown(Duration::from_secs(1));
}
