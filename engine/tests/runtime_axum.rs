//! The axum extractor (`wsengine::runtime::axum::WebSocketUpgrade`) in a real axum
//! server on tokio's multi-threaded runtime, driven by our client over sockets.

use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use wsengine::runtime::axum::WebSocketUpgrade;
use wsengine::runtime::{ConnectOptions, Error, connect_send};
use wsengine::{CloseCode, Message};

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

async fn server() -> std::net::SocketAddr {
    let app = Router::new()
        .route("/ws", get(echo))
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
