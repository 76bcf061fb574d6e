//! Taking over a WebSocket upgrade inside a hyper 1.x or axum service.
//!
//! Most Rust services already run hyper (often under axum); this lets one route become a
//! wsengine WebSocket without a second listener. The request is checked by the same
//! sans-IO handshake as our own server's (RFC 6455 §4.2.1, the origin hook, subprotocol
//! choice), so a request is accepted or refused with the same status either way. hyper
//! then hands over the connection, including any bytes it had already read past the
//! request, and the connection runs on wsengine's core like any other.
//!
//! The [`WebSocket`] handle is `!Send` (its tasks share state without locks), while hyper
//! and axum run on a multi-threaded runtime. So the connection and the application's
//! handler run on wsengine's own threads (one per CPU, each a runtime of ours: io_uring
//! where the kernel allows it): the handler's future need not be `Send`, as on our own
//! server, but the closure that makes it must be. A plain TCP connection (what
//! `axum::serve` and hyper-util's servers hand over) leaves hyper's reactor for that
//! thread's driver, so its reads and wake-ups never cross threads; any other stream (TLS,
//! say) is read through hyper's IO.
//!
//! ```rust,no_run
//! use axum::extract::Request;
//! use axum::response::{IntoResponse, Response};
//! use wsengine::runtime::upgrade::Upgrader;
//!
//! async fn ws(mut request: Request) -> Response {
//!     match Upgrader::new().upgrade(&mut request) {
//!         Ok((response, pending)) => {
//!             pending.serve(|ws, _request| async move {
//!                 while let Ok(message) = ws.recv().await {
//!                     if ws.send(message).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             response.into_response()
//!         }
//!         Err(refusal) => refusal.into_response(),
//!     }
//! }
//!
//! let app: axum::Router = axum::Router::new().route("/ws", axum::routing::get(ws));
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::Full;

use hyper_util::rt::TokioIo;

use super::driver::io_stream::IoStream;
use super::driver::{Transport, drive_adopted};
use super::error::Error;
use super::handshake_io::HandshakeIo;
use super::options::SocketOptions;
use super::pubsub::Publisher;
use super::send_handle::SendWebSocket;
use super::server::{HandshakeHook, Policy, answer, handshake_with};
use super::session::Session;
use super::socket::{Shared, WebSocket};
use crate::proto::connection::Connection;
use crate::proto::extensions::DeflateParams;
use crate::proto::handshake::{Accept, HandshakeLimits, Reject, Request, ServerHandshake};
use crate::proto::role::Role;

/// An HTTP response for hyper or axum: the 101 that completes an upgrade, or a refusal.
pub type HttpResponse = http::Response<Full<Bytes>>;

/// Answers upgrade requests inside a hyper or axum service. Cheap to clone; build one
/// and share it.
#[derive(Clone, Default)]
pub struct Upgrader {
    options: SocketOptions,
    limits: HandshakeLimits,
    on_handshake: Option<Arc<HandshakeHook>>,
}

impl std::fmt::Debug for Upgrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrader")
            .field("options", &self.options)
            .field("on_handshake", &self.on_handshake.is_some())
            .finish()
    }
}

impl Upgrader {
    /// Default settings; every valid request is accepted without a subprotocol.
    pub fn new() -> Self {
        Upgrader::default()
    }

    /// Per-connection settings (protocol limits, backpressure, keepalive), as on
    /// [`ServerBuilder::socket_options`](super::ServerBuilder::socket_options).
    pub fn socket_options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Size limits of the upgrade request (431 past them).
    pub fn handshake_limits(mut self, limits: HandshakeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Decides on each request: origin checks, authentication, subprotocol choice; as
    /// [`ServerBuilder::on_handshake`](super::ServerBuilder::on_handshake).
    pub fn on_handshake<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Request) -> Result<Accept, Reject> + Send + Sync + 'static,
    {
        self.on_handshake = Some(Arc::new(hook));
        self
    }

