//! A raw TCP echo server on one thread (no WebSocket framing): the ceiling of
//! `benches/compare.sh`, driven by `load --raw`.
//! Usage: tcp_echo ADDR — prints `listening on tcp://ADDR`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9004".into());
    wsengine_benches::serve_tcp(&addr, "tcp", |mut stream| async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
}
