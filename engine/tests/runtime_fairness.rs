//! One worker shared fairly among its connections, over sockets: while many connections
//! flood it with bytes that each cost a frame (messages of 1-byte fragments that never
//! end), new connections still get through their handshake and a normal client's small
//! echoes still come back. Without sharing, the flooders took every turn and every
//! receive buffer of the worker, and new handshakes timed out. The same while a handler
//! publishes a flood to a thousand subscribers: it ran through every message it had
//! ready, and the worker flushed every subscriber before anyone else's reply.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wsengine::runtime::{MemoryBudget, WebSocket, connect};
use wsengine::{CloseCode, Message};

mod common;

use common::{
    masked_frame, one_worker, raw_handshake, read_head, run_client, serve_echo, upgrade_request,
};

/// Connections that flood.
const FLOODERS: usize = 48;

/// What the normal client must finish in, flood or not: far more than it needs when
/// served fairly (well under a second here), far less than a starved one waits.
const WITHIN: Duration = Duration::from_secs(10);

/// The tests flood a worker each: one at a time, so that they do not flood each other's
/// machine (two cores in CI).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts one flooder: a binary message's first 1-byte fragment, then 1-byte continuation
/// fragments (7 bytes each on the wire) until `stop`; the server never sees the end.
fn flood(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, up: Arc<AtomicUsize>) {
    let mut s: TcpStream = raw_handshake(addr);
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let one = |opcode: u8| [opcode, 0x81, 0, 0, 0, 0, b'x'];
    s.write_all(&one(0x02)).unwrap();
    up.fetch_add(1, Ordering::SeqCst);
    let block: Vec<u8> = std::iter::repeat_n(one(0x00), 64 * 1024 / 7)
        .flatten()
        .collect();
    // Where the next write starts in `block`: a write that timed out may have sent part
    // of it, and the stream must go on from there (starting the block again would cut a
    // frame, and the server would rightly close the connection with 1002).
    let mut at = 0;
    while !stop.load(Ordering::Relaxed) {
        match s.write(&block[at..]) {
            Ok(n) => at = (at + n) % block.len(),
            // Timed out (the server is busy with the others): try again.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("a flooder's write failed: {e}"),
        }
    }
}

#[test]
fn a_flood_of_one_byte_fragments_starves_neither_handshakes_nor_small_echoes() {
    let _serial = one_at_a_time();
    // The budget is not what this test is about: none, so that no flooder is paused.
    let server = serve_echo(one_worker().memory_budget(MemoryBudget::unlimited()));
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let up = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let (stop, up) = (stop.clone(), up.clone());
            std::thread::spawn(move || flood(addr, stop, up))
        })
        .collect();
    let until = Instant::now() + WITHIN;
    while up.load(Ordering::SeqCst) < FLOODERS {
        assert!(
            Instant::now() < until,
            "only {} of {FLOODERS} flooders got through their handshake",
            up.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // All of them flooding now.
    std::thread::sleep(Duration::from_millis(300));

    // New connections get through their handshake meanwhile, and a normal client's
    // small echoes come back.
    let (handshakes, served) = handshakes_and_echoes(addr, "/");
    stop.store(true, Ordering::Relaxed);
    for t in flooders {
        t.join().expect("a flooder failed");
    }
    eprintln!("under the flood: 16 handshakes in {handshakes:?}, 200 echoes in {served:?}");
    assert!(
        handshakes < WITHIN,
        "16 handshakes took {handshakes:?} under the flood"
    );
    assert!(
        served < WITHIN,
        "200 echoes took {served:?} under the flood"
    );
}

#[test]
fn heavy_connections_bytes_arrive_whole_and_in_order_while_they_take_turns() {
    // Connections that send large messages take their turns (plain reads into their own
    // buffers, shares that shrink and grow, bytes delivered past a turn's allowance kept
    // for later) among flooders: every echo must still be the message sent.
    let _serial = one_at_a_time();
    let server = serve_echo(one_worker().memory_budget(MemoryBudget::unlimited()));
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let up = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..8)
        .map(|_| {
            let (stop, up) = (stop.clone(), up.clone());
            std::thread::spawn(move || flood(addr, stop, up))
        })
        .collect();
    let url = format!("ws://{addr}/");
    let checked = run_client(async move {
        tokio::time::timeout(Duration::from_secs(60), async move {
            let mut clients = Vec::new();
            for c in 0..6u32 {
                let url = url.clone();
                clients.push(tokio::task::spawn_local(async move {
                    let (ws, _) = connect(&url).await.expect("a client connects");
                    let mut checked = 0;
                    for i in 0..6u32 {
                        // Sizes around the reads' and buffers' sizes, and large ones.
                        let len =
                            [16_385, 1 << 20, 70_001, 262_144 + 7, 4_095, 3 << 20][i as usize];
                        let payload: Vec<u8> = (0..len as u32)
                            .map(|k| (k.wrapping_mul(31) ^ (c << 3) ^ i) as u8)
                            .collect();
                        let m = Message::binary(payload);
                        ws.send(m.clone()).await.unwrap();
                        assert_eq!(ws.recv().await.unwrap(), m, "client {c} message {i}");
                        checked += 1;
                    }
                    ws.close(CloseCode::NORMAL, "").await.unwrap();
                    checked
                }));
            }
            let mut checked = 0;
            for c in clients {
                checked += c.await.expect("a client failed");
            }
            checked
        })
        .await
    });
    stop.store(true, Ordering::Relaxed);
    for t in flooders {
        t.join().expect("a flooder failed");
    }
    assert_eq!(checked.expect("the echoes did not come back in time"), 36);
}

