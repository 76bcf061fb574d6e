//! Streaming UTF-8 validation for text messages (RFC 6455 §8.1), on `simdutf8`.
//!
//! A text message's payload may arrive split at any byte: across TCP reads within one frame,
//! and across the frames of a fragmented message. A character may be split too. The
//! validator keeps the at most three bytes of an unfinished character between calls, and
//! fails as soon as the input is certainly invalid (Autobahn 6.4.x "fail fast"), without
//! waiting for the end of the message. A message that ends in the middle of a character
//! fails at [`Utf8Validator::finish`]. Both failures close the connection with 1007.

use std::fmt;

/// The payload of a text message (or a close reason) is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for InvalidUtf8 {}

/// Validates UTF-8 fed in pieces.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// The bytes of a character that started in an earlier piece and is not complete yet.
    partial: [u8; 4],
    partial_len: u8,
}

/// The length of the UTF-8 sequence that `lead` starts; `lead` is a lead byte already
/// accepted by the validator as the start of an unfinished character.
#[inline]
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Self {
        Utf8Validator {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Whether the input so far ended inside a character.
    pub fn is_mid_char(&self) -> bool {
        self.partial_len != 0
    }

    /// Forgets any unfinished character, for the start of a new message.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }

    /// Validates the next piece. Fails as soon as the input so far cannot be the start of
    /// valid UTF-8.
    #[inline]
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len != 0 {
            piece = self.complete_partial(piece)?;
        }
        // Short ASCII pieces (chat and trading messages): a word-at-a-time check, where
        // simdutf8 hands inputs under 64 bytes to the general scalar validator.
        if piece.len() < 64 && piece.is_ascii() {
            return Ok(());
        }
        // The fast path: `basic` is faster and says only yes or no.
        if simdutf8::basic::from_utf8(piece).is_ok() {
            return Ok(());
        }
        match simdutf8::compat::from_utf8(piece) {
            Ok(_) => Ok(()),
            // `error_len() == None`: the input ends with a valid prefix of a character, which
            // the next piece may finish (at most 3 bytes).
            Err(e) if e.error_len().is_none() => {
                let tail = &piece[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Finishes the unfinished character with the first bytes of `piece`; returns the rest.
    #[cold]
    fn complete_partial<'a>(&mut self, piece: &'a [u8]) -> Result<&'a [u8], InvalidUtf8> {
        let have = usize::from(self.partial_len);
        let need = sequence_len(self.partial[0]) - have;
        let take = need.min(piece.len());
        self.partial[have..have + take].copy_from_slice(&piece[..take]);
        let now = have + take;
        match simdutf8::compat::from_utf8(&self.partial[..now]) {
            Ok(_) => self.partial_len = 0,
            Err(e) if e.error_len().is_none() && take < need => self.partial_len = now as u8,
            Err(_) => return Err(InvalidUtf8),
        }
        Ok(&piece[take..])
    }

    /// Ends the message: fails if it ended inside a character. Resets the validator.
    #[inline]
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let mid_char = self.is_mid_char();
        self.reset();
        if mid_char { Err(InvalidUtf8) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn validate_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut at = 0;
        for &cut in cuts {
            v.feed(&bytes[at..cut])?;
            at = cut;
        }
        v.feed(&bytes[at..])?;
        v.finish()
    }

    #[test]
    fn every_split_of_valid_multibyte_text() {
        let text = "a€𝄞한국어 ü ascii\u{10FFFF}\u{7FF}\u{800}".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(validate_in_pieces(text, &[i, j]), Ok(()), "cuts {i} {j}");
            }
        }
        // One byte at a time.
        let cuts: Vec<usize> = (1..text.len()).collect();
        assert_eq!(validate_in_pieces(text, &cuts), Ok(()));
    }

    #[test]
    fn message_ending_mid_character_fails_at_finish() {
        let euro = "€".as_bytes();
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&euro[..2]), Ok(()));
        assert!(v.is_mid_char());
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // finish() resets: the next message starts clean.
        assert_eq!(v.feed(b"ok"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn fails_fast_on_the_first_certainly_invalid_byte() {
        // Autobahn 6.4.1: the payload is invalid at byte 13 (0xF4 0x90: above U+10FFFF); the
        // rest never needs to arrive.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("κόσμε".as_bytes()), Ok(()));
        assert_eq!(v.feed(&[0xF4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
        // Overlong, surrogate, stray continuation, invalid bytes: each fails on its own.
        for bad in [
            &[0xC0, 0x80][..],
            &[0xED, 0xA0, 0x80],
            &[0x80],
            &[0xFF],
            &[0xE0, 0x80],
        ] {
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(bad), Err(InvalidUtf8), "{bad:02x?}");
        }
        // Split before the offending byte: still fails as soon as it arrives.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xED]), Ok(()));
        assert_eq!(v.feed(&[0xA0]), Err(InvalidUtf8));
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore)]
        fn agrees_with_std_for_any_bytes_and_any_split(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), 0x80u8..0xC0, 0xE0u8..0xF5], 0..64),
            mut cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            cuts.iter_mut().for_each(|c| *c = (*c).min(bytes.len()));
            cuts.sort_unstable();
            let expected = std::str::from_utf8(&bytes).is_ok();
            prop_assert_eq!(validate_in_pieces(&bytes, &cuts).is_ok(), expected);
        }

        #[test]
        #[cfg_attr(miri, ignore)]
        fn valid_strings_pass_in_any_split(s in "\\PC{0,40}", mut cuts in proptest::collection::vec(0usize..200, 0..6)) {
            let bytes = s.as_bytes();
            cuts.iter_mut().for_each(|c| *c = (*c).min(bytes.len()));
            cuts.sort_unstable();
            prop_assert_eq!(validate_in_pieces(bytes, &cuts), Ok(()));
        }
    }
}
