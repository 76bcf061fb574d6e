//! The memory budget against hostile peers over sockets: connections that open huge frames
//! and stop, connections that send a message one byte per fragment and never finish it,
//! peers that never read an echo flood, and subscribers that never read a publisher's
//! flood. Memory stays within the budget plus the
//! per-connection shares, a normal client keeps being served, and the hostile connections
//! are paused and then failed with 1013.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wsengine::runtime::{MemoryBudget, ServerHandle, SocketOptions, WebSocket, connect};
use wsengine::{CloseCode, Message};

mod common;

/// These tests measure the process's RSS: they run one at a time, so that none counts
/// another's memory.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
use common::{one_worker, raw_handshake, rss_kib, run_client, serve_echo};

const MIB: usize = 1 << 20;

fn budget(total: usize, per_connection: usize, wait: Duration) -> MemoryBudget {
    let mut b = MemoryBudget::default();
    b.total = total;
    b.per_connection = per_connection;
    b.wait = wait;
    b
}

/// The header of a masked binary frame claiming `len` bytes, and its mask key.
fn frame_header(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
    let mut h = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xFFFF => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&[0, 0, 0, 0]); // a zero mask key: payload bytes go as they are
    h
}

/// Reads the server's close frame, waiting at most `wait`; returns its code.
fn close_code_from(s: &mut TcpStream, wait: Duration) -> Result<u16, String> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut head = [0u8; 2];
    s.read_exact(&mut head)
        .map_err(|e| format!("no close frame: {e}"))?;
    if head[0] != 0x88 {
        return Err(format!("not a close frame: {head:?}"));
    }
    let mut body = vec![0u8; usize::from(head[1] & 0x7f)];
    s.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(u16::from_be_bytes([body[0], body[1]]))
}

/// A normal client: `n` small echoes, each checked; returns the slowest round trip.
fn normal_client(server: &ServerHandle, n: usize) -> Duration {
    normal_client_at(server, "/", n)
}

/// [`normal_client`] on the server's `path`.
fn normal_client_at(server: &ServerHandle, path: &str, n: usize) -> Duration {
    let url = format!("ws://{}{path}", server.local_addr());
    run_client(async move {
        let (ws, _) = connect(&url).await.expect("a normal client connects");
        let mut slowest = Duration::ZERO;
        for i in 0..n {
            let m = Message::text(format!("message {i}"));
            let began = Instant::now();
            ws.send(m.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), m);
            slowest = slowest.max(began.elapsed());
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        slowest
    })
}

