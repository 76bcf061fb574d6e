//! The opening handshake's reads and writes: read the request (or response) head into a
//! small buffer until the core's parser has all of it, keeping any bytes after it.

use bytes::BytesMut;

use super::driver::Transport;
use super::error::Error;

/// Initial size of the handshake buffer; a browser's upgrade request is 400–800 bytes.
const INITIAL: usize = 1024;

/// Reads more bytes into `buf`, growing it as needed. `Ok(false)` on EOF.
pub(crate) async fn read_more<T: Transport>(stream: &T, buf: &mut BytesMut) -> Result<bool, Error> {
    if buf.capacity() - buf.len() < INITIAL / 2 {
        buf.reserve(INITIAL.max(buf.len()));
    }
    let (result, owned) = stream.read(std::mem::take(buf)).await;
    *buf = owned;
    Ok(result? > 0)
}

/// Writes all of `bytes`.
pub(crate) async fn write_all<T: Transport>(stream: &T, bytes: Vec<u8>) -> Result<(), Error> {
    Ok(stream.write_all(bytes).await?)
}
