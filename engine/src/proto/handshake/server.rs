//! The server side: parse the upgrade request, let the application decide, answer.

use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;

use super::HandshakeLimits;
use super::accept_key::accept_key;
use super::error::{HandshakeError, http_response};
use super::head::{
    Headers, find_head_end, has_token, header_ranges, is_safe_value, is_token, list_items, range_of,
};
use crate::proto::extensions::negotiation::negotiate;
use crate::proto::extensions::{
    DeflateConfig, DeflateOffer, DeflateParams, ExtensionError, ExtensionOffer, PERMESSAGE_DEFLATE,
    parse_extensions,
};

/// Parses an upgrade request that arrives in pieces.
#[derive(Debug)]
pub struct ServerHandshake {
    limits: HandshakeLimits,
    scanned: usize,
}

impl ServerHandshake {
    /// A parser with these limits.
    pub fn new(limits: HandshakeLimits) -> Self {
        ServerHandshake { limits, scanned: 0 }
    }

    /// Parses what `buf` holds so far. `Ok(None)`: the head is not complete yet, read more
    /// into `buf` and call again. `Ok(Some(request))`: the head has been taken out of
    /// `buf`; what remains are the first frames. `Err`: answer with
    /// [`HandshakeError::to_response`] and close.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, HandshakeError> {
        // A TLS record (content type 22, a ClientHello) where a request line belongs: a
        // wss:// client on a plain port gets its answer now, not at the head limit.
        if buf.first() == Some(&TLS_HANDSHAKE_RECORD) {
            return Err(HandshakeError::Malformed(
                "a TLS handshake on a plain-text port (use ws://, or wss:// on a TLS port)",
            ));
        }
        let Some(head_len) = find_head_end(buf, &mut self.scanned) else {
            if buf.len() > self.limits.max_head_bytes {
                return Err(HandshakeError::HeadTooLarge);
            }
            return Ok(None);
        };
        if head_len > self.limits.max_head_bytes {
            return Err(HandshakeError::HeadTooLarge);
        }
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut req = httparse::Request::new(&mut headers);
        let whole = &buf[..head_len];
        match req.parse(whole) {
            Ok(httparse::Status::Complete(_)) => {}
            // The blank line is there, so a partial parse means a malformed head.
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete head"));
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
            Err(e) => return Err(HandshakeError::Malformed(error_name(e))),
        }
        let method_ok = req.method == Some("GET");
        let version = req.version.unwrap_or(0);
        let target = range_of(whole, req.path.unwrap_or("").as_bytes());
        let lines = header_ranges(whole, req.headers);
        let headers = Headers {
            head: buf.split_to(head_len).freeze(),
            lines,
        };
        let request = Request {
            headers,
            target,
            key: String::new(),
            tls_server_name: None,
        };
        // RFC 6455 §4.2.1: the request MUST be a valid HTTP/1.1 GET.
        if !method_ok {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if version < 1 {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        request.validate().map(Some)
    }
}

fn error_name(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A valid upgrade request, for the application to accept or reject.
#[derive(Debug, Clone)]
pub struct Request {
    headers: Headers,
    target: Range<usize>,
    key: String,
    /// The TLS SNI name, set by the runtime for a connection that came over TLS.
    tls_server_name: Option<String>,
}

impl Request {
    /// RFC 6455 §4.2.1 items 2–6.
    fn validate(mut self) -> Result<Request, HandshakeError> {
        let h = &self.headers;
        // Item 2: a Host header.
        if h.get("host").is_none() {
            return Err(HandshakeError::MissingHost);
        }
        // Item 3: Upgrade containing "websocket" (case-insensitive).
        if !h.all("upgrade").any(|v| has_token(v, "websocket")) {
            return Err(HandshakeError::NotWebSocketUpgrade);
        }
        // Item 4: Connection containing "Upgrade" (a list: Firefox sends "keep-alive, Upgrade").
        if !h.all("connection").any(|v| has_token(v, "upgrade")) {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        // Item 6: Sec-WebSocket-Version 13; otherwise 426 naming the version we speak.
        if h.count("sec-websocket-version") != 1
            || h.get("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13")
        {
            return Err(HandshakeError::UnsupportedVersion);
        }
        // Item 5: Sec-WebSocket-Key, base64 of 16 bytes, once.
        let key = match (h.count("sec-websocket-key"), h.get("sec-websocket-key")) {
            (1, Some(key)) => key.trim_ascii(),
            _ => return Err(HandshakeError::InvalidKey),
        };
        match STANDARD.decode(key) {
            Ok(raw) if raw.len() == 16 => {}
            _ => return Err(HandshakeError::InvalidKey),
        }
        // Base64 is ASCII.
        self.key = String::from_utf8_lossy(key).into_owned();
        Ok(self)
    }

    /// The TLS SNI name the client asked for, when the connection came over TLS and the
    /// client sent one (browsers do for names, never for IP addresses).
    pub fn tls_server_name(&self) -> Option<&str> {
        self.tls_server_name.as_deref()
    }

    /// Records the TLS SNI name the request came with (the runtime's TLS layer, or an
    /// application that terminates TLS itself and parses with [`ServerHandshake`]).
    pub fn set_tls_server_name(&mut self, name: Option<String>) {
        self.tls_server_name = name;
    }

    /// The request target as sent: path and query.
    pub fn uri(&self) -> &str {
        std::str::from_utf8(&self.headers.head[self.target.clone()]).unwrap_or("")
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        let uri = self.uri();
        uri.split_once('?').map_or(uri, |(path, _)| path)
    }

    /// The query (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.uri().split_once('?').map(|(_, q)| q)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    /// The first value of header `name`, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header, in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter()
    }

    /// The `Origin` header (sent by browsers; check it against the allowed origins).
    pub fn origin(&self) -> Option<&str> {
        self.header_str("origin")
    }

    /// The `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.header_str("host")
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        list_items(self.headers.all("sec-websocket-protocol"))
    }

    /// The extensions the client offered (`Sec-WebSocket-Extensions`), raw: the header's
    /// comma-separated items. [`extension_offers`](Self::extension_offers) parses them.
    pub fn extensions(&self) -> impl Iterator<Item = &str> {
        list_items(self.headers.all("sec-websocket-extensions"))
    }

    /// Every extension the client offered, parsed (RFC 6455 §9.1), in its order of
    /// preference, over all its `Sec-WebSocket-Extensions` headers. A malformed header is
    /// an error: the server then accepts no extension.
    pub fn extension_offers(&self) -> Result<Vec<ExtensionOffer>, ExtensionError> {
        parse_extensions(self.headers.all("sec-websocket-extensions"))
    }

    /// The client's permessage-deflate offers in its order of preference, each checked
    /// against RFC 7692 §7 (an `Err` is an offer the server declines). A malformed header
    /// gives one `Err`. For the application's handshake hook: see what was offered, then
    /// [`Accept::no_compression`] or [`Accept::deflate`].
    pub fn deflate_offers(&self) -> Vec<Result<DeflateOffer, ExtensionError>> {
        match self.extension_offers() {
            Ok(offers) => offers
                .iter()
                .filter(|e| e.name == PERMESSAGE_DEFLATE)
                .map(DeflateOffer::from_extension)
                .collect(),
            Err(e) => vec![Err(e)],
        }
    }

    /// The permessage-deflate parameters `config` would agree to for this request, and the
    /// response header's value; `None` when it is off, nothing was offered, or no offer can
    /// be honoured (RFC 7692 §5: the server then answers without the extension).
    pub fn negotiate_deflate(&self, config: &DeflateConfig) -> Option<(DeflateParams, String)> {
        if !config.enabled || self.headers.get("sec-websocket-extensions").is_none() {
            return None;
        }
        negotiate(&self.extension_offers().ok()?, config)
    }

    /// The cookies, as (name, value) pairs from every `Cookie` header.
    pub fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .all("cookie")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                Some((name.trim(), value.trim().trim_matches('"')))
            })
    }

    /// The cookie called `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The client's `Sec-WebSocket-Key`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `101 Switching Protocols` response that accepts this request
    /// (RFC 6455 §4.2.2 item 5), with permessage-deflate if `accept` enables it
    /// ([`Accept::deflate`]); [`accept`](Self::accept) also returns the parameters the
    /// connection then needs.
    pub fn accept_response(&self, accept: &Accept) -> Result<Vec<u8>, HandshakeError> {
        self.accept(accept).map(|a| a.response)
    }

    /// Accepts this request: the `101` response, and the permessage-deflate parameters
    /// agreed (give them to [`Connection::with_deflate`]).
    ///
    /// [`Connection::with_deflate`]: crate::proto::connection::Connection::with_deflate
    pub fn accept(&self, accept: &Accept) -> Result<Accepted, HandshakeError> {
        let deflate = match &accept.deflate {
            DeflateChoice::On(config) => self.negotiate_deflate(config),
            DeflateChoice::Unset | DeflateChoice::Off => None,
        };
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
        out.extend_from_slice(accept_key(self.key.as_bytes()).as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(protocol) = &accept.protocol {
            // §4.2.2 item 5.5: the chosen subprotocol must be one the client offered.
            if !self.protocols().any(|p| p == protocol) {
                return Err(HandshakeError::ProtocolNotOffered(protocol.clone()));
            }
            out.extend_from_slice(format!("Sec-WebSocket-Protocol: {protocol}\r\n").as_bytes());
        }
        if let Some((_, answer)) = &deflate {
            out.extend_from_slice(format!("Sec-WebSocket-Extensions: {answer}\r\n").as_bytes());
        }
        for (name, value) in &accept.headers {
            // A second extension answer beside the negotiated one would claim RSV bits the
            // connection does not handle.
            if !is_token(name)
                || !is_safe_value(value)
                || (deflate.is_some() && name.eq_ignore_ascii_case("sec-websocket-extensions"))
            {
                return Err(HandshakeError::InvalidResponseHeader(name.clone()));
            }
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Ok(Accepted {
            response: out,
            deflate: deflate.map(|(params, _)| params),
            protocol: accept.protocol.clone(),
        })
    }
}

/// An accepted request: the response to send and what the connection needs to know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Accepted {
    /// The complete `101 Switching Protocols` response.
    pub response: Vec<u8>,
    /// The permessage-deflate parameters agreed, if any.
    pub deflate: Option<DeflateParams>,
    /// The subprotocol chosen, if any.
    pub protocol: Option<String>,
}