#[test]
fn huge_unfinished_frames_are_held_to_the_budget_and_failed_with_1013() {
    let _serial = one_at_a_time();
    const BUDGET: usize = 32 * MIB;
    const ATTACKERS: usize = 24;
    const SENT: usize = 8 * MIB;
    let server =
        serve_echo(one_worker().memory_budget(budget(BUDGET, 256 * 1024, Duration::from_secs(2))));
    let addr = server.local_addr();
    let rss_before = rss_kib();
    let chunk = Arc::new(vec![0x5au8; SENT]);
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                let mut s = raw_handshake(addr);
                // A 60 MiB frame (under the 64 MiB limit), 8 MiB of it, then nothing.
                s.write_all(&frame_header(0x2, true, 60 * MIB as u64))
                    .unwrap();
                s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                let _ = s.write_all(&chunk);
                // Failed with 1013, or still open: held within the budget.
                let code = close_code_from(&mut s, Duration::from_secs(8));
                (code, s)
            })
        })
        .collect();
    // Meanwhile a normal client is served.
    std::thread::sleep(Duration::from_millis(500));
    let slowest = normal_client(&server, 1000);
    assert!(
        slowest < Duration::from_secs(2),
        "a small echo waited {slowest:?}"
    );
    let stats = server.stats();
    let peak_buffered = stats.buffered_bytes.load(Ordering::Relaxed) as usize;
    let grown = rss_kib().saturating_sub(rss_before) * 1024;
    // The budget, each attacker's share, and a fixed overhead: the attackers' payload,
    // the server's and the client's receive rings, threads, what the allocator keeps.
    // Without the budget: 24 × 8 MiB.
    let bound = BUDGET + ATTACKERS * 256 * 1024 + 32 * MIB;
    assert!(grown < bound, "RSS grew by {grown} bytes (bound {bound})");
    // Charged is capacity: a receive buffer grows by doubling, so one read of a
    // connection under its limit can land a growth step past the budget (up to twice it).
    assert!(
        peak_buffered <= 2 * BUDGET,
        "{peak_buffered} bytes buffered"
    );
    assert!(
        stats.paused_for_memory.load(Ordering::Relaxed) > 0 || {
            // All may have been failed already.
            stats.closed_for_memory.load(Ordering::Relaxed) > 0
        }
    );
    let mut failed = 0;
    let mut open = Vec::new();
    for a in attackers {
        match a.join().unwrap() {
            (Ok(1013), _) => failed += 1,
            (Ok(code), _) => panic!("an attacker got close code {code}"),
            (Err(_), s) => open.push(s),
        }
    }
    // Those the budget could not hold were failed; the rest fit in it.
    assert!(failed >= ATTACKERS - BUDGET / SENT, "{failed} failed");
    assert_eq!(
        stats.closed_for_memory.load(Ordering::Relaxed),
        failed as u64
    );
    // A failed attacker's buffers go when the server has closed its socket, which may
    // come a little after the attacker read the 1013: what the open ones hold is read
    // once those are gone (within a second).
    let allowed = BUDGET + open.len() * 512 * 1024;
    let began = Instant::now();
    let held = loop {
        let held = stats.buffered_bytes.load(Ordering::Relaxed) as usize;
        if held <= allowed || began.elapsed() > Duration::from_secs(1) {
            break held;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        held <= allowed,
        "{held} bytes held by {} attackers still open",
        open.len()
    );
    drop(open);
    let began = Instant::now();
    while stats.buffered_bytes.load(Ordering::Relaxed) > 0
        || stats.paused_for_memory.load(Ordering::Relaxed) > 0
    {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "memory given back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn one_byte_fragments_of_messages_never_finished_are_failed_with_1013() {
    let _serial = one_at_a_time();
    const CONNECTIONS: usize = 8;
    let server = serve_echo(one_worker().memory_budget(budget(
        512 * 1024,
        16 * 1024,
        Duration::from_secs(1),
    )));
    let addr = server.local_addr();
    let attackers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = raw_handshake(addr);
                let mut frames = frame_header(0x2, false, 1);
                frames.push(b'x');
                for _ in 0..100_000 {
                    frames.extend_from_slice(&frame_header(0x0, false, 1));
                    frames.push(b'x');
                }
                s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                let _ = s.write_all(&frames);
                close_code_from(&mut s, Duration::from_secs(20))
            })
        })
        .collect();
    assert!(normal_client(&server, 100) < Duration::from_secs(2));
    for a in attackers {
        assert_eq!(a.join().unwrap(), Ok(1013));
    }
    let stats = server.stats();
    assert_eq!(
        stats.closed_for_memory.load(Ordering::Relaxed),
        CONNECTIONS as u64
    );
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_frame_dripped_a_byte_at_a_time_keeps_the_room_it_started_with() {
    // A peer that claims a 60 MiB frame and sends it a byte at a time: the frame's room
    // (at most 256 KiB) is reserved when it starts and must not grow by that much again
    // at every byte (it did: 512 KiB each, twice what a dripping connection needs).
    let _serial = one_at_a_time();
    const CONNECTIONS: usize = 32;
    let server = serve_echo(one_worker().memory_budget(MemoryBudget::unlimited()));
    let addr = server.local_addr();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drippers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = raw_handshake(addr);
                s.write_all(&frame_header(0x2, true, 60 * MIB as u64))
                    .unwrap();
                for _ in 0..40 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    s.write_all(b"x").unwrap();
                    std::thread::sleep(Duration::from_millis(25));
                }
                s
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(600));
    let buffered = server.stats().buffered_bytes.load(Ordering::Relaxed) as usize;
    stop.store(true, Ordering::Relaxed);
    let sockets: Vec<TcpStream> = drippers.into_iter().map(|d| d.join().unwrap()).collect();
    // Each holds its frame's room (256 KiB and a little), and the budget's counter is
    // published in 64 KiB steps.
    let bound = CONNECTIONS * (256 + 32) * 1024 + 64 * 1024;
    assert!(
        buffered <= bound,
        "{CONNECTIONS} dripping connections hold {buffered} bytes (bound {bound})"
    );
    assert!(
        buffered >= CONNECTIONS * 128 * 1024,
        "{buffered} bytes: not measured"
    );
    drop(sockets);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn an_echo_flood_to_peers_that_never_read_stays_within_the_budget() {
    let _serial = one_at_a_time();
    const PEERS: usize = 40;
    const BUDGET: usize = 8 * MIB;
    let mut options = SocketOptions::default();
    options.max_send_queue = 4 * MIB;
    options.send_stall_timeout = Some(Duration::from_secs(2));
    let server = one_worker()
        .socket_options(options)
        .memory_budget(budget(BUDGET, 256 * 1024, Duration::from_secs(10)))
        .serve(|ws: WebSocket, _| async move {
            // Floods the peer with fresh 64 KiB messages until the connection ends.
            while ws.send(Message::binary(vec![9u8; 64 * 1024])).await.is_ok() {}
        })
        .expect("server starts");
    let addr = server.local_addr();
    let peers: Vec<TcpStream> = (0..PEERS).map(|_| raw_handshake(addr)).collect();
    std::thread::sleep(Duration::from_secs(1));
    let stats = server.stats();
    let buffered = stats.buffered_bytes.load(Ordering::Relaxed) as usize;
    // Without the budget: 40 × 4 MiB. With it: the budget plus each peer's share and one
    // message past it.
    let bound = BUDGET + PEERS * (256 + 64) * 1024 + 64 * 1024;
    assert!(
        buffered <= bound,
        "{buffered} bytes buffered (bound {bound})"
    );
    // The stall timeout still ends them (1008), and everything is given back.
    drop(peers);
    let began = Instant::now();
    while stats.open.load(Ordering::Relaxed) > 0 || stats.buffered_bytes.load(Ordering::Relaxed) > 0
    {
        assert!(began.elapsed() < Duration::from_secs(15), "connections end");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.shutdown(Duration::from_secs(1));
}

/// Skips the data frames the server sent and returns the close frame's code; `Ok(None)`
/// when nothing more came within `wait` (the connection is still open).
fn close_code_after_data(s: &mut TcpStream, wait: Duration) -> Result<Option<u16>, String> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut skip = vec![0u8; 64 * 1024];
    loop {
        let mut head = [0u8; 2];
        match s.read_exact(&mut head) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(format!("connection dropped: {e}")),
        }
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).map_err(|e| e.to_string())?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).map_err(|e| e.to_string())?;
            len = u64::from_be_bytes(b);
        }
        let mut first = Vec::new();
        while len > 0 {
            let n = len.min(skip.len() as u64) as usize;
            s.read_exact(&mut skip[..n]).map_err(|e| e.to_string())?;
            if first.len() < 2 {
                first.extend_from_slice(&skip[..n.min(2)]);
            }
            len -= n as u64;
        }
        if head[0] == 0x88 {
            return Ok(first.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])));
        }
        if head[0] != 0x82 {
            return Err(format!("unexpected frame {:#x}", head[0]));
        }
    }
}

