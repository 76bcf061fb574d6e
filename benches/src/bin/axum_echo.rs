//! axum echo servers for `benches/compare.sh`, one route `/` three ways:
//! - `tungstenite`: axum's own `WebSocketUpgrade` (tokio-tungstenite underneath);
//! - `wsengine`: wsengine's axum extractor (`runtime::axum::WebSocketUpgrade`, a `Send`
//!   handle whose halves go through a channel to the connection on wsengine's pool);
//! - `wsengine-local`: wsengine's `Upgrader` with a `!Send` handler on the pool thread.
//!
//! Usage: axum_echo ADDR MODE — prints `listening on ws://ADDR`. tokio's current-thread
//! runtime (the benchmark pins the server to one CPU).

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};

async fn tungstenite(upgrade: axum::extract::ws::WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut ws| async move {
        while let Some(Ok(message)) = ws.next().await {
            let data = matches!(
                message,
                axum::extract::ws::Message::Text(_) | axum::extract::ws::Message::Binary(_)
            );
            if data && ws.send(message).await.is_err() {
                break;
            }
        }
    })
}

async fn engine(upgrade: wsengine::runtime::axum::WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut ws| async move {
        while let Some(Ok(message)) = ws.next().await {
            if SinkExt::send(&mut ws, message).await.is_err() {
                break;
            }
        }
    })
}

async fn engine_local(mut request: Request) -> Response {
    match wsengine::runtime::upgrade::Upgrader::new().upgrade(&mut request) {
        Ok((response, pending)) => {
            pending.serve(|ws, _request| async move {
                while let Ok(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
            response.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9003".into());
    let mode = args.next().unwrap_or_else(|| "wsengine".into());
    let app = match mode.as_str() {
        "tungstenite" => Router::new().route("/", get(tungstenite)),
        "wsengine" => Router::new().route("/", get(engine)),
        "wsengine-local" => Router::new().route("/", get(engine_local)),
        other => {
            eprintln!("unknown mode {other}: tungstenite, wsengine or wsengine-local");
            std::process::exit(2);
        }
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            println!("listening on ws://{}", listener.local_addr()?);
            axum::serve(listener, app).await
        })
}
