//! What a client connects to: a URL, or an `http::Request` whose URI is the URL and whose
//! headers go with the opening handshake (custom headers, subprotocols, `Origin`), as
//! tokio-tungstenite's `IntoClientRequest` takes them.

use super::super::error::Error;

/// A `ws://` or `wss://` URL with the headers to send along: what
/// [`IntoConnectRequest`] makes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// The URL.
    pub url: String,
    /// Extra request headers, after [`ConnectOptions::headers`](super::ConnectOptions::headers).
    pub headers: Vec<(String, String)>,
    /// Subprotocols to offer, after [`ConnectOptions::protocols`](super::ConnectOptions::protocols).
    pub protocols: Vec<String>,
    /// The `Origin` header, in place of [`ConnectOptions::origin`](super::ConnectOptions::origin).
    pub origin: Option<String>,
}

impl ConnectRequest {
    /// `url` with nothing more.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectRequest {
            url: url.into(),
            headers: Vec::new(),
            protocols: Vec::new(),
            origin: None,
        }
    }
}

/// What [`connect`](super::connect) and [`connect_send`](super::connect_send) take: a URL
/// (`&str`, `String`), a [`ConnectRequest`], or (feature `hyper`) an `http::Request<()>`.
pub trait IntoConnectRequest {
    /// The URL and headers.
    fn into_connect_request(self) -> Result<ConnectRequest, Error>;
}

impl IntoConnectRequest for ConnectRequest {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        Ok(self)
    }
}

impl IntoConnectRequest for &str {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        Ok(ConnectRequest::new(self))
    }
}

impl IntoConnectRequest for String {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        Ok(ConnectRequest::new(self))
    }
}

impl IntoConnectRequest for &String {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        Ok(ConnectRequest::new(self.as_str()))
    }
}

/// The request's URI is the URL (absolute, `ws://` or `wss://`); `Sec-WebSocket-Protocol`
/// values are the subprotocols offered, `Origin` the origin, and every other header goes
/// as it is, except those the handshake writes itself (`Host`, `Upgrade`, `Connection`,
/// `Sec-WebSocket-Key`, `-Version` and `-Extensions`: permessage-deflate is offered from
/// the options), which are left out. The method must be GET.
#[cfg(feature = "hyper")]
impl IntoConnectRequest for http::Request<()> {
    fn into_connect_request(self) -> Result<ConnectRequest, Error> {
        if self.method() != http::Method::GET {
            return Err(Error::InvalidUrl(format!(
                "{}: a WebSocket handshake is a GET, not {}",
                self.uri(),
                self.method()
            )));
        }
        let mut request = ConnectRequest::new(self.uri().to_string());
        for (name, value) in self.headers() {
            let value = value
                .to_str()
                .map_err(|_| Error::InvalidUrl(format!("header {name}: not visible ASCII")))?;
            match name.as_str() {
                "host"
                | "upgrade"
                | "connection"
                | "sec-websocket-key"
                | "sec-websocket-version"
                | "sec-websocket-extensions" => {}
                "sec-websocket-protocol" => request.protocols.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string),
                ),
                "origin" => request.origin = Some(value.to_string()),
                other => request.headers.push((other.to_string(), value.to_string())),
            }
        }
        Ok(request)
    }
}

#[cfg(all(test, feature = "hyper"))]
mod tests {
    use super::*;

    #[test]
    fn an_http_request_gives_its_uri_protocols_origin_and_headers() {
        let request = http::Request::get("wss://example.com:9443/feed?x=1")
            .header("Authorization", "Bearer t0ken")
            .header("Sec-WebSocket-Protocol", "v2.feed, v1.feed")
            .header("Sec-WebSocket-Protocol", "v0.feed")
            .header("Origin", "https://example.com")
            .header("Sec-WebSocket-Key", "ignored")
            .header("Host", "ignored")
            .body(())
            .unwrap();
        let r = request.into_connect_request().unwrap();
        assert_eq!(r.url, "wss://example.com:9443/feed?x=1");
        assert_eq!(r.protocols, ["v2.feed", "v1.feed", "v0.feed"]);
        assert_eq!(r.origin.as_deref(), Some("https://example.com"));
        assert_eq!(
            r.headers,
            [("authorization".to_string(), "Bearer t0ken".to_string())]
        );
        let post = http::Request::post("ws://x/").body(()).unwrap();
        assert!(matches!(
            post.into_connect_request(),
            Err(Error::InvalidUrl(_))
        ));
    }
}
