//! One `SO_REUSEPORT` listening socket per worker, all on the same address.
//!
//! The kernel spreads incoming connections across the sockets (by a hash of the 4-tuple),
//! so workers share no accept queue and no lock: the thread-per-core design needs nothing
//! from the other threads on the hot path.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Creates a listening socket on `addr` with `SO_REUSEPORT` and `SO_REUSEADDR`.
pub(crate) fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}
