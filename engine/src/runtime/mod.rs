//! The io_uring runtime: a thread-per-core server and a client on `tokio-uring`.
//!
//! A thin driver over [`crate::proto`]: it moves bytes between sockets and the core,
//! schedules the tasks, and owns the timers. No protocol decision is made here.
//!
//! | file | concept |
//! |---|---|
//! | [`server`] | the builder, worker threads and the shutdown handle |
//! | `worker` | one core's accept loop, handshakes and connection registry |
//! | `driver` | a connection's reader and writer tasks |
//! | `buffers` | the optional pool of registered read buffers |
//! | [`socket`] | the application's [`WebSocket`] handle |
//! | [`client`] | connecting to a `ws://` URL |
//! | [`uring`] | creating a ring, with a plain error where the kernel refuses |
//! | [`executor`] | a thread's runtime on either driver, and the fallback to tokio |
//! | `transport` | the byte streams of both drivers behind one interface |
//! | `upgrade` | taking over an upgrade request in a hyper or axum service (feature `hyper`) |
//! | [`options`] | per-connection settings |
//! | [`error`] | the runtime's error type |

mod buffers;
pub mod client;
mod driver;
pub mod error;
pub mod executor;
mod handshake_io;
mod listener;
mod notify;
pub mod options;
pub mod server;
pub mod socket;
mod transport;
#[cfg(feature = "hyper")]
pub mod upgrade;
pub mod uring;
mod worker;

pub use client::{ConnectOptions, connect};
pub use error::Error;
pub use executor::{Driver, LocalRuntime, current_driver, start_with};
pub use options::SocketOptions;
pub use server::{Server, ServerBuilder, ServerHandle, ServerStats, ShutdownTrigger};
pub use socket::WebSocket;
pub use uring::{UringRuntime, start};
