//! The byte streams a connection's tasks drive: a TCP socket on io_uring, or on tokio's
//! epoll reactor where the kernel refuses io_uring.
//!
//! The interface is io_uring's: buffers are handed over and handed back with the result
//! (a ring owns a buffer while an operation is in flight), which a readiness-based stream
//! can offer just as well by filling the buffer in place once the socket is ready. So the
//! reader, the writer, the handshake and the accept loop are written once, generic over
//! [`Transport`], and no protocol code knows which driver moves its bytes.

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};

use bytes::{Bytes, BytesMut};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::buf::fixed::FixedBuf;

/// A connected byte stream, used from the tasks of one thread.
pub(crate) trait Transport: 'static {
    /// Reads into the spare capacity of `buf` (appending); returns it with the count, 0 at
    /// end of stream.
    async fn read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut);

    /// Writes from the front of `chunks` in one `write` (one chunk) or `writev` (at most
    /// 1024 of them); returns them with the count written, which may be partial.
    async fn write(&self, chunks: Vec<Bytes>) -> (io::Result<usize>, Vec<Bytes>);

    /// Reads into a registered buffer of the worker's pool. Only io_uring has them; the
    /// others are never given a pool.
    async fn read_registered(&self, buf: FixedBuf) -> (io::Result<usize>, FixedBuf) {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }

    /// Shuts down one or both directions; ends the operations in flight.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;

    /// Disables Nagle's algorithm: frames leave as soon as they are written.
    fn set_nodelay(&self) -> io::Result<()>;

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

/// A listening socket of one worker.
pub(crate) trait Acceptor: 'static {
    /// The streams it accepts.
    type Stream: Transport;

    /// The next connection.
    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)>;
}

impl Transport for tokio_uring::net::TcpStream {
    async fn read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let (len, cap) = (buf.len(), buf.capacity());
        let (result, slice) = tokio_uring::net::TcpStream::read(self, buf.slice(len..cap)).await;
        (result, slice.into_inner())
    }

    async fn write(&self, mut chunks: Vec<Bytes>) -> (io::Result<usize>, Vec<Bytes>) {
        if chunks.len() == 1
            && let Some(chunk) = chunks.pop()
        {
            let (result, chunk) = tokio_uring::net::TcpStream::write(self, chunk)
                .submit()
                .await;
            chunks.push(chunk);
            return (result, chunks);
        }
        if chunks.len() <= IOV_MAX {
            return self.writev(chunks).await;
        }
        let rest = chunks.split_off(IOV_MAX);
        let (result, mut chunks) = self.writev(chunks).await;
        chunks.extend(rest);
        (result, chunks)
    }

    async fn read_registered(&self, buf: FixedBuf) -> (io::Result<usize>, FixedBuf) {
        self.read_fixed(buf).await
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        tokio_uring::net::TcpStream::shutdown(self, how)
    }

    fn set_nodelay(&self) -> io::Result<()> {
        tokio_uring::net::TcpStream::set_nodelay(self, true)
    }
}

impl Acceptor for tokio_uring::net::TcpListener {
    type Stream = tokio_uring::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        tokio_uring::net::TcpListener::accept(self).await
    }
}

/// The most buffers one `writev` takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// The first [`IOV_MAX`] chunks, for a vectored write.
fn io_slices(chunks: &[Bytes]) -> Vec<IoSlice<'_>> {
    chunks
        .iter()
        .take(IOV_MAX)
        .map(|c| IoSlice::new(c))
        .collect()
}

impl Transport for tokio::net::TcpStream {
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
        loop {
            if let Err(e) = self.writable().await {
                return (Err(e), chunks);
            }
            let result = if chunks.len() == 1 {
                self.try_write(&chunks[0])
            } else {
                self.try_write_vectored(&io_slices(&chunks))
            };
            match result {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return (result, chunks),
            }
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        socket2::SockRef::from(self).shutdown(how)
    }

    fn set_nodelay(&self) -> io::Result<()> {
        tokio::net::TcpStream::set_nodelay(self, true)
    }
}

impl Acceptor for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        tokio::net::TcpListener::accept(self).await
    }
}

#[cfg(feature = "hyper")]
/// Any tokio stream (`AsyncRead + AsyncWrite`), such as a connection hyper hands over
/// after an upgrade: the reader and the writer each take their half.
///
/// Such a stream has no synchronous shutdown, so [`Transport::shutdown`] ends a pending
/// read at once (as a socket shutdown would) and shuts the write half down in a task.
pub(crate) struct IoStream<S>(std::rc::Rc<IoHalves<S>>);

#[cfg(feature = "hyper")]
pub(crate) struct IoHalves<S> {
    reader: tokio::sync::Mutex<tokio::io::ReadHalf<S>>,
    writer: tokio::sync::Mutex<tokio::io::WriteHalf<S>>,
    /// Set by a shutdown of the read side: reads end (as at end of stream).
    read_closed: std::cell::Cell<bool>,
    read_closing: tokio::sync::Notify,
}

#[cfg(feature = "hyper")]
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite> IoStream<S> {
    /// Splits `stream` into its halves.
    pub(crate) fn new(stream: S) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        IoStream(std::rc::Rc::new(IoHalves {
            reader: tokio::sync::Mutex::new(reader),
            writer: tokio::sync::Mutex::new(writer),
            read_closed: std::cell::Cell::new(false),
            read_closing: tokio::sync::Notify::new(),
        }))
    }
}

#[cfg(feature = "hyper")]
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + 'static> Transport for IoStream<S> {
    async fn read(&self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        use tokio::io::AsyncReadExt;
        let mut reader = self.0.reader.lock().await;
        // Checked after the lock's await, and nothing awaits between here and the select
        // (one thread): a shutdown cannot slip in unseen.
        if self.0.read_closed.get() {
            return (Ok(0), buf);
        }
        let result = tokio::select! {
            result = reader.read_buf(&mut buf) => result,
            _ = self.0.read_closing.notified() => Ok(0),
        };
        (result, buf)
    }

    async fn write(&self, chunks: Vec<Bytes>) -> (io::Result<usize>, Vec<Bytes>) {
        use tokio::io::AsyncWriteExt;
        let mut writer = self.0.writer.lock().await;
        let result = if chunks.len() == 1 {
            writer.write(&chunks[0]).await
        } else {
            writer.write_vectored(&io_slices(&chunks)).await
        };
        let result = match result {
            Ok(n) => writer.flush().await.map(|()| n),
            Err(e) => Err(e),
        };
        (result, chunks)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.0.read_closed.set(true);
            self.0.read_closing.notify_waiters();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let halves = self.0.clone();
            tokio::task::spawn_local(async move {
                use tokio::io::AsyncWriteExt;
                let _ = halves.writer.lock().await.shutdown().await;
            });
        }
        Ok(())
    }

    fn set_nodelay(&self) -> io::Result<()> {
        // Not reachable through a generic stream; the server that accepted it sets it
        // (e.g. `axum::serve(..).tcp_nodelay(true)`).
        Ok(())
    }
}
