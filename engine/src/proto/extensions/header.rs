//! The `Sec-WebSocket-Extensions` header's grammar (RFC 6455 §9.1), for any extension.
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list  = 1#extension
//! extension       = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```
//!
//! The list may be spread over several header lines (RFC 9110 §5.3: they combine as if
//! joined with commas), and a quoted value may itself hold commas and semicolons, so the
//! header is read by a small scanner rather than split at commas. What the parameters mean
//! is up to the extension ([`negotiation`](super::negotiation) for permessage-deflate).

use std::fmt;

use super::ExtensionError;

/// One element of an extension list: an extension's name and its parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// The parameters, in the order they were sent (duplicates kept: the extension decides
    /// what a duplicate means).
    pub params: Vec<ExtensionParam>,
}

/// One `name[=value]` parameter of an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionParam {
    /// The parameter's name.
    pub name: String,
    /// The value, with a quoted string already unquoted and unescaped; `None` for a bare
    /// parameter.
    pub value: Option<String>,
}

impl fmt::Display for ExtensionOffer {
    /// The element as it goes on the wire: `name; param; param=value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for p in &self.params {
            match &p.value {
                Some(v) => write!(f, "; {}={v}", p.name)?,
                None => write!(f, "; {}", p.name)?,
            }
        }
        Ok(())
    }
}

/// A `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses every `Sec-WebSocket-Extensions` value (one per header line, in order) into its
/// elements. Empty list elements (`a, , b`) are skipped, as RFC 9110 §5.6.1 asks of
/// recipients. Any other deviation from the grammar is [`ExtensionError::Malformed`].
pub fn parse_extensions<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<ExtensionOffer>, ExtensionError> {
    let mut out = Vec::new();
    for value in values {
        Scanner { s: value, at: 0 }.list(&mut out)?;
    }
    Ok(out)
}

struct Scanner<'a> {
    s: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    /// Optional whitespace (RFC 9110 §5.6.3: SP / HTAB).
    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn malformed(&self) -> ExtensionError {
        ExtensionError::Malformed { at: self.at }
    }

    fn token(&mut self) -> Result<String, ExtensionError> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.malformed());
        }
        // tchars are ASCII.
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    /// A quoted-string (RFC 9110 §5.6.4), unescaped. RFC 6455 §9.1: "When using the
    /// quoted-string syntax variant, the value after quoted-string unescaping MUST conform
    /// to the 'token' ABNF."
    fn quoted(&mut self) -> Result<String, ExtensionError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.at += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.malformed()),
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80 => {
                            value.push(b);
                            self.at += 1;
                        }
                        _ => return Err(self.malformed()),
                    }
                }
                Some(b) if b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80 => {
                    value.push(b);
                    self.at += 1;
                }
                Some(_) => return Err(self.malformed()),
            }
        }
        if value.is_empty() || !value.iter().copied().all(is_tchar) {
            return Err(ExtensionError::QuotedValueNotToken);
        }
        Ok(String::from_utf8_lossy(&value).into_owned())
    }

    /// `#extension`, appending to `out`.
    fn list(&mut self, out: &mut Vec<ExtensionOffer>) -> Result<(), ExtensionError> {
        loop {
            self.ows();
            match self.peek() {
                None => return Ok(()),
                Some(b',') => {
                    self.at += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name = self.token()?;
            let mut params = Vec::new();
            loop {
                self.ows();
                match self.peek() {
                    None => {
                        out.push(ExtensionOffer { name, params });
                        return Ok(());
                    }
                    Some(b',') => {
                        self.at += 1;
                        out.push(ExtensionOffer { name, params });
                        break;
                    }
                    Some(b';') => {
                        self.at += 1;
                        self.ows();
                        let pname = self.token()?;
                        self.ows();
                        let value = if self.peek() == Some(b'=') {
                            self.at += 1;
                            self.ows();
                            Some(if self.peek() == Some(b'"') {
                                self.quoted()?
                            } else {
                                self.token()?
                            })
                        } else {
                            None
                        };
                        params.push(ExtensionParam { name: pname, value });
                    }
                    Some(_) => return Err(self.malformed()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<Vec<ExtensionOffer>, ExtensionError> {
        parse_extensions(values.iter().map(|v| v.as_bytes()))
    }

    fn p(name: &str, value: Option<&str>) -> ExtensionParam {
        ExtensionParam {
            name: name.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn browser_offer() {
        // Chrome and Firefox send exactly this.
        let got = parse(&["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(
            got,
            [ExtensionOffer {
                name: "permessage-deflate".into(),
                params: vec![p("client_max_window_bits", None)],
            }]
        );
        assert_eq!(
            got[0].to_string(),
            "permessage-deflate; client_max_window_bits"
        );
    }

    #[test]
    fn several_offers_headers_quoted_values_and_whitespace() {
        let got = parse(&[
            "permessage-deflate;server_max_window_bits=10 ; client_max_window_bits=\"12\",x-foo",
            " , permessage-deflate;\tserver_no_context_takeover ,",
            "x-bar; q=\"a\\bc\"",
        ])
        .unwrap();
        let names: Vec<&str> = got.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["permessage-deflate", "x-foo", "permessage-deflate", "x-bar"]
        );
        assert_eq!(
            got[0].params,
            [
                p("server_max_window_bits", Some("10")),
                p("client_max_window_bits", Some("12"))
            ]
        );
        assert!(got[1].params.is_empty());
        assert_eq!(got[2].params, [p("server_no_context_takeover", None)]);
        // An escaped character is unescaped.
        assert_eq!(got[3].params, [p("q", Some("abc"))]);
    }

    #[test]
    fn malformed_headers() {
        for bad in [
            ";a",
            "a;",
            "a;=1",
            "a; b=",
            "a b",
            "a; b=\"1",
            "a; b=1 2",
            "a; b=\"\"",
            "a; b=\"1,2\"",
            "a; b=1;; c",
            "\"a\"",
            "a; b=\x01",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
        assert_eq!(parse(&["a b"]), Err(ExtensionError::Malformed { at: 2 }));
        assert_eq!(
            parse(&["a; b=\"x y\""]),
            Err(ExtensionError::QuotedValueNotToken)
        );
        // Empty elements and headers are not errors.
        assert_eq!(parse(&["", " , ,"]).unwrap(), []);
    }
}