/// Whether an [`Accept`] negotiates permessage-deflate.
#[derive(Debug, Clone, Default)]
enum DeflateChoice {
    /// Not decided by the application: the driver's default applies
    /// ([`Accept::or_deflate`]); on its own, no compression.
    #[default]
    Unset,
    /// Refused for this connection.
    Off,
    /// Negotiated with this configuration.
    On(DeflateConfig),
}

/// The application's acceptance: an optional subprotocol, extra response headers, and
/// whether to compress (permessage-deflate).
#[derive(Debug, Clone, Default)]
pub struct Accept {
    protocol: Option<String>,
    headers: Vec<(String, String)>,
    deflate: DeflateChoice,
}

impl Accept {
    /// Accept without a subprotocol.
    pub fn new() -> Self {
        Accept::default()
    }

    /// Choose `protocol`, which must be one the client offered ([`Request::protocols`]).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Add a response header (e.g. `Set-Cookie`). A `Sec-WebSocket-Extensions` of its own
    /// is refused ([`HandshakeError::InvalidResponseHeader`]) when permessage-deflate is
    /// negotiated.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Negotiate permessage-deflate under `config` (if `config.enabled` and the client
    /// offered it), overriding the driver's default.
    pub fn deflate(mut self, config: DeflateConfig) -> Self {
        self.deflate = DeflateChoice::On(config);
        self
    }

