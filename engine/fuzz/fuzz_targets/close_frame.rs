//! The close-frame parser against a plain reference of RFC 6455 §5.5.1 and §7.4.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use wsengine::proto::close::CloseFrame;
use wsengine::ProtocolError;

fuzz_target!(|payload: &[u8]| {
    let result = CloseFrame::parse(Bytes::copy_from_slice(payload));
    match payload {
        [] => assert_eq!(result, Ok(None)),
        [_] => assert_eq!(result, Err(ProtocolError::CloseFrameTooShort)),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let valid_code = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            match (valid_code, std::str::from_utf8(reason)) {
                (false, _) => assert_eq!(result, Err(ProtocolError::InvalidCloseCode(code))),
                (true, Err(_)) => assert_eq!(result, Err(ProtocolError::InvalidUtf8)),
                (true, Ok(text)) => {
                    let frame = result.unwrap().unwrap();
                    assert_eq!(frame.code.0, code);
                    assert_eq!(frame.reason.as_str(), text);
                }
            }
        }
    }
});
