//! Connecting inside one of our runtimes: the TCP connection on the runtime's driver,
//! TLS for `wss://`, the opening handshake, and the connection's state machine started
//! on this thread.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;

use super::super::driver::Transport;
use super::super::error::Error;
#[cfg(uring)]
use super::super::executor::Driver;
use super::super::executor::current_driver;
use super::super::handshake_io::HandshakeIo;
use super::super::options::SocketOptions;
use super::super::session::Session;
use super::super::socket::{Shared, WebSocket};
use super::super::tls::ClientTls;
use super::proxy::Proxy;
use super::request::IntoConnectRequest;
use super::target::Target;
use crate::proto::connection::Connection;
use crate::proto::handshake::{ClientRequest, HandshakeLimits, Response};
use crate::proto::role::Role;

/// How to connect: subprotocols, extra headers, timeouts and per-connection settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Subprotocols to offer, in order of preference (`Sec-WebSocket-Protocol`).
    pub protocols: Vec<String>,
    /// Extra request headers (e.g. `Authorization`, `Cookie`).
    pub headers: Vec<(String, String)>,
    /// The `Origin` header, as browsers send it. Default none.
    pub origin: Option<String>,
    /// Deadline for the TCP connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Deadline for the server's upgrade response. Default 10 s.
    pub handshake_timeout: Duration,
    /// Bind the local end to this source address before connecting (port chosen by the
    /// kernel), e.g. 127.0.0.2 to use more than one address's ephemeral ports. Default
    /// none.
    pub local_addr: Option<IpAddr>,
    /// Per-connection settings.
    pub socket: SocketOptions,
    /// TLS for `wss://` URLs: whom to trust, a client certificate. Default (`None`):
    /// [`ClientTls::default`], Mozilla's roots (`webpki-roots`). Not used for `ws://`.
    pub tls: Option<ClientTls>,
    /// The name to ask for (SNI) and to verify the certificate against, instead of the
    /// URL's host (connecting to an address, e.g. through a tunnel). Default none.
    pub tls_server_name: Option<String>,
    /// An HTTP proxy to tunnel through with `CONNECT`. Default none.
    pub proxy: Option<Proxy>,
    /// Without [`proxy`](Self::proxy): take one from the environment (`https_proxy` for
    /// `wss://`, `http_proxy` for `ws://`, `all_proxy`, `no_proxy`; see
    /// [`Proxy::from_env`]). Default `false`: a client goes where its URL says unless told.
    pub proxy_from_env: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            protocols: Vec::new(),
            headers: Vec::new(),
            origin: None,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            local_addr: None,
            socket: SocketOptions::default(),
            tls: None,
            tls_server_name: None,
            proxy: None,
            proxy_from_env: false,
        }
    }
}

/// Connects to `request` (a `ws://` or `wss://host[:port][/path][?query]` URL, or an
/// `http::Request`) with default options.
pub async fn connect(request: impl IntoConnectRequest) -> Result<(WebSocket, Response), Error> {
    ConnectOptions::default().connect(request).await
}

impl ConnectOptions {
    /// Connects to `url` and completes the opening handshake, on the driver of the
    /// runtime this runs on (one of ours: [`start`](crate::runtime::start), or a
    /// server's handler). From any other runtime, use
    /// [`connect_send`](Self::connect_send).
    ///
    /// The host's addresses are tried in turn (IPv6 and IPv4 alternating, as RFC 8305
    /// orders them) until one accepts, each given an equal share of what is left of
    /// [`connect_timeout`](Self::connect_timeout), which also bounds the name lookup.
    pub async fn connect(
        &self,
        request: impl IntoConnectRequest,
    ) -> Result<(WebSocket, Response), Error> {
        let target = Target::from_request(request.into_connect_request()?)?;
        let Some(driver) = current_driver() else {
            return Err(Error::Io(std::io::Error::other(
                "connect runs inside a wsengine runtime (wsengine::runtime::start, or a \
                 server handler); from any other runtime use connect_send",
            )));
        };
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let proxy = match &self.proxy {
            Some(proxy) => Some(proxy.clone()),
            None if self.proxy_from_env => Proxy::from_env(&target.host, target.secure)?,
            None => None,
        };
        // Through a proxy, the TCP connection goes to it; it resolves the server's name.
        let lookup = match &proxy {
            Some(proxy) => Target::resolve_host(proxy.addr()),
            None => Target::resolve_host((target.host.as_str(), target.port)),
        };
        let addrs = tokio::time::timeout_at(deadline, lookup)
            .await
            .map_err(|_| Error::Timeout("resolving the host"))??;
        let target = target.via(proxy);
        #[cfg(uring)]
        match driver {
            Driver::Uring => {
                let local = self.local_addr;
                let (stream, addr) = first_answering(&addrs, deadline, |addr| {
                    super::super::driver::uring::connect(addr, local)
                })
                .await?;
                return self.connect_on(stream, target, addr).await;
            }
            Driver::TokioUring => {
                let (stream, addr) = first_answering(&addrs, deadline, |addr| async move {
                    match self.bound_socket(addr)? {
                        Some(socket) => Ok(tokio_uring::net::TcpStream::from_std(socket)),
                        None => tokio_uring::net::TcpStream::connect(addr).await,
                    }
                })
                .await?;
                return self.connect_on(stream, target, addr).await;
            }
            Driver::Tokio | Driver::Auto => {}
        }
        let _ = driver;
        let (stream, addr) = first_answering(&addrs, deadline, |addr| async move {
            match self.local_addr {
                // Bound first, then connected without blocking the thread.
                Some(local) => {
                    let socket = match addr {
                        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
                    };
                    socket.bind(SocketAddr::new(local, 0))?;
                    socket.connect(addr).await
                }
                None => tokio::net::TcpStream::connect(addr).await,
            }
        })
        .await?;
        self.connect_on(stream, target, addr).await
    }

