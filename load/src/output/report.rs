//! The figures: a readable report, one JSON object, and the live progress line.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::config::Config;
use crate::series::{SecondFigures, Seconds};
use crate::stats::{LiveCounters, Totals};

/// The outcome of a run.
pub struct Report {
    /// The server loaded.
    pub url: String,
    /// Connections asked for.
    pub connections: usize,
    /// Load threads.
    pub threads: usize,
    /// With the embedded server: its workers and the first load CPU.
    pub embedded: Option<(usize, usize)>,
    /// Payload size (the smallest, with mixed sizes).
    pub size: usize,
    /// The largest payload, with mixed sizes (`--max-size`).
    pub max_size: Option<usize>,
    /// Idle mode: connections held open, no messages.
    pub idle: bool,
    /// Text (or binary) messages.
    pub text: bool,
    /// Messages in flight per connection (closed loop).
    pub pipeline: usize,
    /// Messages per second in total (open loop).
    pub rate: Option<f64>,
    /// The measured window (shorter when stopped early).
    pub measured: Duration,
    /// Warm-up plus the measured window: how long idle connections were held.
    pub held_for: Duration,
    /// The figures.
    pub totals: Totals,
    /// The server's CPU time over the measured window (with `--server-pid`).
    pub server_cpu: Option<Duration>,
    /// Stopped by Ctrl-C before the end.
    pub stopped_early: bool,
    /// The IO driver the load ran on (`"uring"` or `"tokio"`).
    pub driver: &'static str,
    /// permessage-deflate was offered (`--deflate`).
    pub deflate: bool,
    /// Fan-out: the publisher connections (`None`: the echo scenario).
    pub publishers: Option<usize>,
    /// `--server-syscalls`: the server's system calls over the measured window, by call
    /// (or why they could not be counted).
    pub server_syscalls: Option<Result<BTreeMap<String, u64>, String>>,
    /// When the measured window began (wall clock).
    pub measure_started: SystemTime,
    /// `--stages`: the ramp the connections followed.
    pub stages: Option<Vec<crate::stages::Stage>>,
}

