//! `--sweep FROM:TO`: open-loop runs at rising rates, to find the highest rate a server
//! sustains with its p99 under a target (`--max-p99`), and the curve of p99 against rate.
//!
//! Rates rise geometrically from FROM to TO in `--sweep-steps` runs; the first step
//! that misses (p99 over the target, fewer than 90% of the asked messages answered
//! within the window, or errors past `--max-error-rate`) ends the climb, and `--sweep-refine` more runs bisect between the last rate
//! that met the target and that one. Every step is a whole run of its own (fresh
//! connections, warm-up, `--duration`): open loop, so latency counts from each message's
//! scheduled send time and a server that falls behind shows it, as wrk2 does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Config;
use crate::plot::SweepPoint;
use crate::saved::SavedRun;
use crate::{LoadError, Report, run};

/// Share of the asked rate a step must achieve to count as sustained.
pub const SUSTAINED: f64 = 0.9;

/// One step of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The rate asked for, msg/s in all.
    pub rate: f64,
    /// The rate achieved: echoes that arrived within the window, per second.
    pub achieved: f64,
    /// Median and 99th percentile latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// Errors and mismatches.
    pub problems: u64,
    /// It met the target: p99 within it, the rate sustained, no problem.
    pub passed: bool,
}

/// A sweep's outcome.
pub struct Sweep {
    /// The steps, in the order run.
    pub steps: Vec<Step>,
    /// The target p99 (`--max-p99`), if any.
    pub target: Option<Duration>,
    /// Each step's run, saved form (for `--out`).
    pub runs: Vec<SavedRun>,
}

impl Sweep {
    /// The highest rate that met the target.
    pub fn highest_passing(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| s.passed)
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
    }

    /// The steps by rate, for the plot.
    pub fn points(&self) -> Vec<SweepPoint> {
        let mut steps: Vec<&Step> = self.steps.iter().collect();
        steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        steps
            .iter()
            .map(|s| SweepPoint {
                rate: s.rate,
                achieved: s.achieved,
                p99_us: s.p99_us,
            })
            .collect()
    }

    /// The sweep as one JSON object.
    pub fn to_json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                json!({
                    "rate": s.rate,
                    "answered_per_sec": s.achieved,
                    "p50_us": s.p50_us,
                    "p99_us": s.p99_us,
                    "errors_and_mismatches": s.problems,
                    "passed": s.passed,
                })
            })
            .collect();
        json!({
            "sweep": steps,
            "target_p99_us": self.target.map(|t| t.as_micros() as u64),
            "highest_passing_rate": self.highest_passing().map(|s| s.rate),
        })
    }

    /// The readable table.
    pub fn to_text(&self) -> String {
        let target = match self.target {
            Some(t) => format!("p99 target {t:?}"),
            None => "no p99 target (--max-p99): every step runs".into(),
        };
        let mut out = format!("rate sweep, {target}\n");
        out += "  rate asked     achieved     p50 µs     p99 µs   errors   met\n";
        for s in &self.steps {
            out += &format!(
                "  {:>10.0} {:>12.0} {:>10} {:>10} {:>8}   {}\n",
                s.rate,
                s.achieved,
                s.p50_us,
                s.p99_us,
                s.problems,
                if s.passed { "yes" } else { "no" }
            );
        }
        match self.highest_passing() {
            Some(s) => {
                out += &format!(
                    "  highest rate within the target: {:.0} msg/s (p99 {} µs)\n",
                    s.rate, s.p99_us
                )
            }
            None => out += "  no rate met the target\n",
        }
        out
    }
}

/// The rates of the climb: `steps` from `from` to `to`, geometrically.
pub fn rates(from: f64, to: f64, steps: usize) -> Vec<f64> {
    if steps <= 1 || to <= from {
        return vec![from];
    }
    let ratio = (to / from).powf(1.0 / (steps - 1) as f64);
    (0..steps).map(|i| from * ratio.powi(i as i32)).collect()
}

/// Parses `FROM:TO` (msg/s).
pub fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let (from, to) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not FROM:TO (msg/s)"))?;
    let from: f64 = from.trim().parse().map_err(|e| format!("{from:?}: {e}"))?;
    let to: f64 = to.trim().parse().map_err(|e| format!("{to:?}: {e}"))?;
    if !(from > 0.0 && to >= from && to.is_finite()) {
        return Err(format!("{s:?}: need 0 < FROM <= TO"));
    }
    Ok((from, to))
}

