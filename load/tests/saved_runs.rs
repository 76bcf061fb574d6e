//! Saved runs (`--out`), `load compare` and the report page, against real servers: a
//! saved run reloads to the same bytes, merged rounds add up, the same server compares
//! as "within noise" and a slowed one shows its ratio, and the page renders in headless
//! Chromium.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use load::compare::{self, CompareArgs};
use load::saved::{self, SavedRun};
use load::{Config, run};
use wsengine::runtime::{Server, ServerHandle, WebSocket};

/// The tests here spin servers on purpose and time them: one at a time, so that on a
/// 2-core machine they do not slow each other into other figures.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn config(args: &[&str]) -> Config {
    let mut argv = vec!["load"];
    argv.extend_from_slice(args);
    Config::parse_from(argv)
}

/// An echo server that spends `work` of CPU on each message before answering.
fn echo_server(work: Duration) -> ServerHandle {
    Server::builder("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .workers(1)
        .pin_workers(false)
        .serve(move |ws: WebSocket, _req| async move {
            while let Ok(m) = ws.recv().await {
                let until = Instant::now() + work;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        })
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("load-saved-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A run of `secs` against `url`, saved under `label`.
fn saved_run(url: &str, label: &str, secs: &str) -> SavedRun {
    let cfg = config(&[
        "--url",
        url,
        "--connections",
        "8",
        "--duration",
        secs,
        "--warmup",
        "0.1",
        "--threads",
        "1",
        "--label",
        label,
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    load::saved_run(&cfg, &report, &["load".to_string()])
}

#[test]
fn a_saved_run_reloads_byte_for_byte_and_its_seconds_add_up() {
    let _serial = one_at_a_time();
    let server = echo_server(Duration::ZERO);
    let url = format!("ws://{}/", server.local_addr());
    let run = saved_run(&url, "ours", "2.5");
    let (a, b) = (scratch("a"), scratch("b"));
    load::save(&run, &a).unwrap();
    for file in [saved::RUN_JSON, saved::LATENCY_LOG, saved::REPORT_HTML] {
        assert!(a.join(file).is_file(), "{file}");
    }
    // The page carries the self-check: how busy the load thread was.
    let page = std::fs::read_to_string(a.join(saved::REPORT_HTML)).unwrap();
    assert!(page.contains("busiest load thread was on a CPU"), "{page}");
    let reloaded = SavedRun::load(&a).unwrap();
    assert_eq!(reloaded, run);
    reloaded.save(&b).unwrap();
    for file in [saved::RUN_JSON, saved::LATENCY_LOG] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file} changed on the way back"
        );
    }
    // The seconds: 2.5 s is three of them, the last one half long; they add up to
    // the whole run, histogram and counts.
    let results = run.results();
    let messages = results["messages"].as_u64().unwrap();
    assert_eq!(run.intervals.len(), 3);
    assert_eq!(run.intervals[2].length, Duration::from_millis(500));
    assert_eq!(run.latency().len(), messages);
    assert_eq!(run.latency().max(), results["max_us"].as_u64().unwrap());
    let series = results["series"].as_array().unwrap();
    let per_second: u64 = series.iter().map(|s| s["messages"].as_u64().unwrap()).sum();
    assert_eq!(per_second, messages);
    assert_eq!(results["load_threads"].as_array().unwrap().len(), 1);
    let env = &run.json["environment"];
    for key in ["cpu_model", "kernel", "git_revision", "started_at"] {
        assert!(env[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    // A file that is not a saved run is refused with the reason.
    std::fs::write(a.join(saved::RUN_JSON), "{\"format\": \"other\"}").unwrap();
    let err = SavedRun::load(&a).unwrap_err().to_string();
    assert!(err.contains("not a saved load run"), "{err}");
    server.shutdown(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn rounds_merge_into_one_histogram_whose_count_is_the_sum_and_max_the_max() {
    let _serial = one_at_a_time();
    let server = echo_server(Duration::ZERO);
    let url = format!("ws://{}/", server.local_addr());
    let runs = [
        saved_run(&url, "ours", "0.5"),
        saved_run(&url, "ours", "0.5"),
    ];
    let merged = saved::merged_latency(&runs);
    let counts: Vec<u64> = runs.iter().map(|r| r.latency().len()).collect();
    assert_eq!(merged.len(), counts[0] + counts[1]);
    assert_eq!(
        merged.max(),
        runs.iter().map(|r| r.latency().max()).max().unwrap()
    );
    let rows = compare::rows(runs.to_vec());
    assert_eq!(rows.len(), 1, "one label, one group: one row of two rounds");
    assert_eq!(rows[0].rates.len(), 2);
    assert_eq!(rows[0].latency, merged);
    server.shutdown(Duration::from_secs(1));
}

/// `load compare` live, alternating `urls` (labelled a, b, …) for `rounds`: its runs.
fn compare_live(urls: &[&str], rounds: usize) -> Vec<SavedRun> {
    let mut args = vec![
        "load compare".to_string(),
        "--rounds".into(),
        rounds.to_string(),
    ];
    for (i, _) in urls.iter().enumerate() {
        args.extend(["--label".into(), ((b'a' + i as u8) as char).to_string()]);
    }
    args.push("--".into());
    for url in urls {
        args.extend(["--url".into(), url.to_string()]);
    }
    for a in ["--connections", "4", "--duration", "0.3", "--warmup", "0.1"] {
        args.push(a.into());
    }
    args.extend(["--threads".into(), "1".into()]);
    let args = CompareArgs::parse_from(args);
    let runs = load::compare_live(&args, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(runs.len(), urls.len() * rounds);
    runs
}

/// The `load compare` command over `runs`, saved into a scratch directory of run
/// directories (as `--out` leaves them), with `extra` arguments: its standard output.
fn compare_command(runs: &[SavedRun], name: &str, extra: &[&str]) -> String {
    let dir = scratch(name);
    for (i, run) in runs.iter().enumerate() {
        load::save(run, &dir.join(format!("run-{i:02}"))).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_load"))
        .arg("compare")
        .arg(&dir)
        .args(extra)
        .output()
        .expect("the load binary runs");
    assert!(
        out.status.success(),
        "load compare: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout).unwrap()
}

/// The Markdown row of `label` in `load compare`'s table, as cells.
fn table_row<'a>(table: &'a str, label: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|line| line.split('|').map(str::trim).collect::<Vec<_>>())
        .find(|cells| cells.get(2) == Some(&label))
        .unwrap_or_else(|| panic!("no row {label} in\n{table}"))
}

#[test]
fn the_same_server_compares_within_noise() {
    let _serial = one_at_a_time();
    let server = echo_server(Duration::ZERO);
    let url = format!("ws://{}/", server.local_addr());
    // Six alternating rounds each: two samples of one server whose ranges do not
    // overlap would be a 1-in-462 draw.
    let runs = compare_live(&[&url, &url], 6);
    let rows = compare::rows(runs.clone());
    let ratio = compare::Ratio::of(&rows[1], &rows[0]);
    assert_eq!(
        ratio.within_noise,
        Some(true),
        "{ratio:?} {:?} {:?}",
        rows[0].rates,
        rows[1].rates
    );
    let json = compare::to_json(&rows, &[]);
    assert_eq!(json["rows"][1]["vs"][0]["within_noise"], true);
    // The command over the same runs, saved: its table says so in words, its JSON too,
    // and `--html` writes the page.
    let table = compare_command(&runs, "same-text", &[]);
    let b = table_row(&table, "b");
    assert_eq!(b[3], "6", "six rounds: {table}");
    assert!(b.iter().any(|c| c.contains("within noise")), "{table}");
    let page = scratch("same-page").with_extension("html");
    let page_arg = page.to_str().unwrap();
    let json: serde_json::Value = serde_json::from_str(&compare_command(
        &runs,
        "same-json",
        &["--json", "--html", page_arg],
    ))
    .unwrap();
    assert_eq!(json["rows"][1]["vs"][0]["within_noise"], true);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));
    let _ = std::fs::remove_file(&page);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_slowed_server_shows_its_ratio_outside_the_noise() {
    let _serial = one_at_a_time();
    let fast = echo_server(Duration::ZERO);
    // 300 µs of CPU per message: at most ~3,300 echoes/s, far below the other.
    let slow = echo_server(Duration::from_micros(300));
    let (fast_url, slow_url) = (
        format!("ws://{}/", fast.local_addr()),
        format!("ws://{}/", slow.local_addr()),
    );
    let runs = compare_live(&[&fast_url, &slow_url], 2);
    let rows = compare::rows(runs.clone());
    let ratio = compare::Ratio::of(&rows[1], &rows[0]);
    assert!(ratio.ratio < 0.7, "{ratio:?}");
    assert_eq!(ratio.within_noise, Some(false), "{ratio:?}");
    let (header, cells) = compare::table(&rows, &["a".to_string()]);
    let column = header.iter().position(|h| h == "msg/s vs a").unwrap();
    assert!(cells[0][column].starts_with("1.00 "), "{:?}", cells[0]);
    assert!(!cells[1][column].contains("within noise"), "{:?}", cells[1]);
    assert!(cells[1][column].starts_with("0."), "{:?}", cells[1]);
    // The command over the saved runs prints the same ratio.
    let table = compare_command(&runs, "slowed", &[]);
    let b = table_row(&table, "b");
    let vs = b.iter().find(|c| c.starts_with("0.")).copied();
    assert!(vs.is_some_and(|c| !c.contains("within noise")), "{table}");
    assert!(
        table_row(&table, "a")
            .iter()
            .any(|c| c.starts_with("1.00 ")),
        "{table}"
    );
    fast.shutdown(Duration::from_secs(1));
    slow.shutdown(Duration::from_secs(1));
}

/// Renders `page` with headless Chromium (Debian's package: the test command installs
/// it) into a PNG of `width` × `height`, decoded.
fn screenshot(page: &Path, width: u32, height: u32) -> (png::OutputInfo, Vec<u8>) {
    let png_path = page.with_extension("png");
    let status = std::process::Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("/usr/bin/chromium runs (scripts/test.sh installs it)");
    assert!(status.success(), "chromium: {status}");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).expect("chromium wrote the screenshot"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    (info, pixels)
}

#[test]
fn the_report_page_renders_in_headless_chromium() {
    let _serial = one_at_a_time();
    let server = echo_server(Duration::ZERO);
    let url = format!("ws://{}/", server.local_addr());
    let dir = scratch("page");
    let run = saved_run(&url, "ours <b>&", "1.5");
    load::save(&run, &dir).unwrap();
    let page = std::fs::read_to_string(dir.join(saved::REPORT_HTML)).unwrap();
    assert!(!page.contains("<script"), "no JavaScript");
    assert!(page.contains("ours &lt;b&gt;&amp;"), "the label is escaped");
    let (info, pixels) = screenshot(&dir.join(saved::REPORT_HTML), 1200, 1800);
    assert_eq!((info.width, info.height), (1200, 1800));
    let channels = info.color_type.samples();
    let coloured = pixels
        .chunks(channels)
        .filter(|p| {
            let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
            // Saturated: a plotted line, not text (grey) or background (white).
            (r - g).abs().max((g - b).abs()).max((r - b).abs()) > 80
        })
        .count();
    let dark = pixels
        .chunks(channels)
        .filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100)
        .count();
    let total = (info.width * info.height) as usize;
    assert!(
        coloured > 2_000,
        "the curves are drawn: {coloured} coloured pixels"
    );
    assert!(dark > total / 500, "the text is drawn: {dark} dark pixels");
    assert!(
        dark < total / 4,
        "not a dark or failed page: {dark} dark pixels"
    );
    server.shutdown(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sweep_finds_the_rate_a_slowed_server_sustains_and_saves_its_page() {
    let _serial = one_at_a_time();
    // 1 ms of CPU per message: at most 1,000 echoes/s (fewer when other tests share
    // the CPU), so 1,600/s can never be sustained and 100/s always is.
    let slow = echo_server(Duration::from_millis(1));
    let url = format!("ws://{}/", slow.local_addr());
    let dir = scratch("sweep");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_load"))
        .args(["--url", &url, "--connections", "8", "--threads", "1"])
        .args(["--duration", "0.6", "--warmup", "0.2", "--json"])
        .args([
            "--sweep",
            "100:3200",
            "--sweep-steps",
            "6",
            "--sweep-refine",
            "1",
        ])
        .args(["--max-p99", "300ms", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = json["sweep"].as_array().unwrap();
    let rate = |i: usize| steps[i]["rate"].as_f64().unwrap();
    let passed = |i: usize| steps[i]["passed"].as_bool().unwrap();
    // The climb doubles until the first miss, which comes by 1,600/s; then one step
    // bisects between the last pass and it.
    let miss = (0..steps.len())
        .find(|&i| !passed(i))
        .expect("a step missed");
    assert!(miss >= 1 && rate(miss) <= 1600.0 + 1e-6, "{json}");
    for i in 0..miss {
        assert!(passed(i), "{json}");
        assert!(
            (rate(i) - 100.0 * 2f64.powi(i as i32)).abs() < 1e-6,
            "{json}"
        );
    }
    assert_eq!(steps.len(), miss + 2, "{json}");
    let mid = rate(miss + 1);
    assert!(
        (mid - (rate(miss - 1) * rate(miss)).sqrt()).abs() < 1e-6,
        "{json}"
    );
    let highest = json["highest_passing_rate"].as_f64().unwrap();
    assert!(highest == rate(miss - 1) || highest == mid, "{json}");
    assert!(
        highest <= 1000.0 / 0.9,
        "no more than the server can do: {json}"
    );
    // Every step is a saved run; the page has the sweep's chart.
    for i in 1..=steps.len() {
        let step = SavedRun::load(&dir.join(format!("step-{i:02}"))).unwrap();
        assert_eq!(step.group(), "C=8 S=20 open-loop sweep");
        assert!(step.results()["send_lag_p50_us"].as_u64().is_some());
    }
    let page = std::fs::read_to_string(dir.join(saved::REPORT_HTML)).unwrap();
    assert_eq!(
        page.matches("<svg").count(),
        4,
        "percentiles, rate, p99 over time, p99 by rate"
    );
    slow.shutdown(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
}
