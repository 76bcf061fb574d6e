//! Drives our client through the Autobahn|Testsuite fuzzingserver: every case's messages
//! are echoed back, then the server writes its report.
//!
//! ```sh
//! /tmp/autobahn-venv/bin/kosoku -m fuzzingserver 127.0.0.1:9002 -o /tmp/ab-client &
//! cargo run --release -p wsengine --example autobahn_client -- ws://127.0.0.1:9002
//! python3 ../shared/autobahn/summarize.py /tmp/ab-client
//! ```
//!
//! Arguments: the fuzzingserver's URL, the driver (`auto`, `uring`, `tokio`), and the
//! permessage-deflate offer: `takeover` (the default: `client_max_window_bits`, context
//! takeover both ways) or `no-takeover` (also `client_no_context_takeover`, the promise
//! that the servers of cases 13.2, 13.5 and 13.6 wait for before they accept).

use std::time::Duration;

use wsengine::proto::extensions::DeflateConfig;
use wsengine::runtime::{ConnectOptions, Driver, Error, connect, start_with};

const AGENT: &str = "wsengine";

async fn case_count(base: &str) -> Result<u32, Error> {
    let (ws, _) = connect(&format!("{base}/getCaseCount")).await?;
    let message = ws.recv().await?;
    let count = std::str::from_utf8(message.payload())
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::InvalidUrl("getCaseCount did not answer a number".into()))?;
    let _ = ws.recv().await;
    Ok(count)
}

async fn run_case(base: &str, case: u32, no_takeover: bool) {
    let mut options = ConnectOptions::default();
    options.socket.protocol.max_message_size = 64 << 20;
    options.socket.protocol.max_frame_size = 64 << 20;
    // Offer permessage-deflate on every case, as browsers do: sections 12 and 13 accept
    // it with the case's parameters, the others decline it.
    // Every message compressed (no threshold): kosoku 0.1.0 fails its own hash on an
    // uncompressed text echo in those sections (it hands the case a str, not bytes).
    let mut deflate = DeflateConfig::enabled();
    deflate.min_size = 0;
    deflate.client_no_context_takeover = no_takeover;
    options.socket.protocol.deflate = deflate;
    let url = format!("{base}/runCase?case={case}&agent={AGENT}");
    let Ok((ws, _)) = options.connect(&url).await else {
        return;
    };
    while let Ok(message) = ws.recv().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
    ws.closed().await;
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9002".to_string());
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
    let no_takeover = match std::env::args().nth(3).as_deref() {
        None | Some("takeover") => false,
        Some("no-takeover") => true,
        Some(other) => {
            eprintln!("deflate offer: takeover or no-takeover, not {other}");
            std::process::exit(2);
        }
    };
    let result = start_with(driver, async move {
        let count = case_count(&base).await?;
        eprintln!("autobahn_client: {count} cases");
        for case in 1..=count {
            // Every case is bounded: the fuzzingserver closes each connection itself.
            if tokio::time::timeout(Duration::from_secs(120), run_case(&base, case, no_takeover))
                .await
                .is_err()
            {
                eprintln!("autobahn_client: case {case} timed out");
            }
        }
        let (ws, _) = connect(&format!("{base}/updateReports?agent={AGENT}")).await?;
        let _ = ws.recv().await;
        Ok::<_, Error>(count)
    });
    match result {
        Ok(Ok(count)) => eprintln!("autobahn_client: ran {count} cases"),
        Ok(Err(e)) | Err(e) => {
            eprintln!("autobahn_client: {e}");
            std::process::exit(1);
        }
    }
}
