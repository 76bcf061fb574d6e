//! The command line: what to load, how hard, for how long.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// A WebSocket load generator on wsengine's io_uring client.
///
/// Each connection sends messages and verifies every echo (same type, byte-equal
/// payload). Closed loop by default: each connection keeps `--pipeline` messages in
/// flight. With `--rate`, open loop: messages leave on a fixed schedule and latency is
/// measured from the intended send time (coordinated omission corrected, as wrk2 does).
/// Without `--url` it starts an embedded wsengine echo server on 127.0.0.1 and loads it.
/// `--out DIR` saves the run; `load compare --help` compares saved runs or servers.
#[derive(Parser, Debug, Clone)]
#[command(version)]
pub struct Config {
    /// The server to load: ws:// or wss://HOST:PORT/PATH. Repeat it to spread the
    /// connections over several (connection i goes to URL i mod n: several nodes behind
    /// no balancer, or several ports). Default: an embedded wsengine echo server on
    /// 127.0.0.1 (half the CPUs, the load on the others).
    #[arg(long)]
    pub url: Vec<String>,
    /// An extra request header for the handshake, `NAME: VALUE` (repeatable), e.g.
    /// `-H "Authorization: Bearer …"`.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = header)]
    pub headers: Vec<(String, String)>,
    /// A subprotocol to offer (`Sec-WebSocket-Protocol`, repeatable, in order of
    /// preference).
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,
    /// The `Origin` header, as a browser would send it.
    #[arg(long)]
    pub origin: Option<String>,
    /// Open WebSocket connections.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Payload size of each message in bytes (the smallest, with `--max-size`).
    #[arg(long, default_value_t = 20)]
    pub size: usize,
    /// Mixed sizes: message n of a connection has a size between `--size` and this,
    /// spread log-uniformly and derived from n alone (so every echo is still checked
    /// byte for byte). WebSocket only.
    #[arg(long, value_name = "BYTES", conflicts_with = "raw")]
    pub max_size: Option<usize>,
    /// Time measured (after the warm-up): seconds (`10`, `0.5`) or a duration (`30s`,
    /// `500ms`, `2m`).
    #[arg(long, default_value_t = 10.0, value_name = "DURATION", value_parser = seconds)]
    pub duration: f64,
    /// Messages each connection keeps in flight (closed loop).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Open loop: messages per second in total, spread evenly over the connections.
    /// Latency then counts from each message's scheduled send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Send text messages (the default).
    #[arg(long, conflicts_with = "binary")]
    pub text: bool,
    /// Send binary messages.
    #[arg(long)]
    pub binary: bool,
    /// Load before measuring starts (not counted): seconds or a duration, as
    /// `--duration`.
    #[arg(long, default_value_t = 1.0, value_name = "DURATION", value_parser = seconds)]
    pub warmup: f64,
    /// Load threads, each with its own io_uring ring and its share of the connections.
    /// Default: the number of CPUs (with the embedded server: the CPUs it leaves free).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Report the server's CPU time per message, read from /proc/PID/stat.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Connects in flight per thread while ramping up.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Pin load thread i to CPU (first CPU + i). Always on with the embedded server,
    /// which takes the first CPUs.
    #[arg(long)]
    pub pin: bool,
    /// Raw TCP instead of WebSocket: `--url tcp://HOST:PORT`, messages of `--size` bytes
    /// echoed byte for byte, no framing. For a TCP echo server: the ceiling any
    /// WebSocket server is measured against. Closed loop only.
    #[arg(long)]
    pub raw: bool,
    /// Idle connections: open them (same ramp-up), send nothing, hold them for
    /// `--warmup` + `--duration` seconds, then close each with 1000. A connection that
    /// ends before is an error, a message from the server a mismatch. For measuring a
    /// server's memory per idle connection.
    #[arg(long, conflicts_with_all = ["rate", "raw", "max_size"])]
    pub idle: bool,
    /// With `--idle`: each connection first sends one message of `--size` bytes and waits
    /// for its echo, then goes quiet, so that what a connection keeps after use (buffers,
    /// permessage-deflate streams) is measured rather than a fresh connection.
    #[arg(long, requires = "idle")]
    pub idle_after_echo: bool,
    /// IO driver of the load threads and the embedded server: `auto` (io_uring where the
    /// kernel allows it, else tokio), `uring` or `tokio`.
    #[arg(long, default_value = "auto")]
    pub driver: wsengine::runtime::Driver,
    /// Offer permessage-deflate (RFC 7692, context takeover, level 1; messages of 1 KiB
    /// and more compressed) and report how many connections got it and the bytes on the
    /// wire per payload byte. The embedded server then accepts it too (dedicated mode).
    #[arg(long, conflicts_with = "raw")]
    pub deflate: bool,
    /// The embedded server speaks TLS (wss://), with a throw-away self-signed
    /// certificate that the load trusts (and nothing else).
    #[arg(long, conflicts_with_all = ["url", "raw"])]
    pub tls: bool,
    /// wss:// without verifying the server's certificate (a self-signed benchmark
    /// server). Never against a server you do not control.
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,
    /// wss:// trusting only the certificates in this PEM file (a private CA, or the
    /// server's own self-signed certificate, e.g. `bench-server --tls-cert-out`).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Worker threads of the embedded server (default: half the CPUs).
    #[arg(long)]
    pub server_workers: Option<usize>,
    /// What the connections do: `echo` (every message comes back, verified) or `fanout`
    /// (against a broadcast server: `--publishers` connections publish at `--rate`
    /// messages/s in all, default 1000, and the `--connections` subscribers each verify
    /// and time every publish; reports deliveries/s, publish-to-delivery latency, drops
    /// and how evenly subscribers were served). Without `--url`, fanout runs against an
    /// embedded broadcast server.
    #[arg(long, value_enum, default_value_t = Scenario::Echo)]
    pub scenario: Scenario,
    /// Fan-out: publisher connections (besides the `--connections` subscribers).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Threshold: exit with status 99 if the p99 latency is over this (`2ms`, `500us`,
    /// `1s`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub max_p99: Option<Duration>,
    /// Threshold: exit with status 99 if more than this fraction of what was tried failed
    /// (errors of every kind and failed connects, over those plus the echoes). Errors
    /// within it no longer fail the run; mismatches always do.
    #[arg(long, value_name = "FRACTION", value_parser = fraction)]
    pub max_error_rate: Option<f64>,
    /// Threshold: exit with status 99 if fewer than this many echoes per second came back.
    #[arg(long, value_name = "MSG_PER_SEC")]
    pub min_rate: Option<f64>,
    /// Save the run into this directory: `run.json` (command, environment, results and
    /// the per-second series), `latency.hlog` (an HdrHistogram interval log, one V2
    /// histogram per second, mergeable) and `report.html` (the plots). For `load
    /// compare`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// With `--out`: what this run measured (a server, a build) for `load compare`'s
    /// rows. Default: the URL (or "wsengine-embedded").
    #[arg(long)]
    pub label: Option<String>,
    /// With `--out`: the scenario this run belongs to; `load compare` compares runs of
    /// one group. Default: the shape of the load ("C=100 S=20 K=1").
    #[arg(long)]
    pub group: Option<String>,
    /// Connection ramps, as k6 has them: `DURATION:TARGET,...`, e.g. `10s:100,30s:1000,
    /// 10s:0`. Each stage moves the open connections linearly to its target; connection
    /// i connects when the ramp passes i + 1 and closes (1000) when a ramp down passes it
    /// again. Replaces `--connections` (the peak) and `--duration` (the sum); no warm-up.
    /// Closed loop, or open loop with `--rate` (per connection: the rate over the peak).
    #[arg(long, value_name = "STAGES", value_parser = crate::stages::parse_arg,
          conflicts_with_all = ["idle", "raw", "sweep"])]
    pub stages: Option<crate::stages::Stages>,
    /// Rate sweep: open-loop runs at rates rising geometrically from FROM to TO msg/s
    /// (`--sweep-steps`), until one misses `--max-p99` (or answers fewer than 90% of
    /// the messages, or errs); then `--sweep-refine` runs bisect towards the highest
    /// rate that meets it. Each step is a whole run of `--warmup` + `--duration`.
    #[arg(long, value_name = "FROM:TO", value_parser = crate::sweep::parse_range,
          conflicts_with_all = ["rate", "idle", "raw"])]
    pub sweep: Option<(f64, f64)>,
    /// Steps of the sweep's climb.
    #[arg(long, default_value_t = 6, requires = "sweep")]
    pub sweep_steps: usize,
    /// Bisecting runs after the climb, between the last rate that met the target and
    /// the first that did not.
    #[arg(long, default_value_t = 2, requires = "sweep")]
    pub sweep_refine: usize,
    /// With `--server-pid`: count the server's system calls per message over the
    /// measured window (`perf stat` on the server; needs perf and the permission to
    /// trace it).
    #[arg(long, requires = "server_pid")]
    pub server_syscalls: bool,
}

