//! An axum app with one page and one WebSocket route served by wsengine: `/` is a page that
//! echoes what you type through `/ws`, and `/ws` is a wsengine WebSocket that sends every
//! message back. `scripts/test.sh` drives it with the Python `websockets` client.
//!
//! ```sh
//! cargo run --release -p wsengine --example axum_echo -- 127.0.0.1:3000
//! ```
//!
//! It prints `listening on http://ADDR` when ready.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use wsengine::runtime::upgrade::Upgrader;

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>wsengine echo</title>
<input id="text" placeholder="say something" autofocus> <button id="send">send</button>
<pre id="log"></pre>
<script>
  const log = (line) => document.getElementById("log").textContent += line + "\n";
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => log("connected");
  ws.onmessage = (event) => log("echo: " + event.data);
  ws.onclose = (event) => log("closed: " + event.code);
  document.getElementById("send").onclick = () => {
    const input = document.getElementById("text");
    ws.send(input.value);
    input.value = "";
  };
</script>
"#;

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// The WebSocket route: wsengine answers the upgrade request and runs the connection.
async fn ws(
    State(upgrader): State<Arc<Upgrader>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    match upgrader.upgrade(&mut request) {
        Ok((response, pending)) => {
            pending.peer_addr(peer).serve(|ws, _request| async move {
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    // Large messages for the test client's size matrix (1 MiB and up).
    let mut options = wsengine::runtime::SocketOptions::default();
    options.protocol.max_message_size = 64 << 20;
    options.protocol.max_frame_size = 64 << 20;
    let upgrader = Arc::new(Upgrader::new().socket_options(options));
    let app = Router::new()
        .route("/", get(page))
        .route("/ws", get(ws))
        .with_state(upgrader);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Frames leave as soon as they are written (the upgraded stream cannot set it).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