    /// Refuse compression for this connection, whatever the driver's default (e.g. for a
    /// client known to be broken, or to save the memory).
    pub fn no_compression(mut self) -> Self {
        self.deflate = DeflateChoice::Off;
        self
    }

    /// For the driver: apply its default `config` unless the application chose
    /// ([`deflate`](Self::deflate) or [`no_compression`](Self::no_compression)).
    pub fn or_deflate(mut self, config: &DeflateConfig) -> Self {
        if matches!(self.deflate, DeflateChoice::Unset) {
            self.deflate = DeflateChoice::On(config.clone());
        }
        self
    }

    /// The configuration this acceptance negotiates permessage-deflate with, if any.
    pub fn deflate_config(&self) -> Option<&DeflateConfig> {
        match &self.deflate {
            DeflateChoice::On(config) => Some(config),
            DeflateChoice::Unset | DeflateChoice::Off => None,
        }
    }
}

/// The application's rejection: an HTTP status, a body, and extra headers.
#[derive(Debug, Clone)]
pub struct Reject {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

impl Reject {
    /// Reject with `status` (400–599; others become 500) and a plain-text `body`.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Reject {
            status: if (400..=599).contains(&status) {
                status
            } else {
                500
            },
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// Add a header (e.g. `WWW-Authenticate`). Invalid names or values are dropped.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if is_token(&name) && is_safe_value(&value) {
            self.headers.push((name, value));
        }
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The complete HTTP response.
    pub fn to_response(&self) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = self.body.replace(['\r', '\n'], " ");
        http_response(self.status, &headers, &body)
    }
}