/// A `NAME: VALUE` header.
fn header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not NAME: VALUE"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// Seconds, as a number (`10`, `0.5`) or a duration as people write them (`30s`,
/// `500ms`, `1m30s`, through `humantime`).
fn seconds(s: &str) -> Result<f64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(secs);
    }
    humantime::parse_duration(s)
        .map(|d| d.as_secs_f64())
        .map_err(|e| format!("{s:?} is neither seconds nor a duration (30s, 500ms): {e}"))
}

/// A fraction between 0 and 1.
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        Ok(f) => Err(format!("{f} is not between 0 and 1")),
        Err(e) => Err(e.to_string()),
    }
}

/// What the connections of a run do.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Send and verify every echo.
    Echo,
    /// Publishers and subscribers of a broadcast server.
    Fanout,
}

impl Config {
    /// Whether messages are text (the default) or binary.
    pub fn is_text(&self) -> bool {
        !self.binary
    }

    /// The default `--group`: the shape of the load, e.g. "C=100 S=20 K=1" or
    /// "C=10 S=16384 rate=5000 binary".
    pub fn default_group(&self) -> String {
        let connections = match &self.stages {
            Some(stages) => crate::stages::peak(&stages.0),
            None => self.connections,
        };
        let mut group = format!("C={connections} S={}", self.size);
        if let Some(max) = self.max_size {
            group += &format!("..{max}");
        }
        match self.rate {
            Some(rate) => group += &format!(" rate={rate}"),
            None => group += &format!(" K={}", self.pipeline.max(1)),
        }
        if self.binary {
            group += " binary";
        }
        if self.idle {
            group += " idle";
        }
        if self.scenario == Scenario::Fanout {
            group += &format!(" fanout P={}", self.publishers);
        }
        if let Some(stages) = &self.stages {
            group += &format!(" stages={stages}");
        }
        group
    }
}

/// Where the server is, once the embedded one (if any) runs.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL to connect to.
    pub url: String,
    /// Its address, when it is a literal IP address (for loopback source addresses).
    pub addr: Option<SocketAddr>,
}