impl Report {
    /// The report of a finished run of `config`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: &Config,
        url: String,
        threads: usize,
        embedded: Option<(usize, usize)>,
        totals: Totals,
        measured: Duration,
        held_for: Duration,
        server_cpu: Option<Duration>,
        stopped_early: bool,
    ) -> Self {
        Report {
            url,
            connections: config.connections,
            threads,
            embedded,
            size: config.size,
            max_size: config.max_size,
            idle: config.idle,
            text: config.is_text(),
            pipeline: config.pipeline.max(1),
            rate: config.rate,
            measured,
            held_for,
            totals,
            server_cpu,
            stopped_early,
            driver: "uring",
            deflate: config.deflate,
            publishers: (config.scenario == crate::Scenario::Fanout).then_some(config.publishers),
            server_syscalls: None,
            measure_started: SystemTime::now(),
            stages: config.stages.clone().map(|s| s.0),
        }
    }

    /// Echoes per second over the measured window.
    pub fn messages_per_sec(&self) -> f64 {
        self.totals.messages as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// Echoes that arrived within the measured window, per second: the rate a server
    /// sustained (in open loop, [`messages_per_sec`](Self::messages_per_sec) also
    /// counts the backlog answered after the window).
    pub fn answered_per_sec(&self) -> f64 {
        self.totals.answered_in_window as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// Payload bytes per second over the measured window.
    pub fn bytes_per_sec(&self) -> f64 {
        self.totals.bytes as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q`, in µs.
    pub fn latency_us(&self, q: f64) -> u64 {
        crate::stats::quantile(&self.totals.latency, q)
    }

    /// The server's CPU time per message, in µs.
    pub fn server_cpu_us_per_msg(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.totals.messages > 0).then(|| cpu.as_secs_f64() * 1e6 / self.totals.messages as f64)
    }

    /// The server's system calls per message, by call (`--server-syscalls`).
    pub fn server_syscalls_per_msg(&self) -> Option<BTreeMap<String, f64>> {
        let Some(Ok(counts)) = &self.server_syscalls else {
            return None;
        };
        let messages = self.totals.messages.max(1) as f64;
        Some(
            counts
                .iter()
                .map(|(call, n)| (call.clone(), *n as f64 / messages))
                .collect(),
        )
    }

    /// Whether the run found no problem: no mismatched echoes, no errors, and something
    /// measured (echoes; idle: every connection held to the end).
    pub fn is_clean(&self) -> bool {
        self.is_clean_within(&crate::Thresholds::default())
    }

    /// [`is_clean`](Self::is_clean), with errors allowed up to the thresholds'
    /// `--max-error-rate`.
    pub fn is_clean_within(&self, thresholds: &crate::Thresholds) -> bool {
        let measured = if self.idle {
            self.totals.held == self.connections as u64
        } else {
            self.totals.messages > 0
        };
        self.totals.mismatches == 0
            && (self.totals.error_count() == 0 || thresholds.tolerates_errors(self))
            && self.totals.dropped == 0
            && measured
    }

    /// "16 B", or "16 B..65536 B" with mixed sizes.
    fn sizes(&self) -> String {
        match self.max_size {
            Some(max) if max > self.size => format!("{} B..{max} B", self.size),
            _ => format!("{} B", self.size),
        }
    }

    /// Bytes the server's frames took on the wire per payload byte echoed (WebSocket
    /// runs that echoed something).
    pub fn wire_ratio(&self) -> Option<f64> {
        if self.totals.wire_received == 0 {
            return None;
        }
        self.totals.wire_ratio()
    }

    /// The JSON object of `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = self.figures_json();
        // The load's own figures, the server's syscalls, and the run second by second.
        json["answered_per_sec"] = json!(self.answered_per_sec());
        json["send_lag_p50_us"] = json!(self.send_lag_us(0.5));
        json["send_lag_p99_us"] = json!(self.send_lag_us(0.99));
        json["load_threads"] = json!(self.load_threads_json());
        json["load_saturated"] = json!(!self.saturated_threads().is_empty());
        json["server_syscalls"] = match &self.server_syscalls {
            Some(Ok(counts)) => json!(counts),
            Some(Err(why)) => json!({ "error": why }),
            None => serde_json::Value::Null,
        };
        json["server_syscalls_per_msg"] = json!(self.server_syscalls_per_msg());
        json["series"] = json!(self.series_json());
        json
    }

    /// The run's figures in the JSON object.
    fn figures_json(&self) -> serde_json::Value {
        let connect = &self.totals.connect;
        json!({
            "url": self.url,
            "connections": self.connections,
            "connected": self.totals.connected,
            "connect_failures": self.totals.connect_failures,
            "threads": self.threads,
            "size": self.size,
            "max_size": self.max_size,
            "text": self.text,
            "idle": self.idle,
            "driver": self.driver,
            "held": self.totals.held,
            "held_s": self.held_for.as_secs_f64(),
            "pipeline": self.pipeline,
            "rate": self.rate,
            "duration_s": self.measured.as_secs_f64(),
            "scenario": if self.publishers.is_some() { "fanout" } else { "echo" },
            "fanout": self.fanout_json(),
            "messages": self.totals.messages,
            "bytes": self.totals.bytes,
            "messages_per_sec": self.messages_per_sec(),
            "bytes_per_sec": self.bytes_per_sec(),
            "p50_us": self.latency_us(0.50),
            "p90_us": self.latency_us(0.90),
            "p99_us": self.latency_us(0.99),
            "p999_us": self.latency_us(0.999),
            "max_us": if self.totals.messages == 0 { 0 } else { self.totals.latency.max() },
            "connect_p50_us": connect.value_at_quantile(0.5),
            "connect_p99_us": connect.value_at_quantile(0.99),
            "connect_max_us": connect.max(),
            "errors": self.totals.error_count(),
            "errors_by_kind": self.totals.errors,
            "mismatches": self.totals.mismatches,
            "server_cpu_us_per_msg": self.server_cpu_us_per_msg(),
            "deflate_connections": self.totals.deflated,
            "wire_bytes_per_payload_byte": self.wire_ratio(),
            "stopped_early": self.stopped_early,
        })
    }

    /// Open loop: how late messages left after their scheduled time at quantile `q`,
    /// µs (the load's own lateness, inside the latency figures).
    pub fn send_lag_us(&self, q: f64) -> Option<u64> {
        let lag = &self.totals.send_lag;
        (self.rate.is_some() && !lag.is_empty()).then(|| lag.value_at_quantile(q))
    }

    /// The self-check's figures in the JSON object.
    fn load_threads_json(&self) -> Vec<serde_json::Value> {
        let thread = |t: &crate::environment::ThreadCpu| json!({ "cpu_s": t.cpu.as_secs_f64(), "busy": t.busy() });
        self.totals.load_threads.iter().map(thread).collect()
    }

    /// The per-second series in the JSON object.
    fn series_json(&self) -> Vec<serde_json::Value> {
        let second = |s: &SecondFigures| {
            json!({
                "t_s": s.start.as_secs_f64(),
                "duration_s": s.length.as_secs_f64(),
                "messages": s.messages,
                "messages_per_sec": s.messages_per_sec(),
                "p50_us": s.p50_us,
                "p99_us": s.p99_us,
                "errors": s.errors,
                "connections": s.connections,
            })
        };
        self.series().iter().map(second).collect()
    }

    /// The measured window second by second.
    pub fn series(&self) -> Vec<SecondFigures> {
        let seconds = &self.totals.seconds;
        (0..Seconds::count(self.measured))
            .map(|i| seconds.second(i, self.measured).0)
            .collect()
    }

    /// The load threads (by index) that were on a CPU more than
    /// [`SATURATED`](crate::environment::SATURATED) of the measured window, with how
    /// busy they were.
    pub fn saturated_threads(&self) -> Vec<(usize, f64)> {
        self.totals
            .load_threads
            .iter()
            .enumerate()
            .map(|(i, t)| (i, t.busy()))
            .filter(|&(_, busy)| busy > crate::environment::SATURATED)
            .collect()
    }

    /// The self-check's lines: each load thread's CPU, and a warning when one was
    /// saturated.
    fn self_check(&self, out: &mut String) {
        if let (Some(p50), Some(p99)) = (self.send_lag_us(0.5), self.send_lag_us(0.99)) {
            *out += &format!(
                "  send lag µs p50 {p50}   p99 {p99} (how late the load sent on its schedule; inside the latency)\n"
            );
            if p50 * 2 > self.latency_us(0.5) {
                *out += "  warning: the send lag is most of the latency: the load's own scheduling sets these percentiles more than the server does (a saturated load thread, or a rate too high for one)\n";
            }
        }
        if self.totals.load_threads.is_empty() {
            return;
        }
        let busy: Vec<String> = self
            .totals
            .load_threads
            .iter()
            .map(|t| format!("{:.0}%", t.busy() * 100.0))
            .collect();
        *out += &format!("  load threads on CPU {} of the window\n", busy.join(", "));
        for (i, busy) in self.saturated_threads() {
            *out += &format!(
                "  warning: load thread {i} was on a CPU {:.0}% of the measured window: the figures may say more about the load generator than about the server (more --threads, or a CPU of their own)\n",
                busy * 100.0
            );
        }
    }

    /// The readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let kind = if self.text { "text" } else { "binary" };
        out += &format!("load against {} (driver: {})\n", self.url, self.driver);
        match self.embedded {
            Some((workers, first)) => {
                out += &format!(
                    "  embedded wsengine {} server: {workers} worker(s) on CPU 0..{}; load: {} thread(s) from CPU {first}\n",
                    if self.publishers.is_some() {
                        "broadcast"
                    } else {
                        "echo"
                    },
                    workers - 1,
                    self.threads
                )
            }
            None => out += &format!("  load: {} thread(s)\n", self.threads),
        }
        let early = if self.stopped_early {
            " (stopped early)"
        } else {
            ""
        };
        if self.idle {
            let held = self.totals.held;
            let of = if held == self.connections as u64 {
                String::new()
            } else {
                format!(" of {}", self.connections)
            };
            out += &format!(
                "  idle: {held}{of} connections held for {:.2} s{early}, {} failed to connect\n\n",
                self.held_for.as_secs_f64(),
                self.totals.connect_failures
            );
        } else {
            self.message_figures(&mut out, kind, early);
        }
        let c = &self.totals.connect;
        out += &format!(
            "  connect µs p50 {}   p99 {}   max {}\n",
            c.value_at_quantile(0.5),
            c.value_at_quantile(0.99),
            c.max()
        );
        if let Some(us) = self.server_cpu_us_per_msg() {
            out += &format!("  server CPU {us:.3} µs/msg\n");
        }
        match (&self.server_syscalls, self.server_syscalls_per_msg()) {
            (_, Some(per_msg)) => {
                let calls: Vec<String> = per_msg
                    .iter()
                    .filter(|(_, n)| **n >= 0.005)
                    .map(|(call, n)| format!("{call} {n:.2}"))
                    .collect();
                out += &format!("  server syscalls/msg {}\n", calls.join("  "));
            }
            (Some(Err(why)), _) => out += &format!("  server syscalls not counted: {why}\n"),
            _ => {}
        }
        self.self_check(&mut out);
        if self.deflate {
            out += &format!(
                "  permessage-deflate on {} of {} connections",
                self.totals.deflated, self.totals.connected
            );
            match self.wire_ratio() {
                Some(r) => {
                    out += &format!("; wire bytes per payload byte {r:.3} (server to load)\n")
                }
                None => out += "\n",
            }
        }
        out += &format!(
            "  errors     {}{}\n  mismatches {}\n",
            self.totals.error_count(),
            if self.totals.errors.is_empty() {
                String::new()
            } else {
                format!(" {:?}", self.totals.errors)
            },
            self.totals.mismatches
        );
        out
    }

    /// The mode, the measured window, messages and latency (not in idle mode).
    fn message_figures(&self, out: &mut String, kind: &str, early: &str) {
        if let Some(publishers) = self.publishers {
            self.fanout_figures(out, publishers, early);
            return;
        }
        let mode = match self.rate {
            Some(r) => format!("open loop at {r:.0} msg/s"),
            None => format!("closed loop, {} in flight per connection", self.pipeline),
        };
        *out += &format!(
            "  {} connections ({} failed), {} {kind} messages, {mode}\n",
            self.connections,
            self.totals.connect_failures,
            self.sizes()
        );
        if let Some(stages) = &self.stages {
            let ramp: Vec<String> = stages
                .iter()
                .map(|s| format!("{:?} to {}", s.length, s.target))
                .collect();
            *out += &format!(
                "  stages: {} (the connections above are the peak)\n",
                ramp.join(", ")
            );
        }
        *out += &format!("  measured {:.2} s{early}\n\n", self.measured.as_secs_f64());
        *out += &format!(
            "  messages   {:>12}   {:>12.0} msg/s   {:>9.2} MB/s\n",
            self.totals.messages,
            self.messages_per_sec(),
            self.bytes_per_sec() / 1e6
        );
        *out += &self.latency_line("latency");
    }
}

