//! A connection's deadlines, kept by the core: keepalive pings, the idle timeout, the close
//! timeout, and the hold on our close frame while the application reads what came before
//! the peer's close.
//!
//! The core has no clock. The driver passes the time in: it calls
//! [`Connection::handle_timeout`] with `now` whenever the time it was last given by
//! [`Connection::poll_timeout`] has come, and once at the end of every turn in which
//! something happened to the connection (bytes received, a message sent, a close started).
//! That call is how the core learns when things happened: received bytes count as activity
//! from that `now`, a close frame starts the close timeout at that `now`. The driver then
//! asks [`Connection::poll_timeout`] when to wake next. Tests drive it with a fake clock,
//! so timer behaviour is checked without sleeping (`engine/tests/proto_timers.rs`).
//!
//! [`Connection::handle_timeout`]: super::connection::Connection::handle_timeout
//! [`Connection::poll_timeout`]: super::connection::Connection::poll_timeout

use std::time::{Duration, Instant};

/// A deadline that passed and ended the connection: the connection is aborted
/// ([`State::Closed`](super::connection::State::Closed), nothing queued) and the driver
/// ends the TCP connection. The application sees 1006: no close frame was exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expired {
    /// Nothing at all arrived for [`Config::idle_timeout`](super::config::Config::idle_timeout).
    Idle,
    /// The peer did not answer our close frame within
    /// [`Config::close_timeout`](super::config::Config::close_timeout) (RFC 6455 §7.1.1).
    CloseUnanswered,
}

impl Expired {
    /// A short description, for the close reason the application sees.
    pub fn describe(self) -> &'static str {
        match self {
            Expired::Idle => "idle timeout",
            Expired::CloseUnanswered => "the peer did not answer the close frame",
        }
    }
}

/// The hold on our pending close frame (see [`Connection::hold_close`]).
///
/// [`Connection::hold_close`]: super::connection::Connection::hold_close
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum CloseHold {
    /// Not held: the close frame goes out at the next drain.
    #[default]
    Off,
    /// Asked for; starts at the next `handle_timeout`.
    Asked,
    /// Held since then, at most the close timeout.
    Since(Instant),
    /// Held for the whole close timeout once: never held again.
    Expired,
}

impl CloseHold {
    /// Whether the close frame is held back now.
    #[inline]
    pub(crate) fn holds(self) -> bool {
        matches!(self, CloseHold::Asked | CloseHold::Since(_))
    }
}

/// The times the deadlines count from.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Bytes arrived since the last `handle_timeout`.
    pub(crate) activity: bool,
    /// When bytes last arrived (the first `handle_timeout` counts as an arrival).
    pub(crate) last_received: Option<Instant>,
    /// When we last sent a keepalive ping.
    pub(crate) ping_sent: Option<Instant>,
    /// The number of the last keepalive ping (its payload, 8 bytes big-endian), so that
    /// only its own pong is timed, not an unsolicited one nor the application's.
    pub(crate) ping_seq: u64,
    /// The keepalive ping whose pong has not arrived.
    pub(crate) pong_due: Option<u64>,
    /// Its pong arrived since the last `fire`, which times it at its `now`.
    pub(crate) pong_arrived: bool,
    /// The round-trip time of the last keepalive ping answered.
    pub(crate) rtt: Option<Duration>,
    /// When our close frame was queued (for the close timeout).
    pub(crate) close_started: Option<Instant>,
    pub(crate) hold: CloseHold,
}

/// The settings the deadlines use, from [`Config`](super::config::Config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
}

/// What [`Timers::fire`] asks the connection to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Nothing,
    /// Queue a keepalive ping.
    Ping,
    /// Release the hold on the close frame.
    ReleaseClose,
    /// Abort: the deadline passed.
    Abort(Expired),
}

/// Which deadlines apply, from the connection's closing-handshake state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Open: keepalive and idle.
    Open,
    /// Our close frame is out: the close timeout.
    CloseSent,
    /// The peer's close (or its error) is answered by ours, maybe held.
    ClosePending,
    /// Nothing left to time.
    Closed,
}

