//! One thread's runtime: tokio's current-thread scheduler with a `LocalSet`, and the IO
//! driver under it: io_uring (our ring, turned by a task of the runtime, or tokio-uring's)
//! or, where the kernel refuses rings, tokio's epoll reactor. Either way the application's
//! tasks are local to the thread (`spawn_local`) and can use tokio's timers and channels,
//! so the [`WebSocket`](super::WebSocket) handle and the handlers are the same on every
//! driver.
//!
//! [`Driver::Auto`] is resolved once by [`resolve`]: a ring is created and dropped; if the
//! kernel refuses it (seccomp's `EPERM`, `ENOSYS`, `kernel.io_uring_disabled`) or is older
//! than 6.0 (no multishot receive), one line goes to stderr and tokio is used.

use std::cell::Cell;
use std::future::Future;
#[cfg(uring)]
use std::rc::Rc;
use std::sync::Once;

#[cfg(uring)]
use super::driver::uring::Ring;
use super::error::Error;
use super::uring::RingConfig;
#[cfg(uring)]
use super::uring::UringRuntime;

/// Which IO driver runs the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Driver {
    /// io_uring where the kernel allows it, otherwise tokio (with one line on stderr).
    #[default]
    Auto,
    /// io_uring only (multishot receive into a provided buffer ring, Linux 6.0+): fail
    /// with [`Error::UringUnavailable`] where the kernel
    /// refuses rings.
    Uring,
    /// tokio's epoll reactor, even where io_uring works.
    Tokio,
    /// The first io_uring driver, on `tokio-uring` (one read and one write in flight per
    /// connection), kept for comparison while some benchmark favours it.
    TokioUring,
}

impl Driver {
    /// `"auto"`, `"uring"` or `"tokio"`.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::Uring => "uring",
            Driver::Tokio => "tokio",
            Driver::TokioUring => "tokio-uring",
        }
    }
}

impl std::str::FromStr for Driver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Driver::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(Driver::Uring),
            "tokio" | "epoll" => Ok(Driver::Tokio),
            "tokio-uring" => Ok(Driver::TokioUring),
            other => Err(format!(
                "unknown driver {other:?}: auto, uring, tokio or tokio-uring"
            )),
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

thread_local! {
    /// The driver of the runtime running on this thread, if one of ours is.
    static ACTIVE: Cell<Option<Driver>> = const { Cell::new(None) };
}

/// The driver of the runtime this thread is running (`Uring`, `Tokio` or `TokioUring`),
/// or `None` outside one of ours.
pub fn current_driver() -> Option<Driver> {
    ACTIVE.with(Cell::get)
}

/// Runs `f` with [`current_driver`] saying `driver`; the previous value comes back when
/// `f` returns or panics.
pub(crate) fn with_active<R>(driver: Driver, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Driver>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ACTIVE.with(|a| a.replace(Some(driver))));
    f()
}

/// Turns [`Driver::Auto`] into `Uring` or `Tokio` by creating a ring (`entries` deep) and
/// dropping it; the other two are returned as they are. Built without the io_uring
/// drivers (the `io-uring` feature off, or not Linux), `Auto` is `Tokio`.
pub fn resolve(driver: Driver, entries: u32) -> Driver {
    if driver != Driver::Auto {
        return driver;
    }
    if cfg!(not(uring)) {
        return Driver::Tokio;
    }
    match probe(entries) {
        Ok(()) => Driver::Uring,
        Err(e) => {
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                eprintln!("wsengine: {e}; falling back to the tokio (epoll) driver");
            });
            Driver::Tokio
        }
    }
}

/// Whether our io_uring driver can run here: a ring with a buffer ring can be made, and
/// the kernel has multishot receive (6.0).
#[cfg(uring)]
fn probe(entries: u32) -> Result<(), Error> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if major < 6 {
        return Err(Error::UringUnavailable(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("kernel {} has no multishot receive (6.0+)", release.trim()),
        )));
    }
    Ring::new(RingConfig {
        entries: entries.min(64),
        buffers: 1,
        buffer_size: 64,
    })
    .map(drop)
    .map_err(Error::UringUnavailable)
}

/// Built without the io_uring drivers: they are never available.
#[cfg(not(uring))]
fn probe(_entries: u32) -> Result<(), Error> {
    Err(not_built())
}

/// The error for asking for an io_uring driver in a build without them.
#[cfg(not(uring))]
fn not_built() -> Error {
    Error::UringUnavailable(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "wsengine was built without the io_uring drivers (feature `io-uring`, Linux only)",
    ))
}

/// A single-threaded runtime on any driver: what each server worker runs, and what a
/// client thread (such as each of `load`'s) runs.
pub struct LocalRuntime(Kind);

enum Kind {
    #[cfg(uring)]
    Uring {
        runtime: tokio::runtime::Runtime,
        local: tokio::task::LocalSet,
        ring: Rc<Ring>,
    },
    #[cfg(uring)]
    TokioUring(UringRuntime),
    Tokio(tokio::runtime::Runtime, tokio::task::LocalSet),
}

