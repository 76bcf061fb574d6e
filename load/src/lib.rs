//! load: a WebSocket load generator on wsengine's io_uring client.
//!
//! Thread-per-core like the server: each load thread runs its own io_uring runtime with
//! its share of the connections, and keeps its own histograms, so nothing is shared on
//! the hot path; the figures are summed at the end. All messages a connection has ready
//! in one turn leave in one write (the engine coalesces them), which keeps the client
//! from being the bottleneck on small machines.
//!
//! Each connection runs one of: the closed loop (K messages in flight), the open loop
//! (a fixed schedule), the raw TCP closed loop, or idle (open, silent, held to the end;
//! for a server's memory per connection). Message `n` of a connection, its size included
//! with `--max-size`, is a function of `n`, so every echo is checked byte for byte
//! without keeping a copy.
//!
//! The rooms: `drive/` (what the connections do), `figures/` (what is measured, the
//! server's cost and the load's own), `output/` (the report, thresholds, saved runs,
//! `load compare` and the HTML page); `sweep` runs whole runs at rising rates. Runs
//! are saved as JSON plus an HdrHistogram interval log, so that rounds and servers are
//! compared from merged histograms rather than from averaged percentiles.

pub mod config;
mod drive;
mod figures;
mod output;
pub mod sweep;

pub use drive::stages;
use drive::{connection, fanout, pacer, payload};
pub use figures::{environment, series, server_cpu, server_syscalls, stats};
pub use output::{compare, plot, report, saved, thresholds};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use wsengine::proto::extensions::DeflateConfig;
use wsengine::runtime::{
    ClientTls, ConnectOptions, Driver, Error, LocalRuntime, Server, ServerHandle, ServerTls,
    WebSocket,
};

pub use config::{Config, Scenario};
use connection::{Shape, Window};
use fanout::FanoutShared;
pub use report::Report;
use server_syscalls::SyscallCount;
use stats::{LiveCounters, ThreadStats, Totals};
pub use thresholds::Thresholds;

/// Connections per loopback source address before the next one is used (the ephemeral
/// port range holds about 28,000 ports per address).
const CONNECTIONS_PER_SOURCE: usize = 20_000;

/// The embedded broadcast server's one topic.
const BROADCAST_TOPIC: &str = "broadcast";

