//! What the connections do: the closed and open loops, idle connections, raw TCP and the
//! fan-out's publishers and subscribers; the payloads they check; the open loop's pacer;
//! and the stages that open and close them on a ramp.

pub(crate) mod connection;
pub(crate) mod fanout;
pub(crate) mod pacer;
pub(crate) mod payload;
pub mod stages;