impl LocalRuntime {
    /// Creates a runtime for `driver` on this thread (resolving [`Driver::Auto`] first),
    /// with `entries` submission queue entries if it is io_uring.
    pub fn new(driver: Driver, entries: u32) -> Result<Self, Error> {
        Self::with_ring(
            driver,
            RingConfig {
                entries,
                ..RingConfig::default()
            },
        )
    }

    /// [`new`](Self::new) with the io_uring driver's ring shaped by `config`.
    pub(crate) fn with_ring(driver: Driver, config: RingConfig) -> Result<Self, Error> {
        let entries = config.entries;
        match resolve(driver, entries) {
            Driver::Tokio => Ok(LocalRuntime(Kind::Tokio(
                current_thread()?,
                tokio::task::LocalSet::new(),
            ))),
            #[cfg(uring)]
            Driver::TokioUring => Ok(LocalRuntime(Kind::TokioUring(UringRuntime::new(entries)?))),
            #[cfg(uring)]
            _ => {
                probe(entries)?;
                let ring = Ring::new(config).map_err(Error::UringUnavailable)?;
                let local = tokio::task::LocalSet::new();
                // The task that turns the ring lives as long as the runtime.
                local.spawn_local(ring.clone().run());
                Ok(LocalRuntime(Kind::Uring {
                    runtime: current_thread()?,
                    local,
                    ring,
                }))
            }
            #[cfg(not(uring))]
            _ => {
                let _ = config;
                Err(not_built())
            }
        }
    }

    /// [`Driver::Uring`], [`Driver::Tokio`] or [`Driver::TokioUring`].
    pub fn driver(&self) -> Driver {
        match self.0 {
            #[cfg(uring)]
            Kind::Uring { .. } => Driver::Uring,
            #[cfg(uring)]
            Kind::TokioUring(_) => Driver::TokioUring,
            Kind::Tokio(..) => Driver::Tokio,
        }
    }

    /// Runs `future` to completion on this thread; tasks it spawns with
    /// `tokio::task::spawn_local` run on this runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.0 {
            #[cfg(uring)]
            Kind::Uring {
                runtime,
                local,
                ring,
            } => {
                let _current = Ring::enter(ring);
                with_active(Driver::Uring, || local.block_on(runtime, future))
            }
            #[cfg(uring)]
            Kind::TokioUring(runtime) => runtime.block_on(future),
            Kind::Tokio(runtime, local) => {
                with_active(Driver::Tokio, || local.block_on(runtime, future))
            }
        }
    }
}

/// A current-thread tokio runtime with timers and the reactor.
fn current_thread() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `future` on a new runtime of `driver` on this thread (the client side: inside it,
/// [`connect`](super::connect) uses that driver's sockets). Fails only where `driver` is
/// [`Driver::Uring`] and the kernel refuses io_uring.
pub fn start_with<F: Future>(driver: Driver, future: F) -> Result<F::Output, Error> {
    Ok(LocalRuntime::new(driver, super::uring::DEFAULT_RING_ENTRIES)?.block_on(future))
}

/// Lets the worker's other ready tasks run once, then goes on.
///
/// Not `tokio::task::yield_now`: that defers the wake-up until the scheduler next polls
/// its IO driver, which on a worker whose io_uring task always has a next turn ready
/// comes only every 61 ticks, so a task that yields with it waits dozens of ring turns.
/// This wakes the task at once: it goes to the back of the queue, behind the tasks that
/// are ready now.
pub(crate) async fn yield_to_worker() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built without the io_uring drivers (`--no-default-features --features runtime`, or
    /// any non-Linux target), `Auto` runs on tokio and asking for a ring is a plain error.
    #[cfg(not(uring))]
    #[test]
    fn without_the_io_uring_drivers_auto_is_tokio_and_uring_is_refused() {
        assert_eq!(resolve(Driver::Auto, 64), Driver::Tokio);
        let runtime = LocalRuntime::new(Driver::Auto, 64).unwrap();
        assert_eq!(runtime.driver(), Driver::Tokio);
        assert_eq!(
            runtime.block_on(async { current_driver() }),
            Some(Driver::Tokio)
        );
        for driver in [Driver::Uring, Driver::TokioUring] {
            match LocalRuntime::new(driver, 64) {
                Err(Error::UringUnavailable(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported)
                }
                Err(other) => panic!("{driver}: {other}"),
                Ok(_) => panic!("{driver}: a runtime without the driver"),
            }
        }
    }

    #[cfg(uring)]
    #[test]
    fn with_the_io_uring_drivers_tokio_is_still_chosen_when_asked() {
        let runtime = LocalRuntime::new(Driver::Tokio, 64).unwrap();
        assert_eq!(runtime.driver(), Driver::Tokio);
        assert_eq!(
            runtime.block_on(async { current_driver() }),
            Some(Driver::Tokio)
        );
    }
}
