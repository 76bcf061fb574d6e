//! `load compare`: saved runs (or several servers run alternately, in rounds) side by
//! side, with their noise.
//!
//! Runs are grouped by `group` (the scenario) and, within it, by `label` (the server or
//! build); the runs of one label are its rounds. A row's latency comes from the rounds'
//! histograms merged (a mean of p99s is not a p99); its rate is the mean of the rounds,
//! with their range as the spread. A ratio to a baseline is "within noise" when the two
//! ranges of rounds overlap: the difference is then smaller than what the machine did
//! to either of them from one round to the next.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::plot::{self, PlotRun, SeriesPoint};
use crate::saved::{self, SavedRun};
use crate::series::Sparse;
use crate::stats::quantile;

/// Compares saved runs (`load --out DIR`), or servers run alternately in rounds.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "load compare",
    bin_name = "load compare",
    after_help = "Examples:\n  load compare runs/a runs/b runs/c --html report.html\n  \
load compare --rounds 3 --label ours --label theirs -- --url ws://127.0.0.1:9001/ \
--url ws://127.0.0.1:9002/ --connections 100 --duration 5"
)]
pub struct CompareArgs {
    /// Saved runs: directories written by `load --out`, or directories holding such
    /// directories.
    pub runs: Vec<PathBuf>,
    /// The label ratios are taken against (repeatable: a column each). Default: the
    /// first label of each group.
    #[arg(long)]
    pub baseline: Vec<String>,
    /// Also write the report page (plots and the table) to this HTML file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Live: rounds of each `--url` (after `--`), alternating.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Live: the label of each `--url`, in order (default: the URL).
    #[arg(long)]
    pub label: Vec<String>,
    /// Live: the process of each `--url`'s server, in order, for its CPU per message
    /// (and syscalls with `--server-syscalls` after `--`).
    #[arg(long, value_name = "PID")]
    pub server_pid: Vec<u32>,
    /// Live: also save every round under this directory (`LABEL-ROUND/`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Live: `load`'s own options after `--`, with one `--url` per server to compare.
    #[arg(last = true)]
    pub load: Vec<String>,
}

/// The rounds of one label in one group, combined.
pub struct Row {
    /// The scenario.
    pub group: String,
    /// The server or build.
    pub label: String,
    /// Its rounds.
    pub runs: Vec<SavedRun>,
    /// Every round's latency merged.
    pub latency: Histogram<u64>,
    /// Each round's msg/s.
    pub rates: Vec<f64>,
}

impl Row {
    fn new(group: String, label: String, runs: Vec<SavedRun>) -> Self {
        let latency = saved::merged_latency(&runs);
        let rates = runs
            .iter()
            .map(|r| r.results()["messages_per_sec"].as_f64().unwrap_or(0.0))
            .collect();
        Row {
            group,
            label,
            runs,
            latency,
            rates,
        }
    }

    /// The mean of the rounds' msg/s.
    pub fn rate(&self) -> f64 {
        self.rates.iter().sum::<f64>() / self.rates.len().max(1) as f64
    }

    /// The lowest and highest round.
    pub fn range(&self) -> (f64, f64) {
        let min = self.rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.rates.iter().copied().fold(0.0, f64::max);
        (min, max)
    }

    fn sum(&self, key: &str) -> f64 {
        self.runs
            .iter()
            .map(|r| r.results()[key].as_f64().unwrap_or(0.0))
            .sum()
    }