    /// The opening handshake (and TLS, for a `wss://` URL) over a stream the application
    /// brings instead of a TCP connection of ours (any tokio `AsyncRead + AsyncWrite`: a
    /// Unix socket, a tunnel, a stream from another TLS library with a `ws://` URL): the
    /// URL gives the `Host` header, path and scheme; nothing is resolved or connected.
    /// Call it inside one of our runtimes: the connection runs on this thread, read
    /// through the stream's own IO. [`handshake_timeout`](Self::handshake_timeout) bounds
    /// the handshake.
    #[cfg(feature = "hyper")]
    pub async fn connect_stream<S>(
        &self,
        stream: S,
        request: impl IntoConnectRequest,
    ) -> Result<(WebSocket, Response), Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + 'static,
    {
        let target = Target::from_request(request.into_connect_request()?)?;
        let stream = super::super::driver::io_stream::IoStream::new(stream);
        self.connect_on(stream, target, SocketAddr::from(([0, 0, 0, 0], 0)))
            .await
    }

    async fn connect_on<T: Transport>(
        &self,
        stream: T,
        target: Target,
        addr: SocketAddr,
    ) -> Result<(WebSocket, Response), Error> {
        let _ = stream.set_nodelay();
        let stream = Rc::new(stream);
        if let Some(proxy) = &target.proxy {
            let tunnel = proxy.tunnel(&*stream, &target.host, target.port);
            within(
                &*stream,
                self.handshake_timeout,
                "the proxy's CONNECT answer",
                tunnel,
            )
            .await?;
        }
        let mut io = if target.secure {
            let name = self.tls_server_name.as_deref().unwrap_or(&target.host);
            let name = rustls::pki_types::ServerName::try_from(name.to_string())
                .map_err(|e| Error::InvalidUrl(format!("{name}: not a TLS server name: {e}")))?;
            let layer = match &self.tls {
                Some(tls) => tls.connect(name)?,
                None => ClientTls::default().connect(name)?,
            };
            HandshakeIo::tls(&*stream, layer)
        } else {
            HandshakeIo::plain(&*stream)
        };
        let handshake = self.handshake(&mut io, &target);
        let (response, leftover) = within(
            &*stream,
            self.handshake_timeout,
            "opening handshake",
            handshake,
        )
        .await?;
        let conn = Connection::new(Role::Client, self.socket.protocol.clone(), leftover)
            .with_deflate(response.deflate());
        let mut session = Session::new(conn, Rc::new(self.socket.clone()));
        if let Some(layer) = io.into_tls() {
            session = session.with_tls(layer);
        }
        let shared = Rc::new(
            // The path without the query, which may carry credentials.
            Shared::new(session, addr).with_request(
                target.resource.split('?').next().unwrap_or("/"),
                response.protocol(),
            ),
        );
        tokio::task::spawn_local(stream.drive(shared.clone(), Box::new(|| {})));
        Ok((WebSocket::new(shared, Role::Client), response))
    }

    /// With [`local_addr`](Self::local_addr): a socket bound to it and connected to
    /// `addr` with a blocking `connect(2)` (instant on loopback): the tokio-uring driver's
    /// way, kept for comparison only.
    #[cfg(uring)]
    fn bound_socket(&self, addr: SocketAddr) -> std::io::Result<Option<std::net::TcpStream>> {
        let Some(local) = self.local_addr else {
            return Ok(None);
        };
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.bind(&SocketAddr::new(local, 0).into())?;
        socket.connect(&addr.into())?;
        Ok(Some(socket.into()))
    }

