//! One `SO_REUSEPORT` listening socket per worker, all on the same address (Linux).
//!
//! The kernel spreads incoming connections across the sockets (by a hash of the 4-tuple),
//! so workers share no accept queue and no lock: the thread-per-core design needs nothing
//! from the other threads on the hot path. Elsewhere `SO_REUSEPORT` does not spread
//! connections (macOS, the BSDs without `SO_REUSEPORT_LB`) or does not exist (Windows),
//! so the workers accept from clones of one listening socket: one accept queue, shared.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Creates a listening socket on `addr` with `SO_REUSEADDR` (and `SO_REUSEPORT` on Linux).
pub(crate) fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    socket.set_reuse_port(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// The listening socket of another worker beside `first` (bound to `addr`): a socket of
/// its own on Linux, a clone of `first` elsewhere.
pub(crate) fn another(
    first: &std::net::TcpListener,
    addr: SocketAddr,
    backlog: i32,
) -> io::Result<std::net::TcpListener> {
    if cfg!(target_os = "linux") {
        bind_reuseport(addr, backlog)
    } else {
        first.try_clone()
    }
}
