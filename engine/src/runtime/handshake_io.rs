//! The opening handshake's reads and writes, in the clear or through TLS: the TLS
//! handshake first, then the request (or response) head read into a small buffer until
//! the core's parser has all of it, keeping any bytes after it.

use bytes::BytesMut;

use super::driver::Transport;
use super::error::Error;
use super::tls::{Fed, TlsLayer};

/// Initial size of the handshake buffer; a browser's upgrade request is 400–800 bytes.
const INITIAL: usize = 1024;

/// The size of the handshake's ciphertext reads.
const CIPHER_READ: usize = 8 * 1024;

/// A TLS record starts with its content type; a handshake record's is 22.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a server says, in the clear, to an HTTP request on its TLS port (as nginx does).
const PLAIN_HTTP_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\
Content-Type: text/plain\r\nContent-Length: 47\r\n\r\nThis port speaks TLS: use wss:// or https://.\r\n";

/// One connection's handshake stream: its socket and, for `wss://`, its TLS layer.
pub(crate) struct HandshakeIo<'a, T> {
    stream: &'a T,
    tls: Option<TlsLayer>,
    /// Ciphertext read and not yet decrypted (emptied at every read).
    cipher: BytesMut,
    /// Plaintext that came with the end of the TLS handshake.
    early: BytesMut,
}

impl<'a, T: Transport> HandshakeIo<'a, T> {
    /// A handshake in the clear.
    pub(crate) fn plain(stream: &'a T) -> Self {
        HandshakeIo {
            stream,
            tls: None,
            cipher: BytesMut::new(),
            early: BytesMut::new(),
        }
    }

    /// A handshake through `layer` (a fresh TLS connection, either role).
    pub(crate) fn tls(stream: &'a T, layer: TlsLayer) -> Self {
        HandshakeIo {
            tls: Some(layer),
            ..HandshakeIo::plain(stream)
        }
    }

    /// Runs the TLS handshake to its end (nothing in the clear). A server answers a plain
    /// HTTP request with a 400 that says why.
    pub(crate) async fn tls_handshake(&mut self, server: bool) -> Result<(), Error> {
        let mut first = true;
        loop {
            self.flush_records().await?;
            if !self.tls.as_ref().is_some_and(TlsLayer::is_handshaking) {
                return Ok(());
            }
            if !self.read_cipher().await? {
                return Err(closed_during_handshake());
            }
            if server && first && self.cipher[0] != TLS_HANDSHAKE_RECORD {
                if self.cipher[0].is_ascii_uppercase() {
                    let _ = self.stream.write_all(PLAIN_HTTP_ON_TLS.to_vec()).await;
                }
                return Err(Error::Tls(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType,
                )));
            }
            first = false;
            let Some(tls) = &mut self.tls else {
                return Ok(());
            };
            let early = &mut self.early;
            let fed = tls.feed(&self.cipher, |plain| early.extend_from_slice(plain));
            self.cipher.clear();
            match fed {
                Ok(Fed::Open) => {}
                Ok(Fed::PeerClosed) => return Err(closed_during_handshake()),
                Err(e) => return Err(self.fail(e).await),
            }
        }
    }

    /// Reads more of the head into `buf` (plaintext), growing it as needed. `Ok(false)`
    /// at the end of the stream.
    pub(crate) async fn read_more(&mut self, buf: &mut BytesMut) -> Result<bool, Error> {
        if self.tls.is_none() {
            return read_into(self.stream, buf).await;
        }
        if !self.early.is_empty() {
            buf.extend_from_slice(&self.early);
            self.early = BytesMut::new();
            return Ok(true);
        }
        loop {
            if !self.read_cipher().await? {
                return Ok(false);
            }
            let Some(tls) = &mut self.tls else {
                return Ok(false);
            };
            let before = buf.len();
            let fed = tls.feed(&self.cipher, |plain| buf.extend_from_slice(plain));
            self.cipher.clear();
            match fed {
                Ok(Fed::Open) => {}
                Ok(Fed::PeerClosed) => return Ok(false),
                Err(e) => return Err(self.fail(e).await),
            }
            // Records of its own (a session ticket, a key update's answer) go out now.
            self.flush_records().await?;
            if buf.len() > before {
                return Ok(true);
            }
        }
    }

    /// Writes all of `bytes` (a request or a response), sealed over TLS.
    pub(crate) async fn write_all(&mut self, bytes: Vec<u8>) -> Result<(), Error> {
        let bytes = match &mut self.tls {
            Some(tls) => tls.seal_vec(&bytes),
            None => bytes,
        };
        Ok(self.stream.write_all(bytes).await?)
    }

    /// The SNI name the client asked for (server side, over TLS).
    pub(crate) fn server_name(&self) -> Option<String> {
        self.tls
            .as_ref()
            .and_then(|t| t.server_name())
            .map(str::to_owned)
    }

    /// The TLS layer, for the session; plaintext that came early is in `buf`'s place
    /// already (the head parser took it through `read_more`).
    pub(crate) fn into_tls(self) -> Option<TlsLayer> {
        self.tls
    }

    /// Reads ciphertext into `cipher` (room for a certificate chain's records at once).
    /// `Ok(false)` at the end of the stream.
    async fn read_cipher(&mut self) -> Result<bool, Error> {
        if self.cipher.capacity() < CIPHER_READ {
            self.cipher.reserve(CIPHER_READ);
        }
        read_into(self.stream, &mut self.cipher).await
    }

    /// Writes the records the TLS layer has waiting (handshake messages, tickets, alerts).
    async fn flush_records(&mut self) -> Result<(), Error> {
        let records = self
            .tls
            .as_mut()
            .map(TlsLayer::take_records_vec)
            .unwrap_or_default();
        if !records.is_empty() {
            self.stream.write_all(records).await?;
        }
        Ok(())
    }

    /// A TLS failure: its alert goes out (best effort), and the error is returned.
    async fn fail(&mut self, e: rustls::Error) -> Error {
        let _ = self.flush_records().await;
        Error::Tls(e)
    }
}

fn closed_during_handshake() -> Error {
    Error::Closed(crate::proto::close::CloseFrame {
        code: crate::proto::close::CloseCode::ABNORMAL,
        reason: crate::proto::message::Utf8Bytes::from_static(
            "the peer closed the connection during the handshake",
        ),
    })
}

/// Reads more bytes into `buf`, growing it as needed. `Ok(false)` on EOF.
async fn read_into<T: Transport>(stream: &T, buf: &mut BytesMut) -> Result<bool, Error> {
    if buf.capacity() - buf.len() < INITIAL / 2 {
        buf.reserve(INITIAL.max(buf.len()));
    }
    let (result, owned) = stream.read(std::mem::take(buf)).await;
    *buf = owned;
    Ok(result? > 0)
}
