//! A tokio-tungstenite echo server on one thread, for `benches/compare.sh`.
//! Usage: tungstenite_echo ADDR — prints `listening on ws://ADDR`.

use futures_util::{SinkExt, StreamExt};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    wsengine_benches::serve_tcp(&addr, "ws", |stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                break;
            }
        }
    })
}
