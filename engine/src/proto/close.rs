//! Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).

use std::fmt;

use bytes::{Buf, Bytes};

use super::error::ProtocolError;
use super::message::Utf8Bytes;
use super::utf8::Utf8Validator;

/// A close status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with the message type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: an unexpected condition on the server.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later, e.g. the server is overloaded (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway received an invalid response (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);

    /// Whether the code may appear in a close frame on the wire.
    ///
    /// RFC 6455 §7.4.1–7.4.2: 1000–1003 and 1007–1011 are defined; 1004 is reserved; 1005,
    /// 1006 and 1015 MUST NOT be sent; 0–999 are unused; 1016–2999 are reserved for future
    /// revisions and extensions; 3000–4999 are for libraries, frameworks and applications.
    /// 1012–1014 were registered with IANA after the RFC (service restart, try again later,
    /// bad gateway) and are sent by deployed servers, so they are accepted too.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

/// The content of a close frame: a code and a UTF-8 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, possibly empty.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// Parses a received close frame's (unmasked) payload.
    ///
    /// Returns `None` for an empty payload (the application sees code 1005). RFC 6455
    /// §5.5.1: a body, if present, starts with a 2-byte code, followed by UTF-8 data.
    pub fn parse(mut payload: Bytes) -> Result<Option<CloseFrame>, ProtocolError> {
        match payload.len() {
            0 => return Ok(None),
            1 => return Err(ProtocolError::CloseFrameTooShort),
            _ => {}
        }
        let code = CloseCode(payload.get_u16());
        if !code.is_valid_on_wire() {
            return Err(ProtocolError::InvalidCloseCode(code.0));
        }
        let mut utf8 = Utf8Validator::new();
        utf8.feed(&payload)
            .map_err(|_| ProtocolError::InvalidUtf8)?;
        utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        Ok(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_validated(payload),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
        CloseFrame::parse(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn valid_and_invalid_codes() {
        for code in (1000..=1003)
            .chain(1007..=1014)
            .chain([3000, 3999, 4000, 4999])
        {
            let frame = parse(&u16::to_be_bytes(code)).unwrap().unwrap();
            assert_eq!(frame.code, CloseCode(code));
        }
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                parse(&u16::to_be_bytes(code)),
                Err(ProtocolError::InvalidCloseCode(code))
            );
        }
    }

    #[test]
    fn empty_one_byte_and_reasons() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&[0x03]), Err(ProtocolError::CloseFrameTooShort));
        let frame = parse(&[0x03, 0xE8, b'b', b'y', b'e']).unwrap().unwrap();
        assert_eq!(
            (frame.code, frame.reason.as_str()),
            (CloseCode::NORMAL, "bye")
        );
        assert_eq!(
            parse(&[0x03, 0xE8, 0xCE, 0xBA, 0xE1]),
            Err(ProtocolError::InvalidUtf8)
        );
        assert_eq!(parse(&[0x03, 0xE8, 0xFF]), Err(ProtocolError::InvalidUtf8));
    }
}
