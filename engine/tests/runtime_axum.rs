//! The axum extractor (`wsengine::runtime::axum::WebSocketUpgrade`) in a real axum
//! server on tokio's multi-threaded runtime, driven by our client over sockets.

use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use wsengine::runtime::axum::WebSocketUpgrade;
use wsengine::runtime::upgrade::Upgrader;
use wsengine::runtime::{ConnectOptions, Error, connect_send};
use wsengine::{CloseCode, Message};

mod common;

async fn echo(upgrade: WebSocketUpgrade) -> Response {
    let upgrade = upgrade.protocols(["chat.v2", "chat.v1"]);
    let chosen = upgrade.selected_protocol();
    upgrade.on_upgrade(move |socket| async move {
        let (mut tx, mut rx) = socket.split();
        if let Some(protocol) = chosen {
            let _ = tx.send(Message::text(format!("protocol {protocol}"))).await;
        }
        // The halves go to tasks of their own, as axum's examples do.
        let echo = tokio::spawn(async move {
            while let Some(Ok(message)) = rx.next().await {
                if tx.send(message).await.is_err() {
                    break;
                }
            }
        });
        let _ = echo.await;
    })
}

/// Upgrader's `!Send` handler: says the peer's address, then echoes.
async fn peer(mut request: axum::extract::Request) -> Response {
    use axum::response::IntoResponse;
    match Upgrader::new().upgrade(&mut request) {
        Ok((response, pending)) => {
            pending.serve(|ws, _request| async move {
                let _ = ws.send_text(ws.peer_addr().to_string()).await;
                while let Ok(m) = ws.recv().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
            response.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Upgrader's handler in a room: subscribes to the topic in the path, says `joined`,
/// then publishes what it receives to the room.
async fn room(
    axum::extract::Path(topic): axum::extract::Path<String>,
    mut request: axum::extract::Request,
) -> Response {
    use axum::response::IntoResponse;
    match Upgrader::new().upgrade(&mut request) {
        Ok((response, pending)) => {
            pending.serve(move |ws, _request| async move {
                ws.subscribe(&topic).unwrap();
                let _ = ws.send_text("joined").await;
                while let Ok(m) = ws.recv().await {
                    ws.publish(&topic, &m).unwrap();
                }
            });
            response.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn server() -> std::net::SocketAddr {
    let app = Router::new()
        .route("/ws", get(echo))
        .route("/room/{topic}", get(room))
        .route("/peer", get(peer))
        .route("/post", post(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_upgrades_through_the_extractor_and_echoes_the_size_matrix() {
    let addr = server().await;
    let mut options = ConnectOptions::default();
    options.protocols = vec!["chat.v1".into(), "chat.v2".into()];
    let (mut ws, response) = options
        .connect_send(&format!("ws://{addr}/ws"))
        .await
        .unwrap();
    // The client's first choice that the route speaks.
    assert_eq!(response.protocol(), Some("chat.v1"));
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("protocol chat.v1")
    );
    for len in [0usize, 125, 126, 65535, 65536, 1 << 20] {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        for message in [Message::text("a".repeat(len)), Message::binary(bytes)] {
            ws.send(message.clone()).await.unwrap();
            let echo = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(echo, message);
        }
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(ws.close_frame().map(|f| f.code), Some(CloseCode::NORMAL));
    // Without an offer the route chooses none.
    let (_ws, response) = connect_send(&format!("ws://{addr}/ws")).await.unwrap();
    assert_eq!(response.protocol(), None);
}

/// Requests that cannot be upgraded are refused at extraction with our server's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_upgrade_get_our_servers_status() {
    use std::io::{Read, Write};
    let addr = server().await;
    let status = move |request: String| {
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            String::from_utf8_lossy(&head[9..12]).to_string()
        })
    };
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    // A plain GET: no upgrade asked for.
    let plain = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n".to_string();
    assert_eq!(status(plain).await.unwrap(), "426");
    // No key.
    let no_key = format!("GET /ws HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n");
    assert_eq!(status(no_key).await.unwrap(), "400");
    // Another version.
    let v8 = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n{key}\r\n"
    );
    assert_eq!(status(v8).await.unwrap(), "426");
    // Not a GET.
    let post = format!("POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{upgrade}{key}\r\n");
    assert_eq!(status(post).await.unwrap(), "405");
    // A valid one still works after them.
    let valid = format!("GET /ws HTTP/1.1\r\nHost: x\r\n{upgrade}{key}\r\n");
    assert_eq!(status(valid).await.unwrap(), "101");
}

/// The `Error` a refused client sees is the server's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_at_a_non_websocket_route_gets_the_status() {
    let addr = server().await;
    match connect_send(&format!("ws://{addr}/nothing")).await {
        Err(Error::ClientHandshake(e)) => assert!(e.to_string().contains("404"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// A connection `axum::serve` accepted moves to wsengine's thread with its real peer
/// address (hyper does not pass it on: it comes from the socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_tcp_connection_knows_its_peer_and_echoes() {
    let addr = server().await;
    let (mut ws, _) = connect_send(&format!("ws://{addr}/peer")).await.unwrap();
    let said = ws.recv().await.unwrap();
    let Message::Text(peer) = said else {
        panic!("{said:?}")
    };
    let peer: std::net::SocketAddr = peer.as_str().parse().unwrap();
    assert!(peer.ip().is_loopback() && peer.port() != 0, "{peer}");
    for len in [0usize, 126, 65536, 1 << 20] {
        let message = Message::binary(vec![3u8; len]);
        ws.send(message.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), message);
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

/// hyper serving something other than a TCP stream (a Unix socket here; a TLS stream in
/// practice): the connection is read through hyper's IO, with the same protocol.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_over_another_stream_reads_through_hypers_io() {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::io::{Read, Write};

    let (server_side, client_side) = std::os::unix::net::UnixStream::pair().unwrap();
    server_side.set_nonblocking(true).unwrap();
    let server_side = tokio::net::UnixStream::from_std(server_side).unwrap();
    let service = service_fn(
        |mut request: hyper::Request<hyper::body::Incoming>| async move {
            let response = match Upgrader::new().upgrade(&mut request) {
                Ok((response, pending)) => {
                    pending.serve(|ws, _request| async move {
                        while let Ok(m) = ws.recv().await {
                            if ws.send(m).await.is_err() {
                                break;
                            }
                        }
                    });
                    response
                }
                Err(refusal) => refusal,
            };
            Ok::<_, std::convert::Infallible>(response)
        },
    );
    tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server_side), service)
            .with_upgrades(),
    );
    let echoed = tokio::task::spawn_blocking(move || {
        let mut s = client_side;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The request and a first frame in one write: hyper reads past the request.
        let mut out = common::upgrade_request().into_bytes();
        out.extend(common::masked_frame(0x1, b"through hyper"));
        s.write_all(&out).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"));
        let mut frame = [0u8; 15];
        s.read_exact(&mut frame).unwrap();
        // A close: the server answers it.
        s.write_all(&common::masked_frame(0x8, &1000u16.to_be_bytes()))
            .unwrap();
        let mut close = [0u8; 4];
        s.read_exact(&mut close).unwrap();
        (frame, close)
    })
    .await
    .unwrap();
    assert_eq!(&echoed.0[..2], &[0x81, 13]);
    assert_eq!(&echoed.0[2..], b"through hyper");
    assert_eq!(echoed.1, [0x88, 2, 0x03, 0xe8]);
}

/// hyper's own HTTP/1.1 connection over TCP (no hyper-util auto builder): the stream
/// moves to wsengine's thread too, with its peer address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypers_own_http1_connection_over_tcp_moves_to_our_thread() {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let service = service_fn(
            |request: hyper::Request<hyper::body::Incoming>| async move {
                Ok::<_, std::convert::Infallible>(peer(request.map(axum::body::Body::new)).await)
            },
        );
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades()
            .await;
    });
    let (mut ws, _) = connect_send(&format!("ws://{addr}/")).await.unwrap();
    let said = ws.recv().await.unwrap();
    let Message::Text(peer) = said else {
        panic!("{said:?}")
    };
    let peer: std::net::SocketAddr = peer.as_str().parse().unwrap();
    assert!(peer.port() != 0, "{peer}: the stream stayed in hyper's IO");
    ws.send_text("hi").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("hi"));
}

/// Connections taken over from axum subscribe and publish as on our own server, across
/// wsengine's threads, and `upgrade::publisher()` reaches them from outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_connections_have_topics_across_the_threads() {
    let addr = server().await;
    let publisher = wsengine::runtime::upgrade::publisher();
    let mut members = Vec::new();
    for _ in 0..4 {
        let (mut ws, _) = connect_send(&format!("ws://{addr}/room/lobby-axum"))
            .await
            .unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("joined"));
        members.push(ws);
    }
    assert_eq!(publisher.subscribers("lobby-axum"), 4);
    // One member's message reaches every member, itself included.
    members[0].send_text("hello room").await.unwrap();
    for ws in &mut members {
        assert_eq!(ws.recv().await.unwrap(), Message::text("hello room"));
    }
    // From outside, in order.
    for i in 0..50 {
        publisher.publish("lobby-axum", Message::text(format!("outside {i}")));
    }
    for ws in &mut members {
        for i in 0..50 {
            assert_eq!(
                ws.recv().await.unwrap(),
                Message::text(format!("outside {i}"))
            );
        }
    }
    let stats = publisher.topic_stats("lobby-axum");
    assert_eq!(
        (stats.published, stats.delivered, stats.dropped),
        (51, 204, 0)
    );
    // Leaving: the counts go back to zero.
    for ws in members {
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while publisher.subscribers("lobby-axum") > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(publisher.subscribers("lobby-axum"), 0);
}
