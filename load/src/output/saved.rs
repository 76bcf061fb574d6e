//! A run saved to a directory (`--out DIR`), and read back for `load compare`.
//!
//! - `run.json`: the command, the environment (CPU, kernel, build), the results (what
//!   `--json` prints, the per-second series and the load threads' self-check included),
//!   and the run's `label` and `group` for comparisons.
//! - `latency.hlog`: the latency (µs) of every second as an HdrHistogram interval log
//!   (V2 deflate histograms, the format of HdrHistogram's own tools such as
//!   HistogramLogAnalyzer): histograms merge, percentiles do not, so rounds and runs are
//!   combined from these, never by averaging p99s.
//! - `report.html`: the run's report page (plots of the latency by percentile and of
//!   the run over time), self-contained.
//!
//! Reading a directory and saving it again gives the same bytes.

use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use serde_json::{Value, json};

use crate::report::Report;
use crate::series::{Seconds, Sparse};
use crate::stats::histogram;

/// The `format` of `run.json`.
pub const FORMAT: &str = "wsengine-load-run/1";

/// The files of a saved run.
pub const RUN_JSON: &str = "run.json";
/// The interval log.
pub const LATENCY_LOG: &str = "latency.hlog";
/// The report page.
pub const REPORT_HTML: &str = "report.html";

/// Why a saved run could not be written or read.
#[derive(Debug)]
pub enum SavedError {
    /// The file could not be read or written.
    Io(std::path::PathBuf, std::io::Error),
    /// The file is not what `load --out` writes.
    Format(std::path::PathBuf, String),
}

impl std::fmt::Display for SavedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SavedError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            SavedError::Format(path, why) => write!(f, "{}: {why}", path.display()),
        }
    }
}

impl std::error::Error for SavedError {}

/// One second of the interval log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Since the measured window began.
    pub start: Duration,
    /// Its length (a second, less for a last partial one).
    pub length: Duration,
    /// Its latencies, µs.
    pub latency: Sparse,
}

/// A run as saved.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedRun {
    /// `run.json`.
    pub json: Value,
    /// `latency.hlog`.
    pub intervals: Vec<Interval>,
}

impl SavedRun {
    /// A finished run, to save: `label` and `group` name it for `load compare`, `command`
    /// is the command line, `environment` from [`crate::environment::describe`].
    pub fn from_report(
        report: &Report,
        label: &str,
        group: &str,
        command: &[String],
        environment: Value,
    ) -> Self {
        let measure_started = report.measure_started;
        let seconds = &report.totals.seconds;
        let intervals = (0..Seconds::count(report.measured))
            .map(|i| {
                let (figures, latency) = seconds.second(i, report.measured);
                Interval {
                    start: figures.start,
                    length: figures.length,
                    latency: Sparse::of(&latency),
                }
            })
            .collect();
        let started = measure_started
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as f64
            / 1e3;
        SavedRun {
            json: json!({
                "format": FORMAT,
                "label": label,
                "group": group,
                "command": command,
                "environment": environment,
                "measure_started_unix_s": started,
                "results": report.to_json(),
            }),
            intervals,
        }
    }

    /// The run's label (which server or build it measured).
    pub fn label(&self) -> &str {
        self.json["label"].as_str().unwrap_or("")
    }

    /// The run's group (which scenario): runs are compared within a group.
    pub fn group(&self) -> &str {
        self.json["group"].as_str().unwrap_or("")
    }

    /// The results object (what `--json` prints).
    pub fn results(&self) -> &Value {
        &self.json["results"]
    }

    /// The latency of the whole measured window: every second merged.
    pub fn latency(&self) -> Histogram<u64> {
        let mut all = Sparse::default();
        for interval in &self.intervals {
            all.extend(&interval.latency);
        }
        all.to_histogram()
    }

    /// Writes `run.json` and `latency.hlog` into `dir` (made if missing).
    pub fn save(&self, dir: &Path) -> Result<(), SavedError> {
        std::fs::create_dir_all(dir).map_err(|e| SavedError::Io(dir.to_path_buf(), e))?;
        let mut text = serde_json::to_string_pretty(&self.json)
            .map_err(|e| SavedError::Format(dir.join(RUN_JSON), e.to_string()))?;
        text.push('\n');
        write(&dir.join(RUN_JSON), text.as_bytes())?;
        let log = self
            .interval_log()
            .map_err(|why| SavedError::Format(dir.join(LATENCY_LOG), why))?;
        write(&dir.join(LATENCY_LOG), &log)
    }

    /// The interval log's bytes.
    fn interval_log(&self) -> Result<Vec<u8>, String> {
        let started = self.json["measure_started_unix_s"].as_f64().unwrap_or(0.0);
        let mut out = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let mut writer = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "load (wsengine): latency in µs, one histogram per second of {}",
                self.json["results"]["url"].as_str().unwrap_or("the run")
            ))
            .with_start_time(UNIX_EPOCH + Duration::from_secs_f64(started.max(0.0)))
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| e.to_string())?;
        for interval in &self.intervals {
            writer
                .write_histogram(
                    &interval.latency.to_histogram(),
                    interval.start,
                    interval.length,
                    None,
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    /// Reads a run saved by `--out` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, SavedError> {
        let json_path = dir.join(RUN_JSON);
        let text = std::fs::read(&json_path).map_err(|e| SavedError::Io(json_path.clone(), e))?;
        let json: Value = serde_json::from_slice(&text)
            .map_err(|e| SavedError::Format(json_path.clone(), e.to_string()))?;
        if json["format"] != FORMAT {
            return Err(SavedError::Format(
                json_path,
                format!("not a saved load run (format {})", json["format"]),
            ));
        }
        let log_path = dir.join(LATENCY_LOG);
        let log = std::fs::read(&log_path).map_err(|e| SavedError::Io(log_path.clone(), e))?;
        let bad = |why: String| SavedError::Format(log_path.clone(), why);
        let mut intervals = Vec::new();
        let mut deserializer = Deserializer::new();
        for entry in IntervalLogIterator::new(&log) {
            let entry = entry.map_err(|e| bad(format!("{e:?}")))?;
            let LogEntry::Interval(interval) = entry else {
                continue;
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(interval.encoded_histogram())
                .map_err(|e| bad(e.to_string()))?;
            let h: Histogram<u64> = deserializer
                .deserialize(&mut Cursor::new(bytes))
                .map_err(|e| bad(format!("{e:?}")))?;
            intervals.push(Interval {
                start: interval.start_timestamp(),
                length: interval.duration(),
                latency: rebound(&h),
            });
        }
        Ok(SavedRun { json, intervals })
    }
}

/// A histogram read from a log (bounds as written, possibly another tool's) as the
/// recorded values of ours.
fn rebound(h: &Histogram<u64>) -> Sparse {
    let mut ours = histogram();
    for v in h.iter_recorded() {
        let _ = ours.record_n(v.value_iterated_to(), v.count_at_value());
    }
    Sparse::of(&ours)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SavedError> {
    std::fs::write(path, bytes).map_err(|e| SavedError::Io(path.to_path_buf(), e))
}

/// Merges the latency of several runs (rounds of one server, say): the count is the
/// sum, the max the max, and percentiles come from the merged histogram.
pub fn merged_latency<'a>(runs: impl IntoIterator<Item = &'a SavedRun>) -> Histogram<u64> {
    let mut all = histogram();
    for run in runs {
        let _ = all.add(run.latency());
    }
    all
}
