//! permessage-deflate's negotiation (RFC 7692 §5, §7.1): what the four parameters mean, the
//! server's choice among the client's offers, the client's offer and its check of the
//! answer.
//!
//! ```text
//!  client                                   server
//!  DeflateConfig ─offer()─▶ "permessage-deflate; client_max_window_bits"
//!                                           ─negotiate(offers, DeflateConfig)─▶
//!                                             first offer it can honour, or none
//!  verify_answer(answer, DeflateConfig) ◀── "permessage-deflate; server_no_context_takeover"
//!        │                                            │
//!        ▼                                            ▼
//!  DeflateParams (the same agreed parameters on both sides)
//! ```
//!
//! The names say whose compressor a parameter binds: `server_*` limit what the server
//! sends, `client_*` what the client sends, whichever side reads the struct.

use std::time::Duration;

use super::header::{ExtensionOffer, ExtensionParam};
use super::{DeflateParam, ExtensionError};

/// The extension's token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The largest LZ77 window, 2^15 bytes: what a peer may use when nothing limits it.
const MAX_WINDOW_BITS: u8 = 15;

/// What this endpoint offers (client) or accepts (server) of permessage-deflate, and how it
/// compresses.
///
/// The same struct serves both roles, with the RFC's names: on a server `server_*` is what
/// it commits to for what it sends and `client_*` what it asks of the client; on a client
/// `server_*` is what it asks of the server and `client_*` what it commits to.
///
/// # Memory per connection
/// A negotiated connection that has not yet compressed or received a compressed message
/// holds about 100 bytes of state (the agreed parameters and two empty stream slots). Then,
/// per direction in use (zlib-rs 0.6, measured resident after one 1.2 KB message in
/// brackets):
/// - **compressor** (sending): `4 × 2^w + 240 KiB + ~4 KiB`, memLevel fixed at 8 by flate2:
///   **372 KiB** at w = 15 (316 KiB), 246 KiB at w = 9 (192 KiB). C zlib's formula
///   `2^(w+2) + 2^(memLevel+9)` gives 256 / 130 KiB; zlib-rs's hash head is fixed at 128 KiB.
/// - **decompressor** (receiving): zlib-rs allocates a full 32 KiB window whatever the
///   negotiated bits, plus about 7 KiB of state: **about 40 KiB** (20 KiB).
/// - the message being inflated, up to [`Config::max_message_size`] + 1 bytes, as for an
///   uncompressed fragmented message.
///
/// With `*_no_context_takeover` for a direction its stream is freed after every message, so
/// an idle connection costs nothing for it; with context takeover the stream lives as long
/// as the connection (the peer's next message may refer to this one's bytes), except that
/// [`Connection::release_compressor`] may drop the sending side's at any time.
///
/// [`Config::max_message_size`]: crate::proto::config::Config::max_message_size
/// [`Connection::release_compressor`]: crate::proto::connection::Connection::release_compressor
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Offer (client) or accept (server) permessage-deflate at all. Default off: the driver
    /// opts in (browsers offer it on every connection, and it costs memory and CPU).
    pub enabled: bool,
    /// The largest window the server compresses with, 9–15 (values outside are clamped).
    /// Default 15 (32 KiB window, the best ratio). zlib cannot compress with 8, so a client
    /// offer requiring `server_max_window_bits=8` is declined.
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with, 9–15. Default 15. A server can ask for
    /// less only when the client offered `client_max_window_bits` (every browser does).
    pub client_max_window_bits: u8,
    /// The server starts every message with an empty window: its compressor is freed after
    /// each message (0 bytes when idle, or lent by a
    /// [`StreamPool`](super::StreamPool)) at some cost in ratio. Default off.
    pub server_no_context_takeover: bool,
    /// The client starts every message with an empty window, so the server may free its
    /// decompressor after each message. Default off.
    pub client_no_context_takeover: bool,
    /// zlib compression level 0–9 for what this endpoint sends. Default 1: most of the
    /// ratio on text for a fraction of level 6's time.
    pub level: u8,
    /// Messages shorter than this are sent uncompressed (RSV1 clear): below about a
    /// kilobyte deflate's block overhead and CPU outweigh the bytes saved. Default 1024.
    /// Above 0, a message that deflate does not shrink also goes uncompressed where the
    /// window allows it (no context takeover); 0 compresses every message (RSV1 on all,
    /// as some test harnesses expect).
    pub min_size: usize,
    /// With context takeover on the sending side, the compressor (the biggest part of a
    /// connection's deflate memory, see above) is freed once it has compressed nothing for
    /// this long; the next message allocates a fresh one (only that message's ratio
    /// suffers). `None`: kept for the connection's lifetime. Default 30 s. Not negotiated.
    pub compressor_idle_release: Option<Duration>,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            enabled: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            level: 1,
            min_size: 1024,
            compressor_idle_release: Some(Duration::from_secs(30)),
        }
    }
}