    async fn handshake<T: Transport>(
        &self,
        io: &mut HandshakeIo<'_, T>,
        target: &Target,
    ) -> Result<(Response, BytesMut), Error> {
        io.tls_handshake(false).await?;
        let mut request = ClientRequest::new(&target.host_header, &target.resource)
            .deflate(self.socket.protocol.deflate.clone());
        for protocol in self.protocols.iter().chain(&target.protocols) {
            request = request.protocol(protocol);
        }
        for (name, value) in self.headers.iter().chain(&target.headers) {
            request = request.header(name, value);
        }
        if let Some(origin) = target.origin.as_ref().or(self.origin.as_ref()) {
            request = request.origin(origin);
        }
        let (bytes, mut parser) = request
            .build(HandshakeLimits::default())
            .map_err(Error::ClientHandshake)?;
        io.write_all(bytes).await?;
        let mut buf = BytesMut::new();
        loop {
            if !io.read_more(&mut buf).await? {
                return Err(Error::Closed(crate::proto::close::CloseFrame {
                    code: crate::proto::close::CloseCode::ABNORMAL,
                    reason: crate::proto::message::Utf8Bytes::from_static(
                        "the server closed the connection during the handshake",
                    ),
                }));
            }
            if let Some(response) = parser
                .parse_response(&mut buf)
                .map_err(Error::ClientHandshake)?
            {
                return Ok((response, buf));
            }
        }
    }
}

/// `step` within `timeout`; the stream is shut if it fails or times out (`what` names the
/// step in [`Error::Timeout`]).
async fn within<T: Transport, R>(
    stream: &T,
    timeout: Duration,
    what: &'static str,
    step: impl Future<Output = Result<R, Error>>,
) -> Result<R, Error> {
    let result = match tokio::time::timeout(timeout, step).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout(what)),
    };
    if result.is_err() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    result
}

/// Connects to each of `addrs` in turn until one answers, each attempt given an equal
/// share of the time left until `deadline`: the stream and its address, or the last
/// attempt's error ([`Error::Timeout`] when the time ran out).
async fn first_answering<T, F, C>(
    addrs: &[SocketAddr],
    deadline: tokio::time::Instant,
    connect: C,
) -> Result<(T, SocketAddr), Error>
where
    C: Fn(SocketAddr) -> F,
    F: Future<Output = std::io::Result<T>>,
{
    let mut last = Error::Timeout("connecting");
    for (i, &addr) in addrs.iter().enumerate() {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Error::Timeout("connecting"));
        }
        let share = (deadline - now) / (addrs.len() - i) as u32;
        match tokio::time::timeout(share, connect(addr)).await {
            Ok(Ok(stream)) => return Ok((stream, addr)),
            Ok(Err(e)) => last = Error::Io(e),
            Err(_) => last = Error::Timeout("connecting"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_next_address_is_tried_when_one_refuses() {
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let good = listener.local_addr().unwrap();
            let refusing = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let (_stream, addr) = first_answering(&[refusing, good], deadline, |a| {
                tokio::net::TcpStream::connect(a)
            })
            .await
            .unwrap();
            assert_eq!(addr, good);
            // Every address refusing: the last refusal, not a timeout.
            match first_answering(&[refusing, refusing], deadline, |a| {
                tokio::net::TcpStream::connect(a)
            })
            .await
            {
                Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
                other => panic!("{:?}", other.map(|(_, a)| a)),
            }
        });
    }

    /// An address that never answers gets its share of the timeout, not all of it: with
    /// 3 s and two addresses, the second is reached after 1.5 s.
    #[test]
    fn a_silent_address_gets_an_equal_share_of_the_timeout() {
        runtime().block_on(async {
            tokio::time::pause();
            let silent: SocketAddr = "192.0.2.1:80".parse().unwrap();
            let good: SocketAddr = "192.0.2.2:80".parse().unwrap();
            let start = tokio::time::Instant::now();
            let deadline = start + Duration::from_secs(3);
            let (at, addr) = first_answering(&[silent, good], deadline, |a| async move {
                if a == silent {
                    std::future::pending::<()>().await;
                }
                Ok(tokio::time::Instant::now())
            })
            .await
            .unwrap();
            assert_eq!(addr, good);
            // tokio's timer rounds up to its millisecond tick.
            let waited = at - start;
            assert!((1500..1510).contains(&waited.as_millis()), "{waited:?}");
            // Both silent: a timeout at the deadline.
            let start = tokio::time::Instant::now();
            let result = first_answering(&[silent, silent], start + Duration::from_secs(3), |_| {
                std::future::pending::<std::io::Result<()>>()
            })
            .await;
            assert!(matches!(result, Err(Error::Timeout("connecting"))));
            assert!(
                (3000..3010).contains(&start.elapsed().as_millis()),
                "{:?}",
                start.elapsed()
            );
        });
    }
}
