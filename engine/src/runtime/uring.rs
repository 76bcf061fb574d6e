//! The tokio-uring driver's runtime ([`Driver::TokioUring`](super::Driver::TokioUring)), with a plain error where
//! the kernel refuses rings; the shape of our own driver's rings; and [`start`], which runs
//! client code on the default driver.
//!
//! The io_uring drivers are built with the `io-uring` feature (on by default) on Linux;
//! without them [`start`] runs on tokio.
//!
//! `tokio_uring::start` panics when `io_uring_setup` fails. Container seccomp profiles
//! (Docker since 25, Kubernetes' `RuntimeDefault`) answer it with `EPERM`, kernels built
//! without io_uring with `ENOSYS`, and `kernel.io_uring_disabled=2` with `EPERM`, so the
//! failure is an expected deployment condition, reported as [`Error::UringUnavailable`].

use std::future::Future;

use super::error::Error;

/// Submission queue entries per ring. Each in-flight read, write or accept holds one entry
/// until submitted; the ring is flushed every turn of the event loop, so this bounds the
/// operations submitted per turn, not the connections.
pub const DEFAULT_RING_ENTRIES: u32 = 4096;

/// How a worker's ring is made (kept without the io_uring drivers too: the server's
/// settings carry it whichever driver runs).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(uring), allow(dead_code))]
pub(crate) struct RingConfig {
    /// Submission queue entries (the completion queue gets twice as many).
    pub(crate) entries: u32,
    /// Buffers in the provided buffer ring (a power of two).
    pub(crate) buffers: u16,
    /// Bytes per buffer.
    pub(crate) buffer_size: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            entries: DEFAULT_RING_ENTRIES,
            buffers: 256,
            buffer_size: 16 * 1024,
        }
    }
}

/// A single-threaded io_uring runtime: tokio's current-thread scheduler and timers with an
/// io_uring driver for sockets.
#[cfg(uring)]
pub struct UringRuntime {
    inner: tokio_uring::Runtime,
}

#[cfg(uring)]
impl UringRuntime {
    /// Creates a runtime on this thread with `entries` submission queue entries.
    ///
    /// The ring is set up with `IORING_SETUP_COOP_TASKRUN` and `IORING_SETUP_SINGLE_ISSUER`
    /// (one thread submits): a completion then does not interrupt the running thread with
    /// an inter-processor interrupt, it is picked up at the next transition to the kernel,
    /// which this loop makes every turn anyway. IPIs are costly, in VMs most of all.
    /// Kernels older than 6.0 refuse these flags; the ring is then created without them.
    pub fn new(entries: u32) -> Result<Self, Error> {
        let mut flags = tokio_uring::uring_builder();
        flags.setup_coop_taskrun().setup_single_issuer();
        let mut builder = tokio_uring::builder();
        builder.entries(entries).uring_builder(&flags);
        let first = match tokio_uring::Runtime::new(&builder) {
            Ok(inner) => return Ok(UringRuntime { inner }),
            Err(e) => e,
        };
        if first.raw_os_error() != Some(libc::EINVAL) {
            return Err(Error::UringUnavailable(first));
        }
        let mut builder = tokio_uring::builder();
        builder.entries(entries);
        tokio_uring::Runtime::new(&builder)
            .map(|inner| UringRuntime { inner })
            .map_err(Error::UringUnavailable)
    }

    /// Runs `future` to completion on this thread. Tasks it spawns with
    /// `tokio_uring::spawn` (or `tokio::task::spawn_local`) run on this runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        super::executor::with_active(super::executor::Driver::TokioUring, || {
            self.inner.block_on(future)
        })
    }
}

/// Runs `future` on a new runtime on this thread: io_uring where the kernel allows it,
/// otherwise tokio (with one line on stderr); see
/// [`start_with`](super::executor::start_with) to choose.
pub fn start<F: Future>(future: F) -> Result<F::Output, Error> {
    super::executor::start_with(super::executor::Driver::Auto, future)
}