impl Report {
    /// "  LABEL µs p50 …   max …" and a newline.
    fn latency_line(&self, label: &str) -> String {
        let max = if self.totals.messages == 0 {
            0
        } else {
            self.totals.latency.max()
        };
        format!(
            "  {label} µs p50 {}   p90 {}   p99 {}   p99.9 {}   max {max}\n",
            self.latency_us(0.5),
            self.latency_us(0.9),
            self.latency_us(0.99),
            self.latency_us(0.999),
        )
    }

    /// The fan-out's figures in the JSON object (`null` for the echo scenario).
    fn fanout_json(&self) -> serde_json::Value {
        let Some(publishers) = self.publishers else {
            return serde_json::Value::Null;
        };
        let spread = self.totals.spread;
        json!({
            "publishers": publishers,
            "published": self.totals.published,
            "dropped": self.totals.dropped,
            "subscriber_min_received": spread.map(|s| s.min_received),
            "subscriber_max_received": spread.map(|s| s.max_received),
            "subscriber_min_mean_us": spread.map(|s| s.min_mean_us),
            "subscriber_max_mean_us": spread.map(|s| s.max_mean_us),
        })
    }

    /// The fan-out's figures: deliveries, their latency, drops, and the spread.
    fn fanout_figures(&self, out: &mut String, publishers: usize, early: &str) {
        let rate = self.rate.unwrap_or(1000.0);
        *out += &format!(
            "  fan-out: {publishers} publisher(s) at {rate:.0} msg/s in all to {} subscribers ({} failed to connect), {} B binary messages\n",
            self.connections, self.totals.connect_failures, self.size
        );
        *out += &format!("  measured {:.2} s{early}\n\n", self.measured.as_secs_f64());
        *out += &format!(
            "  deliveries {:>12}   {:>12.0} msg/s   {:>9.2} MB/s\n",
            self.totals.messages,
            self.messages_per_sec(),
            self.bytes_per_sec() / 1e6
        );
        *out += &self.latency_line("publish to delivery");
        *out += &format!(
            "  published  {}   dropped {} (publishes a subscriber never got)\n",
            self.totals.published, self.totals.dropped
        );
        if let Some(s) = self.totals.spread {
            *out += &format!(
                "  per subscriber: deliveries {}..{}, mean latency {}..{} µs\n",
                s.min_received, s.max_received, s.min_mean_us, s.max_mean_us
            );
        }
    }
}