/// Why a run could not start.
#[derive(Debug)]
pub enum LoadError {
    /// The embedded server, or a load thread's io_uring runtime, could not start.
    Engine(Error),
    /// The options do not make sense.
    Usage(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Engine(e) => write!(f, "{e}"),
            LoadError::Usage(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for LoadError {}

/// An echo server (a broadcast server for the fan-out) started for the run when no
/// `--url` is given.
fn embedded_server(
    workers: usize,
    driver: Driver,
    deflate: bool,
    tls: Option<ServerTls>,
    broadcast: bool,
) -> Result<ServerHandle, LoadError> {
    let mut options = wsengine::runtime::SocketOptions::default();
    options.max_send_queue = 4 << 20;
    if deflate {
        options.protocol.deflate = DeflateConfig::dedicated();
    }
    let mut builder = Server::builder(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .workers(workers)
        .driver(driver)
        .socket_options(options);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    if broadcast {
        return builder
            .serve(|ws: WebSocket, _request| async move {
                if ws.subscribe(BROADCAST_TOPIC).is_err() {
                    return;
                }
                while let Ok(message) = ws.recv().await {
                    if ws.publish(BROADCAST_TOPIC, &message).is_err() {
                        break;
                    }
                }
            })
            .map_err(LoadError::Engine);
    }
    builder
        .serve(|ws: WebSocket, _request| async move {
            while let Ok(message) = ws.recv().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        })
        .map_err(LoadError::Engine)
}

/// A throw-away certificate for 127.0.0.1 (the embedded server with `--tls`): the
/// server's configuration, and the client's that trusts it alone.
fn self_signed() -> Result<(ServerTls, ClientTls), LoadError> {
    let failed = |e: &dyn std::fmt::Display| LoadError::Usage(format!("--tls: {e}"));
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .map_err(|e| failed(&e))?;
    let cert = made.cert.pem();
    let server = ServerTls::from_pem(cert.as_bytes(), made.signing_key.serialize_pem().as_bytes())
        .map_err(|e| failed(&e))?;
    let client = ClientTls::from_ca_pem(cert.as_bytes()).map_err(|e| failed(&e))?;
    Ok((server, client))
}

/// The client's TLS configuration from `--insecure` and `--ca` (none: the default
/// roots).
fn client_tls(config: &Config) -> Result<Option<ClientTls>, LoadError> {
    if config.insecure {
        return Ok(Some(ClientTls::insecure()));
    }
    match &config.ca {
        Some(path) => ClientTls::from_ca_pem_file(path)
            .map(Some)
            .map_err(|e| LoadError::Usage(format!("--ca: {e}"))),
        None => Ok(None),
    }
}

/// The address of a `tcp://HOST:PORT` URL (raw mode).
fn raw_address(url: &str) -> Result<SocketAddr, LoadError> {
    use std::net::ToSocketAddrs;
    let bad = || LoadError::Usage(format!("--raw needs a tcp://HOST:PORT URL, not {url}"));
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    if parsed.scheme() != "tcp" {
        return Err(bad());
    }
    let host = parsed.host_str().ok_or_else(bad)?;
    let port = parsed.port().ok_or_else(bad)?;
    // IPv6 hosts come bracketed from the URL; the resolver takes them bare.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| LoadError::Usage(format!("cannot resolve {url}")))
}

/// A connection under load.
enum Peer {
    WebSocket(WebSocket),
    Raw(tokio_uring::net::TcpStream),
}

/// The literal IP address in a `ws://` URL, if it has one.
fn url_ip(url: &str) -> Option<IpAddr> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed.scheme() != "ws" {
        return None;
    }
    match parsed.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Runs the load and returns the figures. `stop` ends it early (Ctrl-C); `progress`
/// shows the live line.
pub fn run(config: &Config, stop: Arc<AtomicBool>, progress: bool) -> Result<Report, LoadError> {
    // Stages: the peak is the connections, the stages' sum the measured window.
    let staged;
    let config = match &config.stages {
        Some(stages) => {
            staged = Config {
                connections: stages::peak(&stages.0),
                duration: stages::total(&stages.0).as_secs_f64(),
                warmup: 0.0,
                ..config.clone()
            };
            &staged
        }
        None => config,
    };
    if config.connections == 0 || config.duration <= 0.0 {
        return Err(LoadError::Usage(
            "--connections and --duration must be positive".into(),
        ));
    }
    if let Some(rate) = config.rate {
        // The time between two messages of a connection must be a duration we can keep.
        let interval = Duration::try_from_secs_f64(config.connections as f64 / rate);
        if !(rate.is_finite() && rate > 0.0)
            || interval.is_err()
            || interval.ok() == Some(Duration::ZERO)
        {
            return Err(LoadError::Usage(format!(
                "--rate must be a positive number of messages per second (one connection's interval between 1 ns and years), not {rate:?}"
            )));
        }
    }
    if config.stages.is_some() && config.scenario == Scenario::Fanout {
        return Err(LoadError::Usage(
            "--stages ramps echo connections (not --scenario fanout)".into(),
        ));
    }
    if config.raw && (config.url.is_empty() || config.rate.is_some()) {
        return Err(LoadError::Usage(
            "--raw needs --url tcp://HOST:PORT and runs closed loop only (no --rate)".into(),
        ));
    }
    if config.max_size.is_some_and(|max| max < config.size) {
        return Err(LoadError::Usage(
            "--max-size must be at least --size".into(),
        ));
    }
    if config.raw && config.max_size.is_some() {
        return Err(LoadError::Usage(
            "--raw sends one size only (no --max-size)".into(),
        ));
    }
    if config.idle && (config.rate.is_some() || config.raw || config.max_size.is_some()) {
        return Err(LoadError::Usage(
            "--idle sends no messages (no --rate, --raw or --max-size)".into(),
        ));
    }
    let fanout = config.scenario == Scenario::Fanout;
    if fanout && (config.raw || config.idle || config.publishers == 0) {
        return Err(LoadError::Usage(
            "--scenario fanout needs --publishers of at least 1 (no --raw or --idle)".into(),
        ));
    }
    if fanout && config.size < fanout::HEADER {
        return Err(LoadError::Usage(format!(
            "--scenario fanout sends at least {} bytes (publisher, sequence, time): --size {} is too small",
            fanout::HEADER,
            config.size
        )));
    }
    let raw_addrs = if config.raw {
        config
            .url
            .iter()
            .map(|url| raw_address(url))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    // One decision for every thread (and the embedded server), said once.
    let mut driver = wsengine::runtime::executor::resolve(config.driver, 4096);
    if config.raw {
        // The raw TCP client is written on tokio-uring's streams.
        match driver {
            Driver::Uring | Driver::TokioUring => driver = Driver::TokioUring,
            _ => {
                return Err(LoadError::Usage(
                    "--raw runs on io_uring only (the kernel refused it, or --driver tokio)".into(),
                ));
            }
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut tls = client_tls(config)?;
    let (server, urls, placement) = match config.url.as_slice() {
        [_, ..] => (None, config.url.clone(), None),
        [] => {
            let workers = config.server_workers.unwrap_or((cpus / 2).max(1));
            let (server_tls, scheme) = if config.tls {
                let (server_tls, client) = self_signed()?;
                tls = Some(client);
                (Some(server_tls), "wss")
            } else {
                (None, "ws")
            };
            let server = embedded_server(workers, driver, config.deflate, server_tls, fanout)?;
            let url = format!("{scheme}://{}/", server.local_addr());
            (Some(server), vec![url], Some(workers))
        }
    };
    // Fan-out: publishers are the first connections, subscribers the rest.
    let connections = config.connections + if fanout { config.publishers } else { 0 };
    let fanout_job = fanout.then(|| FanoutJob {
        publishers: config.publishers,
        interval: Duration::from_secs_f64(
            config.publishers as f64 / config.rate.unwrap_or(FANOUT_RATE),
        ),
        shared: FanoutShared::new(config.publishers),
    });
    let threads = config
        .threads
        .unwrap_or(match placement {
            Some(workers) => cpus.saturating_sub(workers).max(1),
            None => cpus,
        })
        .clamp(1, connections);
    let first_cpu = placement.unwrap_or(0);
    let pin = placement.is_some() || config.pin;
    let loopback_v4: Vec<bool> = urls
        .iter()
        .map(|url| matches!(url_ip(url), Some(IpAddr::V4(ip)) if ip.is_loopback()))
        .collect();
    let mut handshake = ConnectOptions::default();
    handshake.headers = config.headers.clone();
    handshake.protocols = config.subprotocols.clone();
    handshake.origin = config.origin.clone();
    let seconds = |flag: &str, secs: f64| {
        Duration::try_from_secs_f64(secs.max(0.0))
            .map_err(|_| LoadError::Usage(format!("--{flag} {secs} is not a number of seconds")))
    };
    let warmup = seconds("warmup", config.warmup)?;
    let duration = seconds("duration", config.duration)?;
    let shape = Shape {
        size: config.size,
        max_size: config.max_size.unwrap_or(config.size),
        text: config.is_text(),
        pipeline: config.pipeline.max(1),
        interval: config
            .rate
            .map(|r| Duration::from_secs_f64(config.connections as f64 / r)),
    };

    let barrier = Arc::new(Barrier::new(threads + 1));
    // What the load threads watch: set at the end of the window, or when `stop` is
    // (which stays the caller's: `load compare` runs on after a run ends).
    let halt = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut live = Vec::new();
    for t in 0..threads {
        let counters = Arc::new(LiveCounters::default());
        live.push(counters.clone());
        let job = ThreadJob {
            index: t,
            threads,
            connections,
            fanout: fanout_job.clone(),
            urls: urls.clone(),
            stages: config.stages.clone().map(|s| s.0),
            raw_addrs: raw_addrs.clone(),
            loopback_v4: loopback_v4.clone(),
            handshake: handshake.clone(),
            connect_concurrency: config.connect_concurrency.max(1),
            shape,
            idle: config.idle,
            idle_after_echo: config.idle_after_echo,
            deflate: config.deflate,
            tls: tls.clone(),
            warmup,
            duration,
            pin_cpu: pin.then_some((first_cpu + t) % cpus),
            driver,
            counters,
            barrier: barrier.clone(),
            stop: halt.clone(),
        };
        handles.push(
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || job.run())
                .map_err(|e| LoadError::Engine(Error::Io(e)))?,
        );
    }

    // Every thread has connected (or given up) once the barrier opens.
    barrier.wait();
    let start = Instant::now();
    let window = Window {
        measure_from: start + warmup,
        end: start + warmup + duration,
    };
    let watch = report::Progress::new(progress, config.idle, warmup, warmup + duration);
    let mut cpu_from = None;
    let mut measuring = false;
    let mut measure_started = SystemTime::now();
    let mut syscalls = None;
    let mut stopped_early = false;
    loop {
        let now = Instant::now();
        if !measuring && now >= window.measure_from {
            measuring = true;
            measure_started = SystemTime::now();
            cpu_from = config.server_pid.and_then(server_cpu::cpu_time);
            if let (Some(pid), true) = (config.server_pid, config.server_syscalls) {
                syscalls = Some(SyscallCount::start(pid, duration).map_err(|e| e.to_string()));
            }
        }
        if now >= window.end {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            stopped_early = true;
            break;
        }
        watch.update(now - start, &live);
        std::thread::sleep(Duration::from_millis(100).min(window.end - now));
    }
    let measured_until = Instant::now().min(window.end);
    let cpu_to = config.server_pid.and_then(server_cpu::cpu_time);
    let syscalls = syscalls.map(|counting| counting.and_then(SyscallCount::finish));
    halt.store(true, Ordering::Relaxed);
    watch.finish();

    let mut totals = Totals::empty();
    let mut errors = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(Ok(t)) => totals.add(&t),
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push(Error::Io(std::io::Error::other("a load thread panicked"))),
        }
    }
    if let Some(server) = server {
        server.shutdown(Duration::from_secs(2));
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(LoadError::Engine(e));
    }
    if let Some(job) = &fanout_job {
        totals.published = job.shared.published();
    }
    let measured = measured_until.saturating_duration_since(window.measure_from);
    let held_for = measured_until.saturating_duration_since(start);
    let mut report = Report::new(
        config,
        urls.join(" "),
        threads,
        placement.map(|workers| (workers, first_cpu)),
        totals,
        measured,
        held_for,
        match (cpu_from, cpu_to) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        stopped_early,
    );
    report.driver = driver.name();
    report.server_syscalls = syscalls;
    report.measure_started = measure_started;
    Ok(report)
}

/// Publishes per second in all in the fan-out when `--rate` is not given.
const FANOUT_RATE: f64 = 1000.0;

/// The fan-out's part of a load thread's job.
#[derive(Clone)]
struct FanoutJob {
    publishers: usize,
    /// Between two publishes of one publisher.
    interval: Duration,
    shared: Arc<FanoutShared>,
}

/// One load thread's part of the run.
struct ThreadJob {
    driver: Driver,
    index: usize,
    threads: usize,
    /// Connections of the whole run (fan-out: publishers first).
    connections: usize,
    fanout: Option<FanoutJob>,
    /// Connection i goes to URL i mod n.
    urls: Vec<String>,
    /// `--stages`: connections open and close on the ramp's schedule.
    stages: Option<Vec<stages::Stage>>,
    /// Raw mode: their addresses.
    raw_addrs: Vec<SocketAddr>,
    /// Whether each is a literal IPv4 loopback address (more source addresses past
    /// one's ephemeral ports).
    loopback_v4: Vec<bool>,
    /// Headers, subprotocols and origin of the handshake.
    handshake: ConnectOptions,
    connect_concurrency: usize,
    shape: Shape,
    idle: bool,
    idle_after_echo: bool,
    deflate: bool,
    /// wss://: whom to trust (none: the default roots).
    tls: Option<ClientTls>,
    warmup: Duration,
    duration: Duration,
    pin_cpu: Option<usize>,
    counters: Arc<LiveCounters>,
    barrier: Arc<Barrier>,
    stop: Arc<AtomicBool>,
}

impl ThreadJob {
    fn run(self) -> Result<Totals, Error> {
        if let Some(cpu) = self.pin_cpu
            && let Some(cores) = core_affinity::get_core_ids()
            && let Some(core) = cores.get(cpu)
        {
            core_affinity::set_for_current(*core);
        }
        let runtime = match LocalRuntime::new(self.driver, 4096) {
            Ok(runtime) => runtime,
            Err(e) => {
                self.barrier.wait();
                return Err(e);
            }
        };
        let stats = Rc::new(ThreadStats::new(self.counters.clone()));
        runtime.block_on(self.load(stats.clone()));
        drop(runtime);
        Rc::try_unwrap(stats)
            .map(ThreadStats::into_totals)
            .map_err(|_| Error::Io(std::io::Error::other("load tasks still running")))
    }

    async fn load(self, stats: Rc<ThreadStats>) {
        let sockets = match self.stages {
            // Ramps connect on their schedule, after the start.
            Some(_) => Vec::new(),
            None => self.connect_all(&stats).await,
        };
        // Start together: the main thread measures from when every thread is ready.
        self.barrier.wait();
        let start = Instant::now();
        let window = Window {
            measure_from: start + self.warmup,
            end: start + self.warmup + self.duration,
        };
        stats.seconds.start(window.measure_from, self.duration);
        stats.window_end.set(Some(window.end));
        stats.open.set(sockets.len() as u64);
        // Idle connections wait on this rather than polling `stop` each.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let connections = self.connections;
        // The open loop's precise timer (tokio's wakes a millisecond or more late).
        let pacer = match self.shape.interval {
            Some(_) => match pacer::Pacer::new() {
                Ok((pacer, firing)) => Some((pacer, tokio_uring::spawn(firing))),
                Err(_) => {
                    stats.error("timerfd");
                    None
                }
            },
            None => None,
        };
        for (index, peer) in sockets {
            let stats = stats.clone();
            let shape = self.shape;
            let stop = self.stop.clone();
            if let (Some(job), Peer::WebSocket(ws)) = (&self.fanout, &peer) {
                let (ws, job) = (ws.clone(), job.clone());
                tasks.push(tokio_uring::spawn(async move {
                    if index < job.publishers {
                        let id = index as u32;
                        fanout::publisher(
                            ws,
                            id,
                            shape.size,
                            job.interval,
                            window,
                            job.shared,
                            stats,
                            &stop,
                        )
                        .await;
                    } else {
                        fanout::subscriber(ws, shape.size, window, job.shared, stats).await;
                    }
                }));
                continue;
            }
            let idle = self.idle.then(|| stop_rx.clone());
            let greet = self.idle_after_echo;
            let pacer = pacer.as_ref().map(|(pacer, _)| pacer.clone());
            if let Peer::WebSocket(ws) = &peer
                && ws.deflate().is_some()
            {
                stats.deflated.set(stats.deflated.get() + 1);
            }
            tasks.push(tokio_uring::spawn(async move {
                let handle = match &peer {
                    Peer::WebSocket(ws) => Some(ws.clone()),
                    Peer::Raw(_) => None,
                };
                let wire_stats = stats.clone();
                match (peer, idle) {
                    (Peer::WebSocket(ws), Some(stop)) => {
                        connection::idle(ws, greet.then_some(shape), window, stats, stop).await
                    }
                    (Peer::Raw(stream), _) => {
                        connection::raw_closed_loop(stream, shape, window, stats, &stop).await
                    }
                    (Peer::WebSocket(ws), None) => {
                        let phase = index as f64 / connections as f64;
                        echo(ws, shape, phase, pacer, window, stats, &stop).await;
                        return;
                    }
                }
                wire_stats.open.set(wire_stats.open.get().saturating_sub(1));
                if let Some(ws) = handle {
                    let wire = &wire_stats.wire_received;
                    wire.set(wire.get() + ws.wire_bytes().received);
                }
            }));
        }
        if let Some(stages) = &self.stages {
            for i in (self.index..self.connections).step_by(self.threads) {
                let open = stages::schedule(stages, i);
                let connect = self.connector(i);
                let (stats, stop, shape) = (stats.clone(), self.stop.clone(), self.shape);
                let pacer = pacer.as_ref().map(|(pacer, _)| pacer.clone());
                let phase = i as f64 / connections as f64;
                let mut stopped = stop_rx.clone();
                tasks.push(tokio_uring::spawn(async move {
                    for (from, until) in open {
                        // Ctrl-C ends the wait for a connection's turn, too.
                        tokio::select! {
                            _ = tokio::time::sleep_until((start + from).into()) => {}
                            _ = stopped.wait_for(|stopped| *stopped) => return,
                        }
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let Some(Peer::WebSocket(ws)) = connect(stats.clone()).await else {
                            continue;
                        };
                        let on_ramp = Window {
                            measure_from: window.measure_from,
                            end: (start + until).min(window.end),
                        };
                        stats.open.set(stats.open.get() + 1);
                        echo(
                            ws,
                            shape,
                            phase,
                            pacer.clone(),
                            on_ramp,
                            stats.clone(),
                            &stop,
                        )
                        .await;
                    }
                }));
            }
        }
        // Publish p99 for the progress line; pass Ctrl-C on to idle connections; read
        // this thread's CPU when the window begins and ends (the self-check).
        let publisher = {
            let stats = stats.clone();
            let stop = self.stop.clone();
            tokio_uring::spawn(async move {
                loop {
                    let now = Instant::now();
                    let next = now + Duration::from_millis(250);
                    // Wake at the window's edges: the self-check reads the CPU there.
                    let edge = match stats.cpu_from.get() {
                        None => window.measure_from,
                        Some(_) => window.end,
                    };
                    let next = if edge > now { next.min(edge) } else { next };
                    tokio::time::sleep_until(next.into()).await;
                    let now = Instant::now();
                    if stats.cpu_from.get().is_none() && now >= window.measure_from {
                        stats.cpu_from.set(Some((now, environment::thread_cpu())));
                    } else if now >= window.end {
                        stats.finish_cpu(now);
                    }
                    if now >= window.measure_from {
                        stats.seconds.open_connections(now, stats.open.get());
                    }
                    stats.publish_p99();
                    if stop.load(Ordering::Relaxed) {
                        let _ = stop_tx.send(true);
                    }
                }
            })
        };
        // Every connection stops by itself after the window; this bounds a hung one.
        let hard_end = window.end + Duration::from_secs(5);
        for task in tasks {
            let left = hard_end.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, task).await.is_err() {
                stats.error("hung at the end");
            }
        }
        // Stopped early (or the window's end not reached by the publisher): now.
        stats.finish_cpu(Instant::now());
        publisher.abort();
        if let Some((_, firing)) = pacer {
            firing.abort();
        }
    }

    /// Opens this thread's connections, at most `connect_concurrency` at a time.
    async fn connect_all(&self, stats: &Rc<ThreadStats>) -> Vec<(usize, Peer)> {
        let permits = Rc::new(tokio::sync::Semaphore::new(self.connect_concurrency));
        let mut pending = Vec::new();
        for i in (self.index..self.connections).step_by(self.threads) {
            let permits = permits.clone();
            let connect = self.connector(i);
            let stats = stats.clone();
            pending.push(tokio_uring::spawn(async move {
                let _permit = permits.acquire().await.ok()?;
                connect(stats).await.map(|peer| (i, peer))
            }));
        }
        let mut sockets = Vec::new();
        for p in pending {
            if let Ok(Some(peer)) = p.await {
                sockets.push(peer);
            }
        }
        sockets
    }

    /// What opens connection `i` (its URL, options and source address), counting the
    /// connect time, or the failure by kind.
    fn connector(&self, i: usize) -> impl Fn(Rc<ThreadStats>) -> ConnectFuture + 'static {
        let which = i % self.urls.len();
        let url = self.urls[which].clone();
        let raw_addr = self.raw_addrs.get(which).copied();
        let mut options = self.handshake.clone();
        options.socket.max_send_queue = 4 << 20;
        if self.deflate {
            options.socket.protocol.deflate = DeflateConfig::dedicated();
        }
        options.tls = self.tls.clone();
        let nth = i / self.urls.len();
        if self.loopback_v4[which] && nth >= CONNECTIONS_PER_SOURCE {
            // Past one address's ephemeral ports: 127.0.0.2, 127.0.0.3, ...
            let n = (nth / CONNECTIONS_PER_SOURCE) as u32 + 1;
            options.local_addr = Some(IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | n)));
        }
        move |stats: Rc<ThreadStats>| {
            let (url, options) = (url.clone(), options.clone());
            Box::pin(async move {
                let began = Instant::now();
                let connected = match raw_addr {
                    Some(addr) => match tokio_uring::net::TcpStream::connect(addr).await {
                        Ok(stream) => {
                            let _ = stream.set_nodelay(true);
                            Ok(Peer::Raw(stream))
                        }
                        Err(e) => Err(Error::Io(e)),
                    },
                    None => options
                        .connect(&url)
                        .await
                        .map(|(ws, _)| Peer::WebSocket(ws)),
                };
                match connected {
                    Ok(peer) => {
                        let us = began.elapsed().as_micros() as u64;
                        let _ = stats.connect.borrow_mut().record(us.max(1));
                        stats.connected.set(stats.connected.get() + 1);
                        Some(peer)
                    }
                    Err(e) => {
                        stats.connect_failures.set(stats.connect_failures.get() + 1);
                        stats.error(match e {
                            Error::ClientHandshake(_) | Error::Handshake(_) => "handshake",
                            Error::Timeout(_) => "connect timeout",
                            _ => "connect",
                        });
                        None
                    }
                }
            })
        }
    }
}