    /// The server's CPU per message over every round (rounds that measured it).
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        let (mut cpu, mut messages) = (0.0, 0.0);
        for r in &self.runs {
            let res = r.results();
            if let (Some(us), Some(n)) = (
                res["server_cpu_us_per_msg"].as_f64(),
                res["messages"].as_f64(),
            ) {
                cpu += us * n;
                messages += n;
            }
        }
        (messages > 0.0).then(|| cpu / messages)
    }

    /// The server's system calls per message over every round that counted them.
    pub fn syscalls_per_msg(&self) -> BTreeMap<String, f64> {
        let mut calls: BTreeMap<String, f64> = BTreeMap::new();
        let mut messages = 0.0;
        for r in &self.runs {
            let res = r.results();
            let Some(counts) = res["server_syscalls"].as_object() else {
                continue;
            };
            if counts.contains_key("error") {
                continue;
            }
            messages += res["messages"].as_f64().unwrap_or(0.0);
            for (call, n) in counts {
                *calls.entry(call.clone()).or_default() += n.as_f64().unwrap_or(0.0);
            }
        }
        calls
            .into_iter()
            .filter(|_| messages > 0.0)
            .map(|(call, n)| (call, n / messages))
            .collect()
    }

    /// Errors and mismatches over every round.
    pub fn problems(&self) -> u64 {
        (self.sum("errors") + self.sum("mismatches")) as u64
    }

    /// The rounds second by second: each second's latency merged over the rounds.
    pub fn series(&self) -> Vec<SeriesPoint> {
        let seconds = self
            .runs
            .iter()
            .map(|r| r.intervals.len())
            .max()
            .unwrap_or(0);
        (0..seconds)
            .map(|i| {
                let mut latency = Sparse::default();
                let (mut length, mut errors) = (0.0, 0);
                for r in &self.runs {
                    if let Some(interval) = r.intervals.get(i) {
                        latency.extend(&interval.latency);
                        length += interval.length.as_secs_f64();
                    }
                    errors += r.results()["series"][i]["errors"].as_u64().unwrap_or(0);
                }
                let h = latency.to_histogram();
                let q = |q| quantile(&h, q);
                SeriesPoint {
                    t_s: i as f64,
                    messages_per_sec: h.len() as f64 / f64::max(length, 1e-3),
                    p50_us: q(0.5),
                    p99_us: q(0.99),
                    errors,
                }
            })
            .collect()
    }
}

/// A ratio of `row` to `base`, msg/s: the ratio of the means, its range over the
/// rounds, and whether the rounds overlap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// Mean over mean.
    pub ratio: f64,
    /// Lowest round over the baseline's highest, highest over its lowest.
    pub range: (f64, f64),
    /// The two ranges of rounds overlap (only said with two rounds or more each).
    pub within_noise: Option<bool>,
}

impl Ratio {
    /// `row` against `base`.
    pub fn of(row: &Row, base: &Row) -> Self {
        let (lo, hi) = row.range();
        let (base_lo, base_hi) = base.range();
        let rounds = row.rates.len() >= 2 && base.rates.len() >= 2;
        Ratio {
            ratio: row.rate() / base.rate().max(1e-9),
            range: (lo / base_hi.max(1e-9), hi / base_lo.max(1e-9)),
            within_noise: rounds.then_some(lo <= base_hi && base_lo <= hi),
        }
    }

    fn cell(&self) -> String {
        let noise = match self.within_noise {
            Some(true) => " within noise",
            Some(false) => "",
            None => " (1 round)",
        };
        format!(
            "{:.2} ({:.2}–{:.2}){noise}",
            self.ratio, self.range.0, self.range.1
        )
    }
}

/// Saved runs from the arguments: each a run directory, or a directory of them.
pub fn load_runs(paths: &[PathBuf]) -> Result<Vec<SavedRun>, saved::SavedError> {
    let mut runs = Vec::new();
    for path in paths {
        if path.join(saved::RUN_JSON).exists() {
            runs.push(SavedRun::load(path)?);
            continue;
        }
        let entries =
            std::fs::read_dir(path).map_err(|e| saved::SavedError::Io(path.clone(), e))?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(saved::RUN_JSON).exists())
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(saved::SavedError::Format(
                path.clone(),
                "neither a saved run nor a directory of them".into(),
            ));
        }
        for dir in dirs {
            runs.push(SavedRun::load(&dir)?);
        }
    }
    Ok(runs)
}

