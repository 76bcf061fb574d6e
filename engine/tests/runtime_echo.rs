//! Our io_uring client against our io_uring server, over real sockets on 127.0.0.1.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use wsengine::runtime::{ConnectOptions, Driver, Error, ServerHandle, WebSocket, connect};
use wsengine::{CloseCode, Message};

mod common;
use common::{raw_handshake, reset};

fn echo_server(workers: usize) -> ServerHandle {
    common::builder()
        .workers(workers)
        .pin_workers(false)
        .serve(|ws: WebSocket, _req| async move {
            while let Ok(message) = ws.recv().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        })
        .expect("server starts")
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/echo")
}

/// Runs `test` on a client runtime on this thread, bounded in time.
fn client<F: std::future::Future<Output = ()>>(test: F) {
    common::run_client(async {
        tokio::time::timeout(Duration::from_secs(60), test)
            .await
            .expect("test finished in time")
    });
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn text(len: usize) -> String {
    // Multi-byte characters, cut to exactly `len` bytes with ASCII padding.
    let mut s = String::with_capacity(len);
    while s.len() + 3 <= len {
        s.push('한');
    }
    while s.len() < len {
        s.push('x');
    }
    s
}

const SIZES: [usize; 6] = [0, 125, 126, 65535, 65536, 1 << 20];

#[test]
fn server_and_client_run_on_the_chosen_driver() {
    let server = echo_server(1);
    let chosen = common::test_driver();
    let expected = match chosen {
        Driver::Auto => vec![Driver::Uring, Driver::Tokio],
        driver => vec![driver],
    };
    assert!(expected.contains(&server.driver()), "{:?}", server.driver());
    let addr = server.local_addr();
    client(async move {
        let on = wsengine::runtime::current_driver().expect("inside a runtime");
        assert!(expected.contains(&on), "{on:?}");
        let (ws, _) = connect(&url(addr)).await.unwrap();
        ws.send_text("driver").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("driver"));
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn echo_text_and_binary_at_every_length_boundary() {
    let server = echo_server(2);
    let addr = server.local_addr();
    client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        for len in SIZES {
            let t = Message::text(text(len));
            ws.send(t.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), t, "text of {len}");
            let b = Message::binary(payload(len));
            ws.send(b.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), b, "binary of {len}");
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn fragmented_messages_are_reassembled() {
    let server = echo_server(1);
    let addr = server.local_addr();
    client(async move {
        let mut options = ConnectOptions::default();
        options.socket.protocol.fragment_size = Some(1000);
        let (ws, _) = options.connect(&url(addr)).await.unwrap();
        let big = Message::binary(payload(100_000));
        ws.send(big.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), big);
        let t = Message::text(text(5000));
        ws.send(t.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), t);
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn pipelined_messages_keep_their_order() {
    let server = echo_server(1);
    let addr = server.local_addr();
    client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        for i in 0..1000u32 {
            ws.send(Message::binary(i.to_be_bytes().to_vec()))
                .await
                .unwrap();
        }
        for i in 0..1000u32 {
            assert_eq!(
                ws.recv().await.unwrap(),
                Message::binary(i.to_be_bytes().to_vec())
            );
        }
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn close_with_code_and_reason_is_echoed() {
    let server = common::builder()
        .workers(1)
        .pin_workers(false)
        .serve(|ws: WebSocket, _req| async move {
            // The server sees the client's code and reason.
            match ws.recv().await {
                Err(Error::Closed(frame)) => {
                    assert_eq!(frame.code, CloseCode(4000));
                    assert_eq!(frame.reason, "done here");
                }
                other => panic!("expected a close, got {other:?}"),
            }
        })
        .unwrap();
    let addr = server.local_addr();
    client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        ws.close(CloseCode(4000), "done here").await.unwrap();
        // The server's reply echoes the code.
        match ws.recv().await {
            Err(Error::Closed(frame)) => assert_eq!(frame.code, CloseCode(4000)),
            other => panic!("expected closed, got {other:?}"),
        }
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn ping_gets_a_pong_and_the_connection_stays_usable() {
    let server = echo_server(1);
    let addr = server.local_addr();
    client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        ws.ping(Bytes::from_static(b"hello?")).unwrap();
        ws.send_text("after ping").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("after ping"));
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_thousand_concurrent_connections() {
    let server = echo_server(2);
    let addr = server.local_addr();
    client(async move {
        let mut tasks = Vec::new();
        for i in 0..1000u32 {
            tasks.push(tokio::task::spawn_local(async move {
                let (ws, _) = connect(&url(addr)).await.unwrap();
                let m = Message::text(format!("connection {i}"));
                ws.send(m.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), m);
                ws
            }));
        }
        let mut open = Vec::new();
        for t in tasks {
            open.push(t.await.unwrap());
        }
        assert_eq!(open.len(), 1000);
    });
    assert!(
        server
            .stats()
            .upgraded
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1000
    );
    server.shutdown(Duration::from_secs(2));
}

#[test]
fn a_client_that_vanishes_mid_frame_does_not_disturb_others() {
    let server = echo_server(1);
    let addr = server.local_addr();
    // Half of a masked 1000-byte frame, then a reset.
    let mut raw = raw_handshake(addr);
    let mut frame = vec![0x82, 0xFE, 0x03, 0xE8, 1, 2, 3, 4];
    frame.extend(std::iter::repeat_n(0u8, 500));
    raw.write_all(&frame).unwrap();
    reset(raw);
    client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        ws.send_text("still here").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("still here"));
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn protocol_errors_close_with_the_right_code() {
    let server = echo_server(1);
    let addr = server.local_addr();
    // An unmasked frame from a client: 1002.
    let mut raw = raw_handshake(addr);
    raw.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    let mut reply = [0u8; 4];
    raw.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..2], &[0x88, 2 + "frame not masked".len() as u8]);
    assert_eq!(u16::from_be_bytes([reply[2], reply[3]]), 1002);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn bad_handshakes_get_http_errors() {
    let server = echo_server(1);
    let addr = server.local_addr();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(response.contains("Sec-WebSocket-Version: 13"), "{response}");
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn graceful_shutdown_sends_1001() {
    let server = echo_server(1);
    let addr = server.local_addr();
    let trigger = server.shutdown_trigger();
    let joiner = std::thread::spawn(move || server.join());
    client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        ws.send_text("hi").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("hi"));
        trigger.shutdown(Duration::from_secs(5));
        match ws.recv().await {
            Err(Error::Closed(frame)) => assert_eq!(frame.code, CloseCode::GOING_AWAY),
            other => panic!("expected 1001, got {other:?}"),
        }
    });
    joiner.join().unwrap();
}

#[test]
fn the_handshake_hook_can_reject_and_choose_a_subprotocol() {
    use wsengine::proto::handshake::{Accept, Reject};
    let server = common::builder()
        .workers(1)
        .pin_workers(false)
        .on_handshake(|req| {
            if req.path() != "/chat" {
                return Err(Reject::new(403, "forbidden path"));
            }
            Ok(Accept::new().protocol("chat.v2"))
        })
        .serve(|ws: WebSocket, _req| async move {
            while let Ok(m) = ws.recv().await {
                let _ = ws.send(m).await;
            }
        })
        .unwrap();
    let addr = server.local_addr();
    client(async move {
        match connect(&format!("ws://{addr}/other")).await {
            Err(Error::ClientHandshake(e)) => assert!(e.to_string().contains("403"), "{e}"),
            other => panic!("expected 403, got {other:?}"),
        }
        let mut options = ConnectOptions::default();
        options.protocols = vec!["chat.v1".into(), "chat.v2".into()];
        let (ws, response) = options.connect(&format!("ws://{addr}/chat")).await.unwrap();
        assert_eq!(response.protocol(), Some("chat.v2"));
        ws.send_text("ok").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("ok"));
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn frames_sent_with_the_handshake_are_not_held_back() {
    let server = echo_server(1);
    let addr = server.local_addr();
    // The upgrade request and a masked "Hello" in one write: the frame arrives in the same
    // read as the request and must be answered without waiting for more bytes.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    bytes.extend_from_slice(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    s.write_all(&bytes).unwrap();
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"Hello") {
        s.read_exact(&mut byte).expect("the echo arrives");
        received.push(byte[0]);
    }
    assert!(received.ends_with(&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']));
    server.shutdown(Duration::from_secs(1));
}

fn server_with(
    options: wsengine::runtime::SocketOptions,
    report: std::sync::mpsc::Sender<Result<Message, String>>,
    close_first: bool,
) -> ServerHandle {
    common::builder()
        .workers(1)
        .pin_workers(false)
        .socket_options(options)
        .serve(move |ws: WebSocket, _req| {
            let report = report.clone();
            async move {
                if close_first {
                    let began = std::time::Instant::now();
                    let _ = ws.close(CloseCode::NORMAL, "bye").await;
                    let _ = report.send(Err(format!("closed after {:?}", began.elapsed())));
                    return;
                }
                loop {
                    match ws.recv().await {
                        Ok(m) => {
                            let _ = report.send(Ok(m.clone()));
                            let _ = ws.send(m).await;
                        }
                        Err(e) => {
                            let _ = report.send(Err(e.to_string()));
                            return;
                        }
                    }
                }
            }
        })
        .unwrap()
}

#[test]
fn a_silent_peer_is_dropped_at_the_idle_timeout_as_1006() {
    let mut options = wsengine::runtime::SocketOptions::default();
    options.protocol.idle_timeout = Some(Duration::from_millis(300));
    let (tx, rx) = std::sync::mpsc::channel();
    let server = server_with(options, tx, false);
    // A peer that completes the handshake and then never sends anything (as if it
    // vanished without a FIN).
    let mut raw = raw_handshake(server.local_addr());
    let outcome = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the server gave up");
    let err = outcome.expect_err("no message was sent");
    assert!(
        err.contains("1006") && err.contains("idle timeout"),
        "{err}"
    );
    // And the TCP connection is closed.
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn keepalive_pings_keep_a_live_peer_open() {
    let mut options = wsengine::runtime::SocketOptions::default();
    options.protocol.ping_interval = Some(Duration::from_millis(100));
    options.protocol.idle_timeout = Some(Duration::from_millis(400));
    let (tx, _rx) = std::sync::mpsc::channel();
    let server = server_with(options, tx, false);
    let addr = server.local_addr();
    // A raw peer sees the server's ping when it stays quiet.
    let mut raw = raw_handshake(addr);
    let mut head = [0u8; 10];
    raw.read_exact(&mut head).unwrap();
    assert_eq!(head, [0x89, 8, 0, 0, 0, 0, 0, 0, 0, 1], "ping number 1");
    // Our client answers pings by itself, so the connection outlives the idle timeout.
    client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        ws.send_text("still open").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("still open"));
    });
    server.shutdown(Duration::from_secs(1));
}

/// With a 100 ms ping interval, the server's handle has the round-trip time of the
/// keepalive within 300 ms of the handshake (our client answers by itself).
#[test]
fn rtt_is_known_after_the_first_keepalive_ping() {
    let mut options = wsengine::runtime::SocketOptions::default();
    options.protocol.ping_interval = Some(Duration::from_millis(100));
    let server = common::one_worker()
        .socket_options(options)
        .serve(|ws: WebSocket, _req| async move {
            assert_eq!(ws.rtt(), None, "no ping answered yet");
            let start = std::time::Instant::now();
            while ws.rtt().is_none() && start.elapsed() < Duration::from_millis(300) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let rtt = ws.rtt().map(|rtt| rtt.as_micros().to_string());
            let _ = ws.send_text(rtt.unwrap_or_else(|| "none".into())).await;
            let _ = ws.recv().await;
        })
        .expect("server starts");
    let addr = server.local_addr();
    client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        let Message::Text(rtt) = ws.recv().await.unwrap() else {
            panic!("a text");
        };
        let micros: u64 = rtt.parse().unwrap_or_else(|_| panic!("rtt {rtt}"));
        // Loopback with an idle peer: well under the ping interval.
        assert!(micros < 100_000, "rtt {micros} µs");
        assert_eq!(ws.rtt(), None, "the client sends no keepalive pings");
    });
    server.shutdown(Duration::from_secs(1));
}

/// The handle's counters: messages and bytes each way, and the send queue's peak, on
/// both ends of an echo of three 1000-byte messages.
#[test]
fn stats_count_messages_bytes_and_the_send_queue_peak() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = common::one_worker()
        .serve(move |ws: WebSocket, _req| {
            let tx = tx.lock().unwrap().clone();
            async move {
                for _ in 0..3 {
                    let m = ws.recv().await.unwrap();
                    ws.send(m).await.unwrap();
                }
                let _ = ws.recv().await;
                tx.send(ws.stats()).unwrap();
            }
        })
        .expect("server starts");
    let addr = server.local_addr();
    let client_stats = common::run_client(async move {
        let (ws, _) = connect(&url(addr)).await.unwrap();
        for _ in 0..3 {
            ws.send_binary(payload(1000)).await.unwrap();
            ws.recv().await.unwrap();
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        ws.stats()
    });
    let server_stats = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    for stats in [client_stats, server_stats] {
        assert_eq!(stats.messages_received, 3, "{stats:?}");
        assert_eq!(stats.messages_sent, 3, "{stats:?}");
        // A 1000-byte frame is 1004 bytes unmasked, 1008 masked; the closes come on top.
        assert!(stats.send_queue_peak >= 1004, "{stats:?}");
        assert!(stats.wire.sent >= 3 * 1004, "{stats:?}");
        assert!(stats.wire.received >= 3 * 1004, "{stats:?}");
    }
    // Masked data and the masked close (8 bytes): all of it read by the server.
    assert_eq!(client_stats.wire.sent, 3 * 1008 + 8);
    assert_eq!(server_stats.wire.received, client_stats.wire.sent);
    // Its data, and maybe already its answering close (4 bytes: the driver may have
    // written it before the handler looked).
    assert!(
        [3 * 1004, 3 * 1004 + 4].contains(&server_stats.wire.sent),
        "{server_stats:?}"
    );
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn close_gives_up_on_a_peer_that_never_answers() {
    let mut options = wsengine::runtime::SocketOptions::default();
    options.protocol.close_timeout = Duration::from_millis(300);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = server_with(options, tx, true);
    let mut raw = raw_handshake(server.local_addr());
    // The close frame arrives; the raw peer never answers it.
    let mut close = [0u8; 7];
    raw.read_exact(&mut close).unwrap();
    assert_eq!(close, [0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);
    let outcome = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("close returned");
    let took = outcome.expect_err("closed");
    assert!(took.starts_with("closed after"), "{took}");
    // Then the server drops the TCP connection.
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    server.shutdown(Duration::from_secs(1));
}

/// Reads one server frame (unmasked, FIN set): its opcode and payload.
fn read_server_frame(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).expect("a frame header");
    assert_eq!(head[0] & 0xf0, 0x80, "FIN without RSV bits");
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            s.read_exact(&mut n).unwrap();
            u16::from_be_bytes(n) as usize
        }
        127 => {
            let mut n = [0u8; 8];
            s.read_exact(&mut n).unwrap();
            u64::from_be_bytes(n) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).expect("a frame payload");
    (head[0] & 0x0f, payload)
}

#[test]
fn every_echo_of_a_pipelined_burst_arrives_before_the_close_without_waiting_for_the_timeout() {
    // 4 MiB of messages and then the peer's close, in one burst: the server answers the
    // messages (its echoes overflow the send queue, so the handler waits on
    // backpressure) and only then closes. Before, the close frame held back the echoes
    // too, so the handler and the writer waited on each other until the close timeout.
    let mut options = wsengine::runtime::SocketOptions::default();
    options.protocol.close_timeout = Duration::from_secs(30);
    options.max_send_queue = 256 * 1024;
    // The handler starts late, so that the inbox is full (1 MiB, over the send queue's
    // bound) when the close arrives.
    let server = common::one_worker()
        .socket_options(options)
        .serve(|ws: WebSocket, _req| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            while let Ok(m) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        })
        .expect("server starts");
    let mut s = raw_handshake(server.local_addr());
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    const MESSAGES: usize = 1024;
    const SIZE: usize = 4096;
    let mut burst = Vec::with_capacity(MESSAGES * (SIZE + 8) + 8);
    for i in 0..MESSAGES {
        burst.extend(common::masked_frame(0x2, &vec![(i % 251) as u8; SIZE]));
    }
    burst.extend(common::masked_frame(0x8, &1000u16.to_be_bytes()));
    let mut writer = s.try_clone().unwrap();
    let began = std::time::Instant::now();
    let sending = std::thread::spawn(move || writer.write_all(&burst));
    for i in 0..MESSAGES {
        let (opcode, payload) = read_server_frame(&mut s);
        assert_eq!(opcode, 0x2, "echo {i} before the close");
        assert_eq!(payload, vec![(i % 251) as u8; SIZE], "echo {i}");
    }
    let (opcode, payload) = read_server_frame(&mut s);
    assert_eq!(
        (opcode, &payload[..]),
        (0x8, &[0x03, 0xe8][..]),
        "the close goes last"
    );
    let waited = began.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "the close came after {waited:?}: it waited for the close timeout (30 s)"
    );
    sending.join().unwrap().unwrap();
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn more_connections_than_receive_buffers_all_sending_at_once_lose_nothing() {
    // 4 receive buffers of 1 KiB for 48 connections that all send 192 KiB at once: the
    // io_uring driver's buffer ring runs dry again and again (a receive then ends and is
    // armed again); every byte must still arrive, in order, on every connection.
    const CONNECTIONS: usize = 48;
    const FRAMES: usize = 64;
    let server = common::serve_echo(common::one_worker().receive_buffers(4, 1024));
    let addr = server.local_addr();
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = raw_handshake(addr);
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let frames: Vec<Vec<u8>> = (0..FRAMES)
                    .map(|i| {
                        let len = 1000 + (c * 131 + i * 977) % 4000;
                        (0..len).map(|j| (c * 7 + i * 13 + j) as u8).collect()
                    })
                    .collect();
                let mut burst = Vec::new();
                for f in &frames {
                    burst.extend(common::masked_frame(0x2, f));
                }
                let mut writer = s.try_clone().unwrap();
                let sending = std::thread::spawn(move || writer.write_all(&burst));
                for (i, f) in frames.iter().enumerate() {
                    let (opcode, payload) = read_server_frame(&mut s);
                    assert_eq!(opcode, 0x2, "connection {c}, echo {i}");
                    assert!(payload == *f, "connection {c}, echo {i}: bytes differ");
                }
                sending.join().unwrap().unwrap();
            })
        })
        .collect();
    for client in clients {
        client.join().expect("every echo arrived intact");
    }
    server.shutdown(Duration::from_secs(1));
}