    /// Checks `request` and answers it. `Ok`: the 101 response for the service to
    /// return, and the connection to [`serve`](PendingWebSocket::serve) once hyper hands
    /// it over. `Err`: the refusal to return instead (400, 403, 426, 431, ..., as our own
    /// server would answer).
    // The refusal is the response the service returns at once: a box would only add an
    // allocation on the way to hyper.
    #[allow(clippy::result_large_err)]
    pub fn upgrade<B>(
        &self,
        request: &mut http::Request<B>,
    ) -> Result<(HttpResponse, PendingWebSocket), HttpResponse> {
        let parsed = self.parse(request)?;
        let accepted = answer(
            self.on_handshake.as_deref(),
            &self.options.protocol.deflate,
            &parsed,
        )
        .map_err(|refusal| to_http(&refusal))?;
        let pending = PendingWebSocket {
            on_upgrade: hyper::upgrade::on(request),
            request: parsed,
            options: self.options.clone(),
            deflate: accepted.deflate,
            protocol: accepted.protocol,
            peer_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        Ok((to_http(&accepted.response), pending))
    }

    /// The request as the core's handshake reads it (RFC 6455 §4.2.1), or the refusal our
    /// own server would send (400, 405, 426, 431, ...). The hook is not asked.
    #[allow(clippy::result_large_err)]
    pub(crate) fn parse<B>(&self, request: &http::Request<B>) -> Result<Request, HttpResponse> {
        if request.version() != http::Version::HTTP_11 {
            // RFC 6455 §4.1: the opening handshake is an HTTP/1.1 request (RFC 8441's
            // HTTP/2 CONNECT is not supported).
            return Err(to_http(
                &Reject::new(426, "WebSocket needs HTTP/1.1").to_response(),
            ));
        }
        let mut head = BytesMut::from(request_head(request).as_slice());
        match ServerHandshake::new(self.limits.clone()).parse(&mut head) {
            Ok(Some(parsed)) => Ok(parsed),
            Ok(None) => Err(to_http(
                &Reject::new(400, "incomplete request").to_response(),
            )),
            Err(e) => Err(to_http(&e.to_response())),
        }
    }

    /// The opening handshake over a stream the application brings (any tokio
    /// `AsyncRead + AsyncWrite`: a TLS stream from tokio-rustls, a Unix socket, an
    /// in-memory pipe), with this upgrader's limits, hook and settings, within
    /// `timeout`: the connection and the request, or [`Error::Refused`] with the status
    /// that was answered (400, 403, 426, 431, ...). Call it inside one of our runtimes
    /// (a server's handler, [`start`](super::start)): the connection runs on this thread,
    /// read through the stream's own IO (the tokio driver's readiness loop).
    pub async fn accept_stream<S>(
        &self,
        stream: S,
        timeout: std::time::Duration,
    ) -> Result<(WebSocket, Request), Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + 'static,
    {
        let stream = Rc::new(IoStream::new(stream));
        let mut io = HandshakeIo::plain(&*stream);
        let policy = Policy {
            limits: &self.limits,
            hook: self.on_handshake.as_deref(),
            deflate: &self.options.protocol.deflate,
        };
        let (request, accepted, leftover) =
            match tokio::time::timeout(timeout, handshake_with(&mut io, policy)).await {
                Ok(Ok(done)) => done,
                Ok(Err(Some(refusal))) => {
                    let status = status_of(&refusal);
                    let _ = io.write_all(refusal).await;
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return Err(Error::Refused(status));
                }
                Ok(Err(None)) => {
                    return Err(Error::Closed(crate::proto::close::CloseFrame {
                        code: crate::proto::close::CloseCode::ABNORMAL,
                        reason: crate::proto::message::Utf8Bytes::from_static(
                            "the peer closed the stream during the handshake",
                        ),
                    }));
                }
                Err(_) => {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return Err(Error::Timeout("opening handshake"));
                }
            };
        io.write_all(accepted.response).await?;
        let conn = Connection::new(Role::Server, self.options.protocol.clone(), leftover)
            .with_deflate(accepted.deflate);
        let session = Session::new(conn, Rc::new(self.options.clone()));
        let shared = Rc::new(
            Shared::new(session, SocketAddr::from(([0, 0, 0, 0], 0)))
                .with_request(request.path(), accepted.protocol.as_deref()),
        );
        tokio::task::spawn_local(stream.drive(shared.clone(), Box::new(|| {})));
        Ok((WebSocket::new(shared, Role::Server), request))
    }

    /// Whether [`on_handshake`](Self::on_handshake) set a hook.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn has_hook(&self) -> bool {
        self.on_handshake.is_some()
    }
}

/// An accepted upgrade whose connection hyper has not handed over yet.
pub struct PendingWebSocket {
    on_upgrade: hyper::upgrade::OnUpgrade,
    request: Request,
    options: SocketOptions,
    deflate: Option<DeflateParams>,
    protocol: Option<String>,
    peer_addr: SocketAddr,
}

