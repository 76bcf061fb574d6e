//! The IO drivers: one place per driver, behind one interface.
//!
//! | file | driver |
//! |---|---|
//! | `uring/` | io_uring on the `io-uring` crate: multishot receive into a buffer ring, connections run inline by the ring task |
//! | `tokio_uring` | io_uring through `tokio-uring`: owned-buffer reads and writes, one of each in flight |
//! | `tokio` | tokio's epoll reactor: readiness, then non-blocking reads and writes |
//! | `io_stream` | any tokio `AsyncRead + AsyncWrite` (a connection hyper hands over) |
//! | `readiness` | the connection loop of the two readiness-based ones |
//!
//! A driver gives the worker three things: the opening handshake's reads and writes
//! ([`Transport::read`], [`Transport::write`]; the buffer goes in and comes back with the
//! result, which a readiness-based stream can offer just as well), a way to end the socket,
//! and [`Transport::drive`], which runs an established connection as one state machine over
//! its [`Session`](super::session::Session) until the socket is closed. The accept loop,
//! the handshake, the session and the handle are written once, and no protocol code knows
//! which driver moves its bytes.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Context;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::socket::Shared;

#[cfg(feature = "hyper")]
pub(crate) mod io_stream;
mod readiness;
mod tokio;
#[cfg(uring)]
mod tokio_uring;
mod turns;
#[cfg(uring)]
pub(crate) mod uring;

/// A connected byte stream, used from the tasks of one thread.
pub(crate) trait Transport: 'static {
    /// Reads into the spare capacity of `buf` (appending); returns it with the count, 0 at
    /// end of stream.
    async fn read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut);

    /// Writes from the front of `chunks` in one `write` (one chunk) or `writev` (at most
    /// 1024 of them); returns them with the count written, which may be partial.
    async fn write(&self, chunks: Vec<Bytes>) -> (io::Result<usize>, Vec<Bytes>);

    /// Shuts down one or both directions; ends the operations in flight.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;

    /// Disables Nagle's algorithm: frames leave as soon as they are written.
    fn set_nodelay(&self) -> io::Result<()>;

    /// Runs the established connection `shared` (its handshake done, any bytes that came
    /// with it in the receive buffer) until the socket is closed, then calls `on_finish`.
    /// A driver that runs connections inline (io_uring) returns at once and calls
    /// `on_finish` later.
    async fn drive(self: Rc<Self>, shared: Rc<Shared>, on_finish: Box<dyn FnOnce()>);

    /// Writes all of `bytes` (handshake responses).
    async fn write_all(&self, bytes: Vec<u8>) -> io::Result<()> {
        let mut chunks = vec![Bytes::from(bytes)];
        while !chunks.is_empty() {
            let (result, back) = self.write(std::mem::take(&mut chunks)).await;
            chunks = back;
            consume(&mut chunks, result?)?;
        }
        Ok(())
    }
}

/// Runs the established connection `shared` over `stream`, a connected TCP stream taken
/// from elsewhere (hyper, after an upgrade), on the driver of the runtime this thread
/// runs: the socket is registered with this thread's ring or reactor.
#[cfg(feature = "hyper")]
pub(crate) fn drive_adopted(stream: std::net::TcpStream, shared: Rc<Shared>) -> io::Result<()> {
    fn start<T: Transport>(stream: T, shared: Rc<Shared>) {
        let _ = stream.set_nodelay();
        ::tokio::task::spawn_local(Rc::new(stream).drive(shared, Box::new(|| {})));
    }
    match super::executor::current_driver() {
        #[cfg(uring)]
        Some(super::executor::Driver::Uring) => start(uring::adopt(stream)?, shared),
        #[cfg(uring)]
        Some(super::executor::Driver::TokioUring) => {
            start(::tokio_uring::net::TcpStream::from_std(stream), shared)
        }
        _ => {
            stream.set_nonblocking(true)?;
            start(::tokio::net::TcpStream::from_std(stream)?, shared)
        }
    }
    Ok(())
}

/// A listening socket of one worker.
pub(crate) trait Acceptor: 'static {
    /// The streams it accepts.
    type Stream: Transport;

    /// The next connection.
    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)>;
}

/// A connection's one timer, for the drivers that run a task per connection: made when
/// the connection first has a deadline, and moved only to an earlier one (a later
/// deadline waits for the timer to fire first, so there is no timer update per message).
#[derive(Default)]
pub(crate) struct ConnTimer {
    sleep: Option<Pin<Box<::tokio::time::Sleep>>>,
    /// The deadline it is set to; `None` once it fired.
    armed: Option<Instant>,
}

impl ConnTimer {
    /// Sets the timer to `deadline` if that is earlier than what it is set to.
    pub(crate) fn arm(&mut self, deadline: Option<Instant>) {
        let Some(at) = deadline else {
            return;
        };
        if self.armed.is_none_or(|armed| at < armed) {
            let at = ::tokio::time::Instant::from_std(at);
            match &mut self.sleep {
                Some(sleep) => sleep.as_mut().reset(at),
                None => self.sleep = Some(Box::pin(::tokio::time::sleep_until(at))),
            }
            self.armed = Some(at.into_std());
        }
    }

    /// Whether the armed deadline came (the timer is then disarmed).
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.armed.is_none() {
            return false;
        }
        let fired = self
            .sleep
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if fired {
            self.armed = None;
        }
        fired
    }
}

/// Drops the `written` bytes a write took from the front of `chunks`, keeping the
/// unwritten rest (a partial write) in order. A write of nothing is an error: the socket
/// will take no more.
pub(crate) fn consume(chunks: &mut Vec<Bytes>, mut written: usize) -> io::Result<()> {
    if written == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    chunks.retain_mut(|chunk| {
        let n = written.min(chunk.len());
        written -= n;
        bytes::Buf::advance(chunk, n);
        !chunk.is_empty()
    });
    Ok(())
}

/// The most buffers one `writev` takes (Linux's `IOV_MAX`).
#[cfg(uring)]
pub(crate) const IOV_MAX: usize = 1024;

/// The most buffers one `writev` of a readiness driver takes from its stack.
const STACK_IOVECS: usize = 64;

/// Calls `f` with the first chunks (at most [`STACK_IOVECS`]) as `IoSlice`s, without
/// allocating.
fn with_io_slices<R>(chunks: &[Bytes], f: impl FnOnce(&[IoSlice<'_>]) -> R) -> R {
    let mut slices = [IoSlice::new(&[]); STACK_IOVECS];
    let n = chunks.len().min(STACK_IOVECS);
    for (slice, chunk) in slices.iter_mut().zip(chunks) {
        *slice = IoSlice::new(chunk);
    }
    f(&slices[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_keeps_the_unwritten_rest_in_order() {
        let mut chunks = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fgh"),
        ];
        consume(&mut chunks, 4).unwrap();
        assert_eq!(
            chunks,
            [Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]
        );
        assert!(consume(&mut chunks, 0).is_err());
        consume(&mut chunks, 4).unwrap();
        assert!(chunks.is_empty());
    }

    #[test]
    fn io_slices_come_from_the_stack_up_to_their_bound() {
        let chunks: Vec<Bytes> = (0..100u8).map(|i| Bytes::from(vec![i; 2])).collect();
        with_io_slices(&chunks, |slices| {
            assert_eq!(slices.len(), STACK_IOVECS);
            assert_eq!(&*slices[5], &[5, 5]);
        });
        with_io_slices(&chunks[..3], |slices| assert_eq!(slices.len(), 3));
    }
}