/// The server's statistics count every ended connection by cause and close code, with
/// its messages: a 1000 and a 4001 closing handshake, a reset, a protocol error (1002)
/// and an idle timeout (1006).
#[test]
fn ended_connections_are_counted_by_cause_and_close_code() {
    use std::sync::atomic::Ordering::Relaxed;
    use wsengine::runtime::{EndCause, SocketOptions};
    let mut options = SocketOptions::default();
    options.protocol.idle_timeout = Some(Duration::from_millis(300));
    let server = common::serve_echo(common::one_worker().socket_options(options));
    let addr = server.local_addr();
    let echo_then_close = |code: u16| {
        let mut s = raw_handshake(addr);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&common::masked_frame(0x1, b"hi")).unwrap();
        let mut echo = [0u8; 4];
        s.read_exact(&mut echo).unwrap();
        assert_eq!(echo, [0x81, 2, b'h', b'i']);
        let mut close = code.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        s.write_all(&common::masked_frame(0x8, &close)).unwrap();
        // The close reply: the same code back.
        let mut reply = [0u8; 4];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply[0], 0x88);
        assert_eq!(u16::from_be_bytes([reply[2], reply[3]]), code);
        s
    };
    let normal = echo_then_close(1000);
    let app = echo_then_close(4001);
    reset(raw_handshake(addr));
    let mut unmasked = raw_handshake(addr);
    unmasked.write_all(&[0x81, 0x01, b'x']).unwrap();
    let idle = raw_handshake(addr);
    // Our FINs end the closing handshakes (the server waits for them).
    drop((normal, app, unmasked));
    let stats = server.stats().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.open.load(Relaxed) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(idle);
    assert_eq!(stats.open.load(Relaxed), 0);
    assert_eq!(stats.ended(EndCause::ClosingHandshake), 2);
    assert_eq!(stats.ended(EndCause::Reset), 1);
    assert_eq!(stats.ended(EndCause::ProtocolError), 1);
    assert_eq!(stats.ended(EndCause::IdleTimeout), 1);
    assert_eq!(
        stats.close_codes(),
        [(1000, 1), (1002, 1), (1006, 2), (4001, 1)]
    );
    assert_eq!(stats.messages_received.load(Relaxed), 2);
    assert_eq!(stats.messages_sent.load(Relaxed), 2);
    // Each echo: 8 bytes in (2 + 4 mask + 2), 4 out; each close: 11 in, 7 out.
    assert!(stats.bytes_received.load(Relaxed) >= 2 * (8 + 11));
    assert!(stats.bytes_sent.load(Relaxed) >= 2 * (4 + 7));
    server.shutdown(Duration::from_secs(1));
}

