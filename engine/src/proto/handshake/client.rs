//! The client side: build the upgrade request, validate the server's answer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;

use super::HandshakeLimits;
use super::accept_key::accept_key;
use super::error::ClientHandshakeError;
use super::head::{
    Headers, find_head_end, has_token, header_ranges, is_safe_value, is_token, list_items,
};
use crate::proto::extensions::negotiation::verify_answer;
use crate::proto::extensions::{
    DeflateConfig, DeflateParams, ExtensionOffer, PERMESSAGE_DEFLATE, parse_extensions,
};

/// An upgrade request to send (RFC 6455 §4.1).
#[derive(Debug, Clone)]
pub struct ClientRequest {
    host: String,
    resource: String,
    protocols: Vec<String>,
    origin: Option<String>,
    headers: Vec<(String, String)>,
    deflate: Option<DeflateConfig>,
}

impl ClientRequest {
    /// A request for `resource` (path and query, e.g. `/chat?room=1`) on `host` (the
    /// `Host` header: host, and port if not 80).
    pub fn new(host: &str, resource: &str) -> Self {
        ClientRequest {
            host: host.to_string(),
            resource: if resource.is_empty() {
                "/".into()
            } else {
                resource.to_string()
            },
            protocols: Vec::new(),
            origin: None,
            headers: Vec::new(),
            deflate: None,
        }
    }

    /// Offer permessage-deflate under `config` (if `config.enabled`); the server's answer
    /// is then checked against the offer and the agreed parameters are in
    /// [`Response::deflate`].
    pub fn deflate(mut self, config: DeflateConfig) -> Self {
        self.deflate = config.enabled.then_some(config);
        self
    }

    /// Offer a subprotocol (in order of preference).
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocols.push(protocol.to_string());
        self
    }

    /// Send an `Origin` header.
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_string());
        self
    }

    /// Add a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The request bytes and the parser for the answer. The key is 16 bytes from the OS
    /// CSPRNG (RFC 6455 §4.1 item 7: randomly selected for each connection).
    pub fn build(
        &self,
        limits: HandshakeLimits,
    ) -> Result<(Vec<u8>, ClientHandshake), ClientHandshakeError> {
        if !self.resource.starts_with('/') || self.resource.bytes().any(|b| b <= b' ' || b == 0x7F)
        {
            return Err(ClientHandshakeError::InvalidResource(self.resource.clone()));
        }
        for (name, value) in &self.headers {
            if !is_token(name) || !is_safe_value(value) {
                return Err(ClientHandshakeError::InvalidHeader(name.clone()));
            }
        }
        for value in [Some(&self.host), self.origin.as_ref()]
            .into_iter()
            .flatten()
        {
            if !is_safe_value(value) {
                return Err(ClientHandshakeError::InvalidHeader(value.clone()));
            }
        }
        for protocol in &self.protocols {
            if !is_token(protocol) {
                return Err(ClientHandshakeError::InvalidHeader(protocol.clone()));
            }
        }
        let mut nonce = [0u8; 16];
        if getrandom::fill(&mut nonce).is_err() {
            // Only on platforms without an OS RNG; the key then still differs per
            // connection, which is all §4.1 needs for the handshake to work.
            nonce = fastrand::u128(..).to_ne_bytes();
        }
        let key = STANDARD.encode(nonce);
        let mut out = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            self.resource, self.host
        );
        if !self.protocols.is_empty() {
            out.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                self.protocols.join(", ")
            ));
        }
        if let Some(origin) = &self.origin {
            out.push_str(&format!("Origin: {origin}\r\n"));
        }
        if let Some(deflate) = &self.deflate {
            out.push_str(&format!(
                "Sec-WebSocket-Extensions: {}\r\n",
                deflate.offer()
            ));
        }
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        let parser = ClientHandshake {
            expected_accept: accept_key(key.as_bytes()),
            protocols: self.protocols.clone(),
            deflate: self.deflate.clone(),
            limits,
            scanned: 0,
        };
        Ok((out.into_bytes(), parser))
    }
}

/// Validates the server's answer to a [`ClientRequest`], arriving in pieces.
#[derive(Debug)]
pub struct ClientHandshake {
    expected_accept: String,
    protocols: Vec<String>,
    deflate: Option<DeflateConfig>,
    limits: HandshakeLimits,
    scanned: usize,
}