/// One WebSocket connection's echo load over `window`, open loop (on `pacer`) or
/// closed; then its bookkeeping: no longer open, and the wire bytes it received.
async fn echo(
    ws: WebSocket,
    shape: Shape,
    phase: f64,
    pacer: Option<Rc<pacer::Pacer>>,
    window: Window,
    stats: Rc<ThreadStats>,
    stop: &AtomicBool,
) {
    let wire = ws.clone();
    match (pacer, shape.interval) {
        (Some(pacer), Some(_)) => {
            connection::open_loop(ws, shape, phase, pacer, window, stats.clone(), stop).await
        }
        // Open loop without a pacer: its timerfd could not be made (counted then).
        (None, Some(_)) => {}
        (_, None) => connection::closed_loop(ws, shape, window, stats.clone(), stop).await,
    }
    stats.open.set(stats.open.get().saturating_sub(1));
    let received = &stats.wire_received;
    received.set(received.get() + wire.wire_bytes().received);
}

/// A connection being opened.
type ConnectFuture = std::pin::Pin<Box<dyn Future<Output = Option<Peer>>>>;

/// The label of a run saved without `--label`: its URL, or the embedded server.
pub fn default_label(config: &Config) -> String {
    match config.url.as_slice() {
        [] => "wsengine-embedded".into(),
        urls => urls.join(" "),
    }
}