impl std::fmt::Debug for PendingWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingWebSocket")
            .field("peer_addr", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

impl PendingWebSocket {
    /// The peer's address, for [`WebSocket::peer_addr`] (hyper does not pass it on;
    /// axum has it as `ConnectInfo`). Default `0.0.0.0:0`.
    pub fn peer_addr(mut self, addr: SocketAddr) -> Self {
        self.peer_addr = addr;
        self
    }

    /// Runs `handler` with the WebSocket once hyper hands over the connection, on a
    /// thread of wsengine's pool (see the module docs); returns at once. If the client
    /// goes away before the upgrade completes, `handler` is not called.
    pub fn serve<H, F>(self, handler: H)
    where
        H: FnOnce(WebSocket, Request) -> F + Send + 'static,
        F: Future<Output = ()> + 'static,
    {
        let PendingWebSocket {
            on_upgrade,
            request,
            options,
            deflate,
            protocol,
            peer_addr,
        } = self;
        // Fails only where no thread of ours could start: the connection is then dropped.
        let _ = super::threads::spawn(move || async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let connection = |leftover: BytesMut| {
                let conn = Connection::new(Role::Server, options.protocol.clone(), leftover)
                    .with_deflate(deflate);
                Session::new(conn, Rc::new(options))
            };
            // A plain TCP connection (what `axum::serve` and hyper-util's servers hand
            // over) moves to this thread's driver, io_uring where it runs: its reads and
            // wake-ups stay here, with no hop through hyper's reactor. Anything else (a TLS
            // stream, say) is read through hyper's IO as it is.
            let shared = match tcp_of(upgraded) {
                Ok((tcp, read_buf)) => {
                    let peer_addr = match peer_addr {
                        unset if unset.port() == 0 => tcp.peer_addr().unwrap_or(unset),
                        given => given,
                    };
                    let Ok(tcp) = tcp.into_std() else {
                        return;
                    };
                    // Bytes hyper read past the request come first.
                    // Taken over without a copy when hyper holds no other reference.
                    let session = connection(if read_buf.is_empty() {
                        BytesMut::new()
                    } else {
                        BytesMut::from(read_buf)
                    });
                    let shared = Rc::new(with_pool_pubsub(
                        Shared::new(session, peer_addr)
                            .with_request(request.path(), protocol.as_deref()),
                    ));
                    if drive_adopted(tcp, shared.clone()).is_err() {
                        return;
                    }
                    shared
                }
                Err(upgraded) => {
                    let stream = Rc::new(IoStream::new(TokioIo::new(upgraded)));
                    // Bytes hyper read past the request are inside `upgraded`: read first.
                    let shared = Rc::new(with_pool_pubsub(
                        Shared::new(connection(BytesMut::new()), peer_addr)
                            .with_request(request.path(), protocol.as_deref()),
                    ));
                    tokio::task::spawn_local(stream.drive(shared.clone(), Box::new(|| {})));
                    shared
                }
            };
            handler(WebSocket::new(shared, Role::Server), request).await;
        });
    }
}

impl PendingWebSocket {
    /// Runs the connection on one of wsengine's threads once hyper hands it over, and
    /// `callback` with a [`SendWebSocket`] for it on the same thread: the callback's
    /// future is `Send` and may `tokio::spawn` (onto that thread), as with axum's own
    /// WebSocket. Returns at once.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn serve_send<F, Fut>(self, callback: F)
    where
        F: FnOnce(SendWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let max_send_queue = self.options.max_send_queue;
        self.serve(move |ws, _request| async move {
            let (handle, run) = SendWebSocket::attach(ws, max_send_queue);
            // On this thread, beside the connection: the handle's channels never cross
            // threads, and what the callback spawns runs here too.
            tokio::task::spawn_local(callback(handle));
            run.await;
        });
    }
}

/// A connection on one of wsengine's threads takes part in their pub/sub.
fn with_pool_pubsub(shared: Shared) -> Shared {
    match super::threads::pubsub() {
        Some(pubsub) => shared.with_pubsub(pubsub),
        None => shared,
    }
}

/// A [`Publisher`] to the topics of the connections taken over from hyper or axum
/// (through [`Upgrader`] or the axum extractor, on every route of the process): their
/// handlers `subscribe` and `publish` as on our own server, and this reaches them from
/// any thread. The slow-subscriber policy is the default
/// ([`SlowSubscriber::Drop`](super::SlowSubscriber::Drop)). Connections of a
/// [`Server`](super::Server) have their own topics.
pub fn publisher() -> Publisher {
    super::threads::publisher()
}

/// The TCP stream under an upgraded connection, with the bytes hyper read past the
/// request: served by hyper's own HTTP/1.1 connection, or by hyper-util's auto one (what
/// `axum::serve` uses, which wraps the stream once more). Anything else comes back.
fn tcp_of(
    upgraded: hyper::upgrade::Upgraded,
) -> Result<(tokio::net::TcpStream, Bytes), hyper::upgrade::Upgraded> {
    let upgraded = match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => return Ok((parts.io.into_inner(), parts.read_buf)),
        Err(upgraded) => upgraded,
    };
    hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<tokio::net::TcpStream>>(upgraded)
        .map(|parts| (parts.io.into_inner(), parts.read_buf))
}

