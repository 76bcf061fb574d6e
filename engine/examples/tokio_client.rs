//! A `#[tokio::main]` program (tokio's multi-threaded runtime, no runtime of ours) using
//! the client: `connect_send`, then the size matrix written from a `tokio::spawn`ed task
//! through a `WebSocketWriter` while this task reads the echoes as a `Stream`, then a close
//! with 1000 through the `Sink`, after which the stream ends. Used against bench-server
//! and the Python `websockets` echo server by `scripts/test.sh`.
//!
//! ```sh
//! cargo run --release -p wsengine --example tokio_client -- ws://127.0.0.1:8765/
//! ```
//!
//! With `WSENGINE_PROXY=http://HOST:PORT` it goes through that HTTP `CONNECT` proxy;
//! over `wss://` the server's certificate is verified against `WSENGINE_CA` if set.

use std::process::ExitCode;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use wsengine::runtime::{ClientTls, ConnectOptions, Proxy};
use wsengine::{CloseCode, Message};

const SIZES: [usize; 6] = [0, 125, 126, 65535, 65536, 1 << 20];

fn messages() -> Vec<Message> {
    SIZES
        .iter()
        .flat_map(|&len| {
            let text: String = "한".repeat(len / 3) + &"x".repeat(len % 3);
            let binary: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            [Message::text(text), Message::binary(binary)]
        })
        .collect()
}

async fn check(url: &str) -> Result<usize, String> {
    let mut options = ConnectOptions::default();
    if let Ok(ca) = std::env::var("WSENGINE_CA") {
        options.tls = Some(ClientTls::from_ca_pem_file(ca).map_err(|e| e.to_string())?);
    }
    if let Ok(proxy) = std::env::var("WSENGINE_PROXY") {
        options.proxy = Some(Proxy::new(&proxy).map_err(|e| e.to_string())?);
    }
    let (ws, _) = options
        .connect_send(url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let writer = ws.writer();
    let sending = tokio::spawn(async move {
        for message in messages() {
            writer.send(message).await?;
        }
        Ok::<_, wsengine::runtime::Error>(())
    });
    let (mut sink, mut stream) = ws.split();
    let mut checked = 0;
    for expected in messages() {
        let echo = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .map_err(|_| format!("no echo of {} bytes within 10 s", expected.len()))?
            .ok_or("the stream ended early")?
            .map_err(|e| format!("recv: {e}"))?;
        if echo != expected {
            return Err(format!("echo of {} bytes differs", expected.len()));
        }
        checked += 1;
    }
    sending
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("send: {e}"))?;
    sink.close().await.map_err(|e| format!("close: {e}"))?;
    if let Some(extra) = stream.next().await {
        return Err(format!("the stream went on after the close: {extra:?}"));
    }
    let ws = sink
        .reunite(stream)
        .map_err(|_| "the halves belong together")?;
    match ws.close_frame() {
        Some(frame) if frame.code == CloseCode::NORMAL => Ok(checked),
        other => Err(format!("closed with {other:?}, expected 1000")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: tokio_client ws://HOST:PORT/PATH");
        return ExitCode::from(2);
    };
    match check(&url).await {
        Ok(n) => {
            println!("OK: {n} echoes from a #[tokio::main] program, closed with 1000");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
