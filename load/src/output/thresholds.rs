//! Pass/fail thresholds, as k6 has them: a run that misses one makes `load` exit with
//! status 99 (k6's code for it; 1 is a failed run, 2 a usage error) and say which on
//! stderr (and in the JSON), so that a CI job can fail on a latency or throughput
//! regression without parsing the report.
//!
//! The error rate counts what failed among what was tried: errors of every kind and
//! connections that could not be opened, over those plus the echoes received.
//! Mismatches (an echo that differs from what was sent) are never tolerated: they fail
//! the run whatever the thresholds.

use std::time::Duration;

use crate::config::Config;
use crate::report::Report;

/// The thresholds a run must meet (none by default).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// `--max-p99`: the 99th percentile latency at most this.
    pub max_p99: Option<Duration>,
    /// `--max-error-rate`: at most this fraction of what was tried failed.
    pub max_error_rate: Option<f64>,
    /// `--min-rate`: at least this many echoes per second over the measured window.
    pub min_rate: Option<f64>,
}

impl Thresholds {
    /// The thresholds on the command line.
    pub fn from_config(config: &Config) -> Self {
        Thresholds {
            max_p99: config.max_p99,
            max_error_rate: config.max_error_rate,
            min_rate: config.min_rate,
        }
    }

    /// Whether any is set.
    pub fn any(&self) -> bool {
        *self != Thresholds::default()
    }

    /// The thresholds `report` misses, each with the figure that missed it.
    pub fn missed(&self, report: &Report) -> Vec<String> {
        let mut missed = Vec::new();
        if let Some(max) = self.max_p99 {
            let p99 = Duration::from_micros(report.latency_us(0.99));
            if p99 > max {
                missed.push(format!("p99 {p99:?} is over --max-p99 {max:?}"));
            }
        }
        if let Some(max) = self.max_error_rate {
            let rate = error_rate(report);
            if rate > max {
                let failed = failed(report);
                missed.push(format!(
                    "error rate {rate:.6} ({failed} failed of {} tried) is over --max-error-rate {max}",
                    failed + report.totals.messages
                ));
            }
        }
        if let Some(min) = self.min_rate {
            let rate = report.messages_per_sec();
            if rate < min {
                missed.push(format!("{rate:.0} messages/s is under --min-rate {min}"));
            }
        }
        missed
    }

    /// Whether errors within `--max-error-rate` leave the run clean otherwise.
    pub fn tolerates_errors(&self, report: &Report) -> bool {
        self.max_error_rate
            .is_some_and(|max| error_rate(report) <= max)
    }
}

/// Errors of every kind, connections that could not be opened among them (each failed
/// connect is counted as an error of its kind, once).
fn failed(report: &Report) -> u64 {
    report.totals.error_count()
}

/// What failed over what was tried (0 when nothing was).
pub fn error_rate(report: &Report) -> f64 {
    let failed = failed(report);
    let tried = failed + report.totals.messages;
    if tried == 0 {
        0.0
    } else {
        failed as f64 / tried as f64
    }
}
