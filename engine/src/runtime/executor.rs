//! One thread's runtime: io_uring (tokio-uring) or, where the kernel refuses rings, tokio's
//! current-thread scheduler over epoll. Either way the connection tasks are local to the
//! thread (`spawn_local`), so the [`WebSocket`](super::WebSocket) handle and the
//! application's handlers are the same on both drivers.
//!
//! [`Driver::Auto`] is resolved once by [`resolve`]: a ring is created and dropped; if the
//! kernel refuses it (seccomp's `EPERM`, `ENOSYS`, `kernel.io_uring_disabled`), one line
//! goes to stderr and tokio is used.

use std::cell::Cell;
use std::future::Future;
use std::sync::Once;

use super::error::Error;
use super::uring::UringRuntime;

/// Which IO driver runs the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Driver {
    /// io_uring where the kernel allows it, otherwise tokio (with one line on stderr).
    #[default]
    Auto,
    /// io_uring only: fail with [`Error::UringUnavailable`](super::Error::UringUnavailable)
    /// where the kernel refuses rings.
    Uring,
    /// tokio's epoll reactor, even where io_uring works.
    Tokio,
}

impl Driver {
    /// `"auto"`, `"uring"` or `"tokio"`.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::Uring => "uring",
            Driver::Tokio => "tokio",
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
            other => Err(format!("unknown driver {other:?}: auto, uring or tokio")),
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

/// The driver of the runtime this thread is running (`Uring` or `Tokio`), or `None`
/// outside one of ours.
pub fn current_driver() -> Option<Driver> {
    ACTIVE.with(Cell::get)
}

/// Runs `f` with [`current_driver`] saying `driver`.
pub(crate) fn with_active<R>(driver: Driver, f: impl FnOnce() -> R) -> R {
    let previous = ACTIVE.with(|a| a.replace(Some(driver)));
    let output = f();
    ACTIVE.with(|a| a.set(previous));
    output
}

/// Turns [`Driver::Auto`] into `Uring` or `Tokio` by creating a ring (`entries` deep) and
/// dropping it; the other two are returned as they are.
pub fn resolve(driver: Driver, entries: u32) -> Driver {
    if driver != Driver::Auto {
        return driver;
    }
    match UringRuntime::new(entries) {
        Ok(_) => Driver::Uring,
        Err(e) => {
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                eprintln!("wsengine: {e}; falling back to the tokio (epoll) driver");
            });
            Driver::Tokio
        }
    }
}

/// A single-threaded runtime on either driver: what each server worker runs, and what a
/// client thread (such as each of `load`'s) runs.
pub struct LocalRuntime(Kind);

enum Kind {
    Uring(UringRuntime),
    Tokio(tokio::runtime::Runtime, tokio::task::LocalSet),
}

impl LocalRuntime {
    /// Creates a runtime for `driver` on this thread (resolving [`Driver::Auto`] first),
    /// with `entries` submission queue entries if it is io_uring.
    pub fn new(driver: Driver, entries: u32) -> Result<Self, Error> {
        match resolve(driver, entries) {
            Driver::Tokio => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                Ok(LocalRuntime(Kind::Tokio(
                    runtime,
                    tokio::task::LocalSet::new(),
                )))
            }
            _ => Ok(LocalRuntime(Kind::Uring(UringRuntime::new(entries)?))),
        }
    }

    /// [`Driver::Uring`] or [`Driver::Tokio`].
    pub fn driver(&self) -> Driver {
        match self.0 {
            Kind::Uring(_) => Driver::Uring,
            Kind::Tokio(..) => Driver::Tokio,
        }
    }

    /// Runs `future` to completion on this thread; tasks it spawns with
    /// `tokio::task::spawn_local` run on this runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.0 {
            Kind::Uring(runtime) => runtime.block_on(future),
            Kind::Tokio(runtime, local) => {
                with_active(Driver::Tokio, || local.block_on(runtime, future))
            }
        }
    }
}

/// Runs `future` on a new runtime of `driver` on this thread (the client side: inside it,
/// [`connect`](super::connect) uses that driver's sockets). Fails only where `driver` is
/// [`Driver::Uring`] and the kernel refuses io_uring.
pub fn start_with<F: Future>(driver: Driver, future: F) -> Result<F::Output, Error> {
    Ok(LocalRuntime::new(driver, super::uring::DEFAULT_RING_ENTRIES)?.block_on(future))
}