/// The live progress line: elapsed, messages/s, p99 so far. Hidden when not wanted.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    idle: bool,
    warmup: Duration,
    last: std::cell::Cell<(Instant, u64)>,
}

impl Progress {
    /// A progress line (`show`: on a terminal) for a run of `total`, warm-up included.
    pub(crate) fn new(show: bool, idle: bool, warmup: Duration, total: Duration) -> Self {
        let bar = show.then(|| {
            let bar = ProgressBar::new(total.as_millis() as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            idle,
            warmup,
            last: std::cell::Cell::new((Instant::now(), 0)),
        }
    }

    /// Redraws the line (at most every 250 ms) from the threads' live counters.
    pub(crate) fn update(&self, elapsed: Duration, live: &[Arc<LiveCounters>]) {
        let Some(bar) = &self.bar else { return };
        let now = Instant::now();
        let (then, before) = self.last.get();
        if now - then < Duration::from_millis(250) {
            return;
        }
        let echoes: u64 = live.iter().map(|l| l.echoes.load(Ordering::Relaxed)).sum();
        let p99 = live
            .iter()
            .map(|l| l.p99_us.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let rate = (echoes - before) as f64 / (now - then).as_secs_f64();
        self.last.set((now, echoes));
        bar.set_position(elapsed.as_millis() as u64);
        if self.idle {
            bar.set_message("idle: holding the connections");
        } else if elapsed < self.warmup {
            bar.set_message(format!("{rate:>10.0} msg/s   warming up"));
        } else {
            bar.set_message(format!("{rate:>10.0} msg/s   p99 {p99} µs"));
        }
    }

    /// Clears the line.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
