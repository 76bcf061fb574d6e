//! Finding and storing an HTTP head: incremental search for the blank line, header storage
//! as ranges into the head's bytes, and the token-list rules of HTTP headers.

use std::ops::Range;

use bytes::Bytes;

/// Finds the end of the head (after `\r\n\r\n`) in `buf`, scanning only bytes not seen by
/// earlier calls. `scanned` carries the position between calls.
pub(crate) fn find_head_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    let from = scanned.saturating_sub(3);
    let found = buf[from.min(buf.len())..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4);
    *scanned = buf.len();
    found
}

/// Header lines kept as ranges into the head's bytes: one allocation for the whole head.
#[derive(Debug, Clone, Default)]
pub(crate) struct Headers {
    pub(crate) head: Bytes,
    pub(crate) lines: Vec<(Range<usize>, Range<usize>)>,
}

/// The range of `part` within `whole` (`part` is a subslice of `whole`).
pub(crate) fn range_of(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// The (name, value) ranges of parsed headers within `whole`, the bytes they came from.
pub(crate) fn header_ranges(
    whole: &[u8],
    parsed: &[httparse::Header<'_>],
) -> Vec<(Range<usize>, Range<usize>)> {
    parsed
        .iter()
        .map(|h| (range_of(whole, h.name.as_bytes()), range_of(whole, h.value)))
        .collect()
}

impl Headers {
    /// Every header as (name, value).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.lines.iter().map(|(name, value)| {
            // Names were validated as HTTP tokens (ASCII) by httparse.
            let name = std::str::from_utf8(&self.head[name.clone()]).unwrap_or("");
            (name, &self.head[value.clone()])
        })
    }

    /// The values of every header called `name` (case-insensitive), in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of the header `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How many headers are called `name`.
    pub(crate) fn count(&self, name: &str) -> usize {
        self.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// Whether a comma-separated header value contains `token` (case-insensitive, RFC 9110
/// §5.6.1 list syntax: `keep-alive, Upgrade`).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The items of comma-separated values, trimmed, empty ones skipped, non-UTF-8 skipped.
pub(crate) fn list_items<'a>(
    values: impl Iterator<Item = &'a [u8]> + 'a,
) -> impl Iterator<Item = &'a str> + 'a {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
        .filter_map(|item| std::str::from_utf8(item).ok())
}

/// Whether `name` is an HTTP token (RFC 9110 §5.6.2), usable as a header name.
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can go in a header value without breaking the head (no CR, LF, NUL).
pub(crate) fn is_safe_value(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"Upgrade", "upgrade"));
        assert!(has_token(b"  WebSocket ", "websocket"));
        assert!(!has_token(b"keep-alive", "upgrade"));
        assert!(!has_token(b"upgrades", "upgrade"));
        let items: Vec<_> = list_items([&b"chat, superchat"[..], b" ,v2 "].into_iter()).collect();
        assert_eq!(items, ["chat", "superchat", "v2"]);
    }

    #[test]
    fn head_end_found_across_calls() {
        let mut scanned = 0;
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r", &mut scanned), None);
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\n\r\nxx", &mut scanned),
            Some(18)
        );
    }
}