/// A finished run as saved by `--out`: `command` is the command line.
pub fn saved_run(config: &Config, report: &Report, command: &[String]) -> saved::SavedRun {
    let label = config
        .label
        .clone()
        .unwrap_or_else(|| default_label(config));
    let group = config
        .group
        .clone()
        .unwrap_or_else(|| config.default_group());
    saved::SavedRun::from_report(
        report,
        &label,
        &group,
        command,
        environment::describe(report.measure_started),
    )
}

/// Saves a run into `dir`: `run.json`, `latency.hlog` and its `report.html`.
pub fn save(run: &saved::SavedRun, dir: &std::path::Path) -> Result<(), saved::SavedError> {
    run.save(dir)?;
    let rows = compare::rows(vec![run.clone()]);
    let title = format!("load: {} ({})", run.label(), run.group());
    let page = compare::html(&rows, &[], &title, &compare::notes(&rows));
    let path = dir.join(saved::REPORT_HTML);
    std::fs::write(&path, page).map_err(|e| saved::SavedError::Io(path, e))
}

/// The command line of one server's run in `load compare` live: `load`, the options,
/// and that server's `--url` alone.
fn command_of(options: &[String], url: &str) -> Vec<String> {
    let mut command = vec!["load".to_string()];
    let mut options = options.iter();
    while let Some(option) = options.next() {
        if option == "--url" {
            options.next();
        } else if !option.starts_with("--url=") {
            command.push(option.clone());
        }
    }
    command.extend(["--url".to_string(), url.to_string()]);
    command
}

