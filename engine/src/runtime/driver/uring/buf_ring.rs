//! A provided buffer ring (`IORING_REGISTER_PBUF_RING`, Linux 5.19): the worker's pool of
//! receive buffers that the kernel picks from only when bytes arrive.
//!
//! Why: with a read per connection, each waiting read owns a buffer, so idle connections
//! hold memory; with multishot receive into this ring, a connection holds nothing until
//! data comes, and the worker's receive memory is the ring's, however many connections
//! there are. The kernel takes buffers in ring order; each completion names the buffer it
//! filled, the driver copies the bytes out into the connection's receive buffer (a
//! message is then a `Bytes` view of that, which the application may keep or send to
//! another thread) and gives the buffer back at once, so the ring never waits on the
//! application.
//!
//! The ring's memory is shared with the kernel: an array of `{addr, len, bid}` entries
//! whose last 16 bits of the first entry are the tail (written by us, read by the kernel);
//! the kernel keeps the head to itself. We only ever publish a buffer the kernel gave
//! back to us, so at most `entries` are published and an entry is never overwritten
//! while the kernel may still read it.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// The size of one ring entry (`struct io_uring_buf`).
const ENTRY_SIZE: usize = std::mem::size_of::<BufRingEntry>();
/// Ring memory must be page-aligned.
const PAGE: usize = 4096;

/// A ring of `entries` buffers of `buf_size` bytes each.
pub(crate) struct BufRing {
    /// The entries array, shared with the kernel.
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    /// The buffers, one allocation.
    buffers: *mut u8,
    buffers_layout: Layout,
    entries: u16,
    buf_size: usize,
    /// Our copy of the tail: entries published so far (wrapping).
    tail: u16,
    /// The tail as last published to the kernel.
    published: u16,
}

