//! Registered (fixed) read buffers: an optional per-worker pool of buffers registered
//! with the ring, so that reads skip the kernel's per-operation pinning of user pages.
//!
//! A read lands in a pool buffer and is then copied into the connection's receive buffer,
//! from which messages are sliced as `Bytes` without a further copy. Messages cannot be
//! views of the pool buffer itself: tokio-uring's `FixedBuf` returns to its pool when
//! dropped and is `!Send`, while a message is `Bytes` that the application may keep or
//! move to another thread. So the registered path costs one copy of every received byte,
//! which the ordinary path (reading straight into the receive buffer) does not.
//!
//! A read waiting on an idle connection holds its pool buffer; with more connections
//! waiting than buffers, reads take ordinary buffers (the pool never makes a read wait
//! or fail). See the README for which path is faster on this machine and why the default
//! is what it is.

use std::io;

use tokio_uring::buf::fixed::{FixedBuf, FixedBufPool};

/// A worker's pool of registered read buffers.
pub(crate) struct ReadPool {
    pool: FixedBufPool<Vec<u8>>,
    size: usize,
}

impl ReadPool {
    /// Allocates `count` buffers of `size` bytes and registers them with the current
    /// thread's ring.
    pub(crate) fn register(count: usize, size: usize) -> io::Result<Self> {
        let pool = FixedBufPool::new((0..count).map(|_| Vec::with_capacity(size)));
        pool.register()?;
        Ok(ReadPool { pool, size })
    }

    /// A free buffer, or `None` when all are in use.
    pub(crate) fn try_take(&self) -> Option<FixedBuf> {
        self.pool.try_next(self.size)
    }
}
