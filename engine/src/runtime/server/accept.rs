//! The accept policy, one for every way a connection arrives: read the upgrade request
//! within the limits, let the application's hook decide, and answer with the core's
//! handshake (101, or the refusal's HTTP status). Our server's workers and the hyper/axum
//! upgrade path (`runtime::upgrade`) both answer through [`answer`]; the handshake timeout
//! and the connection limit are the worker's, around [`handshake`].

use bytes::BytesMut;

use super::{HandshakeHook, ServerShared};
use crate::proto::extensions::DeflateConfig;
use crate::proto::handshake::{Accept, Accepted, HandshakeLimits, Request, ServerHandshake};
use crate::runtime::driver::Transport;
use crate::runtime::handshake_io::HandshakeIo;

/// Answers a parsed upgrade request: `Ok` with the 101 response and the
/// permessage-deflate parameters agreed, or `Err` with the refusal the hook (or the
/// handshake's own checks on its choice) gives, as HTTP bytes. permessage-deflate follows
/// `deflate` (the server's default) unless the hook chose for this connection. Our server
/// and the hyper upgrade path both answer through here.
pub(crate) fn answer(
    hook: Option<&HandshakeHook>,
    deflate: &DeflateConfig,
    request: &Request,
) -> Result<Accepted, Vec<u8>> {
    let accept = match hook {
        None => Accept::new(),
        Some(hook) => hook(request).map_err(|reject| reject.to_response())?,
    };
    request
        .accept(&accept.or_deflate(deflate))
        .map_err(|e| e.to_response())
}

/// Runs the TLS handshake (over TLS), then reads and answers the upgrade request.
/// `Err(Some(response))`: reject with that HTTP response; `Err(None)`: the peer went
/// away, or TLS failed (its alert went out).
pub(crate) async fn handshake<T: Transport>(
    io: &mut HandshakeIo<'_, T>,
    shared: &ServerShared,
) -> Result<(Request, Accepted, BytesMut), Option<Vec<u8>>> {
    let policy = Policy {
        limits: &shared.handshake_limits,
        hook: shared.on_handshake.as_deref(),
        deflate: &shared.options.protocol.deflate,
    };
    handshake_with(io, policy).await
}

/// What decides on an upgrade request: the size limits, the hook, and the default for
/// permessage-deflate.
#[derive(Clone, Copy)]
pub(crate) struct Policy<'a> {
    pub(crate) limits: &'a HandshakeLimits,
    pub(crate) hook: Option<&'a HandshakeHook>,
    pub(crate) deflate: &'a DeflateConfig,
}

/// [`handshake`] under any [`Policy`]: our server's, or an `Upgrader`'s for a stream the
/// application brings.
pub(crate) async fn handshake_with<T: Transport>(
    io: &mut HandshakeIo<'_, T>,
    policy: Policy<'_>,
) -> Result<(Request, Accepted, BytesMut), Option<Vec<u8>>> {
    io.tls_handshake(true).await.map_err(|_| None)?;
    let mut parser = ServerHandshake::new(policy.limits.clone());
    let mut buf = BytesMut::new();
    let request = loop {
        match io.read_more(&mut buf).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return Err(None),
        }
        match parser.parse(&mut buf) {
            Ok(Some(mut request)) => {
                request.set_tls_server_name(io.server_name());
                break request;
            }
            Ok(None) => continue,
            Err(e) => return Err(Some(e.to_response())),
        }
    };
    match answer(policy.hook, policy.deflate, &request) {
        Ok(accepted) => Ok((request, accepted, buf)),
        Err(refusal) => Err(Some(refusal)),
    }
}