impl BufRing {
    /// Allocates the ring and its buffers, every buffer published. `entries` must be a
    /// power of two up to 32768.
    pub(crate) fn new(entries: u16, buf_size: usize) -> io::Result<Self> {
        if !entries.is_power_of_two()
            || entries > 32768
            || buf_size == 0
            || buf_size > u32::MAX as usize
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a buffer ring needs a power-of-two entry count up to 32768 and a buffer size",
            ));
        }
        let ring_layout = Layout::from_size_align(usize::from(entries) * ENTRY_SIZE, PAGE)
            .map_err(|_| io::ErrorKind::InvalidInput)?;
        let buffers_layout = Layout::from_size_align(usize::from(entries) * buf_size, 64)
            .map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: both layouts have a non-zero size (entries ≥ 1, buf_size ≥ 1).
        let ring = unsafe { alloc_zeroed(ring_layout) }.cast::<BufRingEntry>();
        if ring.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        // SAFETY: as above.
        let buffers = unsafe { alloc_zeroed(buffers_layout) };
        if buffers.is_null() {
            // SAFETY: `ring` was allocated with `ring_layout` just above.
            unsafe { dealloc(ring.cast(), ring_layout) };
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let mut this = BufRing {
            ring,
            ring_layout,
            buffers,
            buffers_layout,
            entries,
            buf_size,
            tail: 0,
            published: 0,
        };
        for bid in 0..entries {
            this.push(bid);
        }
        this.publish();
        Ok(this)
    }

    /// The address of the entries array, for registration.
    pub(crate) fn ring_addr(&self) -> u64 {
        self.ring as u64
    }

    /// The number of buffers.
    pub(crate) fn entries(&self) -> u16 {
        self.entries
    }

    /// The first `len` bytes of buffer `bid`, which the kernel just filled and handed
    /// to us; valid until [`recycle`](Self::recycle) gives it back.
    pub(crate) fn filled(&self, bid: u16, len: usize) -> &[u8] {
        assert!(
            bid < self.entries && len <= self.buf_size,
            "a buffer the kernel gave us"
        );
        // SAFETY: `bid < entries`, so the range [bid*buf_size, bid*buf_size+len) lies
        // inside the buffers allocation; the kernel finished writing it (its completion
        // was posted) and will not write it again until we publish it with `recycle`.
        unsafe {
            std::slice::from_raw_parts(self.buffers.add(usize::from(bid) * self.buf_size), len)
        }
    }

    /// Gives buffer `bid` back to the kernel (visible at the next [`publish`](Self::publish)).
    /// Only a buffer the kernel handed to us, once.
    pub(crate) fn recycle(&mut self, bid: u16) {
        assert!(bid < self.entries, "a buffer of this ring");
        self.push(bid);
    }

    fn push(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.entries - 1));
        // SAFETY: `index < entries`, inside the entries array. The kernel reads only the
        // entries between its head and the published tail; at most `entries` buffers are
        // ever published (each was handed back to us first), so the slot at our tail is
        // one the kernel has already consumed. Writing the fields leaves the first
        // entry's `resv` (the tail) alone.
        unsafe {
            let entry = &mut *self.ring.add(index);
            entry.set_addr(self.buffers.add(usize::from(bid) * self.buf_size) as u64);
            entry.set_len(self.buf_size as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the recycled buffers to the kernel (one release store).
    pub(crate) fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        // SAFETY: the tail field lies in the first entry of the live entries array and is
        // 2-byte aligned (the array is page-aligned). The kernel reads it with an acquire
        // load; the release store makes the entries written before it visible first.
        unsafe {
            let tail = BufRingEntry::tail(self.ring).cast_mut().cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
        self.published = self.tail;
    }

    /// The entry at ring position `position` (wrapping): its buffer id and address.
    #[cfg(test)]
    fn entry_at(&self, position: u16) -> (u16, u64) {
        let index = usize::from(position & (self.entries - 1));
        // SAFETY: `index < entries`; tests read entries only when no kernel uses the ring.
        let entry = unsafe { &*self.ring.add(index) };
        (entry.bid(), entry.addr())
    }

    /// The published tail as the kernel would read it.
    #[cfg(test)]
    fn kernel_tail(&self) -> u16 {
        // SAFETY: as in `publish`.
        unsafe {
            let tail = BufRingEntry::tail(self.ring).cast::<AtomicU16>();
            (*tail).load(Ordering::Acquire)
        }
    }

    /// The address buffer `bid` must have.
    #[cfg(test)]
    fn buffer_addr(&self, bid: u16) -> u64 {
        self.buffers as u64 + u64::from(bid) * self.buf_size as u64
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both were allocated in `new` with these layouts. The ring is dropped
        // only after it was unregistered or its io_uring instance was closed, so the
        // kernel no longer reads either.
        unsafe {
            dealloc(self.ring.cast(), self.ring_layout);
            dealloc(self.buffers, self.buffers_layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashSet, VecDeque};

    /// The kernel's side, as a model: it consumes entries from its head up to the
    /// published tail, in order, and hands their buffers to us.
    struct Kernel {
        head: u16,
    }

    impl Kernel {
        fn take(&mut self, ring: &BufRing) -> Option<u16> {
            if self.head == ring.kernel_tail() {
                return None; // ENOBUFS
            }
            let (bid, addr) = ring.entry_at(self.head);
            assert_eq!(
                addr,
                ring.buffer_addr(bid),
                "the entry points at its buffer"
            );
            self.head = self.head.wrapping_add(1);
            Some(bid)
        }
    }

    #[test]
    fn every_buffer_is_published_once_at_the_start() {
        let ring = BufRing::new(8, 64).unwrap();
        let mut kernel = Kernel { head: 0 };
        let taken: HashSet<u16> = std::iter::from_fn(|| kernel.take(&ring)).collect();
        assert_eq!(taken, (0..8).collect());
        assert_eq!(ring.ring_addr() % PAGE as u64, 0);
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(BufRing::new(6, 64).is_err());
        assert!(BufRing::new(8, 0).is_err());
    }

    #[test]
    fn a_filled_buffer_reads_what_was_written_there() {
        let ring = BufRing::new(4, 16).unwrap();
        // Stand in for the kernel writing into buffer 2.
        // SAFETY (test): buffer 2 is inside the allocation and no kernel uses the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(b"hello".as_ptr(), ring.buffers.add(2 * 16), 5);
        }
        assert_eq!(ring.filled(2, 5), b"hello");
    }

    proptest! {
        /// Against a model: whatever order buffers are taken and given back in, the kernel
        /// only ever sees buffers that are not ours, each at most once, and never more
        /// than the ring holds.
        #[test]
        fn recycling_never_hands_the_kernel_a_buffer_twice(
            ops in proptest::collection::vec((any::<bool>(), any::<u8>()), 1..2000),
        ) {
            let mut ring = BufRing::new(16, 32).unwrap();
            let mut kernel = Kernel { head: 0 };
            let mut ours: VecDeque<u16> = VecDeque::new();
            let mut in_kernel: HashSet<u16> = (0..16).collect();
            for (take, pick) in ops {
                if take {
                    match kernel.take(&ring) {
                        Some(bid) => {
                            prop_assert!(in_kernel.remove(&bid), "buffer {} taken twice", bid);
                            ours.push_back(bid);
                        }
                        None => prop_assert!(in_kernel.is_empty()),
                    }
                } else if !ours.is_empty() {
                    let bid = ours.remove(usize::from(pick) % ours.len()).unwrap();
                    ring.recycle(bid);
                    if pick % 3 == 0 {
                        ring.publish();
                    }
                    // Published or not, it is the kernel's again once published.
                    in_kernel.insert(bid);
                }
                ring.publish();
                prop_assert_eq!(in_kernel.len() + ours.len(), 16);
            }
        }
    }
}