impl ClientHandshake {
    /// A fresh parser expecting the same answer (tests feed one answer many times).
    #[cfg(test)]
    pub(crate) fn clone_for_test(other: &ClientHandshake) -> ClientHandshake {
        ClientHandshake {
            expected_accept: other.expected_accept.clone(),
            protocols: other.protocols.clone(),
            deflate: other.deflate.clone(),
            limits: other.limits.clone(),
            scanned: 0,
        }
    }

    /// Parses what `buf` holds so far. `Ok(None)`: read more. `Ok(Some(response))`: the
    /// head has been taken out of `buf`; what remains are the server's first frames.
    pub fn parse_response(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Response>, ClientHandshakeError> {
        let Some(head_len) = find_head_end(buf, &mut self.scanned) else {
            if buf.len() > self.limits.max_head_bytes {
                return Err(ClientHandshakeError::HeadTooLarge);
            }
            return Ok(None);
        };
        if head_len > self.limits.max_head_bytes {
            return Err(ClientHandshakeError::HeadTooLarge);
        }
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut resp = httparse::Response::new(&mut headers);
        let whole = &buf[..head_len];
        match resp.parse(whole) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(ClientHandshakeError::Malformed("incomplete head"));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ClientHandshakeError::TooManyHeaders);
            }
            Err(_) => return Err(ClientHandshakeError::Malformed("not an HTTP/1.1 response")),
        }
        let status = resp.code.unwrap_or(0);
        let lines = header_ranges(whole, resp.headers);
        if status != 101 {
            // Leave the body in `buf`: the caller may want to read the reason.
            let _ = buf.split_to(head_len);
            return Err(ClientHandshakeError::Status(status));
        }
        let headers = Headers {
            head: buf.split_to(head_len).freeze(),
            lines,
        };
        // RFC 6455 §4.1, the client's checks of the server's response, items 2–6.
        if !headers.all("upgrade").any(|v| has_token(v, "websocket")) {
            return Err(ClientHandshakeError::MissingUpgrade);
        }
        if !headers.all("connection").any(|v| has_token(v, "upgrade")) {
            return Err(ClientHandshakeError::MissingConnectionUpgrade);
        }
        if headers.count("sec-websocket-accept") != 1
            || headers.get("sec-websocket-accept").map(<[u8]>::trim_ascii)
                != Some(self.expected_accept.as_bytes())
        {
            return Err(ClientHandshakeError::WrongAcceptKey);
        }
        let deflate = match &self.deflate {
            // Nothing offered: any extension is one we did not ask for (§4.1 rule 5).
            None => match list_items(headers.all("sec-websocket-extensions")).next() {
                Some(extension) => {
                    return Err(ClientHandshakeError::UnrequestedExtension(
                        extension.to_string(),
                    ));
                }
                None => None,
            },
            Some(config) => {
                let answers = parse_extensions(headers.all("sec-websocket-extensions"))
                    .map_err(ClientHandshakeError::Extension)?;
                if let Some(other) = answers.iter().find(|e| e.name != PERMESSAGE_DEFLATE) {
                    return Err(ClientHandshakeError::UnrequestedExtension(
                        other.to_string(),
                    ));
                }
                let answers: Vec<&ExtensionOffer> = answers.iter().collect();
                verify_answer(&answers, config).map_err(ClientHandshakeError::Extension)?
            }
        };
        let chosen: Vec<&str> = list_items(headers.all("sec-websocket-protocol")).collect();
        let protocol = match chosen.as_slice() {
            [] => None,
            [one] if self.protocols.iter().any(|p| p == one) => Some(one.to_string()),
            _ => return Err(ClientHandshakeError::UnofferedProtocol(chosen.join(", "))),
        };
        Ok(Some(Response {
            status,
            headers,
            protocol,
            deflate,
        }))
    }
}

/// The server's accepted answer.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Headers,
    protocol: Option<String>,
    deflate: Option<DeflateParams>,
}

impl Response {
    /// The status (101).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The subprotocol the server chose, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate parameters agreed, if the request offered it and the server
    /// accepted (give them to [`Connection::with_deflate`]).
    ///
    /// [`Connection::with_deflate`]: crate::proto::connection::Connection::with_deflate
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.deflate
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter()
    }
}
