//! bench-server: a WebSocket echo (or sink) server on the wsengine io_uring runtime, for
//! benchmarks, interop tests and the Autobahn conformance suite.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use wsengine::proto::extensions::DeflateConfig;
use wsengine::runtime::{Driver, MemoryBudget, Server, ServerTls, SocketOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A WebSocket benchmark server on wsengine (io_uring, thread-per-core).
///
/// Prints `listening on ws://ADDR` (`wss://` with TLS) when ready. On SIGINT or SIGTERM
/// it shuts down gracefully (close 1001 to every connection) and prints the totals.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port, printed on the first line).
    #[arg(long, default_value = "127.0.0.1:9001")]
    addr: SocketAddr,
    /// Worker threads, each pinned to a CPU with its own io_uring ring and SO_REUSEPORT
    /// listener. Default: the number of CPUs.
    #[arg(long)]
    workers: Option<usize>,
    /// What to do with each message: `echo` sends it back with the same type; `sink`
    /// counts and drops it.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    mode: Mode,
    /// The largest message (and frame) accepted, in bytes; larger ones close the
    /// connection with 1009.
    #[arg(long, default_value_t = 64 << 20)]
    max_message_size: usize,
    /// Bytes queued for a connection's socket above which echoing waits (backpressure).
    #[arg(long, default_value_t = 1 << 20)]
    max_send_queue: usize,
    /// The least free space a read gets while data is flowing, in bytes (idle
    /// connections read into 512 bytes).
    #[arg(long, default_value_t = 4096)]
    read_buffer_size: usize,
    /// Seconds a client has to complete the opening handshake.
    #[arg(long, default_value_t = 10.0)]
    handshake_timeout: f64,
    /// Send a ping after this many seconds without traffic (0: never).
    #[arg(long, default_value_t = 0.0)]
    ping_interval: f64,
    /// Drop a connection after this many seconds without receiving anything (0: never).
    #[arg(long, default_value_t = 0.0)]
    idle_timeout: f64,
    /// Drop a connection (1008) whose socket takes none of our bytes for this many
    /// seconds: a peer that stopped reading (0: never).
    #[arg(long, default_value_t = 30.0)]
    send_stall_timeout: f64,
    /// Open connections per worker above which new ones get HTTP 503.
    #[arg(long, default_value_t = 100_000)]
    max_connections_per_worker: usize,
    /// io_uring driver: buffers in each worker's provided buffer ring (a power of two).
    #[arg(long, default_value_t = 256)]
    receive_buffers: u16,
    /// io_uring driver: the size of each of those buffers, in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    receive_buffer_size: usize,
    /// IO driver: `auto` (io_uring where the kernel allows it, else tokio's epoll
    /// reactor, saying so on stderr), `uring`, `tokio` or `tokio-uring`.
    #[arg(long, default_value = "auto")]
    driver: Driver,
    /// permessage-deflate (RFC 7692) for clients that offer it: `shared` (no context
    /// takeover either way, streams lent per message from each worker's pool: 0 bytes per
    /// idle connection, like uWebSockets' SHARED_COMPRESSOR), `dedicated` (context takeover:
    /// the best ratio, ~400 KiB per connection while it compresses, the compressor freed
    /// after 30 s unused) or `off`. Clients that do not offer it (like `load` without
    /// `--deflate`) get plain frames either way.
    #[arg(long, value_enum, default_value_t = Deflate::Shared)]
    deflate: Deflate,
    /// With permessage-deflate: messages shorter than this many bytes go uncompressed.
    #[arg(long, default_value_t = 1024)]
    deflate_min_size: usize,
    /// The memory budget for everything the connections hold buffered, in MiB (split
    /// among the workers); past it a connection over its share waits, and one that
    /// waits longer than `--memory-wait` is closed with 1013.
    #[arg(long, default_value_t = 1024)]
    memory_budget: usize,
    /// What each connection may hold whatever the budget, in KiB.
    #[arg(long, default_value_t = 256)]
    memory_per_connection: usize,
    /// Seconds a connection may wait for memory before it is closed with 1013.
    #[arg(long, default_value_t = 10.0)]
    memory_wait: f64,
    /// Seconds open connections get to close after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 5.0)]
    shutdown_grace: f64,
    /// Print the server's stats (open connections, bytes buffered, connections paused and
    /// closed for memory; pub/sub's published, delivered and dropped) to stderr every
    /// SECS seconds.
    #[arg(long, value_name = "SECS")]
    stats_every: Option<f64>,
    /// Serve wss://: the certificate chain (PEM, leaf first). SIGHUP reloads it and
    /// `--tls-key` (new connections get the new certificate).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve wss:// with a throw-away self-signed certificate for localhost and
    /// 127.0.0.1, made at start; its SHA-256 fingerprint goes to stderr.
    #[arg(long, conflicts_with = "tls_cert")]
    tls_self_signed: bool,
    /// With `--tls-self-signed`: also write the certificate (PEM) here, for clients to
    /// trust it (`load --ca FILE`, Python's `ssl`, Node's `ca`).
    #[arg(long, value_name = "FILE", requires = "tls_self_signed")]
    tls_cert_out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Send every text or binary message back, same type, same payload.
    Echo,
    /// Receive and count, send nothing back.
    Sink,
    /// Every connection subscribes to one topic; every message received is published to
    /// it unchanged, so every connection (the sender included) gets it: the server
    /// uWebSockets' `benchmarks/broadcast_test.c` and `load --scenario fanout` drive.
    /// Connections to the path `/echo` are echoed instead (not subscribed): a probe that
    /// measures ordinary service while the topic floods (`scripts/memory_attack.sh`).
    Broadcast,
}

