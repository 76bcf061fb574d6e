//! HTTP `CONNECT` proxies for the client (RFC 9110 §9.3.6): the TCP connection goes to the
//! proxy, which is asked to open a tunnel to the WebSocket server; TLS (for `wss://`) and
//! the opening handshake then run through the tunnel, end to end with the server.
//!
//! A proxy is given in [`ConnectOptions::proxy`](super::ConnectOptions::proxy), or read
//! from the environment as curl and most HTTP clients read it
//! ([`ConnectOptions::proxy_from_env`](super::ConnectOptions::proxy_from_env)).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;

use super::super::driver::Transport;
use super::super::error::Error;

/// An HTTP proxy that tunnels with `CONNECT`: `http://[user:password@]host[:port]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    /// `Proxy-Authorization: Basic ...`'s credentials, base64.
    basic: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.basic.is_some())
            .finish()
    }
}

impl Proxy {
    /// The proxy at `url`: `http://host:port`, with `user:password@` for Basic
    /// authentication (percent-encoded where needed); the port defaults to 80. A bare
    /// `host:port` is taken as `http://host:port`, as curl takes it.
    pub fn new(url: &str) -> Result<Proxy, Error> {
        let with_scheme = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let parsed = url::Url::parse(&with_scheme)
            .map_err(|e| Error::InvalidUrl(format!("proxy {url}: {e}")))?;
        if parsed.scheme() != "http" {
            return Err(Error::InvalidUrl(format!(
                "proxy {url}: scheme {}, expected http (CONNECT to the proxy in the clear)",
                parsed.scheme()
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| Error::InvalidUrl(format!("proxy {url}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        // RFC 3986 percent-decoding (`%40` is `@`; a `+` is a `+`, not a space).
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let basic = (!parsed.username().is_empty()).then(|| {
            let user = decode(parsed.username());
            let password = decode(parsed.password().unwrap_or(""));
            STANDARD.encode(format!("{user}:{password}"))
        });
        Ok(Proxy {
            host,
            port: parsed.port().unwrap_or(80),
            basic,
        })
    }

    /// The proxy the environment names for a connection to `host` over `ws://`
    /// (`http_proxy`, then `HTTP_PROXY`) or `wss://` (`https_proxy`, then
    /// `HTTPS_PROXY`), falling back to `all_proxy`/`ALL_PROXY`; `None` when none is set or
    /// `no_proxy`/`NO_PROXY` names the host (`*` for every host, a name for it and its
    /// subdomains, `.example.com` for the subdomains, an IP address for itself).
    pub fn from_env(host: &str, secure: bool) -> Result<Option<Proxy>, Error> {
        Self::from_vars(host, secure, |name| std::env::var(name).ok())
    }

    fn from_vars(
        host: &str,
        secure: bool,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, Error> {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n))
                .filter(|v| !v.trim().is_empty())
        };
        if let Some(no_proxy) = first(&["no_proxy", "NO_PROXY"])
            && bypasses(&no_proxy, host)
        {
            return Ok(None);
        }
        let names: &[&str] = if secure {
            &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
        } else {
            &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        };
        first(names).map(|url| Proxy::new(url.trim())).transpose()
    }

    /// The proxy's host and port, to connect to.
    pub(super) fn addr(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// Asks the proxy, over `stream` (connected to it), for a tunnel to `host:port`, and
    /// reads its answer: a 2xx opens the tunnel; anything else is [`Error::Proxy`].
    pub(super) async fn tunnel<T: Transport>(
        &self,
        stream: &T,
        host: &str,
        port: u16,
    ) -> Result<(), Error> {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(basic) = &self.basic {
            request.push_str(&format!("Proxy-Authorization: Basic {basic}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.into_bytes()).await?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            buf.reserve(1024);
            let (read, back) = stream.read(buf).await;
            buf = back;
            if read? == 0 {
                return Err(Error::Proxy(
                    "the proxy closed the connection before answering CONNECT".into(),
                ));
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let code = response.code.unwrap_or(0);
                    if !(200..300).contains(&code) {
                        return Err(Error::Proxy(format!(
                            "CONNECT {authority}: {code} {}",
                            response.reason.unwrap_or("")
                        )));
                    }
                    if len != buf.len() {
                        // The server speaks only after our handshake (or ClientHello).
                        return Err(Error::Proxy(
                            "the proxy sent bytes after its CONNECT answer".into(),
                        ));
                    }
                    return Ok(());
                }
                Ok(httparse::Status::Partial) if buf.len() < 16 * 1024 => {}
                Ok(httparse::Status::Partial) => {
                    return Err(Error::Proxy("the proxy's answer is over 16 KiB".into()));
                }
                Err(e) => return Err(Error::Proxy(format!("the proxy's answer: {e}"))),
            }
        }
    }
}

/// Whether `no_proxy` (comma-separated) names `host`.
fn bypasses(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    no_proxy.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches('[').trim_end_matches(']');
        if entry == "*" {
            return true;
        }
        if entry.is_empty() {
            return false;
        }
        let suffix = entry.trim_start_matches('.');
        host.eq_ignore_ascii_case(suffix)
            || (host.len() > suffix.len()
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_give_host_port_and_basic_credentials() {
        let p = Proxy::new("http://alice:p%40ss@proxy.local:3128").unwrap();
        assert_eq!(p.addr(), ("proxy.local", 3128));
        assert_eq!(
            p.basic.as_deref(),
            Some(STANDARD.encode("alice:p@ss").as_str())
        );
        let p = Proxy::new("127.0.0.1:8888").unwrap();
        assert_eq!((p.addr(), p.basic.is_none()), (("127.0.0.1", 8888), true));
        assert_eq!(Proxy::new("http://[::1]").unwrap().addr(), ("::1", 80));
        assert!(matches!(
            Proxy::new("socks5://x:1080"),
            Err(Error::InvalidUrl(_))
        ));
        // Credentials stay out of Debug.
        let shown = format!("{:?}", Proxy::new("http://u:secret@h:1").unwrap());
        assert!(
            !shown.contains("secret") && !shown.contains("dTpzZWNyZXQ"),
            "{shown}"
        );
    }

    #[test]
    fn the_environment_picks_by_scheme_and_no_proxy_bypasses() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let vars = env(&[
            ("HTTP_PROXY", "http://plain:1"),
            ("https_proxy", "http://secure:2"),
            ("NO_PROXY", "localhost, .internal,10.0.0.7,example.org"),
        ]);
        let pick = |host: &str, secure: bool| {
            Proxy::from_vars(host, secure, vars)
                .unwrap()
                .map(|p| p.addr().0.to_string())
        };
        assert_eq!(pick("feed.example.com", false).as_deref(), Some("plain"));
        assert_eq!(pick("feed.example.com", true).as_deref(), Some("secure"));
        assert_eq!(pick("localhost", true), None);
        assert_eq!(pick("db.internal", true), None);
        assert_eq!(pick("internal", true), None);
        assert_eq!(pick("10.0.0.7", false), None);
        assert_eq!(pick("api.example.org", false), None);
        assert_eq!(pick("notexample.org", false).as_deref(), Some("plain"));
        let all = env(&[("ALL_PROXY", "http://every:3"), ("no_proxy", "*")]);
        assert_eq!(Proxy::from_vars("x", true, all).unwrap(), None);
        let all = env(&[("ALL_PROXY", "http://every:3")]);
        assert_eq!(
            Proxy::from_vars("x", true, all).unwrap().map(|p| p.port),
            Some(3)
        );
        assert_eq!(Proxy::from_vars("x", true, env(&[])).unwrap(), None);
    }
}
