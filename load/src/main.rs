//! `load`: see `load --help` and `load compare --help`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use load::compare::{self, CompareArgs};
use load::{Config, Thresholds, run};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    // Ctrl-C (or SIGTERM) ends the run early; the figures so far are printed.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("load: cannot install a signal handler: {e}");
        }
    }
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).is_some_and(|a| a == "compare") {
        return compare_main(CompareArgs::parse_from(&argv[1..]), stop);
    }
    let config = Config::parse();
    if config.sweep.is_some() {
        return sweep_main(&config, stop, &argv);
    }
    let progress = !config.json && std::io::stdout().is_terminal();
    let report = match run(&config, stop, progress) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let thresholds = Thresholds::from_config(&config);
    let missed = thresholds.missed(&report);
    // A closed stdout (`load … | head`) is no reason to fail, nor to hide the status.
    if config.json {
        let mut json = report.to_json();
        if thresholds.any() {
            json["thresholds"] = serde_json::json!({
                "passed": missed.is_empty(),
                "missed": missed,
            });
        }
        emit(&format!("{json}\n"));
    } else {
        emit(&report.to_text());
    }
    for reason in &missed {
        eprintln!("load: threshold missed: {reason}");
    }
    if let Some(dir) = &config.out {
        let saved = load::saved_run(&config, &report, &argv);
        if let Err(e) = load::save(&saved, dir) {
            eprintln!("load: --out: {e}");
            return ExitCode::FAILURE;
        }
    }
    if !report.is_clean_within(&thresholds) {
        // Mismatches, errors past what the thresholds allow, nothing measured.
        ExitCode::FAILURE
    } else if !missed.is_empty() {
        ExitCode::from(99)
    } else {
        ExitCode::SUCCESS
    }
}

/// `load compare`: saved runs, or `--url`s after `--` run alternately in rounds.
fn compare_main(args: CompareArgs, stop: Arc<AtomicBool>) -> ExitCode {
    if !args.load.is_empty() && !args.runs.is_empty() {
        eprintln!("load compare: saved runs or servers after --, not both");
        return ExitCode::FAILURE;
    }
    let runs = if args.load.is_empty() {
        if args.runs.is_empty() {
            eprintln!("load compare: give saved runs (load --out DIR), or servers after --");
            return ExitCode::FAILURE;
        }
        compare::load_runs(&args.runs).map_err(|e| e.to_string())
    } else {
        load::compare_live(&args, stop).map_err(|e| e.to_string())
    };
    let runs = match runs {
        Ok(runs) if !runs.is_empty() => runs,
        Ok(_) => {
            eprintln!("load compare: no runs");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("load compare: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = compare::rows(runs);
    if let Some(path) = &args.html {
        let page = compare::html(
            &rows,
            &args.baseline,
            "load compare",
            &compare::notes(&rows),
        );
        if let Err(e) = std::fs::write(path, page) {
            eprintln!("load compare: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let text = if args.json {
        format!("{}\n", compare::to_json(&rows, &args.baseline))
    } else {
        let (header, cells) = compare::table(&rows, &args.baseline);
        compare::markdown(&header, &cells)
    };
    emit(&text);
    ExitCode::SUCCESS
}

/// `load --sweep`: the steps, the highest rate within the target; with `--out`, every
/// step saved under DIR and the sweep's page.
fn sweep_main(config: &Config, stop: Arc<AtomicBool>, argv: &[String]) -> ExitCode {
    let sweep = match load::sweep::sweep(config, stop, argv) {
        Ok(sweep) => sweep,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = &config.out
        && let Err(e) = save_sweep(&sweep, dir)
    {
        eprintln!("load: --out: {e}");
        return ExitCode::FAILURE;
    }
    if config.json {
        emit(&format!("{}\n", sweep.to_json()));
    } else {
        emit(&sweep.to_text());
    }
    if sweep.target.is_some() && sweep.highest_passing().is_none() {
        eprintln!("load: threshold missed: no rate of the sweep kept p99 within --max-p99");
        return ExitCode::from(99);
    }
    ExitCode::SUCCESS
}

/// A sweep under `dir`: `step-NN/` per step (a saved run each), `sweep.json` and
/// `report.html` (p99 against rate, and each step's latency curve).
fn save_sweep(sweep: &load::sweep::Sweep, dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (i, run) in sweep.runs.iter().enumerate() {
        load::save(run, &dir.join(format!("step-{:02}", i + 1))).map_err(|e| e.to_string())?;
    }
    let json = format!("{:#}\n", sweep.to_json());
    std::fs::write(dir.join("sweep.json"), json).map_err(|e| e.to_string())?;
    let rows = compare::rows(sweep.runs.clone());
    let points = sweep.points();
    let target = sweep.target.map(|t| t.as_micros() as u64);
    let page = compare::html_with_sweep(
        &rows,
        &[],
        "load --sweep",
        &compare::notes(&rows),
        Some(("p99", &points, target)),
    );
    let path = dir.join(load::saved::REPORT_HTML);
    std::fs::write(&path, page).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `text` to stdout; a reader that has gone (a closed pipe) is not an error
/// worth a panic or a failed status.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("load: stdout: {e}"),
    }
}
