//! WebSocket extensions: the `Sec-WebSocket-Extensions` header, and permessage-deflate
//! (RFC 7692), the one extension browsers offer.
//!
//! ```text
//!  handshake   header ──parse_extensions──▶ offers ──negotiation──▶ DeflateParams
//!              (server: first offer it can honour → response header;
//!               client: its offer → the server's answer, verified)
//!                                                       │
//!  connection  Connection::with_deflate(params) ◀───────┘
//!              receive: RSV1 on a message's first frame → inflate (bounded chunks)
//!                       → UTF-8 on the inflated bytes → size limit on the inflated size
//!              send:    compress (above a threshold) → strip 00 00 ff ff → RSV1, fragment
//! ```
//!
//! Negotiation is kept apart from the codec (as tokio-websockets does): [`header`] knows
//! only the grammar, [`negotiation`] only what the four parameters mean, and [`deflate`]
//! only the compression streams the connection drives. Nothing here does IO or keeps
//! thread-locals: a connection owns its streams.
//!
//! # Why it is built this way
//! - **Backend.** `flate2` on `zlib-rs`: pure Rust like the rest of the engine, and a zlib
//!   implementation, so the window size can be set (the default `miniz_oxide` backend
//!   cannot, which is what failed Autobahn 13.3–13.6 for tungstenite's attempts).
//! - **Window of 8 bits.** zlib cannot produce a 256-byte window (it silently uses 512), so
//!   a server declines an offer that demands `server_max_window_bits=8`, and a client told
//!   to compress with 8 sends its messages uncompressed (always allowed: RSV1 clear). A
//!   peer's 8-bit window is inflated with 9, which reads it correctly.
//! - **Zip bombs.** A frame is inflated as its bytes arrive, into a buffer that grows in
//!   steps up to the message limit plus one byte and no further: a 1 KiB frame that would
//!   inflate to 1 GiB costs at most the limit before the connection fails with 1009.
//! - **Memory.** The streams are allocated when the first compressed message arrives or is
//!   sent, not at the handshake, and freed after each message where the direction has no
//!   context takeover. See [`DeflateConfig`] for the figures.

pub mod deflate;
pub mod header;
pub mod negotiation;

use std::fmt;

pub use deflate::StreamPool;
pub use header::{ExtensionOffer, ExtensionParam, parse_extensions};
pub use negotiation::{DeflateConfig, DeflateOffer, DeflateParams, PERMESSAGE_DEFLATE};

/// One of permessage-deflate's four parameters (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeflateParam {
    /// `server_no_context_takeover` (§7.1.1.1).
    ServerNoContextTakeover,
    /// `client_no_context_takeover` (§7.1.1.2).
    ClientNoContextTakeover,
    /// `server_max_window_bits` (§7.1.2.1).
    ServerMaxWindowBits,
    /// `client_max_window_bits` (§7.1.2.2).
    ClientMaxWindowBits,
}

impl DeflateParam {
    /// The parameter's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            DeflateParam::ServerNoContextTakeover => "server_no_context_takeover",
            DeflateParam::ClientNoContextTakeover => "client_no_context_takeover",
            DeflateParam::ServerMaxWindowBits => "server_max_window_bits",
            DeflateParam::ClientMaxWindowBits => "client_max_window_bits",
        }
    }

    /// The parameter called `name`, if it is one of the four.
    pub fn from_name(name: &str) -> Option<DeflateParam> {
        [
            DeflateParam::ServerNoContextTakeover,
            DeflateParam::ClientNoContextTakeover,
            DeflateParam::ServerMaxWindowBits,
            DeflateParam::ClientMaxWindowBits,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

impl fmt::Display for DeflateParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an extension header, an offer or an answer was not usable.
///
/// A server that meets one of these in an offer declines that offer (RFC 7692 §5: it
/// answers without it, and the connection goes on uncompressed); a client that meets one in
/// the server's answer fails the connection ([`ClientHandshakeError::Extension`]).
///
/// [`ClientHandshakeError::Extension`]: crate::proto::handshake::ClientHandshakeError::Extension
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionError {
    // ---- the peer's header breaks the grammar (RFC 6455 §9.1) ---------------------------
    /// Not an extension list; `at` is the byte offset in the header value where it broke.
    Malformed {
        /// Offset of the first byte that does not fit the grammar.
        at: usize,
    },
    /// A quoted parameter value that, unescaped, is not a token (RFC 6455 §9.1).
    QuotedValueNotToken,

    // ---- the peer's parameters break RFC 7692 §7 -----------------------------------------
    /// A parameter permessage-deflate does not define (§7: decline / fail).
    UnknownParameter(String),
    /// A parameter given twice in one element (§7).
    DuplicateParameter(DeflateParam),
    /// A value where none is allowed, none where one is required, or a window size that is
    /// not a decimal 8–15 without leading zeros (§7.1.2).
    InvalidValue(DeflateParam),

    // ---- the server's answer does not fit the client's offer (RFC 7692 §5, §7) -----------
    /// The answer holds permessage-deflate more than once.
    SeveralAnswers,
    /// The answer lacks a parameter the offer requires of an acceptance
    /// (`server_no_context_takeover` §7.1.1.1, `server_max_window_bits` §7.1.2.1).
    MissingParameter(DeflateParam),
    /// A window size above the one offered.
    WindowAboveOffer {
        /// Which window.
        param: DeflateParam,
        /// The value offered.
        offered: u8,
        /// The value answered.
        answered: u8,
    },
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtensionError::Malformed { at } => {
                write!(f, "malformed Sec-WebSocket-Extensions at byte {at}")
            }
            ExtensionError::QuotedValueNotToken => {
                f.write_str("quoted extension parameter value is not a token")
            }
            ExtensionError::UnknownParameter(p) => {
                write!(f, "unknown permessage-deflate parameter {p:?}")
            }
            ExtensionError::DuplicateParameter(p) => write!(f, "duplicated parameter {p}"),
            ExtensionError::InvalidValue(p) => write!(f, "invalid value for {p}"),
            ExtensionError::SeveralAnswers => {
                f.write_str("permessage-deflate answered more than once")
            }
            ExtensionError::MissingParameter(p) => {
                write!(f, "server accepted the offer without {p}")
            }
            ExtensionError::WindowAboveOffer {
                param,
                offered,
                answered,
            } => write!(
                f,
                "server answered {param}={answered}, above the {offered} offered"
            ),
        }
    }
}

impl std::error::Error for ExtensionError {}