/// The runs grouped: groups and labels in the order first seen.
pub fn rows(runs: Vec<SavedRun>) -> Vec<Row> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut by: BTreeMap<(String, String), Vec<SavedRun>> = BTreeMap::new();
    for run in runs {
        let key = (run.group().to_string(), run.label().to_string());
        if !by.contains_key(&key) {
            order.push(key.clone());
        }
        by.entry(key).or_default().push(run);
    }
    // Groups in the order first seen, labels within each likewise.
    let groups: Vec<String> = order.iter().fold(Vec::new(), |mut g, (group, _)| {
        if !g.contains(group) {
            g.push(group.clone());
        }
        g
    });
    let mut rows = Vec::new();
    for group in groups {
        for key in order.iter().filter(|(g, _)| *g == group) {
            let runs = by.remove(key).unwrap_or_default();
            rows.push(Row::new(key.0.clone(), key.1.clone(), runs));
        }
    }
    rows
}

/// The baseline of `group`: the row labelled `label`, or without one its first row.
fn baseline<'a>(rows: &'a [Row], group: &str, label: Option<&str>) -> Option<&'a Row> {
    let mut in_group = rows.iter().filter(|r| r.group == group);
    match label {
        Some(label) => in_group.find(|r| r.label == label),
        None => in_group.next(),
    }
}

/// The baselines asked for (`None`: each group's first row).
fn asked_baselines(asked: &[String]) -> Vec<Option<&str>> {
    if asked.is_empty() {
        vec![None]
    } else {
        asked.iter().map(|l| Some(l.as_str())).collect()
    }
}

/// The comparison table: a header and rows of cells.
pub fn table(rows: &[Row], asked: &[String]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = [
        "group",
        "label",
        "rounds",
        "msg/s",
        "rounds' range",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "server CPU µs/msg",
        "syscalls/msg",
        "errors+mismatches",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for label in asked_baselines(asked) {
        let label = label.unwrap_or("baseline");
        header.push(format!("msg/s vs {label}"));
        header.push(format!("CPU/msg vs {label}"));
    }
    let mut cells = Vec::new();
    for row in rows {
        let (lo, hi) = row.range();
        let calls = row.syscalls_per_msg();
        let calls = if calls.is_empty() {
            "-".to_string()
        } else {
            calls
                .iter()
                .filter(|(_, n)| **n >= 0.005)
                .map(|(call, n)| format!("{call} {n:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut line = vec![
            row.group.clone(),
            row.label.clone(),
            row.rates.len().to_string(),
            format!("{:.0}", row.rate()),
            format!("{lo:.0}–{hi:.0}"),
            quantile(&row.latency, 0.5).to_string(),
            quantile(&row.latency, 0.99).to_string(),
            quantile(&row.latency, 0.999).to_string(),
            row.latency.max().to_string(),
            row.cpu_us_per_msg()
                .map_or("-".into(), |us| format!("{us:.3}")),
            calls,
            row.problems().to_string(),
        ];
        for label in asked_baselines(asked) {
            match baseline(rows, &row.group, label) {
                Some(base) => {
                    line.push(Ratio::of(row, base).cell());
                    line.push(match (row.cpu_us_per_msg(), base.cpu_us_per_msg()) {
                        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                        _ => "-".into(),
                    });
                }
                None => line.extend(["-".to_string(), "-".to_string()]),
            }
        }
        cells.push(line);
    }
    (header, cells)
}

/// The table as Markdown.
pub fn markdown(header: &[String], cells: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out += &format!("|{}\n", "---|".repeat(header.len()));
    for line in cells {
        out += &format!("| {} |\n", line.join(" | "));
    }
    out
}

/// The comparison as one JSON object.
pub fn to_json(rows: &[Row], asked: &[String]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let ratios: Vec<Value> = asked_baselines(asked)
                .into_iter()
                .filter_map(|label| baseline(rows, &row.group, label))
                .map(|base| {
                    let r = Ratio::of(row, base);
                    json!({
                        "baseline": base.label,
                        "ratio": r.ratio,
                        "range": [r.range.0, r.range.1],
                        "within_noise": r.within_noise,
                    })
                })
                .collect();
            json!({
                "group": row.group,
                "label": row.label,
                "rounds": row.rates.len(),
                "messages_per_sec": row.rate(),
                "rounds_messages_per_sec": row.rates,
                "messages": row.latency.len(),
                "p50_us": quantile(&row.latency, 0.5),
                "p99_us": quantile(&row.latency, 0.99),
                "p999_us": quantile(&row.latency, 0.999),
                "max_us": row.latency.max(),
                "server_cpu_us_per_msg": row.cpu_us_per_msg(),
                "server_syscalls_per_msg": row.syscalls_per_msg(),
                "errors_and_mismatches": row.problems(),
                "vs": ratios,
            })
        })
        .collect();
    json!({ "rows": rows })
}

/// The report page of `rows`: the table, and the plots of every row.
pub fn html(rows: &[Row], asked: &[String], title: &str, notes: &[String]) -> String {
    html_with_sweep(rows, asked, title, notes, None)
}

/// [`html`], with a rate sweep's plot of p99 against rate.
pub fn html_with_sweep(
    rows: &[Row],
    asked: &[String],
    title: &str,
    notes: &[String],
    sweep: Option<(&str, &[plot::SweepPoint], Option<u64>)>,
) -> String {
    let (header, cells) = table(rows, asked);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let several_groups = rows.iter().any(|r| r.group != rows[0].group);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| {
            if several_groups {
                format!("{} · {}", r.group, r.label)
            } else {
                r.label.clone()
            }
        })
        .collect();
    let series: Vec<Vec<SeriesPoint>> = rows.iter().map(Row::series).collect();
    let runs: Vec<PlotRun> = rows
        .iter()
        .zip(&labels)
        .zip(&series)
        .map(|((row, label), series)| PlotRun {
            label,
            latency: &row.latency,
            series,
        })
        .collect();
    plot::html(&plot::Page {
        title,
        notes,
        table_header: &header,
        table_rows: &cells,
        runs: &runs,
        sweep,
    })
}

