//! Verifiable payloads: message `n` of a connection is a function of `n`, so an echo is
//! checked byte for byte without keeping a copy of what was sent.

use bytes::Bytes;
use wsengine::Message;

/// Writes message `seq`'s payload of `size` bytes into `out`: the sequence number (16 hex
/// digits, as far as the size allows) then a letter that depends on it. ASCII, so the
/// same bytes serve text and binary messages.
pub fn fill(out: &mut Vec<u8>, seq: u64, size: usize) {
    out.clear();
    let hex = format!("{seq:016x}");
    // Least significant digit first, so that even short payloads differ between messages.
    out.extend(hex.bytes().rev().take(size));
    let letter = b'a' + (seq % 26) as u8;
    out.resize(size, letter);
}

/// Message `seq`.
pub fn message(seq: u64, size: usize, text: bool, scratch: &mut Vec<u8>) -> Message {
    fill(scratch, seq, size);
    let bytes = Bytes::copy_from_slice(scratch);
    if text {
        Message::Text(wsengine::Utf8Bytes::try_from(bytes).unwrap_or_default())
    } else {
        Message::Binary(bytes)
    }
}

/// Whether `echo` is exactly message `seq`.
pub fn matches(echo: &Message, seq: u64, size: usize, text: bool, scratch: &mut Vec<u8>) -> bool {
    if echo.is_text() != text || echo.len() != size {
        return false;
    }
    fill(scratch, seq, size);
    echo.payload()[..] == scratch[..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_verify_and_differ() {
        let mut scratch = Vec::new();
        for size in [0, 1, 20, 16, 100] {
            for text in [true, false] {
                let m = message(7, size, text, &mut scratch);
                assert!(matches(&m, 7, size, text, &mut scratch));
                assert!(!matches(&m, 7, size, !text, &mut scratch));
                if size > 0 {
                    assert!(!matches(&m, 8, size, text, &mut scratch));
                }
            }
        }
    }
}
