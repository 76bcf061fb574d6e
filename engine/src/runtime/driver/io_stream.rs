//! Any tokio stream (`AsyncRead + AsyncWrite`), such as the connection hyper hands over
//! after an upgrade, driven by the same readiness loop as a socket.
//!
//! The stream is polled through a `RefCell`: only the connection's task and the handshake
//! use it, both on one thread, and no borrow is held across an await. Ending the stream
//! from outside ([`Transport::shutdown`]) makes later reads see the end of the stream and
//! shuts its write half down at the task's next pass.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite};
use bytes::{BufMut, Bytes, BytesMut};

use super::readiness::{self, Readiness};
use super::{Transport, with_io_slices};
use crate::runtime::session::MAX_READ;
use crate::runtime::socket::Shared;

/// A wrapped stream.
pub(crate) struct IoStream<S> {
    stream: RefCell<Pin<Box<S>>>,
    /// Shut down from outside: reads end, writes fail.
    shut: Cell<bool>,
}

impl<S: AsyncRead + AsyncWrite> IoStream<S> {
    pub(crate) fn new(stream: S) -> Self {
        IoStream {
            stream: RefCell::new(Box::pin(stream)),
            shut: Cell::new(false),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + 'static> Transport for IoStream<S> {
    async fn read(&self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let result = std::future::poll_fn(|cx| self.poll_recv(cx, &mut buf, MAX_READ)).await;
        (result, buf)
    }

    async fn write(&self, chunks: Vec<Bytes>) -> (io::Result<usize>, Vec<Bytes>) {
        let result = std::future::poll_fn(|cx| self.poll_send(cx, &chunks)).await;
        let result = match result {
            Ok(n) => std::future::poll_fn(|cx| self.poll_flush(cx))
                .await
                .map(|()| n),
            Err(e) => Err(e),
        };
        (result, chunks)
    }

    fn shutdown(&self, _how: Shutdown) -> io::Result<()> {
        self.shut.set(true);
        Ok(())
    }

    fn set_nodelay(&self) -> io::Result<()> {
        // Not reachable through a generic stream; the server that accepted it sets it
        // (e.g. `axum::serve(..).tcp_nodelay(true)`).
        Ok(())
    }

    async fn drive(self: Rc<Self>, shared: Rc<Shared>, on_finish: Box<dyn FnOnce()>) {
        readiness::run(shared, self).await;
        on_finish();
    }
}

impl<S: AsyncRead + AsyncWrite> Readiness for IoStream<S> {
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        limit: usize,
    ) -> Poll<io::Result<usize>> {
        if self.shut.get() {
            return Poll::Ready(Ok(0));
        }
        let mut stream = self.stream.borrow_mut();
        let spare = (buf.capacity() - buf.len()).min(MAX_READ).min(limit);
        tokio_util::io::poll_read_buf(stream.as_mut(), cx, &mut (&mut *buf).limit(spare))
    }

    fn poll_send(&self, cx: &mut Context<'_>, chunks: &[Bytes]) -> Poll<io::Result<usize>> {
        if self.shut.get() {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        }
        let mut stream = self.stream.borrow_mut();
        if chunks.len() == 1 {
            stream.as_mut().poll_write(cx, &chunks[0])
        } else {
            with_io_slices(chunks, |slices| {
                stream.as_mut().poll_write_vectored(cx, slices)
            })
        }
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.borrow_mut().as_mut().poll_flush(cx)
    }

    fn poll_shutdown_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.borrow_mut().as_mut().poll_shutdown(cx)
    }

    fn close(&self) {
        // Dropping the stream (with the task) closes it; a shutdown of its write half
        // that could not finish is not waited for.
        self.shut.set(true);
    }
}
