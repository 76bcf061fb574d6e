//! The handle as a `futures` `Stream` and `Sink`, over real sockets on 127.0.0.1: the
//! combinators people write with tokio-tungstenite (`next`, `forward`, `send_all`) on both
//! roles, where a closing handshake ends the stream and any other end is one error first.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, stream};
use wsengine::runtime::{Error, SocketOptions, WebSocket, connect};
use wsengine::{CloseCode, Message};

mod common;
use common::{masked_frame, raw_handshake, reset};

/// How each server connection's stream ended, as the handler saw it.
#[derive(Debug, PartialEq)]
enum Seen {
    /// `forward` returned `Ok` (the stream ended with `None`); the close frame's code.
    Ended(Option<u16>),
    /// The stream yielded this error (its close code, if a close error), then `None`.
    Failed(Option<u16>),
}

fn code_of(e: &Error) -> Option<u16> {
    match e {
        Error::Closed(frame) => Some(frame.code.0),
        _ => None,
    }
}

/// A server whose handler is `rx.forward(tx)` on two clones of the handle; what it saw
/// is sent on the channel.
fn forward_server(
    options: SocketOptions,
) -> (wsengine::runtime::ServerHandle, mpsc::Receiver<Seen>) {
    let (seen_tx, seen) = mpsc::channel();
    let seen_tx = std::sync::Mutex::new(seen_tx);
    let server = common::one_worker()
        .socket_options(options)
        .serve(move |ws: WebSocket, _req| {
            let seen_tx = seen_tx.lock().unwrap().clone();
            async move {
                let (tx, mut rx) = (ws.clone(), ws.clone());
                // `forward` stops at the first error; the stream's own end is checked after.
                let result = (&mut rx).forward(tx).await;
                let seen = match result {
                    Ok(()) => Seen::Ended(ws.close_frame().map(|f| f.code.0)),
                    Err(e) => {
                        assert!(rx.next().await.is_none(), "the stream ends after its error");
                        Seen::Failed(code_of(&e))
                    }
                };
                seen_tx.send(seen).unwrap();
            }
        })
        .expect("server starts");
    (server, seen)
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/stream")
}

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

const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

/// `rx.forward(tx)` echoes the size matrix, text and binary, one at a time and all at
/// once; the client's `SinkExt::close` is a 1000 close that ends the server's stream
/// (`forward` returns `Ok`) and then the client's own (`None`).
#[test]
fn forward_echoes_the_size_matrix_and_a_1000_close_ends_both_streams() {
    let (server, seen) = forward_server(SocketOptions::default());
    let addr = server.local_addr();
    client(async move {
        let (mut ws, _) = connect(&url(addr)).await.unwrap();
        let messages: Vec<Message> = SIZES
            .iter()
            .flat_map(|&len| {
                let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
                [
                    Message::Binary(Bytes::from(payload(len))),
                    Message::Text(text.into()),
                ]
            })
            .collect();
        // One at a time: `SinkExt::send` is feed + flush.
        for message in &messages {
            ws.send(message.clone()).await.unwrap();
            assert_eq!(&ws.next().await.unwrap().unwrap(), message);
        }
        // All at once through `send_all`, then read them back in order.
        let mut all = stream::iter(messages.clone().into_iter().map(Ok));
        ws.send_all(&mut all).await.unwrap();
        for message in &messages {
            assert_eq!(&ws.next().await.unwrap().unwrap(), message);
        }
        SinkExt::close(&mut ws).await.unwrap();
        assert!(ws.next().await.is_none());
        assert!(ws.next().await.is_none(), "fused");
        assert_eq!(ws.close_frame().unwrap().code, CloseCode::NORMAL);
        assert!(ws.is_closed());
    });
    let seen = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(seen, Seen::Ended(Some(1000)));
    server.shutdown(Duration::from_secs(1));
}

/// The server closes with its own code: the client's stream ends with `None` and the
/// close frame holds the server's code and reason; once shut, a send fails.
#[test]
fn a_close_from_the_peer_with_any_code_ends_the_stream_and_keeps_the_frame() {
    let server = common::one_worker()
        .serve(|ws: WebSocket, _req| async move {
            let _ = ws.send_text("bye soon").await;
            let _ = ws.close(CloseCode::from(4001), "done here").await;
        })
        .expect("server starts");
    let addr = server.local_addr();
    client(async move {
        let (mut ws, _) = connect(&url(addr)).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::Text("bye soon".into())
        );
        assert!(ws.next().await.is_none());
        let frame = ws.close_frame().unwrap();
        assert_eq!(frame.code.0, 4001);
        assert_eq!(&*frame.reason, "done here");
        // Once our answering close has gone and the socket is shut, nothing more goes.
        ws.closed().await;
        assert!(ws.send(Message::Text("late".into())).await.is_err());
    });
    server.shutdown(Duration::from_secs(1));
}

/// A peer that resets instead of closing: the server's stream yields one error (1006),
/// then `None`; and a peer that breaks the protocol: one protocol error, then `None`.
#[test]
fn any_other_end_is_one_error_then_none() {
    let (server, seen) = forward_server(SocketOptions::default());
    let addr = server.local_addr();

    let mut s = raw_handshake(addr);
    s.write_all(&masked_frame(0x1, b"hello")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    reset(s);
    let got = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got, Seen::Failed(Some(1006)));

    let mut s = raw_handshake(addr);
    // A text message that is not UTF-8: failed with 1007 by the core.
    s.write_all(&masked_frame(0x1, &[0xff, 0xfe])).unwrap();
    let got = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got, Seen::Failed(None), "a protocol error, not a close");
    drop(s);
    server.shutdown(Duration::from_secs(1));
}

/// The sink keeps `send`'s backpressure: a server feeding a peer that reads nothing
/// queues at most its bound plus one message, and then waits.
#[test]
fn the_sink_waits_while_the_send_queue_is_full() {
    const LEN: usize = 64 * 1024;
    const BOUND: usize = 256 * 1024;
    let mut options = SocketOptions::default();
    options.max_send_queue = BOUND;
    let fed = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (fed2, peak2) = (fed.clone(), peak.clone());
    let server = common::one_worker()
        .socket_options(options)
        .serve(move |mut ws: WebSocket, _req| {
            let (fed, peak) = (fed2.clone(), peak2.clone());
            async move {
                let chunk = Bytes::from(vec![7u8; LEN]);
                for _ in 0..10_000 {
                    if ws.feed(Message::Binary(chunk.clone())).await.is_err() {
                        return;
                    }
                    fed.fetch_add(1, Ordering::Relaxed);
                    peak.fetch_max(ws.buffered_amount(), Ordering::Relaxed);
                }
            }
        })
        .expect("server starts");
    let s = raw_handshake(server.local_addr());
    // Let it fill the queue and both sockets' buffers, then look twice: it has stopped.
    std::thread::sleep(Duration::from_millis(500));
    let first = fed.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let second = fed.load(Ordering::Relaxed);
    assert!(first > BOUND / LEN, "it sent at all: {first}");
    assert_eq!(first, second, "the sink waited");
    assert!(
        first < 1000,
        "{first} messages of 64 KiB went to a peer that reads nothing"
    );
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak < BOUND + LEN, "queued {peak} bytes, bound {BOUND}");
    reset(s);
    server.shutdown(Duration::from_secs(1));
}