/// A handler sees pongs when it asks: the answer to its own ping, with the payload, and
/// one the peer sends unasked; a pong before it asked is not kept.
#[test]
fn pongs_reach_the_handler_that_asks_for_them() {
    let server = common::one_worker()
        .serve(|ws: WebSocket, _req| async move {
            // Before asking: this one is not kept.
            let _ = ws.recv().await;
            // Asking (one poll) starts keeping; the ping goes after.
            let mut first = Box::pin(ws.recv_pong());
            std::future::poll_fn(|cx| {
                use std::future::Future;
                assert!(first.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            ws.ping(Bytes::from_static(b"ping-1")).unwrap();
            let answer = first.await.unwrap();
            let unasked = ws.recv_pong().await.unwrap();
            let said = format!(
                "{} {}",
                String::from_utf8_lossy(&answer),
                String::from_utf8_lossy(&unasked)
            );
            let _ = ws.send_text(said).await;
            let _ = ws.recv().await;
        })
        .unwrap();
    let mut s = raw_handshake(server.local_addr());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&common::masked_frame(0xA, b"too early"))
        .unwrap();
    s.write_all(&common::masked_frame(0x1, b"go")).unwrap();
    // The server's ping: answer it, then send one unasked.
    let mut ping = [0u8; 8];
    s.read_exact(&mut ping).unwrap();
    assert_eq!(&ping, b"\x89\x06ping-1");
    s.write_all(&common::masked_frame(0xA, b"ping-1")).unwrap();
    s.write_all(&common::masked_frame(0xA, b"heartbeat"))
        .unwrap();
    let mut said = [0u8; 2 + 16];
    s.read_exact(&mut said).unwrap();
    assert_eq!(&said[2..], b"ping-1 heartbeat");
    drop(s);
    server.shutdown(Duration::from_secs(1));
}

/// `ConnectOptions::local_addr`: the connection leaves from that address (the server sees
/// it), on every driver.
#[test]
fn a_client_connects_from_the_source_address_it_is_given() {
    let server = common::one_worker()
        .serve(|ws: WebSocket, _req| async move {
            let _ = ws.send_text(ws.peer_addr().ip().to_string()).await;
            let _ = ws.recv().await;
        })
        .unwrap();
    let addr = server.local_addr();
    client(async move {
        let mut options = ConnectOptions::default();
        options.local_addr = Some("127.0.0.2".parse().unwrap());
        let (ws, _) = options.connect(url(addr).as_str()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("127.0.0.2"));
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    });
    server.shutdown(Duration::from_secs(1));
}