impl DeflateConfig {
    /// The default settings, enabled.
    pub fn enabled() -> Self {
        DeflateConfig {
            enabled: true,
            ..DeflateConfig::default()
        }
    }

    /// The "shared" memory mode: enabled, with no context takeover in either direction, so
    /// every message starts from an empty window and no stream outlives a message. An idle
    /// connection holds no deflate memory, and a driver that lends streams from a
    /// [`StreamPool`](super::StreamPool) (the runtime keeps one per worker) allocates none
    /// per message. Costs ratio on small, similar messages.
    pub fn shared() -> Self {
        DeflateConfig {
            enabled: true,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        }
    }

    /// The "dedicated" memory mode: enabled with context takeover (each connection keeps its
    /// own streams and windows, the best ratio), the compressor freed after
    /// [`compressor_idle_release`](Self::compressor_idle_release) without use. The same as
    /// [`enabled`](Self::enabled).
    pub fn dedicated() -> Self {
        DeflateConfig::enabled()
    }

    /// Window sizes clamped to 9–15 and the level to 0–9.
    fn clamped(&self) -> DeflateConfig {
        DeflateConfig {
            server_max_window_bits: self.server_max_window_bits.clamp(9, MAX_WINDOW_BITS),
            client_max_window_bits: self.client_max_window_bits.clamp(9, MAX_WINDOW_BITS),
            level: self.level.min(9),
            ..self.clone()
        }
    }

    /// The client's offer: the value of its `Sec-WebSocket-Extensions` header.
    ///
    /// `client_max_window_bits` is always offered (bare when this side uses 15) so that a
    /// server may lower it; the `server_*` parameters only where they ask for something.
    pub fn offer(&self) -> String {
        let c = self.clamped();
        let mut out = String::from(PERMESSAGE_DEFLATE);
        if c.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if c.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if c.server_max_window_bits < MAX_WINDOW_BITS {
            out.push_str(&format!(
                "; server_max_window_bits={}",
                c.server_max_window_bits
            ));
        }
        out.push_str("; client_max_window_bits");
        if c.client_max_window_bits < MAX_WINDOW_BITS {
            out.push_str(&format!("={}", c.client_max_window_bits));
        }
        out
    }
}

/// One permessage-deflate element of an offer or an answer, with its parameters checked
/// against RFC 7692 §7 (known, not duplicated, valid values) but not yet against anything
/// else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DeflateOffer {
    /// `server_no_context_takeover` was given.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` was given.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N` (8–15), if given.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits`: `None` absent, `Some(None)` given without a value (allowed
    /// in an offer only), `Some(Some(N))` with a value.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// A window size value: RFC 7692 §7.1.2.1 "a decimal integer value without leading
/// zeroes between 8 to 15, inclusive".
fn window_bits(param: DeflateParam, value: Option<&str>) -> Result<u8, ExtensionError> {
    let invalid = ExtensionError::InvalidValue(param);
    let value = value.ok_or(invalid.clone())?;
    let b = value.as_bytes();
    if b.is_empty() || b.len() > 2 || b[0] == b'0' || !b.iter().all(u8::is_ascii_digit) {
        return Err(invalid);
    }
    match value.parse::<u8>() {
        Ok(n @ 8..=15) => Ok(n),
        _ => Err(invalid),
    }
}

impl DeflateOffer {
    /// Checks the parameters of a `permessage-deflate` element (the caller has matched the
    /// name).
    pub fn from_extension(ext: &ExtensionOffer) -> Result<DeflateOffer, ExtensionError> {
        Self::from_params(&ext.params)
    }

