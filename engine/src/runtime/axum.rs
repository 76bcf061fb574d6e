//! An axum extractor: a route takes wsengine's upgrade the way it takes axum's own
//! `WebSocketUpgrade` (feature `axum`).
//!
//! ```rust,no_run
//! use futures_util::{SinkExt, StreamExt};
//! use wsengine::runtime::axum::WebSocketUpgrade;
//!
//! async fn ws(upgrade: WebSocketUpgrade) -> axum::response::Response {
//!     upgrade.on_upgrade(|socket| async move {
//!         // As with axum's WebSocket: halves for tasks of their own.
//!         let (mut tx, mut rx) = socket.split();
//!         while let Some(Ok(message)) = rx.next().await {
//!             if tx.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! let app: axum::Router = axum::Router::new().route("/ws", axum::routing::get(ws));
//! ```
//!
//! The request is checked by the core's handshake as our own server checks it, so a
//! request that cannot be upgraded is refused at extraction with the same status (400,
//! 405, 426, 431). The connection then runs on wsengine's pool (see [`super::upgrade`])
//! and the callback gets a [`SendWebSocket`]: `Send`, a `Stream` and a `Sink`, so the
//! callback's future may `tokio::spawn` its halves, as axum's examples do. Where the
//! last bit of speed matters, [`Upgrader`] with a `!Send` [`WebSocket`](super::WebSocket)
//! handler saves the hop between the handle and the connection.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::send_handle::SendWebSocket;
use super::upgrade::{HttpResponse, Upgrader};
use crate::proto::handshake::{Accept, HandshakeLimits};

/// Extracts a WebSocket upgrade request in an axum handler; answer it with
/// [`on_upgrade`](Self::on_upgrade).
pub struct WebSocketUpgrade {
    /// The request's head, with hyper's upgrade handle in its extensions.
    request: http::Request<()>,
    upgrader: Upgrader,
    protocols: Option<Vec<String>>,
    peer_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("uri", self.request.uri())
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

fn into_axum(response: HttpResponse) -> Response {
    response.map(axum::body::Body::new)
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let mut request = http::Request::new(());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        *request.headers_mut() = parts.headers.clone();
        // The request's shape is checked here, as axum's extractor checks it; the size
        // limits are the upgrader's, applied in `on_upgrade` (431 there), since
        // `.upgrader()` may still raise them. hyper has bounded the head already.
        let generous = HandshakeLimits {
            max_head_bytes: 1 << 20,
            max_headers: 1024,
        };
        Upgrader::new()
            .handshake_limits(generous)
            .parse(&request)
            .map_err(into_axum)?;
        let upgrader = Upgrader::new();
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            // Served by something other than hyper's HTTP/1.1 connection (a test with
            // `oneshot`, say): nothing to take the connection from.
            return Err((
                http::StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded",
            )
                .into_response());
        };
        request.extensions_mut().insert(on_upgrade);
        let peer_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        Ok(WebSocketUpgrade {
            request,
            upgrader,
            protocols: None,
            peer_addr,
        })
    }
}

impl WebSocketUpgrade {
    /// The settings, limits and handshake hook to upgrade with (an [`Upgrader`] built
    /// once and cloned here). Its hook, if it has one, decides the subprotocol, and
    /// [`protocols`](Self::protocols) is then not used.
    pub fn upgrader(mut self, upgrader: Upgrader) -> Self {
        self.upgrader = upgrader;
        self
    }

    /// The subprotocols this route speaks: the first of the client's offers (in its
    /// order of preference) that is in `protocols` is chosen, and none if none is.
    pub fn protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.protocols = Some(protocols.into_iter().map(Into::into).collect());
        self
    }

    /// The subprotocol [`protocols`](Self::protocols) chooses for this request.
    pub fn selected_protocol(&self) -> Option<String> {
        let supported = self.protocols.as_ref()?;
        let request = self.upgrader.parse(&self.request).ok()?;
        request
            .protocols()
            .find(|offer| supported.iter().any(|p| p == offer))
            .map(str::to_string)
    }

    /// Answers the request: the 101 response for the handler to return, and `callback`
    /// run with the connection once hyper hands it over, as a task on the wsengine
    /// thread that runs the connection (what it `tokio::spawn`s runs there too; it is
    /// a tokio runtime like any other, but the callback should not block it). If the upgrader's hook refuses the request, its refusal is returned
    /// instead and `callback` is not run; so it is not either if the client goes away
    /// before the upgrade completes.
    pub fn on_upgrade<F, Fut>(mut self, callback: F) -> Response
    where
        F: FnOnce(SendWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut upgrader = self.upgrader.clone();
        if let Some(supported) = self.protocols.clone()
            && !upgrader.has_hook()
        {
            upgrader = upgrader.on_handshake(move |request| {
                let accept = Accept::new();
                Ok(
                    match request
                        .protocols()
                        .find(|offer| supported.iter().any(|p| p == offer))
                    {
                        Some(chosen) => accept.protocol(chosen),
                        None => accept,
                    },
                )
            });
        }
        match upgrader.upgrade(&mut self.request) {
            Ok((response, mut pending)) => {
                if let Some(addr) = self.peer_addr {
                    pending = pending.peer_addr(addr);
                }
                pending.serve_send(callback);
                into_axum(response)
            }
            Err(refusal) => into_axum(refusal),
        }
    }
}
