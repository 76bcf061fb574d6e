//! Checks a WebSocket echo server with our client: text and binary messages at the
//! length boundaries (0, 125, 126, 65535, 65536 bytes and 1 MiB), a fragmented message,
//! a ping, and a close with a code. Used against third-party servers (the Python
//! `websockets` echo server) by `scripts/test.sh`.
//!
//! ```sh
//! cargo run --release -p wsengine --example echo_check -- ws://127.0.0.1:8765/ [DRIVER] [deflate]
//! ```
//!
//! With `deflate` the checks run a third time offering permessage-deflate (context
//! takeover, every message compressed), which the server must accept. Over `wss://` the
//! server's certificate is verified against the PEM file in `WSENGINE_CA` (a test CA),
//! or Mozilla's roots without it.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use wsengine::proto::extensions::DeflateConfig;
use wsengine::runtime::{ClientTls, ConnectOptions, Driver, Error, start_with};
use wsengine::{CloseCode, Message};

const SIZES: [usize; 6] = [0, 125, 126, 65535, 65536, 1 << 20];

fn text(len: usize) -> String {
    let mut s = String::with_capacity(len);
    while s.len() + 3 <= len {
        s.push('한');
    }
    while s.len() < len {
        s.push('x');
    }
    s
}

async fn check(url: &str, fragment: Option<usize>, deflate: bool) -> Result<usize, String> {
    let mut options = ConnectOptions::default();
    if let Ok(ca) = std::env::var("WSENGINE_CA") {
        options.tls = Some(ClientTls::from_ca_pem_file(ca).map_err(|e| e.to_string())?);
    }
    options.socket.protocol.fragment_size = fragment;
    if deflate {
        options.socket.protocol.deflate = DeflateConfig::enabled();
        options.socket.protocol.deflate.min_size = 0;
    }
    let (ws, _) = options
        .connect(url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if deflate && ws.deflate().is_none() {
        return Err("the server did not accept permessage-deflate".into());
    }
    let mut checked = 0;
    for len in SIZES {
        let binary: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        for message in [Message::text(text(len)), Message::binary(binary)] {
            ws.send(message.clone())
                .await
                .map_err(|e| format!("send {len}: {e}"))?;
            let echo = ws.recv().await.map_err(|e| format!("recv {len}: {e}"))?;
            if echo != message {
                return Err(format!(
                    "echo of a {} message of {len} bytes differs (got {} of {} bytes)",
                    if message.is_text() { "text" } else { "binary" },
                    if echo.is_text() { "text" } else { "binary" },
                    echo.len()
                ));
            }
            checked += 1;
        }
    }
    ws.ping(Bytes::from_static(b"ping"))
        .map_err(|e| format!("ping: {e}"))?;
    ws.send(Message::text("after ping"))
        .await
        .map_err(|e| format!("send: {e}"))?;
    if ws.recv().await.map_err(|e| format!("recv: {e}"))? != Message::text("after ping") {
        return Err("echo after ping differs".into());
    }
    ws.close(CloseCode(4000), "check done")
        .await
        .map_err(|e| format!("close: {e}"))?;
    match ws.recv().await {
        Err(Error::Closed(frame)) if frame.code == CloseCode(4000) => Ok(checked + 1),
        other => Err(format!(
            "expected the close code 4000 echoed, got {other:?}"
        )),
    }
}

fn main() -> ExitCode {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:8765/".to_string());
    // A second argument chooses the driver: auto (the default), uring or tokio.
    let driver: Driver = match std::env::args()
        .nth(2)
        .unwrap_or_else(|| "auto".into())
        .parse()
    {
        Ok(driver) => driver,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let deflate = std::env::args().nth(3).as_deref() == Some("deflate");
    let result = start_with(driver, async {
        let run = async {
            let plain = check(&url, None, false).await?;
            let fragmented = check(&url, Some(1000), false).await?;
            let compressed = if deflate {
                check(&url, Some(1000), true).await?
            } else {
                0
            };
            Ok::<_, String>(plain + fragmented + compressed)
        };
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .unwrap_or_else(|_| Err("timed out after 60 s".into()))
    });
    match result {
        Ok(Ok(n)) => {
            println!("echo_check: {n} passed, 0 failed ({url})");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            println!("echo_check: 0 passed, 1 failed ({url}): {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("echo_check: {e}");
            ExitCode::FAILURE
        }
    }
}
