//! The client from tokio's own runtimes (`#[tokio::test]`, multi-threaded and
//! current-thread), outside any runtime of ours: `connect_send` and its `Send` handle,
//! over real sockets on 127.0.0.1 against our server on the test driver.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use wsengine::runtime::{
    ConnectOptions, Error, SendWebSocket, ServerHandle, SocketOptions, TrySendError, WebSocket,
    WebSocketWriter, connect, connect_send,
};
use wsengine::{CloseCode, Message};

mod common;

const SIZES: [usize; 6] = [0, 125, 126, 65535, 65536, 1 << 20];

fn url(server: &ServerHandle) -> String {
    format!("ws://{}/", server.local_addr())
}

fn messages() -> Vec<Message> {
    SIZES
        .iter()
        .flat_map(|&len| {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            [Message::text("x".repeat(len)), Message::binary(bytes)]
        })
        .collect()
}

#[test]
fn the_handle_and_its_writer_are_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<SendWebSocket>();
    send_sync::<WebSocketWriter>();
    fn clone<T: Clone>() {}
    clone::<WebSocketWriter>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_threaded_tokio_program_echoes_the_size_matrix_and_closes_with_1000() {
    let server = common::serve_echo(common::one_worker());
    let (mut ws, response) = connect_send(&url(&server)).await.unwrap();
    assert!(response.protocol().is_none());
    // Written from another task (another thread, maybe), read here.
    let writer = ws.writer();
    let sent = tokio::spawn(async move {
        for message in messages() {
            writer.send(message).await.unwrap();
        }
    });
    for expected in messages() {
        let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an echo within 10 s")
            .expect("the stream goes on")
            .unwrap();
        assert_eq!(got, expected);
    }
    sent.await.unwrap();
    // What the connection's thread counts, asked from here.
    assert_eq!(ws.peer_addr(), server.local_addr());
    let stats = ws.stats().await.unwrap();
    assert_eq!((stats.messages_sent, stats.messages_received), (12, 12));
    assert!(stats.wire.received > 2 * (65536 + (1 << 20)));
    assert_eq!(ws.rtt().await.unwrap(), None, "no keepalive, no round trip");
    // The handle itself moves into a spawned task.
    let closed = tokio::spawn(async move {
        ws.close(CloseCode::NORMAL, "done").await.unwrap();
        assert!(ws.is_closed());
        // A closing handshake ends the stream; the close frame stays.
        assert!(ws.next().await.is_none());
        ws.close_frame().map(|f| f.code)
    });
    assert_eq!(closed.await.unwrap(), Some(CloseCode::NORMAL));
    server.shutdown(Duration::from_secs(1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_current_thread_tokio_program_sinks_and_streams() {
    let server = common::serve_echo(common::one_worker());
    let (ws, _) = ConnectOptions::default()
        .connect_send(&url(&server))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    for message in messages() {
        tx.send(message.clone()).await.unwrap();
        assert_eq!(rx.next().await.unwrap().unwrap(), message);
    }
    // The sink's close: 1000, then the stream ends.
    tx.close().await.unwrap();
    assert!(rx.next().await.is_none());
    server.shutdown(Duration::from_secs(1));
}

/// A server that closes each connection with `code` after echoing one message.
fn closing_server(code: u16) -> ServerHandle {
    common::one_worker()
        .serve(move |ws: WebSocket, _req| async move {
            if let Ok(m) = ws.recv().await {
                let _ = ws.send(m).await;
            }
            let _ = ws.close(CloseCode(code), "bye").await;
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_close_ends_the_stream_after_the_last_message() {
    let server = closing_server(4001);
    let (mut ws, _) = connect_send(&url(&server)).await.unwrap();
    ws.send_text("one").await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("one"));
    assert!(
        ws.next().await.is_none(),
        "a closing handshake ends the stream"
    );
    let frame = ws.close_frame().expect("the server's close frame");
    assert_eq!((frame.code.0, frame.reason.as_str()), (4001, "bye"));
    // recv, unlike the stream, keeps saying why.
    match ws.recv().await {
        Err(Error::Closed(frame)) => assert_eq!(frame.code.0, 4001),
        other => panic!("{other:?}"),
    }
    // Nothing more can be sent.
    assert!(matches!(
        ws.try_send(Message::text("late")),
        Err(TrySendError::Closed(_))
    ));
    assert!(ws.send_text("late").await.is_err());
    ws.closed().await;
    server.shutdown(Duration::from_secs(1));
}

/// A raw server on 127.0.0.1 that completes one opening handshake, reads a little, then
/// resets the connection: an end without a close frame.
fn resetting_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("sec-websocket-key:")
                    .then(|| l[18..].trim().to_string())
            })
            .unwrap();
        let accept = wsengine::proto::handshake::accept_key(key.as_bytes());
        write!(
            s,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .unwrap();
        let _ = s.read(&mut [0u8; 64]);
        common::reset(s);
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_without_a_close_frame_is_one_error_then_none() {
    let addr = resetting_server();
    let (mut ws, _) = connect_send(&format!("ws://{addr}/")).await.unwrap();
    ws.send_text("go").await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Err(Error::Closed(frame)))) => assert_eq!(frame.code, CloseCode::ABNORMAL),
        other => panic!("{other:?}"),
    }
    assert!(ws.next().await.is_none());
    assert!(ws.close_frame().is_none());
    tokio::time::timeout(Duration::from_secs(10), ws.closed())
        .await
        .expect("the connection finishes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_send_is_full_while_the_server_does_not_read_and_closed_after() {
    // The server never reads: the client's send queue fills, then the bytes in transit;
    // the client's send stall timeout (3 s) then fails the connection under a waiting send.
    let server = common::one_worker()
        .serve(|ws: WebSocket, _req| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(ws);
        })
        .unwrap();
    let mut options = ConnectOptions::default();
    let mut socket = SocketOptions::default();
    socket.max_send_queue = 64 * 1024;
    socket.send_stall_timeout = Some(Duration::from_secs(3));
    options.socket = socket;
    let (ws, _) = options.connect_send(&url(&server)).await.unwrap();
    let chunk = Message::binary(vec![7u8; 16 * 1024]);
    let mut taken = 0usize;
    // Full half a second in a row: the server's buffers, both sockets' and the client's
    // queue are full, and only the bytes in transit are left to bound.
    let mut full_in_a_row = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while full_in_a_row < 50 && std::time::Instant::now() < deadline {
        match ws.try_send(chunk.clone()) {
            Ok(()) => {
                taken += 1;
                full_in_a_row = 0;
                // Let the connection's thread take what it can.
                tokio::task::yield_now().await;
            }
            Err(TrySendError::Full(_)) => {
                full_in_a_row += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(TrySendError::Closed(_)) => panic!("closed after {taken}"),
        }
    }
    assert_eq!(
        full_in_a_row, 50,
        "{taken} × 16 KiB taken, never full for long"
    );
    // Bounded: the socket buffers, the connection's queue and the transit bound.
    assert!(taken * 16 * 1024 < 64 << 20, "{taken} × 16 KiB taken");
    // A waiting send waits, and fails once the connection is closed under it.
    let writer = ws.writer();
    let waiting = tokio::spawn(async move { writer.send(Message::text("waits")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "send waits while the queue is full");
    drop(ws);
    assert!(
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the waiting send ends")
            .unwrap()
            .is_err()
    );
    server.shutdown(Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_and_its_writers_closes_with_1000() {
    let (seen_tx, seen_rx) = mpsc::channel();
    let seen_tx = std::sync::Mutex::new(seen_tx);
    let server = common::one_worker()
        .serve(move |ws: WebSocket, _req| {
            let seen_tx = seen_tx.lock().unwrap().clone();
            async move {
                let end = loop {
                    if let Err(e) = ws.recv().await {
                        break e;
                    }
                };
                let _ = seen_tx.send(match end {
                    Error::Closed(frame) => Some(frame.code),
                    _ => None,
                });
            }
        })
        .unwrap();
    let (ws, _) = connect_send(&url(&server)).await.unwrap();
    let writer = ws.writer();
    ws.send_text("hello").await.unwrap();
    drop(ws);
    // A writer keeps the connection open.
    assert!(seen_rx.recv_timeout(Duration::from_millis(300)).is_err());
    writer.send_text("still here").await.unwrap();
    drop(writer);
    assert_eq!(
        seen_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Some(CloseCode::NORMAL)
    );
    server.shutdown(Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_closes_and_pings_are_refused_and_refused_connects_fail() {
    let server = common::serve_echo(common::one_worker());
    let (ws, _) = connect_send(&url(&server)).await.unwrap();
    assert!(matches!(
        ws.ping(Bytes::from(vec![0u8; 126])),
        Err(Error::Send(_))
    ));
    assert!(matches!(
        ws.close(CloseCode(1005), "").await,
        Err(Error::Send(_))
    ));
    ws.ping(Bytes::from_static(b"ok")).unwrap();
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    // Nothing listens on a port we held and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match connect_send(&format!("ws://127.0.0.1:{port}/")).await {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        connect_send("http://127.0.0.1/").await,
        Err(Error::InvalidUrl(_))
    ));
    server.shutdown(Duration::from_secs(1));
}

/// `localhost` resolves (asynchronously) to every loopback address the system names;
/// the server listens on 127.0.0.1 only, so where ::1 comes first it refuses and the
/// next address is tried.
#[test]
fn a_name_is_resolved_and_its_addresses_tried_in_turn() {
    let server = common::serve_echo(common::one_worker());
    let port = server.local_addr().port();
    common::run_client(async move {
        let (ws, _) = connect(&format!("ws://localhost:{port}/")).await.unwrap();
        assert_eq!(ws.peer_addr(), server.local_addr());
        ws.send_text("by name").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("by name"));
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        server.shutdown(Duration::from_secs(1));
    });
}

/// An `http::Request` as the target: its headers, subprotocols and origin reach the
/// server's hook (here it refuses without the token, as an API gateway would).
#[cfg(feature = "hyper")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_request_brings_its_headers_subprotocols_and_origin() {
    use wsengine::proto::handshake::{Accept, Reject};
    let server = common::one_worker()
        .on_handshake(|request| {
            if request.header_str("authorization") != Some("Bearer t0ken") {
                return Err(Reject::new(401, "no token"));
            }
            assert_eq!(request.origin(), Some("https://app.example"));
            assert_eq!(request.header_str("x-trace"), Some("abc"));
            let offered: Vec<&str> = request.protocols().collect();
            assert_eq!(offered, ["v2.feed", "v1.feed"]);
            Ok(Accept::new().protocol("v1.feed"))
        })
        .serve(|ws: WebSocket, _req| async move {
            while let Ok(m) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let request = |token: &str| {
        http::Request::get(format!("ws://{}/feed", server.local_addr()))
            .header("Authorization", token)
            .header("Origin", "https://app.example")
            .header("X-Trace", "abc")
            .header("Sec-WebSocket-Protocol", "v2.feed, v1.feed")
            .body(())
            .unwrap()
    };
    let (mut ws, response) = connect_send(request("Bearer t0ken")).await.unwrap();
    assert_eq!(response.protocol(), Some("v1.feed"));
    ws.send_text("with headers").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("with headers"));
    match connect_send(request("Bearer wrong")).await {
        Err(Error::ClientHandshake(e)) => assert!(e.to_string().contains("401"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Inside our runtime (on a thread of its own), `connect` takes the same request.
    let url = format!("ws://{}/feed", server.local_addr());
    let inside = std::thread::spawn(move || {
        common::run_client(async move {
            let request = http::Request::get(url)
                .header("Authorization", "Bearer t0ken")
                .header("Origin", "https://app.example")
                .header("X-Trace", "abc")
                .header("Sec-WebSocket-Protocol", "v2.feed, v1.feed")
                .body(())
                .unwrap();
            let (ws, response) = connect(request).await.unwrap();
            assert_eq!(response.protocol(), Some("v1.feed"));
            ws.close(CloseCode::NORMAL, "").await.unwrap();
        })
    });
    inside.join().unwrap();
    server.shutdown(Duration::from_secs(1));
}

/// A CONNECT proxy on 127.0.0.1 for one tunnel at a time: it wants
/// `Proxy-Authorization: Basic dTpwdw==` (u:pw) and answers 407 without it; with it, it
/// connects to the authority asked for, answers 200, and pipes bytes both ways. Returns
/// its address and the CONNECT lines it saw.
fn connect_proxy() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().take(8) {
            let Ok(mut client) = client else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if client.read_exact(&mut byte).is_err() {
                    break;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let line = head.lines().next().unwrap_or("").to_string();
            log.lock().unwrap().push(line.clone());
            if !head.contains("Proxy-Authorization: Basic dTpwdw==\r\n") {
                let _ = client.write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                );
                continue;
            }
            let authority = line.split(' ').nth(1).unwrap_or("").to_string();
            let Ok(server) = std::net::TcpStream::connect(authority) else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                continue;
            };
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .unwrap();
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c1, mut s1) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut s1);
                let _ = s1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_proxy_tunnels_with_credentials_and_its_refusal_is_an_error() {
    let server = common::serve_echo(common::one_worker());
    let (proxy, seen) = connect_proxy();
    let mut options = ConnectOptions::default();
    options.proxy = Some(wsengine::runtime::Proxy::new(&format!("http://u:pw@{proxy}")).unwrap());
    let (mut ws, _) = options.connect_send(&url(&server)).await.unwrap();
    for message in messages() {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), message);
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(
        seen.lock().unwrap()[0],
        format!("CONNECT {} HTTP/1.1", server.local_addr())
    );
    // Wrong credentials: the proxy's 407.
    options.proxy = Some(wsengine::runtime::Proxy::new(&format!("http://u:no@{proxy}")).unwrap());
    match options.connect_send(&url(&server)).await {
        Err(Error::Proxy(why)) => assert!(why.contains("407"), "{why}"),
        other => panic!("{other:?}"),
    }
    server.shutdown(Duration::from_secs(1));
}

/// A name lookup that stalls (2 s: `scripts/test.sh` runs this inside a mount namespace
/// whose `/etc/resolv.conf` points at `tests/dns/slow_dns.py`) holds up only its own
/// connection: echoes on another connection of the same thread go on meanwhile. A lookup
/// on the thread itself would hold one of them for the whole 2 s.
#[test]
#[ignore = "needs the stalling DNS server that scripts/test.sh starts"]
fn a_stalled_name_lookup_does_not_hold_up_the_threads_other_connections() {
    use std::time::Instant;
    let server = common::serve_echo(common::one_worker());
    let addr = server.local_addr();
    common::run_client(async move {
        let (ws, _) = connect(format!("ws://{addr}/")).await.unwrap();
        let slow = tokio::task::spawn_local(async move {
            let start = Instant::now();
            let result = connect(format!("ws://stall.wsengine.test:{}/", addr.port())).await;
            (result.map(|(ws, _)| ws), start.elapsed())
        });
        let mut latencies = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(2500) {
            let sent = Instant::now();
            ws.send_text("during the lookup").await.unwrap();
            ws.recv().await.unwrap();
            latencies.push(sent.elapsed());
        }
        let (result, took) = slow.await.unwrap();
        let by_name = result.expect("the stalled name resolves in the end");
        by_name.send_text("by name").await.unwrap();
        assert_eq!(by_name.recv().await.unwrap(), Message::text("by name"));
        assert!(
            took >= Duration::from_millis(1900),
            "the lookup did not stall: {took:?}"
        );
        latencies.sort();
        let p50 = latencies[latencies.len() / 2];
        let p99 = latencies[latencies.len() * 99 / 100];
        let max = latencies[latencies.len() - 1];
        println!(
            "{} echoes during a {took:?} lookup: p50 {p50:?} p99 {p99:?} max {max:?}",
            latencies.len()
        );
        assert!(max < Duration::from_millis(500), "an echo waited {max:?}");
    });
    server.shutdown(Duration::from_secs(1));
}