    fn from_params(params: &[ExtensionParam]) -> Result<DeflateOffer, ExtensionError> {
        let mut o = DeflateOffer::default();
        let mut seen = [false; 4];
        for p in params {
            let param = DeflateParam::from_name(&p.name)
                .ok_or_else(|| ExtensionError::UnknownParameter(p.name.clone()))?;
            // RFC 7692 §7: an offer or answer with the same parameter twice is declined or
            // fails the connection.
            let slot = &mut seen[param as usize];
            if *slot {
                return Err(ExtensionError::DuplicateParameter(param));
            }
            *slot = true;
            let value = p.value.as_deref();
            match param {
                // §7.1.1: these parameters have no value.
                DeflateParam::ServerNoContextTakeover | DeflateParam::ClientNoContextTakeover
                    if value.is_some() =>
                {
                    return Err(ExtensionError::InvalidValue(param));
                }
                DeflateParam::ServerNoContextTakeover => o.server_no_context_takeover = true,
                DeflateParam::ClientNoContextTakeover => o.client_no_context_takeover = true,
                DeflateParam::ServerMaxWindowBits => {
                    o.server_max_window_bits = Some(window_bits(param, value)?);
                }
                // §7.1.2.2: "This parameter has no value or a decimal integer value ...".
                DeflateParam::ClientMaxWindowBits => {
                    o.client_max_window_bits = Some(match value {
                        None => None,
                        Some(_) => Some(window_bits(param, value)?),
                    });
                }
            }
        }
        Ok(o)
    }
}

/// What both sides agreed, and how this side compresses: what a
/// [`Connection`](crate::proto::connection::Connection) needs to speak permessage-deflate.
///
/// Built by the server's negotiation ([`Request::accept`]) or the client's check of the
/// answer ([`Response::deflate`]); `Default` is the parameters of a bare
/// `permessage-deflate` with [`DeflateConfig`]'s default level and threshold.
///
/// [`Request::accept`]: crate::proto::handshake::Request::accept
/// [`Response::deflate`]: crate::proto::handshake::Response::deflate
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server starts every message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client starts every message with an empty window.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with (8–15).
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with (8–15).
    pub client_max_window_bits: u8,
    /// This side's compression level (not negotiated).
    pub level: u8,
    /// This side's threshold for compressing a message (not negotiated).
    pub min_size: usize,
    /// This side's [`DeflateConfig::compressor_idle_release`] (not negotiated).
    pub compressor_idle_release: Option<Duration>,
}

impl Default for DeflateParams {
    fn default() -> Self {
        let c = DeflateConfig::default();
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
            level: c.level,
            min_size: c.min_size,
            compressor_idle_release: c.compressor_idle_release,
        }
    }
}

