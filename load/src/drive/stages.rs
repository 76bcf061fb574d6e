//! `--stages "10s:100,30s:1000,10s:0"`: connection ramps, as k6 has them.
//!
//! Each stage moves the number of open connections linearly from where the previous one
//! ended (0 at the start) to its target over its duration; the run lasts the stages'
//! sum and is measured throughout (no warm-up). Connection `i` is open while the target
//! is above `i`: it connects when the ramp passes `i + 1`, sends (closed or open loop)
//! and closes with 1000 when a ramp down passes it again, so a ramp measures the
//! server's handshakes and its behaviour as the count grows, not only a plateau.

use std::time::Duration;

/// One stage: reach `target` connections over `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// How long the ramp takes.
    pub length: Duration,
    /// Connections open at its end.
    pub target: usize,
}

/// The stages of `--stages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages(pub Vec<Stage>);

impl std::fmt::Display for Stages {
    /// As written: `10s:100,30s:1000`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, stage) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let length = humantime::format_duration(stage.length);
            write!(
                f,
                "{sep}{}:{}",
                length.to_string().replace(' ', ""),
                stage.target
            )?;
        }
        Ok(())
    }
}

/// Parses `--stages`.
pub fn parse_arg(s: &str) -> Result<Stages, String> {
    parse(s).map(Stages)
}

/// Parses `DURATION:TARGET,...` (durations as `humantime` reads them: `10s`, `500ms`,
/// `1m30s`).
pub fn parse(s: &str) -> Result<Vec<Stage>, String> {
    let stages = s
        .split(',')
        .map(|stage| {
            let (length, target) = stage
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("{stage:?} is not DURATION:CONNECTIONS"))?;
            let length =
                humantime::parse_duration(length.trim()).map_err(|e| format!("{length:?}: {e}"))?;
            let target = target
                .trim()
                .parse()
                .map_err(|e| format!("{target:?}: {e}"))?;
            Ok(Stage { length, target })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if stages.iter().all(|s| s.length.is_zero()) {
        return Err("the stages last no time".into());
    }
    if stages.iter().all(|s| s.target == 0) {
        return Err("no stage opens a connection".into());
    }
    Ok(stages)
}

/// The whole run.
pub fn total(stages: &[Stage]) -> Duration {
    stages.iter().map(|s| s.length).sum()
}

/// The most connections open at once.
pub fn peak(stages: &[Stage]) -> usize {
    stages.iter().map(|s| s.target).max().unwrap_or(0)
}

/// When connection `i` is open: (from, until) offsets from the start, in order.
pub fn schedule(stages: &[Stage], i: usize) -> Vec<(Duration, Duration)> {
    // Open while the target is at least i + 1.
    let level = (i + 1) as f64;
    let mut open = Vec::new();
    let mut opened: Option<Duration> = None;
    let (mut at, mut from) = (Duration::ZERO, 0.0f64);
    for stage in stages {
        let to = stage.target as f64;
        let end = at + stage.length;
        // Where the ramp from `from` to `to` crosses `level`, if it does.
        let crossing = |at: Duration| {
            if stage.length.is_zero() || from == to {
                at
            } else {
                at + stage
                    .length
                    .mul_f64(((level - from) / (to - from)).clamp(0.0, 1.0))
            }
        };
        match opened {
            None if to >= level => opened = Some(if from >= level { at } else { crossing(at) }),
            Some(since) if to < level => {
                let until = if from < level { at } else { crossing(at) };
                if until > since {
                    open.push((since, until));
                }
                opened = None;
            }
            _ => {}
        }
        at = end;
        from = to;
    }
    if let Some(since) = opened
        && at > since
    {
        open.push((since, at));
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64, target: usize) -> Stage {
        Stage {
            length: Duration::from_secs(secs),
            target,
        }
    }

    #[test]
    fn stages_parse_as_people_write_them() {
        assert_eq!(
            parse("10s:100, 30s:1000,500ms:0").unwrap(),
            [
                s(10, 100),
                s(30, 1000),
                Stage {
                    length: Duration::from_millis(500),
                    target: 0
                }
            ]
        );
        for bad in ["", "10s", "10:5", "10s:x", "0s:10", "10s:0"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let written = "10s:100,1m30s:1000,500ms:0";
        assert_eq!(parse_arg(written).unwrap().to_string(), written);
    }

    #[test]
    fn a_ramp_opens_connection_i_when_it_passes_i_plus_one() {
        let stages = [s(10, 10), s(10, 10)];
        assert_eq!(total(&stages), Duration::from_secs(20));
        assert_eq!(peak(&stages), 10);
        // 0 → 10 over 10 s: connection 0 at 1 s, connection 9 at 10 s; open to the end.
        assert_eq!(
            schedule(&stages, 0),
            [(Duration::from_secs(1), Duration::from_secs(20))]
        );
        assert_eq!(
            schedule(&stages, 9),
            [(Duration::from_secs(10), Duration::from_secs(20))]
        );
        assert!(schedule(&stages, 10).is_empty(), "never above 10");
    }

    #[test]
    fn a_ramp_down_closes_from_the_top_and_a_second_ramp_reopens() {
        // 0 → 4 in 4 s, 4 → 0 in 4 s, hold 0 for 2 s, 0 → 2 in 2 s.
        let stages = [s(4, 4), s(4, 0), s(2, 0), s(2, 2)];
        let secs = Duration::from_secs;
        // Connection 3 (level 4): open at 4 s, closed as the ramp down leaves 4 (at 4 s):
        // never open for any time.
        assert!(schedule(&stages, 3).is_empty());
        // Connection 1 (level 2): 2 s..6 s, then again from 12 s (the end): nothing more.
        assert_eq!(schedule(&stages, 1), [(secs(2), secs(6))]);
        // Connection 0 (level 1): 1 s..7 s, then 11 s..12 s.
        assert_eq!(
            schedule(&stages, 0),
            [(secs(1), secs(7)), (secs(11), secs(12))]
        );
    }

    #[test]
    fn a_step_opens_everything_at_once() {
        // A zero-length stage is a step.
        let stages = [
            Stage {
                length: Duration::ZERO,
                target: 3,
            },
            s(5, 3),
        ];
        for i in 0..3 {
            assert_eq!(
                schedule(&stages, i),
                [(Duration::ZERO, Duration::from_secs(5))]
            );
        }
    }
}
