//! Where a `ws://` or `wss://` URL points: the parts the handshake needs, and the
//! addresses its host resolves to, in the order to try them.
//!
//! Names are resolved with `tokio::net::lookup_host`, which runs the system's resolver on
//! tokio's blocking pool: a slow DNS server stalls this connection only, never the
//! worker's other connections. Every address is tried, in RFC 8305's order (§4: the
//! families interleaved, starting with the resolver's first choice), so a host whose
//! first address refuses or does not answer is still reached through the next one.

use std::net::SocketAddr;

use super::super::error::Error;
use super::proxy::Proxy;
use super::request::ConnectRequest;

/// The parts of a `ws://` or `wss://` URL the handshake needs.
pub(super) struct Target {
    /// The host as named in the URL (brackets off an IPv6 address).
    pub(super) host: String,
    pub(super) port: u16,
    /// The `Host` header: the host, and the port if the URL names one.
    pub(super) host_header: String,
    /// Path and query.
    pub(super) resource: String,
    /// `wss://`.
    pub(super) secure: bool,
    /// Headers, subprotocols and origin the request brought.
    pub(super) headers: Vec<(String, String)>,
    pub(super) protocols: Vec<String>,
    pub(super) origin: Option<String>,
    /// The proxy to tunnel through, if any.
    pub(super) proxy: Option<Proxy>,
}

impl Target {
    /// The request's URL, parsed, with what the request brings beside it.
    pub(super) fn from_request(request: ConnectRequest) -> Result<Target, Error> {
        let mut target = Target::parse(&request.url)?;
        target.headers = request.headers;
        target.protocols = request.protocols;
        target.origin = request.origin;
        Ok(target)
    }

    pub(super) fn parse(url: &str) -> Result<Target, Error> {
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
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            host_header,
            resource,
            secure,
            headers: Vec::new(),
            protocols: Vec::new(),
            origin: None,
            proxy: None,
        })
    }

    /// The same target, reached through `proxy`.
    pub(super) fn via(mut self, proxy: Option<Proxy>) -> Target {
        self.proxy = proxy;
        self
    }

    /// Every address of `host`, in the order to try them. An IP address is itself,
    /// without a lookup.
    pub(super) async fn resolve_host((host, port): (&str, u16)) -> Result<Vec<SocketAddr>, Error> {
        let found = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Error::InvalidUrl(format!("cannot resolve {host}: {e}")))?;
        let addrs = interleave_families(found.collect());
        if addrs.is_empty() {
            return Err(Error::InvalidUrl(format!("{host} has no address")));
        }
        Ok(addrs)
    }
}

/// RFC 8305 §4: the resolver's order, with the two families alternating, starting with
/// the family of its first answer (duplicates dropped).
pub(super) fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut unique: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    let Some(first) = unique.first().copied() else {
        return unique;
    };
    let (mut preferred, mut other): (Vec<_>, Vec<_>) = unique
        .into_iter()
        .partition(|a| a.is_ipv6() == first.is_ipv6());
    preferred.reverse();
    other.reverse();
    let mut ordered = Vec::with_capacity(preferred.len() + other.len());
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return ordered,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_resolvers_first_choice() {
        let found = addrs(&[
            "[2001:db8::1]:80",
            "[2001:db8::2]:80",
            "192.0.2.1:80",
            "[2001:db8::3]:80",
            "192.0.2.2:80",
        ]);
        assert_eq!(
            interleave_families(found),
            addrs(&[
                "[2001:db8::1]:80",
                "192.0.2.1:80",
                "[2001:db8::2]:80",
                "192.0.2.2:80",
                "[2001:db8::3]:80",
            ])
        );
        let v4_first = addrs(&["192.0.2.1:80", "[2001:db8::1]:80", "192.0.2.1:80"]);
        assert_eq!(
            interleave_families(v4_first),
            addrs(&["192.0.2.1:80", "[2001:db8::1]:80"])
        );
        assert!(interleave_families(Vec::new()).is_empty());
    }

    #[test]
    fn urls_give_host_port_header_and_resource() {
        let t = Target::parse("wss://[::1]:9443/chat?room=1").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.host_header.as_str(),
                t.resource.as_str()
            ),
            ("::1", 9443, "[::1]:9443", "/chat?room=1")
        );
        assert!(t.secure);
        let t = Target::parse("ws://example.com").unwrap();
        assert_eq!((t.port, t.host_header.as_str()), (80, "example.com"));
        assert_eq!(t.resource, "/");
        for bad in ["http://example.com/", "ws://", "not a url"] {
            assert!(
                matches!(Target::parse(bad), Err(Error::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
