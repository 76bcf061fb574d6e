//! Handshake errors: the server's map to HTTP statuses, the client's say what the server
//! got wrong.

use std::fmt;

use crate::proto::extensions::ExtensionError;

/// An upgrade request the server turns away, with the HTTP status it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Not parseable as HTTP/1.1 (400).
    Malformed(&'static str),
    /// The method is not GET (405, RFC 6455 §4.1 item 2).
    MethodNotAllowed,
    /// Not HTTP/1.1 or later (400).
    UnsupportedHttpVersion,
    /// No `Host` header (400, RFC 6455 §4.2.1 item 2).
    MissingHost,
    /// No `Upgrade` header with the token `websocket` (426: a plain HTTP request to a
    /// WebSocket endpoint is told to upgrade, RFC 9110 §15.5.22).
    NotWebSocketUpgrade,
    /// No `Connection` header with the token `Upgrade` (400, RFC 6455 §4.2.1 item 4).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` missing, repeated, or not base64 of 16 bytes (400, §4.2.1 item 5).
    InvalidKey,
    /// `Sec-WebSocket-Version` is not 13 (426 with `Sec-WebSocket-Version: 13`, §4.2.2).
    UnsupportedVersion,
    /// The head exceeds the size limit (431).
    HeadTooLarge,
    /// More header lines than the limit (431).
    TooManyHeaders,
    /// The application accepted a subprotocol the client did not offer (500).
    ProtocolNotOffered(String),
    /// The application added a response header that is not a valid name or value (500).
    InvalidResponseHeader(String),
}

impl HandshakeError {
    /// The HTTP status the server answers with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::NotWebSocketUpgrade | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders => 431,
            HandshakeError::ProtocolNotOffered(_) | HandshakeError::InvalidResponseHeader(_) => 500,
            _ => 400,
        }
    }

    /// The complete HTTP response: status line, headers the status calls for, and the
    /// reason as a one-line body.
    pub fn to_response(&self) -> Vec<u8> {
        let extra: &[(&str, &str)] = match self {
            HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
            HandshakeError::NotWebSocketUpgrade => {
                &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")]
            }
            HandshakeError::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            _ => &[],
        };
        http_response(self.status(), extra, &self.to_string())
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed(why) => write!(f, "malformed HTTP request: {why}"),
            HandshakeError::MethodNotAllowed => f.write_str("method not allowed: use GET"),
            HandshakeError::UnsupportedHttpVersion => f.write_str("HTTP/1.1 required"),
            HandshakeError::MissingHost => f.write_str("missing Host header"),
            HandshakeError::NotWebSocketUpgrade => {
                f.write_str("this is a WebSocket endpoint: Upgrade: websocket required")
            }
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("Connection header must contain Upgrade")
            }
            HandshakeError::InvalidKey => {
                f.write_str("Sec-WebSocket-Key must be base64 of 16 bytes, sent once")
            }
            HandshakeError::UnsupportedVersion => f.write_str("Sec-WebSocket-Version 13 required"),
            HandshakeError::HeadTooLarge => f.write_str("request header block too large"),
            HandshakeError::TooManyHeaders => f.write_str("too many request headers"),
            HandshakeError::ProtocolNotOffered(p) => {
                write!(
                    f,
                    "server chose subprotocol {p:?}, which the client did not offer"
                )
            }
            HandshakeError::InvalidResponseHeader(h) => write!(f, "invalid response header {h:?}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Why the client did not accept the server's answer to its upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientHandshakeError {
    /// Not parseable as an HTTP/1.1 response.
    Malformed(&'static str),
    /// The response head exceeds the size limit.
    HeadTooLarge,
    /// More header lines than the limit.
    TooManyHeaders,
    /// The status is not 101 (the server refused, e.g. 403, or is not a WebSocket server).
    Status(u16),
    /// No `Upgrade: websocket` (RFC 6455 §4.1, client rule 2).
    MissingUpgrade,
    /// No `Connection: Upgrade` (§4.1 rule 3).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Accept` missing or not the value for our key (§4.1 rule 4).
    WrongAcceptKey,
    /// The server chose a subprotocol we did not offer, or several (§4.1 rule 6).
    UnofferedProtocol(String),
    /// The server answered with an extension we did not ask for (§4.1 rule 5).
    UnrequestedExtension(String),
    /// The server's permessage-deflate answer is malformed or does not fit our offer
    /// (RFC 7692 §5, §7: the client fails the connection).
    Extension(ExtensionError),
    /// A request header name or value would break the request (CR, LF, not a token).
    InvalidHeader(String),
    /// The resource (path and query) is not a valid request target.
    InvalidResource(String),
}

impl fmt::Display for ClientHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientHandshakeError::Malformed(why) => write!(f, "malformed HTTP response: {why}"),
            ClientHandshakeError::HeadTooLarge => f.write_str("response header block too large"),
            ClientHandshakeError::TooManyHeaders => f.write_str("too many response headers"),
            ClientHandshakeError::Status(code) => {
                write!(
                    f,
                    "server answered HTTP {code} instead of 101 Switching Protocols"
                )
            }
            ClientHandshakeError::MissingUpgrade => {
                f.write_str("response lacks Upgrade: websocket")
            }
            ClientHandshakeError::MissingConnectionUpgrade => {
                f.write_str("response lacks Connection: Upgrade")
            }
            ClientHandshakeError::WrongAcceptKey => {
                f.write_str("Sec-WebSocket-Accept missing or wrong for our key")
            }
            ClientHandshakeError::UnofferedProtocol(p) => {
                write!(f, "server chose subprotocol {p:?}, which we did not offer")
            }
            ClientHandshakeError::UnrequestedExtension(e) => {
                write!(
                    f,
                    "server answered with extension {e:?}, which we did not request"
                )
            }
            ClientHandshakeError::Extension(e) => write!(f, "permessage-deflate answer: {e}"),
            ClientHandshakeError::InvalidHeader(h) => write!(f, "invalid request header {h:?}"),
            ClientHandshakeError::InvalidResource(r) => write!(f, "invalid request target {r:?}"),
        }
    }
}

impl std::error::Error for ClientHandshakeError {}

/// The reason phrase of the statuses this engine sends.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A complete HTTP/1.1 response with a plain-text body, closing the connection.
pub(crate) fn http_response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let body = format!("{body}\n");
    out.extend_from_slice(
        format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body.as_bytes());
    out
}
