//! The sans-IO RFC 6455 protocol core.
//!
//! Nothing in here touches a socket, a runtime or a clock: bytes go in, events and bytes to
//! write come out. The IO drivers in [`crate::runtime`] are thin layers over this module, so
//! another driver can be added without touching the protocol.
//!
//! | file | concept |
//! |---|---|
//! | [`handshake`] | the opening handshake (§4): request parsing, accept key, client validation |
//! | [`frame`] | the frame header (§5.2): a view decoded from bytes, and its encoding |
//! | [`mask`] | payload masking (§5.3), SIMD tiers over a scalar reference |
//! | [`utf8`] | streaming UTF-8 validation across reads and fragments (§8.1) |
//! | [`message`] | messages as zero-copy `Bytes`, and fragment reassembly (§5.4) |
//! | [`close`] | close codes and close frame payloads (§5.5.1, §7.4) |
//! | [`outgoing`] | the queue of encoded frames waiting for the socket |
//! | [`prepared`] | a message framed once, queued on many server connections (broadcast) |
//! | [`connection`] | the state machine that ties them together |
//! | [`timers`] | its deadlines (keepalive, idle, close timeout, close hold): `now` in, next deadline out |
//! | [`extensions`] | `Sec-WebSocket-Extensions` and permessage-deflate (RFC 7692) |
//! | [`role`] | client or server: the rules that differ between them |
//! | [`config`] | limits and behaviour, with their costs |
//! | [`error`] | typed errors, grouped by who is at fault |

pub mod close;
pub mod config;
pub mod connection;
pub mod error;
pub mod extensions;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod outgoing;
pub mod prepared;
pub mod role;
pub mod timers;
pub mod utf8;