/// `load compare` live: each `--url` of `args.load` run `args.rounds` times,
/// alternating (round 1 of every URL, then round 2, ...), as saved runs (also written
/// under `args.out` as `rROUND-INDEX-LABEL/`). `stop` ends it: the rounds finished so
/// far are kept, the one it cut short is not.
pub fn compare_live(
    args: &compare::CompareArgs,
    stop: Arc<AtomicBool>,
) -> Result<Vec<saved::SavedRun>, LoadError> {
    use clap::Parser as _;
    let mut argv = vec!["load".to_string()];
    argv.extend(args.load.iter().cloned());
    let config = Config::try_parse_from(&argv).map_err(|e| LoadError::Usage(e.to_string()))?;
    if config.url.is_empty() {
        return Err(LoadError::Usage(
            "load compare: give the servers as --url after --, one each".into(),
        ));
    }
    if args.rounds == 0 {
        return Err(LoadError::Usage("--rounds must be at least 1".into()));
    }
    let mut runs = Vec::new();
    for round in 1..=args.rounds {
        for (i, url) in config.url.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(runs);
            }
            let mut one = config.clone();
            one.url = vec![url.clone()];
            one.label = Some(args.label.get(i).cloned().unwrap_or_else(|| url.clone()));
            if let Some(&pid) = args.server_pid.get(i) {
                one.server_pid = Some(pid);
            }
            let report = run(&one, stop.clone(), false)?;
            if report.stopped_early {
                // Not a round: it would pull the mean and the range down.
                return Ok(runs);
            }
            let saved = saved_run(&one, &report, &command_of(&args.load, url));
            eprintln!(
                "round {round}/{}: {}: {:.0} msg/s, p99 {} µs",
                args.rounds,
                saved.label(),
                report.messages_per_sec(),
                report.latency_us(0.99)
            );
            if let Some(out) = &args.out {
                let name: String = format!("r{round}-{i}-{}", saved.label())
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                save(&saved, &out.join(name)).map_err(|e| LoadError::Usage(e.to_string()))?;
            }
            runs.push(saved);
        }
    }
    Ok(runs)
}
