//! The client: connect to a `ws://` or `wss://` URL and get the same [`WebSocket`]
//! handle as the server, in the client role (frames masked, RFC 6455 §5.3).
//!
//! Runs inside one of our runtimes, on its driver: [`start`](super::uring::start) one on
//! this thread (io_uring, or tokio where the kernel refuses rings), or call it from a
//! server's handler.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;

use super::driver::Transport;
use super::error::Error;
use super::executor::Driver;
use super::executor::current_driver;
use super::handshake_io::HandshakeIo;
use super::options::SocketOptions;
use super::session::Session;
use super::socket::{Shared, WebSocket};
use super::tls::ClientTls;
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
    /// kernel), e.g. 127.0.0.2 to use more than one address's ephemeral ports. The connect
    /// is then a blocking `connect(2)` (instant on loopback). Default none.
    pub local_addr: Option<IpAddr>,
    /// Per-connection settings.
    pub socket: SocketOptions,
    /// TLS for `wss://` URLs: whom to trust, a client certificate. Default (`None`):
    /// [`ClientTls::default`], Mozilla's roots (`webpki-roots`). Not used for `ws://`.
    pub tls: Option<ClientTls>,
    /// The name to ask for (SNI) and to verify the certificate against, instead of the
    /// URL's host (connecting to an address, e.g. through a tunnel). Default none.
    pub tls_server_name: Option<String>,
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
        }
    }
}

/// Connects to `url` (`ws://` or `wss://host[:port][/path][?query]`) with default
/// options.
pub async fn connect(url: &str) -> Result<(WebSocket, Response), Error> {
    ConnectOptions::default().connect(url).await
}

/// The parts of a `ws://` or `wss://` URL the handshake needs.
struct Target {
    addr: SocketAddr,
    /// The host as named in the URL (brackets off an IPv6 address).
    host: String,
    host_header: String,
    resource: String,
    secure: bool,
}

fn parse_url(url: &str) -> Result<Target, Error> {
    let parsed = url::Url::parse(url).map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
    let secure = match parsed.scheme() {
        "ws" => false,
        "wss" => true,
        other => {
            return Err(Error::InvalidUrl(format!(
                "{url}: scheme {other}, expected ws or wss"
            )));
        }
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| Error::InvalidUrl(format!("{url}: no host")))?;
    let port = parsed.port().unwrap_or(if secure { 443 } else { 80 });
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (lookup_host, port)
        .to_socket_addrs()
        .map_err(|e| Error::InvalidUrl(format!("{url}: cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| Error::InvalidUrl(format!("{url}: {host} has no address")))?;
    let host_header = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut resource = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        resource.push('?');
        resource.push_str(q);
    }
    Ok(Target {
        addr,
        host: lookup_host.to_string(),
        host_header,
        resource,
        secure,
    })
}

impl ConnectOptions {
    /// Connects to `url` and completes the opening handshake, on the driver of the
    /// runtime this runs on.
    pub async fn connect(&self, url: &str) -> Result<(WebSocket, Response), Error> {
        let target = parse_url(url)?;
        let addr = target.addr;
        let deadline = self.connect_timeout;
        let timed_out = |_| Error::Timeout("connecting");
        match current_driver() {
            Some(Driver::Tokio) => {
                let stream = match self.bound_socket(addr)? {
                    Some(socket) => {
                        socket.set_nonblocking(true)?;
                        tokio::net::TcpStream::from_std(socket)?
                    }
                    None => tokio::time::timeout(deadline, tokio::net::TcpStream::connect(addr))
                        .await
                        .map_err(timed_out)??,
                };
                self.connect_on(stream, target).await
            }
            #[cfg(uring)]
            Some(Driver::Uring) => {
                let stream = tokio::time::timeout(
                    deadline,
                    super::driver::uring::connect(addr, self.local_addr),
                )
                .await
                .map_err(timed_out)??;
                self.connect_on(stream, target).await
            }
            #[cfg(uring)]
            Some(_) => {
                let stream = match self.bound_socket(addr)? {
                    Some(socket) => tokio_uring::net::TcpStream::from_std(socket),
                    None => {
                        tokio::time::timeout(deadline, tokio_uring::net::TcpStream::connect(addr))
                            .await
                            .map_err(timed_out)??
                    }
                };
                self.connect_on(stream, target).await
            }
            #[cfg(not(uring))]
            Some(_) => unreachable!("no io_uring driver in this build"),
            None => Err(Error::Io(std::io::Error::other(
                "connect runs inside a wsengine runtime (wsengine::runtime::start, or a server handler)",
            ))),
        }
    }

    async fn connect_on<T: Transport>(
        &self,
        stream: T,
        target: Target,
    ) -> Result<(WebSocket, Response), Error> {
        let _ = stream.set_nodelay();
        let stream = Rc::new(stream);
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
        let handshake =
            tokio::time::timeout(self.handshake_timeout, self.handshake(&mut io, &target)).await;
        let (response, leftover) = match handshake {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return Err(e);
            }
            Err(_) => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return Err(Error::Timeout("opening handshake"));
            }
        };
        let conn = Connection::new(Role::Client, self.socket.protocol.clone(), leftover)
            .with_deflate(response.deflate());
        let mut session = Session::new(conn, Rc::new(self.socket.clone()));
        if let Some(layer) = io.into_tls() {
            session = session.with_tls(layer);
        }
        let shared = Rc::new(Shared::new(session, target.addr));
        tokio::task::spawn_local(stream.drive(shared.clone(), Box::new(|| {})));
        Ok((WebSocket::new(shared, Role::Client), response))
    }

    /// With [`local_addr`](Self::local_addr): a socket bound to it and connected to
    /// `addr` with a blocking `connect(2)` (instant on loopback).
    fn bound_socket(&self, addr: SocketAddr) -> Result<Option<std::net::TcpStream>, Error> {
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
        for protocol in &self.protocols {
            request = request.protocol(protocol);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(origin) = &self.origin {
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