impl Timers {
    /// Records `now` as the time of what happened since the last call, then fires what is
    /// due at `now`.
    pub(crate) fn fire(&mut self, phase: Phase, settings: Settings, now: Instant) -> Action {
        if self.activity || self.last_received.is_none() {
            self.last_received = Some(now);
            self.activity = false;
        }
        if std::mem::take(&mut self.pong_arrived)
            && let Some(sent) = self.ping_sent
        {
            self.rtt = Some(now.saturating_duration_since(sent));
        }
        match phase {
            Phase::Open => {
                let last = self.last_received.unwrap_or(now);
                if settings.idle_timeout.is_some_and(|idle| now >= last + idle) {
                    return Action::Abort(Expired::Idle);
                }
                if let Some(every) = settings.ping_interval {
                    let quiet_since = self.ping_sent.map_or(last, |p| p.max(last));
                    if now >= quiet_since + every {
                        self.ping_sent = Some(now);
                        return Action::Ping;
                    }
                }
                Action::Nothing
            }
            Phase::CloseSent => {
                let since = *self.close_started.get_or_insert(now);
                if now >= since + settings.close_timeout {
                    return Action::Abort(Expired::CloseUnanswered);
                }
                Action::Nothing
            }
            Phase::ClosePending => match self.hold {
                CloseHold::Asked => {
                    self.hold = CloseHold::Since(now);
                    Action::Nothing
                }
                CloseHold::Since(since) if now >= since + settings.close_timeout => {
                    self.hold = CloseHold::Expired;
                    Action::ReleaseClose
                }
                _ => Action::Nothing,
            },
            Phase::Closed => Action::Nothing,
        }
    }

    /// The next deadline, as of the last [`fire`](Self::fire).
    pub(crate) fn next(&self, phase: Phase, settings: Settings) -> Option<Instant> {
        match phase {
            Phase::Open => {
                let last = self.last_received?;
                let idle = settings.idle_timeout.map(|idle| last + idle);
                let ping = settings.ping_interval.map(|every| {
                    let quiet_since = self.ping_sent.map_or(last, |p| p.max(last));
                    quiet_since + every
                });
                match (idle, ping) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Phase::CloseSent => self.close_started.map(|t| t + settings.close_timeout),
            Phase::ClosePending => match self.hold {
                CloseHold::Since(since) => Some(since + settings.close_timeout),
                _ => None,
            },
            Phase::Closed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            ping_interval: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(25)),
            close_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn pings_after_a_quiet_interval_then_times_out() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        assert_eq!(t.fire(Phase::Open, settings(), t0), Action::Nothing);
        assert_eq!(
            t.next(Phase::Open, settings()),
            Some(t0 + Duration::from_secs(10))
        );
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(t.fire(Phase::Open, settings(), t10), Action::Ping);
        // The next ping counts from the one just sent; idle still from the last arrival.
        assert_eq!(
            t.next(Phase::Open, settings()),
            Some(t0 + Duration::from_secs(20))
        );
        assert_eq!(
            t.fire(Phase::Open, settings(), t0 + Duration::from_secs(20)),
            Action::Ping
        );
        assert_eq!(
            t.next(Phase::Open, settings()),
            Some(t0 + Duration::from_secs(25))
        );
        assert_eq!(
            t.fire(Phase::Open, settings(), t0 + Duration::from_secs(25)),
            Action::Abort(Expired::Idle)
        );
    }

    #[test]
    fn activity_moves_the_deadlines() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.fire(Phase::Open, settings(), t0);
        t.activity = true;
        let t7 = t0 + Duration::from_secs(7);
        assert_eq!(t.fire(Phase::Open, settings(), t7), Action::Nothing);
        assert_eq!(
            t.next(Phase::Open, settings()),
            Some(t7 + Duration::from_secs(10))
        );
    }

    #[test]
    fn a_hold_lasts_one_close_timeout_and_never_again() {
        let t0 = Instant::now();
        let mut t = Timers {
            hold: CloseHold::Asked,
            ..Timers::default()
        };
        assert_eq!(t.fire(Phase::ClosePending, settings(), t0), Action::Nothing);
        assert_eq!(
            t.next(Phase::ClosePending, settings()),
            Some(t0 + Duration::from_secs(5))
        );
        assert_eq!(
            t.fire(Phase::ClosePending, settings(), t0 + Duration::from_secs(5)),
            Action::ReleaseClose
        );
        assert_eq!(t.hold, CloseHold::Expired);
        assert!(!t.hold.holds());
        assert_eq!(t.next(Phase::ClosePending, settings()), None);
    }
}