/// The one topic of `--mode broadcast`.
const BROADCAST_TOPIC: &str = "broadcast";

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Deflate {
    /// No context takeover, streams shared per worker.
    Shared,
    /// Context takeover, a compressor per connection while in use.
    Dedicated,
    /// Decline every offer.
    Off,
}

/// Totals over all workers, added to when a worker thread exits.
static MESSAGES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// A worker's counters: plain cells on the hot path, summed into the totals at exit.
struct WorkerCounts {
    messages: Cell<u64>,
    bytes: Cell<u64>,
}

impl Drop for WorkerCounts {
    fn drop(&mut self) {
        MESSAGES.fetch_add(self.messages.get(), Ordering::Relaxed);
        BYTES.fetch_add(self.bytes.get(), Ordering::Relaxed);
    }
}

thread_local! {
    static COUNTS: WorkerCounts = const { WorkerCounts { messages: Cell::new(0), bytes: Cell::new(0) } };
}

fn seconds(s: f64) -> Option<Duration> {
    (s > 0.0).then(|| Duration::from_secs_f64(s))
}

/// The server's TLS configuration from the arguments, if it serves wss://.
fn tls(args: &Args) -> Result<Option<ServerTls>, String> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        return ServerTls::from_pem_files(cert, key)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    if !args.tls_self_signed {
        return Ok(None);
    }
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, made.cert.der());
    let hex: Vec<String> = fingerprint
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    eprintln!(
        "bench-server: self-signed certificate for localhost, 127.0.0.1; SHA-256 {}",
        hex.join(":")
    );
    if let Some(out) = &args.tls_cert_out {
        std::fs::write(out, made.cert.pem()).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    ServerTls::from_pem(
        made.cert.pem().as_bytes(),
        made.signing_key.serialize_pem().as_bytes(),
    )
    .map(Some)
    .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let tls = match tls(&args) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("bench-server: TLS: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut options = SocketOptions::default();
    options.protocol.max_message_size = args.max_message_size;
    options.protocol.max_frame_size = args.max_message_size;
    options.max_send_queue = args.max_send_queue;
    options.read_buffer_size = args.read_buffer_size;
    options.protocol.ping_interval = seconds(args.ping_interval);
    options.protocol.idle_timeout = seconds(args.idle_timeout);
    options.send_stall_timeout = seconds(args.send_stall_timeout);
    options.protocol.deflate = match args.deflate {
        Deflate::Shared => DeflateConfig::shared(),
        Deflate::Dedicated => DeflateConfig::dedicated(),
        Deflate::Off => DeflateConfig::default(),
    };
    options.protocol.deflate.min_size = args.deflate_min_size;
    let mut budget = MemoryBudget::default();
    budget.total = args.memory_budget.saturating_mul(1 << 20);
    budget.per_connection = args.memory_per_connection.saturating_mul(1024);
    budget.wait = Duration::from_secs_f64(args.memory_wait);
    let mut builder = Server::builder(args.addr)
        .socket_options(options)
        .handshake_timeout(Duration::from_secs_f64(args.handshake_timeout))
        .max_connections_per_worker(args.max_connections_per_worker)
        .receive_buffers(args.receive_buffers, args.receive_buffer_size)
        .memory_budget(budget)
        .driver(args.driver);
    if let Some(workers) = args.workers {
        builder = builder.workers(workers);
    }
    if let Some(tls) = &tls {
        builder = builder.tls(tls.clone());
    }
    let mode = args.mode;
    let server = builder.serve(move |ws, request| async move {
        let mode = match mode {
            Mode::Broadcast if request.path() == "/echo" => Mode::Echo,
            mode => mode,
        };
        if let Mode::Broadcast = mode
            && ws.subscribe(BROADCAST_TOPIC).is_err()
        {
            return;
        }
        while let Ok(message) = ws.recv().await {
            COUNTS.with(|c| {
                c.messages.set(c.messages.get() + 1);
                c.bytes.set(c.bytes.get() + message.len() as u64);
            });
            let sent = match mode {
                Mode::Echo => ws.send(message).await,
                Mode::Sink => Ok(()),
                Mode::Broadcast => ws.publish(BROADCAST_TOPIC, &message),
            };
            if sent.is_err() {
                break;
            }
        }
    });
    let server = match server {
        Ok(server) => server,
        Err(e) => {
            eprintln!("bench-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("bench-server: driver {}", server.driver());
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    println!("listening on {scheme}://{}", server.local_addr());
    if let Some(every) = args.stats_every {
        let stats = server.stats().clone();
        let publisher = server.publisher();
        let every = Duration::from_secs_f64(every.max(0.01));
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(every);
                let pubsub = publisher.stats();
                eprintln!(
                    "stats: open {} buffered {} MiB paused for memory {} closed for memory {} \
                     published {} delivered {} dropped {}",
                    stats.open.load(Ordering::Relaxed),
                    stats.buffered_bytes.load(Ordering::Relaxed) >> 20,
                    stats.paused_for_memory.load(Ordering::Relaxed),
                    stats.closed_for_memory.load(Ordering::Relaxed),
                    pubsub.published,
                    pubsub.delivered,
                    pubsub.dropped,
                );
            }
        });
    }
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("bench-server: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signal = loop {
        let signal = signals.forever().next();
        if signal != Some(signal_hook::consts::SIGHUP) {
            break signal;
        }
        // SIGHUP: the certificate files again (a renewed certificate).
        match (&tls, &args.tls_cert, &args.tls_key) {
            (Some(tls), Some(cert), Some(key)) => match tls.reload_pem_files(cert, key) {
                Ok(()) => eprintln!("bench-server: certificate reloaded"),
                Err(e) => eprintln!("bench-server: certificate not reloaded: {e}"),
            },
            _ => eprintln!("bench-server: SIGHUP ignored (no --tls-cert to reload)"),
        }
    };
    eprintln!("bench-server: signal {signal:?}, shutting down");
    let stats = server.stats().clone();
    server.shutdown(Duration::from_secs_f64(args.shutdown_grace));
    println!(
        "totals: connections {} (rejected {}, closed for memory {}), messages {}, bytes {}",
        stats.upgraded.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed),
        stats.closed_for_memory.load(Ordering::Relaxed),
        MESSAGES.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    ExitCode::SUCCESS
}