/// Notes for the page: where each row's runs ran.
pub fn notes(rows: &[Row]) -> Vec<String> {
    let mut notes = Vec::new();
    for row in rows {
        let Some(first) = row.runs.first() else {
            continue;
        };
        let env = &first.json["environment"];
        notes.push(format!(
            "{} · {}: {} round(s) from {}, {} ({} CPUs), {}, load {}",
            row.group,
            row.label,
            row.runs.len(),
            env["started_at"].as_str().unwrap_or("?"),
            env["cpu_model"].as_str().unwrap_or("?"),
            env["cpus"],
            env["kernel"].as_str().unwrap_or("?"),
            env["git_revision"].as_str().unwrap_or("?"),
        ));
        // The self-check: how busy the busiest load thread was, and a warning when one
        // was saturated in some round.
        let busiest = row
            .runs
            .iter()
            .flat_map(|run| {
                run.results()["load_threads"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|thread| thread["busy"].as_f64())
            })
            .reduce(f64::max);
        if let Some(busiest) = busiest {
            let saturated = row
                .runs
                .iter()
                .filter(|run| run.results()["load_saturated"] == true)
                .count();
            notes.push(format!(
                "{} · {}: the busiest load thread was on a CPU {:.0}% of its window",
                row.group,
                row.label,
                busiest * 100.0
            ));
            if saturated > 0 {
                notes.push(format!(
                    "warning: {} · {}: a load thread was on a CPU more than {:.0}% of the \
                     window in {saturated} of {} round(s): these figures may say more about \
                     the load generator than about the server",
                    row.group,
                    row.label,
                    crate::environment::SATURATED * 100.0,
                    row.runs.len()
                ));
            }
        }
    }
    notes
}
