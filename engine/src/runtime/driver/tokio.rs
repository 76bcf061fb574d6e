//! The tokio (epoll) driver: a TCP socket on tokio's reactor, where the kernel refuses
//! io_uring (or by choice).
//!
//! One `recvfrom` and one `sendto` per ping-pong message: a read that does not fill its
//! buffer drained the socket, so its readiness is cleared right there (inside tokio's
//! `try_io`, which clears it when told the socket would block) instead of reading again
//! only to see `EAGAIN`. Epoll reports new bytes with a new edge, so none are missed.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use ::tokio::io::Interest;
use ::tokio::net::{TcpListener, TcpStream};
use bytes::{BufMut, Bytes, BytesMut};

use super::readiness::{self, Readiness};
use super::{Acceptor, Transport, with_io_slices};
use crate::runtime::session::MAX_READ;
use crate::runtime::socket::Shared;

impl Transport for TcpStream {
    async fn read(&self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        loop {
            if let Err(e) = self.readable().await {
                return (Err(e), buf);
            }
            match self.try_read_buf(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return (result, buf),
            }
        }
    }

    async fn write(&self, chunks: Vec<Bytes>) -> (io::Result<usize>, Vec<Bytes>) {
        let result = std::future::poll_fn(|cx| self.poll_send(cx, &chunks)).await;
        (result, chunks)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket2::SockRef::from(self).shutdown(how)
    }

    fn set_nodelay(&self) -> io::Result<()> {
        TcpStream::set_nodelay(self, true)
    }

    async fn drive(self: Rc<Self>, shared: Rc<Shared>, on_finish: Box<dyn FnOnce()>) {
        readiness::run(shared, self).await;
        on_finish();
    }
}

impl Readiness for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        limit: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.poll_read_ready(cx))?;
            // At most MAX_READ, whatever capacity the buffer has: one read's replies
            // (pongs) are what the send queue may exceed its bound by.
            let spare = (buf.capacity() - buf.len()).min(MAX_READ).min(limit);
            let mut read = None;
            let result = self.try_io(Interest::READABLE, || {
                let n = self.try_read_buf(&mut (&mut *buf).limit(spare))?;
                read = Some(n);
                if n > 0 && n < spare {
                    // Drained: report "would block" so that tokio clears the readiness,
                    // and hand the bytes over below.
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            return match (result, read) {
                (Ok(n), _) => Poll::Ready(Ok(n)),
                (Err(e), Some(n)) if e.kind() == io::ErrorKind::WouldBlock => Poll::Ready(Ok(n)),
                // Readiness without bytes: cleared; wait again.
                (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
                (Err(e), _) => Poll::Ready(Err(e)),
            };
        }
    }

    fn poll_send(&self, cx: &mut Context<'_>, chunks: &[Bytes]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.poll_write_ready(cx))?;
            let result = if chunks.len() == 1 {
                self.try_write(&chunks[0])
            } else {
                with_io_slices(chunks, |slices| self.try_write_vectored(slices))
            };
            match result {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_shutdown_write(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(self).shutdown(Shutdown::Write))
    }

    fn close(&self) {
        let _ = socket2::SockRef::from(self).shutdown(Shutdown::Both);
    }
}

impl Acceptor for TcpListener {
    type Stream = TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        TcpListener::accept(self).await
    }
}