/// 16 new handshakes, then 200 small echoes on `path`, each within [`WITHIN`]; returns
/// how long each part took.
fn handshakes_and_echoes(addr: std::net::SocketAddr, path: &str) -> (Duration, Duration) {
    let began = Instant::now();
    let late: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || drop(raw_handshake(addr))))
        .collect();
    for t in late {
        t.join().expect("a new connection's handshake failed");
    }
    let handshakes = began.elapsed();
    let url = format!("ws://{addr}{path}");
    let began = Instant::now();
    let echoes = run_client(async move {
        tokio::time::timeout(WITHIN, async move {
            let (ws, _) = connect(&url).await.expect("a normal client connects");
            for i in 0..200 {
                let m = Message::text(format!("message {i}"));
                ws.send(m.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), m);
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
        })
        .await
    });
    assert!(
        echoes.is_ok(),
        "200 echoes did not come back within {WITHIN:?}"
    );
    (handshakes, began.elapsed())
}

#[test]
fn a_handler_publishing_to_a_thousand_subscribers_starves_neither_handshakes_nor_echoes() {
    let _serial = one_at_a_time();
    const SUBSCRIBERS: usize = 1000;
    const READERS: usize = 4;
    let server = one_worker()
        .memory_budget(MemoryBudget::unlimited())
        .serve(|ws: WebSocket, req| async move {
            match req.path() {
                // The publisher: every message it sends goes to every subscriber.
                "/pub" => {
                    while let Ok(m) = ws.recv().await {
                        if ws.publish("room", &m).is_err() {
                            break;
                        }
                    }
                }
                "/echo" => {
                    while let Ok(m) = ws.recv().await {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                }
                _ => {
                    if ws.subscribe("room").is_ok() {
                        while ws.recv().await.is_ok() {}
                    }
                }
            }
        })
        .expect("server starts");
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicUsize::new(0));
    // Subscribers that read everything, a few threads polling a share of them each.
    let subscribers: Vec<TcpStream> = (0..SUBSCRIBERS).map(|_| raw_handshake(addr)).collect();
    let mut shares: Vec<Vec<TcpStream>> = (0..READERS).map(|_| Vec::new()).collect();
    for (i, s) in subscribers.into_iter().enumerate() {
        s.set_nonblocking(true).unwrap();
        shares[i % READERS].push(s);
    }
    let readers: Vec<_> = shares
        .into_iter()
        .map(|mut share| {
            let (stop, received) = (stop.clone(), received.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    let mut any = false;
                    for s in &mut share {
                        while let Ok(n @ 1..) = s.read(&mut buf) {
                            received.fetch_add(n, Ordering::Relaxed);
                            any = true;
                        }
                    }
                    if !any {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    let publisher = server.publisher();
    while publisher.subscribers("room") < SUBSCRIBERS {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The publisher floods 1 KiB messages as fast as the server reads them.
    let mut p = TcpStream::connect(addr).unwrap();
    p.write_all(
        upgrade_request()
            .replacen("GET / ", "GET /pub ", 1)
            .as_bytes(),
    )
    .unwrap();
    assert!(read_head(&mut p).starts_with("HTTP/1.1 101"));
    let flooding = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let block: Vec<u8> = masked_frame(0x2, &[0x5a; 1024]).repeat(64);
            let mut sent = 0usize;
            p.set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut at = 0;
            while !stop.load(Ordering::Relaxed) {
                match p.write(&block[at..]) {
                    Ok(n) => {
                        at = (at + n) % block.len();
                        sent += n;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => panic!("the publisher's write failed: {e}"),
                }
            }
            sent
        })
    };
    // The flood under way: the subscribers receive.
    let until = Instant::now() + WITHIN;
    while received.load(Ordering::Relaxed) < 64 << 20 {
        assert!(Instant::now() < until, "the subscribers get the flood");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (handshakes, served) = handshakes_and_echoes(addr, "/echo");
    let publishes = server.publisher().stats().published;
    stop.store(true, Ordering::Relaxed);
    let sent = flooding.join().expect("the publisher failed");
    for t in readers {
        t.join().expect("a reader failed");
    }
    eprintln!(
        "under the fan-out: 16 handshakes in {handshakes:?}, 200 echoes in {served:?} \
         ({publishes} publishes, {sent} bytes sent by the publisher)"
    );
    assert!(
        handshakes < WITHIN,
        "16 handshakes took {handshakes:?} under the fan-out"
    );
    assert!(
        served < WITHIN,
        "200 echoes took {served:?} under the fan-out"
    );
    server.shutdown(Duration::from_secs(1));
}
