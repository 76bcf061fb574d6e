//! The runtime: a thread-per-core server and a client, on io_uring or tokio.
//!
//! A thin layer over [`crate::proto`]: it moves bytes between sockets and the core and
//! passes it the time. Each connection is one state machine (its session) driven by one
//! task of its worker; the application's handler is another. No protocol decision is made
//! here, and no deadline is kept here that the core can keep.
//!
//! | file | concept |
//! |---|---|
//! | [`server`] | the builder, the workers (accept loop, registry), the accept policy, the listeners |
//! | `session` | a connection's state beyond the protocol (inbox, budgets, the end), with no IO |
//! | [`budget`] | the server's memory budget for buffered bytes, a part per worker |
//! | `driver/` | one place per IO driver (io_uring, tokio, any tokio stream), behind one trait; the io_uring ones with the `io-uring` feature on Linux |
//! | [`socket`] | the application's [`WebSocket`] handle and what it shares with the driver |
//! | [`send_handle`] | [`SendWebSocket`], a handle for any thread, over channels to a connection on ours |
//! | [`pubsub`] | topics across the workers, [`Publisher`] and [`Sender`] for any thread |
//! | [`client`] | connecting to a `ws://` or `wss://` URL, inside our runtime or from any other |
//! | `threads` | wsengine's own threads, for clients opened elsewhere and connections from hyper |
//! | [`tls`] | TLS for both roles: the configurations, and the record layer inside the session |
//! | [`uring`] | the tokio-uring driver's runtime, with a plain error where the kernel refuses |
//! | [`executor`] | a thread's runtime on either driver, and the fallback to tokio |
//! | `upgrade` | taking over an upgrade request in a hyper or axum service (feature `hyper`) |
//! | `axum` | axum's `WebSocketUpgrade` extractor, on the engine (feature `axum`) |
//! | [`options`] | per-connection settings |
//! | [`error`] | the runtime's error type |

#[cfg(feature = "axum")]
pub mod axum;
pub mod budget;
pub mod client;
mod driver;
pub mod error;
pub mod executor;
mod handshake_io;
mod notify;
pub mod options;
pub mod pubsub;
pub mod send_handle;
pub mod server;
mod session;
pub mod socket;
mod threads;
pub mod tls;
#[cfg(feature = "hyper")]
pub mod upgrade;
pub mod uring;

pub use budget::MemoryBudget;
pub use client::{
    ConnectOptions, ConnectRequest, IntoConnectRequest, Proxy, connect, connect_send,
};
pub use error::Error;
pub use executor::{Driver, LocalRuntime, current_driver, start_with};
pub use options::SocketOptions;
pub use pubsub::{PubSubOptions, PubSubStats, Publisher, Sender, SlowSubscriber, TrySendError};
pub use send_handle::{SendWebSocket, WebSocketWriter};
pub use server::{Server, ServerBuilder, ServerHandle, ServerStats, ShutdownTrigger};
pub use session::{ConnectionStats, EndCause, WireBytes};
pub use socket::WebSocket;
pub use tls::{ClientTls, ServerTls};
#[cfg(uring)]
pub use uring::UringRuntime;
pub use uring::start;