#[test]
fn a_publisher_flooding_subscribers_that_never_read_stays_within_the_budget() {
    let _serial = one_at_a_time();
    const SUBSCRIBERS: usize = 100;
    const BUDGET: usize = 8 * MIB;
    const SHARE: usize = 64 * 1024;
    const MESSAGE: usize = 16 * 1024;
    // Publishes from outside wait in the worker's inbox, which has its own bound (not
    // the budget's): 64 MiB by default, which alone would swamp what is measured here.
    const INBOX: usize = 8 * MIB;
    let mut options = SocketOptions::default();
    options.max_send_queue = 4 * MIB;
    let server = one_worker()
        .socket_options(options)
        .memory_budget(budget(BUDGET, SHARE, Duration::from_secs(2)))
        .pubsub(wsengine::runtime::PubSubOptions::default().inbox_limit(INBOX))
        .serve(|ws: WebSocket, req| async move {
            // `/echo` echoes (the normal client); everyone else subscribes and waits.
            if req.path() == "/echo" {
                while let Ok(m) = ws.recv().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            } else if ws.subscribe("flood").is_ok() {
                while ws.recv().await.is_ok() {}
            }
        })
        .expect("server starts");
    let addr = server.local_addr();
    let rss_before = rss_kib();
    let mut subscribers: Vec<TcpStream> = (0..SUBSCRIBERS)
        .map(|_| {
            let s = raw_handshake(addr);
            // What the kernel holds for them stays small: the server's queues fill.
            socket2::SockRef::from(&s)
                .set_recv_buffer_size(64 * 1024)
                .unwrap();
            s
        })
        .collect();
    let publisher = server.publisher();
    while publisher.subscribers("flood") < SUBSCRIBERS {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Publishes as fast as the server takes them, for 4 s: 100 × 4 MiB of send queues
    // (400 MiB) without the budget.
    let flood = std::thread::spawn(move || {
        let payload = bytes::Bytes::from(vec![7u8; MESSAGE]);
        let began = Instant::now();
        let mut published = 0u64;
        while began.elapsed() < Duration::from_secs(4) {
            publisher.publish("flood", Message::binary(payload.clone()));
            published += 1;
            if published.is_multiple_of(64) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        published
    });
    std::thread::sleep(Duration::from_millis(1000));
    let slowest = normal_client_at(&server, "/echo", 500);
    assert!(
        slowest < Duration::from_secs(2),
        "a small echo waited {slowest:?}"
    );
    let stats = server.stats();
    let buffered = stats.buffered_bytes.load(Ordering::Relaxed) as usize;
    let grown = rss_kib().saturating_sub(rss_before) * 1024;
    let published = flood.join().unwrap();
    // The budget, each subscriber's share and one message past it (charged in 64 KiB
    // steps), and a fixed overhead.
    let bound = BUDGET + SUBSCRIBERS * (SHARE + MESSAGE + 64 * 1024);
    assert!(
        buffered <= bound,
        "{buffered} bytes buffered (bound {bound})"
    );
    assert!(
        grown < bound + INBOX + 48 * MIB,
        "RSS grew by {grown} bytes"
    );
    // Every publish is counted once per subscriber, delivered or dropped, once the
    // worker's inbox has drained.
    let began = Instant::now();
    let pubsub = loop {
        let pubsub = server.publisher().stats();
        if pubsub.delivered + pubsub.dropped >= published * SUBSCRIBERS as u64
            || began.elapsed() > Duration::from_secs(10)
        {
            break pubsub;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        pubsub.delivered + pubsub.dropped,
        published * SUBSCRIBERS as u64,
        "every publish counted once per subscriber"
    );
    assert!(
        pubsub.dropped > 0,
        "the flood was dropped for the stalled subscribers: {pubsub:?}, {buffered} bytes buffered"
    );
    // Paused (they hold more than their share while the budget is spent), then failed
    // with 1013 after the budget's wait; or still open if they fit within their share.
    let mut failed = 0;
    for s in &mut subscribers {
        match close_code_after_data(s, Duration::from_secs(6)) {
            Ok(Some(1013)) => failed += 1,
            Ok(None) => {}
            other => panic!("a subscriber ended with {other:?}"),
        }
    }
    assert!(failed > 0, "none failed for memory");
    assert_eq!(
        stats.closed_for_memory.load(Ordering::Relaxed),
        failed as u64
    );
    drop(subscribers);
    let began = Instant::now();
    while stats.open.load(Ordering::Relaxed) > 0 || stats.buffered_bytes.load(Ordering::Relaxed) > 0
    {
        assert!(began.elapsed() < Duration::from_secs(15), "connections end");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.shutdown(Duration::from_secs(1));
}
