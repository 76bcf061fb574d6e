//! The client: connect to a `ws://` or `wss://` URL and get the same [`WebSocket`]
//! handle as the server, in the client role (frames masked, RFC 6455 §5.3).
//!
//! Two ways in, the same connection underneath:
//! - [`connect`] inside one of our runtimes ([`start`](super::start), or a server's
//!   handler): the connection runs on this thread's driver and the handle is a
//!   [`WebSocket`] (`!Send`, no hop between the application and its connection).
//! - [`connect_send`] from anywhere, e.g. `#[tokio::main]` or a `tokio::spawn`ed task:
//!   the connection runs on one of wsengine's own threads, and the handle is a
//!   [`SendWebSocket`] (`Send + Sync`; each message crosses a
//!   channel).
//!
//! | file | concept |
//! |---|---|
//! | `target` | the URL's parts, and the host's addresses in the order to try them |
//! | `request` | what to connect to: a URL or an `http::Request` ([`IntoConnectRequest`]) |
//! | `connect` | [`ConnectOptions`], and connecting inside our runtime |
//! | `proxy` | HTTP `CONNECT` proxies ([`Proxy`]), given or from the environment |

mod connect;
mod proxy;
mod request;
mod target;

pub use connect::{ConnectOptions, connect};
pub use proxy::Proxy;
pub use request::{ConnectRequest, IntoConnectRequest};

use tokio::sync::oneshot;

use super::error::Error;
use super::send_handle::SendWebSocket;
#[cfg(doc)]
use super::socket::WebSocket;
use crate::proto::handshake::Response;

/// Connects to `request` (a URL, or an `http::Request`) with default options from any
/// runtime or thread; see [`ConnectOptions::connect_send`].
pub async fn connect_send(
    request: impl IntoConnectRequest,
) -> Result<(SendWebSocket, Response), Error> {
    ConnectOptions::default().connect_send(request).await
}

impl ConnectOptions {
    /// Connects to `url` from any runtime or thread (tokio's multi-threaded or
    /// current-thread runtime, another executor, or ours): the connection runs on one of
    /// wsengine's own threads (io_uring where the kernel allows it), and the handle is
    /// `Send + Sync`. Everything else is [`connect`](Self::connect)'s: the addresses tried
    /// in turn, the timeouts, TLS, the handshake.
    pub async fn connect_send(
        &self,
        request: impl IntoConnectRequest,
    ) -> Result<(SendWebSocket, Response), Error> {
        let request = request.into_connect_request()?;
        let (tx, rx) = oneshot::channel();
        let options = self.clone();
        super::threads::spawn(move || async move {
            match options.connect(request).await {
                Ok((ws, response)) => {
                    let (handle, run) = SendWebSocket::attach(ws, options.socket.max_send_queue);
                    // If the caller has gone, the handle is dropped here and `run`
                    // closes the connection with 1000.
                    let _ = tx.send(Ok((handle, response)));
                    run.await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
        rx.await.map_err(|_| {
            Error::Io(std::io::Error::other(
                "the connection thread ended during the connect",
            ))
        })?
    }
}
