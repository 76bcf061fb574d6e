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

/// splitmix64's output function: a cheap, well-mixed hash of `x`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The payload size of message `seq` when sizes are mixed: in `min..=max`, spread
/// log-uniformly (as many messages between 16 and 32 bytes as between 16 and 32 KiB), and
/// a pure function of its arguments, so the receiver knows each echo's size without
/// keeping anything. `max <= min` gives `min`.
///
/// Log-uniform means each octave is equally likely, so each single size gets rarer as it
/// grows: over 16..=65536 one message in 12 is 32 KiB or more, but only one in ~500,000 is
/// exactly 65536 bytes. Most bytes travel in the large messages.
pub fn size_of(seq: u64, min: usize, max: usize) -> usize {
    if max <= min {
        return min;
    }
    // u uniform in [0, 1) from the hash's top 53 bits.
    let u = (splitmix64(seq) >> 11) as f64 / (1u64 << 53) as f64;
    // Spread over [min + 1, max + 2) so that min = 0 works and max can come up; then back.
    let (lo, hi) = ((min + 1) as f64, (max + 2) as f64);
    let size = (lo * (hi / lo).powf(u)).floor() as usize;
    size.saturating_sub(1).clamp(min, max)
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

    #[test]
    fn size_of_stays_in_bounds_and_is_deterministic() {
        for (min, max) in [
            (0, 0),
            (0, 1),
            (16, 16),
            (16, 17),
            (16, 70_000),
            (1, 1 << 20),
        ] {
            for seq in 0..20_000 {
                let size = size_of(seq, min, max);
                assert!((min..=max).contains(&size), "{seq} {min} {max}: {size}");
                assert_eq!(size, size_of(seq, min, max));
            }
        }
        // Without a range: always the one size.
        assert_eq!(size_of(12_345, 20, 20), 20);
        assert_eq!(size_of(12_345, 20, 10), 20);
    }

    #[test]
    fn size_of_reaches_both_ends() {
        // Small ranges: both exact ends come up.
        for (min, max) in [(0, 1), (16, 17), (16, 40), (100, 300)] {
            let sizes: Vec<usize> = (0..100_000).map(|s| size_of(s, min, max)).collect();
            assert!(sizes.contains(&min), "{min}..={max}: min never");
            assert!(sizes.contains(&max), "{min}..={max}: max never");
        }
        // A wide range: exact min, the top octave, and log-uniform spread (about as many
        // in 16..32 as in 32 KiB..64 KiB).
        let (min, max) = (16, 65_536);
        let n = 200_000;
        let sizes: Vec<usize> = (0..n).map(|s| size_of(s, min, max)).collect();
        assert!(sizes.contains(&min));
        let bottom = sizes.iter().filter(|&&s| s < 32).count();
        let top = sizes.iter().filter(|&&s| s >= 32_768).count();
        let expected = n as usize / 12; // 12 octaves
        for count in [bottom, top] {
            assert!(
                count > expected * 8 / 10 && count < expected * 12 / 10,
                "{count}"
            );
        }
        assert!(sizes.iter().any(|&s| s > 65_000));
    }

    #[test]
    fn messages_of_mixed_sizes_verify() {
        let mut scratch = Vec::new();
        let (min, max) = (16, 70_000);
        for seq in 0..2_000 {
            for text in [true, false] {
                let size = size_of(seq, min, max);
                let m = message(seq, size, text, &mut scratch);
                assert_eq!(m.len(), size);
                assert!(matches(&m, seq, size_of(seq, min, max), text, &mut scratch));
                // The echo of another message: wrong size or wrong content.
                assert!(!matches(
                    &m,
                    seq + 1,
                    size_of(seq + 1, min, max),
                    text,
                    &mut scratch
                ));
            }
        }
    }
}
