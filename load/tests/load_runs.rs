//! The load generator against real servers: the counts add up, and a wrong echo is
//! reported as a mismatch, never ignored.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use load::{Config, Thresholds, run};
use wsengine::Message;
use wsengine::runtime::{Server, ServerHandle, WebSocket};

fn config(args: &[&str]) -> Config {
    let mut argv = vec!["load"];
    argv.extend_from_slice(args);
    Config::parse_from(argv)
}

/// A wsengine server whose handler answers each message with `reply(message)`.
fn server(reply: fn(Message) -> Message) -> ServerHandle {
    Server::builder("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .workers(1)
        .pin_workers(false)
        .serve(move |ws: WebSocket, _req| async move {
            while let Ok(m) = ws.recv().await {
                if ws.send(reply(m)).await.is_err() {
                    break;
                }
            }
        })
        .unwrap()
}

#[test]
fn closed_loop_counts_add_up_and_json_is_consistent() {
    let server = server(|m| m);
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "10",
        "--size",
        "32",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--pipeline",
        "4",
        "--threads",
        "1",
        "--binary",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    let json = report.to_json();
    assert!(report.is_clean(), "{}", report.to_text());
    assert_eq!(json["connections"], 10);
    assert_eq!(json["connected"], 10);
    assert_eq!(json["errors"], 0);
    assert_eq!(json["mismatches"], 0);
    let messages = json["messages"].as_u64().unwrap();
    assert!(messages > 100, "{messages}");
    assert_eq!(json["bytes"].as_u64().unwrap(), messages * 32);
    let per_sec = json["messages_per_sec"].as_f64().unwrap();
    let secs = json["duration_s"].as_f64().unwrap();
    assert!((per_sec * secs - messages as f64).abs() < 1.0);
    for key in [
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "max_us",
        "bytes_per_sec",
    ] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(json["p50_us"].as_u64() <= json["p99_us"].as_u64());
    assert!(json["p99_us"].as_u64() <= json["max_us"].as_u64());
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_wrong_echo_is_reported_as_a_mismatch() {
    // Flips the payload's last byte.
    let server = server(|m| {
        let mut bytes = m.payload().to_vec();
        if let Some(last) = bytes.last_mut() {
            *last = b'#';
        }
        Message::text(String::from_utf8(bytes).unwrap())
    });
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "2",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.totals.mismatches > 0);
    assert!(!report.is_clean());
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_changed_message_type_is_a_mismatch() {
    let server = server(|m| Message::binary(m.into_payload()));
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "2",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--text",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert_eq!(report.totals.mismatches, report.totals.messages);
    assert!(report.totals.mismatches > 0);
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn open_loop_sends_at_the_rate() {
    let server = server(|m| m);
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "4",
        "--rate",
        "2000",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--threads",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    let rate = report.messages_per_sec();
    // The schedule, not a speed: 2000 msg/s asked, the window's edges blur it a little.
    assert!((1000.0..3000.0).contains(&rate), "{rate}");
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn no_server_at_the_url_is_counted_as_connect_failures() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "3",
        "--duration",
        "0.2",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert_eq!(report.totals.connect_failures, 3);
    assert_eq!(report.to_json()["errors"], 3);
    assert!(!report.is_clean());
}

#[test]
fn the_embedded_server_runs_without_a_url() {
    let cfg = config(&[
        "--connections",
        "5",
        "--duration",
        "0.5",
        "--warmup",
        "0.1",
        "--threads",
        "1",
        "--server-workers",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    assert!(report.to_text().contains("embedded wsengine echo server"));
}

#[test]
fn idle_connections_are_held_and_closed() {
    let cfg = config(&[
        "--idle",
        "--connections",
        "50",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--server-workers",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    let json = report.to_json();
    assert_eq!(json["idle"], true);
    assert_eq!(json["connected"], 50);
    assert_eq!(json["held"], 50);
    assert_eq!(json["messages"], 0);
    assert_eq!(json["errors"], 0);
    assert!(json["held_s"].as_f64().unwrap() >= 0.9);
    assert!(
        report.to_text().contains("idle: 50 connections held for"),
        "{}",
        report.to_text()
    );
}

#[test]
fn a_server_that_drops_idle_connections_shows_as_errors() {
    // Hangs up after a short while without a word.
    let server = Server::builder("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .workers(1)
        .pin_workers(false)
        .serve(|ws: WebSocket, _req| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(ws);
        })
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--idle",
        "--connections",
        "5",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert_eq!(report.totals.connected, 5, "{}", report.to_text());
    assert_eq!(report.totals.held, 0, "{}", report.to_text());
    assert_eq!(report.totals.error_count(), 5, "{}", report.to_text());
    assert!(!report.is_clean());
    assert!(report.to_text().contains("idle: 0 of 5 connections"));
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn mixed_sizes_verify_and_count_the_real_bytes() {
    let server = server(|m| m);
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "4",
        "--size",
        "16",
        "--max-size",
        "70000",
        "--pipeline",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--threads",
        "1",
        "--binary",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    let json = report.to_json();
    assert_eq!(json["max_size"], 70000);
    assert_eq!(json["idle"], false);
    let messages = json["messages"].as_u64().unwrap();
    let bytes = json["bytes"].as_u64().unwrap();
    assert!(messages > 100, "{messages}");
    // Log-uniform over 16..=70000 averages about 8 KB a message; 16 B each would be
    // the single-size figure.
    assert!(
        bytes > messages * 1000,
        "{bytes} bytes in {messages} messages"
    );
    assert!(bytes < messages * 70000);
    assert!(report.to_text().contains("16 B..70000 B binary messages"));
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn mixed_sizes_make_sense_only_upwards_and_over_websocket() {
    let cfg = config(&[
        "--url",
        "ws://127.0.0.1:9/",
        "--size",
        "100",
        "--max-size",
        "50",
    ]);
    assert!(matches!(
        run(&cfg, Arc::new(AtomicBool::new(false)), false),
        Err(load::LoadError::Usage(_))
    ));
    // --raw or --idle with --max-size: refused when parsing.
    for mode in [
        &["--raw", "--url", "tcp://127.0.0.1:9"][..],
        &["--idle"][..],
    ] {
        let mut argv = vec!["load", "--max-size", "100"];
        argv.extend_from_slice(mode);
        assert!(Config::try_parse_from(argv).is_err(), "{mode:?}");
    }
}

#[test]
fn thresholds_pass_and_fail_as_set() {
    let server = server(|m| m);
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--threads",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    let p99 = Duration::from_micros(report.totals.latency.value_at_quantile(0.99));
    let rate = report.totals.messages as f64 / report.measured.as_secs_f64();
    let at = |max_p99, min_rate, max_error_rate| Thresholds {
        max_p99,
        min_rate,
        max_error_rate,
    };
    // Met exactly, and with room.
    assert_eq!(
        at(Some(p99), Some(rate * 0.99), Some(0.0)).missed(&report),
        Vec::<String>::new()
    );
    assert!(!Thresholds::default().any());
    // Missed, each with its figure.
    let missed = at(Some(p99 - Duration::from_micros(1)), None, None).missed(&report);
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert!(missed[0].starts_with("p99 "), "{missed:?}");
    let missed = at(None, Some(rate * 2.0), None).missed(&report);
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert!(missed[0].contains("under --min-rate"), "{missed:?}");
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn an_error_rate_threshold_tolerates_errors_up_to_it_and_no_further() {
    // Echoes 5 messages on each connection, then hangs up without a word.
    let server = Server::builder("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .workers(1)
        .pin_workers(false)
        .serve(|ws: WebSocket, _req| async move {
            for _ in 0..5 {
                let Ok(m) = ws.recv().await else { return };
                if ws.send(m).await.is_err() {
                    return;
                }
            }
            drop(ws);
        })
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    let failed = report.totals.error_count();
    assert!(
        failed > 0 && report.totals.messages > 0,
        "{}",
        report.to_text()
    );
    assert!(!report.is_clean(), "errors fail a run without a threshold");
    let rate = load::thresholds::error_rate(&report);
    let tried = (failed + report.totals.messages) as f64;
    assert!((rate - failed as f64 / tried).abs() < 1e-12);
    let allow = |max| Thresholds {
        max_error_rate: Some(max),
        ..Thresholds::default()
    };
    assert!(report.is_clean_within(&allow(rate)));
    assert!(allow(rate).missed(&report).is_empty());
    let strict = allow(rate / 2.0);
    assert!(!report.is_clean_within(&strict));
    let missed = strict.missed(&report);
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert!(missed[0].starts_with("error rate "), "{missed:?}");
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_failed_connect_counts_once_in_the_error_rate() {
    // Two URLs, connections spread over them: the second refuses every connection.
    let server = server(|m| m);
    let good = format!("ws://{}/", server.local_addr());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("ws://127.0.0.1:{port}/");
    let cfg = config(&[
        "--url",
        &good,
        "--url",
        &refused,
        "--connections",
        "4",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert_eq!(report.totals.connect_failures, 2, "{}", report.to_text());
    assert_eq!(report.totals.error_count(), 2, "{}", report.to_text());
    let messages = report.totals.messages;
    assert!(messages > 0);
    // 2 failed of 2 + the echoes tried: each refused connection once, not twice.
    let rate = load::thresholds::error_rate(&report);
    assert!(
        (rate - 2.0 / (2 + messages) as f64).abs() < 1e-12,
        "{rate} with {messages} echoes"
    );
    let within = Thresholds {
        max_error_rate: Some(2.0 / (2 + messages) as f64),
        ..Thresholds::default()
    };
    assert!(within.missed(&report).is_empty());
    assert!(report.is_clean_within(&within));
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_saturated_load_thread_is_reported_with_a_warning() {
    let server = server(|m| m);
    let url = format!("ws://{}/", server.local_addr());
    let cfg = config(&[
        "--url",
        &url,
        "--connections",
        "2",
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    let mut report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    // The figures the self-check reads, set: one thread idle, one on a CPU 97% of
    // the window.
    let thread = |cpu_ms| load::environment::ThreadCpu {
        cpu: Duration::from_millis(cpu_ms),
        wall: Duration::from_millis(1000),
    };
    report.totals.load_threads = vec![thread(100), thread(970)];
    assert_eq!(report.saturated_threads().len(), 1);
    assert_eq!(report.saturated_threads()[0].0, 1);
    let text = report.to_text();
    assert!(
        text.contains("load threads on CPU 10%, 97% of the window"),
        "{text}"
    );
    assert!(
        text.contains("warning: load thread 1 was on a CPU 97%"),
        "{text}"
    );
    assert!(!text.contains("warning: load thread 0"), "{text}");
    let json = report.to_json();
    assert_eq!(json["load_saturated"], true);
    assert_eq!(json["load_threads"].as_array().unwrap().len(), 2);
    // The report page says it too.
    let saved = load::saved_run(&cfg, &report, &["load".to_string()]);
    let notes = load::compare::notes(&load::compare::rows(vec![saved.clone()]));
    assert!(
        notes
            .iter()
            .any(|n| n.contains("busiest load thread was on a CPU 97%")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("warning: ") && n.contains("1 of 1 round(s)")),
        "{notes:?}"
    );
    // And an idle load says nothing of the kind.
    report.totals.load_threads = vec![thread(100)];
    assert!(report.saturated_threads().is_empty());
    assert!(!report.to_text().contains("warning: load thread"));
    assert_eq!(report.to_json()["load_saturated"], false);
    let saved = load::saved_run(&cfg, &report, &["load".to_string()]);
    let notes = load::compare::notes(&load::compare::rows(vec![saved]));
    assert!(
        !notes.iter().any(|n| n.starts_with("warning: ")),
        "{notes:?}"
    );
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_missed_threshold_is_exit_status_99_with_the_reason() {
    let server = server(|m| m);
    let url = format!("ws://{}/", server.local_addr());
    let load = |threshold: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_load"))
            .args(["--url", &url, "--connections", "2", "--duration", "0.5"])
            .args(["--warmup", "0", "--threads", "1", "--max-p99", threshold])
            .output()
            .expect("load runs")
    };
    let out = load("1us");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{stderr}");
    assert!(
        stderr.contains("load: threshold missed: p99 ") && stderr.contains("--max-p99 1µs"),
        "{stderr}"
    );
    let out = load("60s");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn headers_subprotocols_and_origin_reach_the_server_and_urls_share_the_connections() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Each server counts the connections whose handshake carried what was asked for,
    // and echoes only on those.
    let checked = |seen: Arc<AtomicUsize>| {
        Server::builder("127.0.0.1:0".parse::<SocketAddr>().unwrap())
            .workers(1)
            .pin_workers(false)
            .serve(move |ws: WebSocket, req| {
                let ok = req.header_str("authorization") == Some("Bearer t0k")
                    && req.header_str("x-run") == Some("a: b")
                    && req.origin() == Some("https://example.test")
                    && req.protocols().collect::<Vec<_>>() == ["chat", "v2.chat"];
                if ok {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                async move {
                    while ok && let Ok(m) = ws.recv().await {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                }
            })
            .unwrap()
    };
    let (seen_a, seen_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, b) = (checked(seen_a.clone()), checked(seen_b.clone()));
    let (url_a, url_b) = (
        format!("ws://{}/", a.local_addr()),
        format!("ws://{}/", b.local_addr()),
    );
    let cfg = config(&[
        "--url",
        &url_a,
        "--url",
        &url_b,
        "-H",
        "Authorization: Bearer t0k",
        "--header",
        "X-Run: a: b",
        "--origin",
        "https://example.test",
        "--subprotocol",
        "chat",
        "--subprotocol",
        "v2.chat",
        "--connections",
        "6",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--threads",
        "2",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    assert_eq!(seen_a.load(Ordering::Relaxed), 3, "connections 0, 2, 4");
    assert_eq!(seen_b.load(Ordering::Relaxed), 3, "connections 1, 3, 5");
    assert_eq!(report.url, format!("{url_a} {url_b}"));
    // A header without a colon is refused before anything runs.
    let bad = Config::try_parse_from(["load", "-H", "no colon"]);
    assert!(bad.is_err());
    a.shutdown(Duration::from_secs(1));
    b.shutdown(Duration::from_secs(1));
}

#[test]
fn a_closed_stdout_ends_load_quietly() {
    use std::process::{Command, Stdio};
    let server = server(|m| m);
    let url = format!("ws://{}/", server.local_addr());
    let mut child = Command::new(env!("CARGO_BIN_EXE_load"))
        .args(["--url", &url, "--connections", "1", "--duration", "0.3"])
        .args(["--warmup", "0", "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the report is printed.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn stages_ramp_the_connections_up_and_down_on_their_schedule() {
    use std::sync::Mutex;
    use std::time::Instant;
    // The server notes when each connection arrived and when it was closed with 1000.
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let closes: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let (seen, closed) = (arrivals.clone(), closes.clone());
    let server = Server::builder("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .workers(1)
        .pin_workers(false)
        .serve(move |ws: WebSocket, _req| {
            seen.lock().unwrap().push(Instant::now());
            let closed = closed.clone();
            async move {
                loop {
                    match ws.recv().await {
                        Ok(m) => {
                            if ws.send(m).await.is_err() {
                                break;
                            }
                        }
                        Err(wsengine::runtime::Error::Closed(frame))
                            if frame.code == wsengine::CloseCode::NORMAL =>
                        {
                            closed.lock().unwrap().push(Instant::now());
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
        })
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let began = Instant::now();
    // 0 → 4 over 400 ms, hold 400 ms, 4 → 0 over 400 ms.
    let cfg = config(&[
        "--url",
        &url,
        "--stages",
        "400ms:4,400ms:4,400ms:0",
        "--threads",
        "1",
    ]);
    let report = run(&cfg, Arc::new(AtomicBool::new(false)), false).unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    let json = report.to_json();
    assert_eq!(json["connections"], 4, "the peak");
    assert_eq!(json["connected"], 4);
    assert!(
        (json["duration_s"].as_f64().unwrap() - 1.2).abs() < 0.05,
        "{json}"
    );
    // Connection i arrives at (i + 1) × 100 ms, not all at once.
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 4);
    let first = arrivals[0].duration_since(began);
    let spread = arrivals[3].duration_since(arrivals[0]);
    assert!(
        spread >= Duration::from_millis(200),
        "arrived within {spread:?}"
    );
    assert!(first >= Duration::from_millis(50), "first after {first:?}");
    // And leaves on the ramp down, connection 3 at 800 ms to connection 0 at 1.1 s,
    // each closed with 1000 (not all at the end, 1.2 s).
    let deadline = Instant::now() + Duration::from_secs(2);
    while closes.lock().unwrap().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut closes = closes.lock().unwrap().clone();
    closes.sort();
    assert_eq!(closes.len(), 4);
    let spread = closes[3].duration_since(closes[0]);
    assert!(
        spread >= Duration::from_millis(150),
        "closed within {spread:?}"
    );
    assert!(
        closes[0] < arrivals[3] + Duration::from_millis(700),
        "first close on the ramp"
    );
    let text = report.to_text();
    assert!(
        text.contains("stages: 400ms to 4, 400ms to 4, 400ms to 0"),
        "{text}"
    );
    assert!(
        report.to_json()["series"][0]["connections"]
            .as_u64()
            .unwrap()
            >= 1
    );
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn durations_are_taken_as_seconds_or_as_people_write_them() {
    for (given, secs) in [
        ("10", 10.0),
        ("0.5", 0.5),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
    ] {
        let cfg = config(&["--duration", given, "--warmup", given]);
        assert_eq!((cfg.duration, cfg.warmup), (secs, secs), "{given}");
    }
    assert!(Config::try_parse_from(["load", "--duration", "ten"]).is_err());
}