impl DeflateParams {
    /// The server's answer for these parameters: the value of its
    /// `Sec-WebSocket-Extensions` header. Window sizes appear only when below 15;
    /// `client_max_window_bits` only when `client_window_offered`.
    fn answer(&self, client_window_offered: bool) -> String {
        let mut out = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < MAX_WINDOW_BITS {
            out.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if client_window_offered && self.client_max_window_bits < MAX_WINDOW_BITS {
            out.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        out
    }
}

/// The server's side: accepts the first permessage-deflate offer it can honour under
/// `config` (RFC 7692 §5: offers are in the client's order of preference) and returns the
/// agreed parameters with the response header's value; `None` declines them all.
///
/// An offer is declined when its parameters are invalid (§7) or when it requires
/// `server_max_window_bits=8`, which zlib cannot produce. Other extensions are ignored.
pub fn negotiate(
    offers: &[ExtensionOffer],
    config: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    if !config.enabled {
        return None;
    }
    let c = config.clamped();
    offers
        .iter()
        .filter(|e| e.name == PERMESSAGE_DEFLATE)
        .filter_map(|e| DeflateOffer::from_extension(e).ok())
        .find_map(|o| {
            // §7.1.2.1: accepting an offered server_max_window_bits means answering the same
            // or a smaller value; without one the server MAY still announce its own.
            let server_max_window_bits = match o.server_max_window_bits {
                Some(8) => return None,
                Some(n) => n.min(c.server_max_window_bits),
                None => c.server_max_window_bits,
            };
            // §7.1.2.2: client_max_window_bits may be answered only if offered, with a value
            // no larger than an offered one. A client that did not offer it uses up to 15,
            // which this side inflates anyway.
            let client_max_window_bits = match o.client_max_window_bits {
                None => MAX_WINDOW_BITS,
                Some(None) => c.client_max_window_bits,
                Some(Some(n)) => n.min(c.client_max_window_bits),
            };
            let params = DeflateParams {
                // §7.1.1.1: an offered server_no_context_takeover must be answered; the
                // server MAY add it unasked.
                server_no_context_takeover: o.server_no_context_takeover
                    || c.server_no_context_takeover,
                // §7.1.1.2: the server MAY impose client_no_context_takeover; an offered one
                // is the client's promise, answered so both sides know it.
                client_no_context_takeover: o.client_no_context_takeover
                    || c.client_no_context_takeover,
                server_max_window_bits,
                client_max_window_bits,
                level: c.level,
                min_size: c.min_size,
                compressor_idle_release: c.compressor_idle_release,
            };
            Some((params, params.answer(o.client_max_window_bits.is_some())))
        })
}

/// The client's side: checks the server's permessage-deflate answers (every
/// `permessage-deflate` element of its `Sec-WebSocket-Extensions`) against what
/// `config` offered. `Ok(None)`: the server declined; any error fails the connection.
pub fn verify_answer(
    answers: &[&ExtensionOffer],
    config: &DeflateConfig,
) -> Result<Option<DeflateParams>, ExtensionError> {
    let answer = match answers {
        [] => return Ok(None),
        [one] => DeflateOffer::from_extension(one)?,
        _ => return Err(ExtensionError::SeveralAnswers),
    };
    let c = config.clamped();
    // §7.1.2.1: an offered server_max_window_bits is accepted by answering the same or a
    // smaller value; unoffered, the server may still announce one.
    let server_max_window_bits = match answer.server_max_window_bits {
        None if c.server_max_window_bits < MAX_WINDOW_BITS => {
            return Err(ExtensionError::MissingParameter(
                DeflateParam::ServerMaxWindowBits,
            ));
        }
        None => MAX_WINDOW_BITS,
        Some(n) if n > c.server_max_window_bits => {
            return Err(ExtensionError::WindowAboveOffer {
                param: DeflateParam::ServerMaxWindowBits,
                offered: c.server_max_window_bits,
                answered: n,
            });
        }
        Some(n) => n,
    };
    // §7.1.1.1: acceptance of an offered server_no_context_takeover includes it.
    if c.server_no_context_takeover && !answer.server_no_context_takeover {
        return Err(ExtensionError::MissingParameter(
            DeflateParam::ServerNoContextTakeover,
        ));
    }
    // §7.1.2.2: in an answer client_max_window_bits has a value, no larger than offered.
    let client_max_window_bits = match answer.client_max_window_bits {
        None => c.client_max_window_bits,
        Some(None) => {
            return Err(ExtensionError::InvalidValue(
                DeflateParam::ClientMaxWindowBits,
            ));
        }
        Some(Some(n)) if n > c.client_max_window_bits => {
            return Err(ExtensionError::WindowAboveOffer {
                param: DeflateParam::ClientMaxWindowBits,
                offered: c.client_max_window_bits,
                answered: n,
            });
        }
        Some(Some(n)) => n,
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover
            || c.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
        level: c.level,
        min_size: c.min_size,
        compressor_idle_release: c.compressor_idle_release,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::parse_extensions;
    use super::*;

    fn server(header: &str, config: &DeflateConfig) -> Option<(DeflateParams, String)> {
        negotiate(&parse_extensions([header.as_bytes()]).unwrap(), config)
    }

    fn client(
        answer: &str,
        config: &DeflateConfig,
    ) -> Result<Option<DeflateParams>, ExtensionError> {
        let parsed = parse_extensions([answer.as_bytes()]).unwrap();
        let refs: Vec<&ExtensionOffer> = parsed.iter().collect();
        verify_answer(&refs, config)
    }

    fn offer(header: &str) -> Result<DeflateOffer, ExtensionError> {
        let parsed = parse_extensions([header.as_bytes()]).unwrap();
        DeflateOffer::from_extension(&parsed[0])
    }

    #[test]
    fn parameter_values_per_rfc_7692_section_7() {
        use DeflateParam::*;
        use ExtensionError::*;
        let table: &[(&str, Result<DeflateOffer, ExtensionError>)] = &[
            ("permessage-deflate", Ok(DeflateOffer::default())),
            (
                "permessage-deflate; client_max_window_bits",
                Ok(DeflateOffer {
                    client_max_window_bits: Some(None),
                    ..Default::default()
                }),
            ),
            (
                "permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=8",
                Ok(DeflateOffer {
                    server_max_window_bits: Some(10),
                    client_max_window_bits: Some(Some(8)),
                    ..Default::default()
                }),
            ),
            (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                Ok(DeflateOffer {
                    server_no_context_takeover: true,
                    client_no_context_takeover: true,
                    ..Default::default()
                }),
            ),
            (
                "permessage-deflate; server_max_window_bits",
                Err(InvalidValue(ServerMaxWindowBits)),
            ),
            (
                "permessage-deflate; server_max_window_bits=7",
                Err(InvalidValue(ServerMaxWindowBits)),
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                Err(InvalidValue(ServerMaxWindowBits)),
            ),
            (
                "permessage-deflate; server_max_window_bits=09",
                Err(InvalidValue(ServerMaxWindowBits)),
            ),
            (
                "permessage-deflate; server_max_window_bits=010",
                Err(InvalidValue(ServerMaxWindowBits)),
            ),
            (
                "permessage-deflate; client_max_window_bits=0",
                Err(InvalidValue(ClientMaxWindowBits)),
            ),
            (
                "permessage-deflate; client_max_window_bits=1a",
                Err(InvalidValue(ClientMaxWindowBits)),
            ),
            (
                "permessage-deflate; client_max_window_bits=\"+9\"",
                Err(InvalidValue(ClientMaxWindowBits)),
            ),
            (
                "permessage-deflate; server_no_context_takeover=1",
                Err(InvalidValue(ServerNoContextTakeover)),
            ),
            (
                "permessage-deflate; client_no_context_takeover=\"x\"",
                Err(InvalidValue(ClientNoContextTakeover)),
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                Err(DuplicateParameter(ServerNoContextTakeover)),
            ),
            (
                "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
                Err(DuplicateParameter(ClientMaxWindowBits)),
            ),
            (
                "permessage-deflate; foo",
                Err(UnknownParameter("foo".into())),
            ),
            // Names are exact: the RFC defines them in lower case.
            (
                "permessage-deflate; Server_No_Context_Takeover",
                Err(UnknownParameter("Server_No_Context_Takeover".into())),
            ),
        ];
        for (header, expected) in table {
            assert_eq!(&offer(header), expected, "{header}");
        }
    }

    #[test]
    fn server_answers_what_it_commits_to() {
        let on = DeflateConfig::enabled();
        let p = |s: bool, c: bool, sw: u8, cw: u8| DeflateParams {
            server_no_context_takeover: s,
            client_no_context_takeover: c,
            server_max_window_bits: sw,
            client_max_window_bits: cw,
            ..DeflateParams::default()
        };
        let table: &[(&str, Option<(DeflateParams, &str)>)] = &[
            // Chrome / Firefox.
            (
                "permessage-deflate; client_max_window_bits",
                Some((p(false, false, 15, 15), "permessage-deflate")),
            ),
            (
                "permessage-deflate",
                Some((p(false, false, 15, 15), "permessage-deflate")),
            ),
            // Autobahn 13.x offers.
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits",
                Some((
                    p(false, true, 15, 15),
                    "permessage-deflate; client_no_context_takeover",
                )),
            ),
            (
                "permessage-deflate; server_max_window_bits=9",
                Some((
                    p(false, false, 9, 15),
                    "permessage-deflate; server_max_window_bits=9",
                )),
            ),
            (
                "permessage-deflate; client_max_window_bits=9",
                Some((
                    p(false, false, 15, 9),
                    "permessage-deflate; client_max_window_bits=9",
                )),
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=\"12\"",
                Some((
                    p(true, false, 12, 15),
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
                )),
            ),
            // zlib cannot compress with a window of 8: the offer is declined...
            ("permessage-deflate; server_max_window_bits=8", None),
            // ...and the next one taken.
            (
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
                Some((
                    p(false, false, 9, 15),
                    "permessage-deflate; server_max_window_bits=9",
                )),
            ),
            // A client's 8 is inflated with 9: accepted.
            (
                "permessage-deflate; client_max_window_bits=8",
                Some((
                    p(false, false, 15, 8),
                    "permessage-deflate; client_max_window_bits=8",
                )),
            ),
            // Invalid offers are declined, the first valid one accepted.
            (
                "x-webkit-deflate-frame, permessage-deflate; foo=1, permessage-deflate; server_no_context_takeover=x, permessage-deflate; client_no_context_takeover",
                Some((
                    p(false, true, 15, 15),
                    "permessage-deflate; client_no_context_takeover",
                )),
            ),
            (
                "permessage-deflate; server_max_window_bits=9; server_max_window_bits=10",
                None,
            ),
            ("x-webkit-deflate-frame", None),
        ];
        for (header, expected) in table {
            let got = server(header, &on);
            let expected = expected.map(|(p, s)| (p, s.to_string()));
            assert_eq!(got, expected, "{header}");
        }
        // Off: nothing is accepted.
        assert_eq!(
            server("permessage-deflate", &DeflateConfig::default()),
            None
        );
    }

    #[test]
    fn server_configuration_narrows_the_answer() {
        let config = DeflateConfig {
            server_max_window_bits: 10,
            client_max_window_bits: 11,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::enabled()
        };
        let (params, answer) =
            server("permessage-deflate; client_max_window_bits", &config).unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11"
        );
        assert_eq!(
            (params.server_max_window_bits, params.client_max_window_bits),
            (10, 11)
        );
        // client_max_window_bits is never answered unless offered (§7.1.2.2).
        let (params, answer) = server("permessage-deflate", &config).unwrap();
        assert!(!answer.contains("client_max_window_bits"), "{answer}");
        assert_eq!(params.client_max_window_bits, 15);
        // An offered smaller value wins over the configuration.
        let (params, answer) = server(
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
            &config,
        )
        .unwrap();
        assert_eq!(
            (params.server_max_window_bits, params.client_max_window_bits),
            (9, 10)
        );
        assert!(
            answer.ends_with("server_max_window_bits=9; client_max_window_bits=10"),
            "{answer}"
        );
    }

    #[test]
    fn client_offer_and_answer_checks() {
        let on = DeflateConfig::enabled();
        assert_eq!(on.offer(), "permessage-deflate; client_max_window_bits");
        let narrow = DeflateConfig {
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            server_no_context_takeover: true,
            ..DeflateConfig::enabled()
        };
        assert_eq!(
            narrow.offer(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
        );
        // Every offer this side makes is accepted by its own server logic with the same
        // parameters the client then derives from the answer.
        for config in [on.clone(), narrow.clone()] {
            let (server_params, answer) = server(&config.offer(), &on).unwrap();
            let client_params = client(&answer, &config).unwrap().unwrap();
            assert_eq!(
                (
                    server_params.server_no_context_takeover,
                    server_params.server_max_window_bits
                ),
                (
                    client_params.server_no_context_takeover,
                    client_params.server_max_window_bits
                ),
                "{answer}"
            );
            assert!(client_params.client_max_window_bits <= server_params.client_max_window_bits);
        }

        use DeflateParam::*;
        use ExtensionError::*;
        assert_eq!(client("", &on), Ok(None));
        let ok = client("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=9", &on)
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                ok.server_no_context_takeover,
                ok.client_no_context_takeover,
                ok.server_max_window_bits,
                ok.client_max_window_bits
            ),
            (true, true, 8, 9)
        );
        for (answer, config, err) in [
            (
                "permessage-deflate, permessage-deflate",
                &on,
                SeveralAnswers,
            ),
            (
                "permessage-deflate; client_max_window_bits",
                &on,
                InvalidValue(ClientMaxWindowBits),
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                &on,
                InvalidValue(ServerMaxWindowBits),
            ),
            (
                "permessage-deflate; foo",
                &on,
                UnknownParameter("foo".into()),
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                &on,
                DuplicateParameter(ServerNoContextTakeover),
            ),
            (
                "permessage-deflate",
                &narrow,
                MissingParameter(ServerMaxWindowBits),
            ),
            (
                "permessage-deflate; server_max_window_bits=10",
                &narrow,
                MissingParameter(ServerNoContextTakeover),
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
                &narrow,
                WindowAboveOffer {
                    param: ServerMaxWindowBits,
                    offered: 10,
                    answered: 11,
                },
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=13",
                &narrow,
                WindowAboveOffer {
                    param: ClientMaxWindowBits,
                    offered: 12,
                    answered: 13,
                },
            ),
        ] {
            assert_eq!(client(answer, config), Err(err), "{answer}");
        }
    }
}
