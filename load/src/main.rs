//! `load`: see `load --help`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use load::{Config, Thresholds, run};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    let stop = Arc::new(AtomicBool::new(false));
    // Ctrl-C (or SIGTERM) ends the run early; the figures so far are printed.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("load: cannot install a signal handler: {e}");
        }
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
    if config.json {
        let mut json = report.to_json();
        if thresholds.any() {
            json["thresholds"] = serde_json::json!({
                "passed": missed.is_empty(),
                "missed": missed,
            });
        }
        println!("{json}");
    } else {
        print!("{}", report.to_text());
    }
    for reason in &missed {
        eprintln!("load: threshold missed: {reason}");
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