/// Runs the sweep of `config.sweep`; `command` is the command line (for the saved runs).
pub fn sweep(
    config: &Config,
    stop: Arc<AtomicBool>,
    command: &[String],
) -> Result<Sweep, LoadError> {
    let (from, to) = config
        .sweep
        .ok_or_else(|| LoadError::Usage("no --sweep".into()))?;
    if config.rate.is_some() || config.idle || config.raw {
        return Err(LoadError::Usage(
            "--sweep sets the rate itself (no --rate, --idle or --raw)".into(),
        ));
    }
    if config.scenario != crate::Scenario::Echo {
        return Err(LoadError::Usage("--sweep loads echo servers only".into()));
    }
    let mut sweep = Sweep {
        steps: Vec::new(),
        target: config.max_p99,
        runs: Vec::new(),
    };
    let step = |rate: f64, sweep: &mut Sweep| -> Result<bool, LoadError> {
        let mut one = config.clone();
        one.rate = Some(rate);
        one.sweep = None;
        if one.group.is_none() {
            // One group for every step (the rate is each step's label).
            let kind = if config.binary { " binary" } else { "" };
            one.group = Some(format!(
                "C={} S={}{kind} open-loop sweep",
                config.connections, config.size
            ));
        }
        if one.label.is_none() {
            one.label = Some(format!("{:.0} msg/s", rate));
        }
        let report = run(&one, stop.clone(), false)?;
        if report.stopped_early {
            // Cut short: no figure for this rate.
            return Ok(false);
        }
        let s = step_of(rate, &report, &crate::Thresholds::from_config(config));
        eprintln!(
            "sweep: {rate:.0} msg/s asked, {:.0} achieved, p99 {} µs{}",
            s.achieved,
            s.p99_us,
            if s.passed { "" } else { ": missed" }
        );
        let passed = s.passed;
        sweep.steps.push(s);
        sweep.runs.push(crate::saved_run(&one, &report, command));
        Ok(passed)
    };
    let mut last_pass = None;
    let mut first_miss = None;
    for rate in rates(from, to, config.sweep_steps) {
        if stop.load(Ordering::Relaxed) {
            return Ok(sweep);
        }
        if step(rate, &mut sweep)? {
            last_pass = Some(rate);
        } else {
            first_miss = Some(rate);
            break;
        }
    }
    // Bisect between the last rate that met the target and the first that did not.
    if let (Some(mut good), Some(mut bad)) = (last_pass, first_miss) {
        for _ in 0..config.sweep_refine {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mid = (good * bad).sqrt();
            if step(mid, &mut sweep)? {
                good = mid;
            } else {
                bad = mid;
            }
        }
    }
    Ok(sweep)
}

/// A step's figures from its run: it passes when its p99 is within `--max-p99`, it
/// sustained the rate, and it is clean (errors within `--max-error-rate`).
fn step_of(rate: f64, report: &Report, thresholds: &crate::Thresholds) -> Step {
    let p99_us = report.latency_us(0.99);
    let problems = report.totals.error_count() + report.totals.mismatches;
    let within = thresholds
        .max_p99
        .is_none_or(|t| Duration::from_micros(p99_us) <= t);
    let achieved = report.answered_per_sec();
    Step {
        rate,
        achieved,
        p50_us: report.latency_us(0.5),
        p99_us,
        problems,
        passed: within && achieved >= SUSTAINED * rate && report.is_clean_within(thresholds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_climb_geometrically_from_one_end_to_the_other() {
        let r = rates(1_000.0, 64_000.0, 7);
        assert_eq!(r.len(), 7);
        for (got, want) in r.iter().zip([1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 64e3]) {
            assert!((got - want).abs() < 1e-6, "{r:?}");
        }
        assert_eq!(rates(500.0, 500.0, 4), [500.0]);
    }

    #[test]
    fn ranges_parse_and_nonsense_is_refused() {
        assert_eq!(parse_range("1000:50000"), Ok((1000.0, 50000.0)));
        for bad in ["1000", "0:10", "10:5", "a:b", "5:inf"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