/// The status code of an HTTP response the core wrote (500 if it cannot be read).
fn status_of(response: &[u8]) -> u16 {
    response
        .get(9..12)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok())
        .unwrap_or(500)
}

/// The request's head as it came on the wire (HTTP/1.1), for the core's parser.
fn request_head<B>(request: &http::Request<B>) -> Vec<u8> {
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(request.method().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// A response the core wrote as bytes, as an `http::Response` (hyper sets the length).
fn to_http(bytes: &[u8]) -> HttpResponse {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let body_at = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(at)) => at,
        // The core's own responses always parse; this is a fallback, not a path.
        _ => return internal_error(),
    };
    let mut response = http::Response::builder().status(parsed.code.unwrap_or(500));
    for header in parsed.headers.iter() {
        if !header.name.eq_ignore_ascii_case("content-length") {
            response = response.header(header.name, header.value);
        }
    }
    response
        .body(Full::new(Bytes::copy_from_slice(&bytes[body_at..])))
        .unwrap_or_else(|_| internal_error())
}

fn internal_error() -> HttpResponse {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: http::Version, key: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::get("/chat?room=1")
            .version(version)
            .header("host", "example.com")
            .header("upgrade", "websocket")
            .header("connection", "keep-alive, Upgrade")
            .header("sec-websocket-version", "13")
            .header("origin", "https://example.com")
            .header("sec-websocket-protocol", "chat, superchat");
        if let Some(key) = key {
            builder = builder.header("sec-websocket-key", key);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn a_valid_request_gets_101_with_the_rfc_accept_key() {
        let upgrader = Upgrader::new().on_handshake(|r| {
            assert_eq!(r.uri(), "/chat?room=1");
            assert_eq!(r.origin(), Some("https://example.com"));
            Ok(Accept::new().protocol("chat"))
        });
        let mut req = request(http::Version::HTTP_11, Some("dGhlIHNhbXBsZSBub25jZQ=="));
        let (response, _pending) = upgrader.upgrade(&mut req).unwrap();
        assert_eq!(response.status(), 101);
        let h = response.headers();
        assert_eq!(h["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(h["sec-websocket-protocol"], "chat");
        assert!(
            h["upgrade"]
                .to_str()
                .unwrap()
                .eq_ignore_ascii_case("websocket")
        );
    }

    #[test]
    fn permessage_deflate_follows_the_options_unless_the_hook_refuses_it() {
        let offer = "permessage-deflate; client_max_window_bits";
        let with_offer = || {
            let mut req = request(http::Version::HTTP_11, Some("dGhlIHNhbXBsZSBub25jZQ=="));
            req.headers_mut()
                .insert("sec-websocket-extensions", offer.parse().unwrap());
            req
        };
        let mut options = SocketOptions::default();
        options.protocol.deflate = crate::proto::extensions::DeflateConfig::shared();
        let upgrader = Upgrader::new().socket_options(options.clone());
        let (response, pending) = upgrader.upgrade(&mut with_offer()).unwrap();
        assert_eq!(
            response.headers()["sec-websocket-extensions"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        let agreed = pending.deflate.expect("the connection gets the parameters");
        assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);
        // Off by default; refused per connection by the hook.
        let (response, pending) = Upgrader::new().upgrade(&mut with_offer()).unwrap();
        assert!(!response.headers().contains_key("sec-websocket-extensions"));
        assert!(pending.deflate.is_none());
        let refusing = Upgrader::new()
            .socket_options(options)
            .on_handshake(|_| Ok(Accept::new().no_compression()));
        let (response, pending) = refusing.upgrade(&mut with_offer()).unwrap();
        assert!(!response.headers().contains_key("sec-websocket-extensions"));
        assert!(pending.deflate.is_none());
    }

    #[test]
    fn refusals_carry_the_same_status_as_our_server() {
        let upgrader = Upgrader::new();
        let mut no_key = request(http::Version::HTTP_11, None);
        assert_eq!(upgrader.upgrade(&mut no_key).unwrap_err().status(), 400);
        let mut http10 = request(http::Version::HTTP_10, Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(upgrader.upgrade(&mut http10).unwrap_err().status(), 426);
        let mut bad_version = request(http::Version::HTTP_11, Some("dGhlIHNhbXBsZSBub25jZQ=="));
        bad_version
            .headers_mut()
            .insert("sec-websocket-version", "8".parse().unwrap());
        let refusal = upgrader.upgrade(&mut bad_version).unwrap_err();
        assert_eq!(refusal.status(), 426);
        assert_eq!(refusal.headers()["sec-websocket-version"], "13");
        let picky = Upgrader::new().on_handshake(|_| Err(Reject::new(403, "origin not allowed")));
        let mut ok = request(http::Version::HTTP_11, Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(picky.upgrade(&mut ok).unwrap_err().status(), 403);
    }
}
