//! The opening handshake over io_uring: read the request (or response) head into a small
//! buffer until the core's parser has all of it, keeping any bytes after it.

use bytes::BytesMut;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::error::Error;

/// Initial size of the handshake buffer; a browser's upgrade request is 400–800 bytes.
const INITIAL: usize = 1024;

/// Reads more bytes into `buf`, growing it as needed. `Ok(false)` on EOF.
pub(crate) async fn read_more(stream: &TcpStream, buf: &mut BytesMut) -> Result<bool, Error> {
    if buf.capacity() - buf.len() < INITIAL / 2 {
        buf.reserve(INITIAL.max(buf.len()));
    }
    let owned = std::mem::take(buf);
    let (len, cap) = (owned.len(), owned.capacity());
    let (result, slice) = stream.read(owned.slice(len..cap)).await;
    *buf = slice.into_inner();
    Ok(result? > 0)
}

/// Writes all of `bytes`.
pub(crate) async fn write_all(stream: &TcpStream, bytes: Vec<u8>) -> Result<(), Error> {
    let (result, _) = stream.write_all(bytes).await;
    Ok(result?)
}
