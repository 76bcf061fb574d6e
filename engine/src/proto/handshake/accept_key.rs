//! `Sec-WebSocket-Accept` (RFC 6455 §4.2.2 item 5.4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The GUID appended to the client's key (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// base64(SHA-1(key + GUID)): the value of `Sec-WebSocket-Accept` for `key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    STANDARD.encode(sha1.digest().bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc_1_3_example() {
        assert_eq!(
            super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
