//! Raw clients for the socket tests: the handshake written by hand and frames built
//! byte by byte, for peers that misbehave in ways our own client never would.

#![allow(dead_code)] // each test binary uses its own part of this

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use wsengine::runtime::{Driver, Server, ServerBuilder, ServerHandle, WebSocket};

/// The RFC 6455 §1.3 example key and the accept value it must produce.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// See [`KEY`].
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid upgrade request for `/`.
pub fn upgrade_request() -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Reads an HTTP response head (through the blank line).
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A raw client: the handshake by hand, then whatever bytes the test wants.
pub fn raw_handshake(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(upgrade_request().as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains(ACCEPT), "{head}");
    s
}

/// A masked client frame with FIN set.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// Ends `s` with a reset (RST) instead of a FIN.
pub fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// The driver the socket tests run on: `WSENGINE_TEST_DRIVER` (`uring`, `tokio` or
/// `auto`, the default). `scripts/test.sh` runs them on each.
pub fn test_driver() -> Driver {
    std::env::var("WSENGINE_TEST_DRIVER")
        .ok()
        .map(|d| {
            d.parse()
                .expect("WSENGINE_TEST_DRIVER: auto, uring or tokio")
        })
        .unwrap_or_default()
}

/// A server builder on a free port of 127.0.0.1 on [`test_driver`].
pub fn builder() -> ServerBuilder {
    Server::builder("127.0.0.1:0".parse().unwrap())
        .pin_workers(false)
        .driver(test_driver())
}

/// A builder for one unpinned worker on a free port of 127.0.0.1.
pub fn one_worker() -> ServerBuilder {
    builder().workers(1)
}

/// Runs `future` on a client runtime of [`test_driver`] on this thread.
pub fn run_client<F: std::future::Future>(future: F) -> F::Output {
    wsengine::runtime::start_with(test_driver(), future).expect("a runtime")
}

/// Starts `builder` as an echo server: every message goes back as it came.
pub fn serve_echo(builder: ServerBuilder) -> ServerHandle {
    builder
        .serve(|ws: WebSocket, _req| async move {
            while let Ok(m) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        })
        .expect("server starts")
}

/// The descriptors this process holds.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// This process's resident memory, in KiB.
pub fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
