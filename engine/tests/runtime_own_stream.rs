//! Streams the application brings (any tokio `AsyncRead + AsyncWrite`): the server's
//! handshake through `Upgrader::accept_stream` and the client's through
//! `ConnectOptions::connect_stream`, over Unix socket pairs inside one of our runtimes.

#![cfg(unix)]

use std::time::Duration;

use wsengine::proto::handshake::{Accept, Reject};
use wsengine::runtime::upgrade::Upgrader;
use wsengine::runtime::{ConnectOptions, Error, WebSocket};
use wsengine::{CloseCode, Message};

mod common;

fn pair() -> (tokio::net::UnixStream, tokio::net::UnixStream) {
    tokio::net::UnixStream::pair().unwrap()
}

#[test]
fn both_roles_run_over_a_unix_socket_pair() {
    common::run_client(async {
        let (server_end, client_end) = pair();
        let upgrader = Upgrader::new().on_handshake(|request| {
            assert_eq!(request.path(), "/chat");
            Ok(Accept::new().protocol("v1"))
        });
        let server = tokio::task::spawn_local(async move {
            let (ws, request): (WebSocket, _) = upgrader
                .accept_stream(server_end, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(request.uri(), "/chat?x=1");
            while let Ok(m) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            ws.close_frame().map(|f| f.code)
        });
        let mut options = ConnectOptions::default();
        options.protocols = vec!["v1".into()];
        let (ws, response) = options
            .connect_stream(client_end, "ws://unix.local/chat?x=1")
            .await
            .unwrap();
        assert_eq!(response.protocol(), Some("v1"));
        for len in [0usize, 125, 126, 65535, 65536, 1 << 20] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            for message in [Message::text("é".repeat(len / 2)), Message::binary(bytes)] {
                ws.send(message.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), message);
            }
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert_eq!(server.await.unwrap(), Some(CloseCode::NORMAL));
    });
}

#[test]
fn a_refused_stream_gets_the_hooks_status_and_a_silent_one_times_out() {
    common::run_client(async {
        let (server_end, client_end) = pair();
        let upgrader = Upgrader::new().on_handshake(|_| Err(Reject::new(403, "no")));
        let server = tokio::task::spawn_local(async move {
            upgrader
                .accept_stream(server_end, Duration::from_secs(5))
                .await
                .map(|_| ())
        });
        match ConnectOptions::default()
            .connect_stream(client_end, "ws://unix.local/")
            .await
        {
            Err(Error::ClientHandshake(e)) => assert!(e.to_string().contains("403"), "{e}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert!(matches!(server.await.unwrap(), Err(Error::Refused(403))));
        // A peer that never sends its request: the timeout.
        let (server_end, _silent) = pair();
        let started = std::time::Instant::now();
        let result = Upgrader::new()
            .accept_stream(server_end, Duration::from_millis(200))
            .await;
        assert!(matches!(result, Err(Error::Timeout(_))));
        assert!(started.elapsed() < Duration::from_secs(2));
    });
}
