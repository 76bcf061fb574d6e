//! One connection's TLS record layer, with no IO: ciphertext in, plaintext out to a
//! callback (which appends it to the connection's receive buffer); a batch of plaintext
//! chunks in, records out as one owned buffer for the driver to write.
//!
//! It wraps rustls 0.23's buffered connection (`read_tls`, `process_new_packets`, the
//! reader, `write_tls`), the shape rustls keeps: its unbuffered API, which decrypts in
//! place, is removed on rustls's main branch. The cost is one copy of each direction's
//! bytes into rustls and one out; what that costs per message is in the README.
//!
//! Everything the connection's loop flushes in one turn is handed to rustls as one
//! vectored write, so it leaves as one record (up to 16 KiB each), never one record per
//! small frame. The send buffer limit is off: the session bounds what it takes from the
//! core, and what rustls holds is written out at the same call.

use std::io::{BufRead, IoSlice, Write};

use bytes::Bytes;
use rustls::Connection;

/// What [`TlsLayer::feed`] found besides plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// More may come.
    Open,
    /// The peer sent `close_notify`: it sends nothing more (its TCP FIN follows).
    PeerClosed,
}

/// A connection's TLS state: the rustls connection and whether our `close_notify` left.
pub(crate) struct TlsLayer {
    conn: Connection,
    notified: bool,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("handshaking", &self.conn.is_handshaking())
            .field("notified", &self.notified)
            .finish()
    }
}

impl TlsLayer {
    /// The layer over a new rustls connection (either role).
    pub(crate) fn new(mut conn: Connection) -> Self {
        conn.set_buffer_limit(None);
        TlsLayer {
            conn,
            notified: false,
        }
    }

    /// Whether the TLS handshake is still running.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether records wait to be written (handshake messages, alerts, tickets).
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// The SNI name the client asked for (server side), once the client hello came.
    pub(crate) fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(server) => server.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// Takes all of `cipher`, decrypts what forms whole records and hands the plaintext to
    /// `plain`, in order, in the chunks rustls holds it in. A partial record stays inside
    /// rustls until the rest comes. On an error the connection is over; the alert that
    /// says why waits in [`take_records`](Self::take_records).
    pub(crate) fn feed(
        &mut self,
        mut cipher: &[u8],
        mut plain: impl FnMut(&[u8]),
    ) -> Result<Fed, rustls::Error> {
        loop {
            if !cipher.is_empty() {
                match self.conn.read_tls(&mut cipher) {
                    Ok(0) => return Ok(Fed::PeerClosed),
                    Ok(_) => {}
                    // Not reachable with the plaintext drained after every batch of
                    // records (rustls's plaintext buffer never fills); a broken stream.
                    Err(e) => return Err(rustls::Error::General(e.to_string())),
                }
            }
            let state = self.conn.process_new_packets()?;
            if state.plaintext_bytes_to_read() > 0 {
                let mut reader = self.conn.reader();
                while let Ok(chunk) = reader.fill_buf() {
                    if chunk.is_empty() {
                        break;
                    }
                    let n = chunk.len();
                    plain(chunk);
                    reader.consume(n);
                }
            }
            if state.peer_has_closed() {
                return Ok(Fed::PeerClosed);
            }
            if cipher.is_empty() {
                return Ok(Fed::Open);
            }
        }
    }

    /// Encrypts `plain` (everything the loop flushes this turn) as few records as it
    /// fits in (16 KiB of plaintext each), then our `close_notify` if `notify` (once),
    /// and moves every record waiting to `out` as one buffer.
    pub(crate) fn seal(&mut self, plain: &[Bytes], notify: bool, out: &mut Vec<Bytes>) {
        if !plain.is_empty() {
            let slices: Vec<IoSlice<'_>> = plain.iter().map(|c| IoSlice::new(c)).collect();
            // With the buffer limit off and the handshake done, rustls takes it all.
            let _ = self.conn.writer().write_vectored(&slices);
        }
        if notify && !self.notified {
            self.notified = true;
            self.conn.send_close_notify();
        }
        self.take_records(out);
    }

    /// Moves the records waiting (handshake messages, alerts, tickets) to `out` as one
    /// buffer, if there are any.
    pub(crate) fn take_records(&mut self, out: &mut Vec<Bytes>) {
        let records = self.take_records_vec();
        if !records.is_empty() {
            out.push(Bytes::from(records));
        }
    }

    /// The records waiting, as one `Vec` (the handshake phase writes them itself).
    pub(crate) fn take_records_vec(&mut self) -> Vec<u8> {
        let mut records = Vec::new();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut records) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        records
    }

    /// Encrypts `plain` and returns it with every waiting record, as one `Vec` (the
    /// handshake phase's responses).
    pub(crate) fn seal_vec(&mut self, plain: &[u8]) -> Vec<u8> {
        if !plain.is_empty() {
            let _ = self.conn.writer().write_all(plain);
        }
        self.take_records_vec()
    }
}
