//! x86_64 masking kernels: SSE2, AVX2 and AVX-512.
//!
//! Each reads `len` bytes at `src` and writes them, masked, at `dst`; the two are equal
//! (unmasking in place) or disjoint (`mask_copy`). `key` is already rotated to the first
//! byte. The layout of one call:
//!
//! ```text
//! dst  |head|body: whole vectors, four per iteration, then one|tail: 32|16|8|4|2|1|
//!       ^ up to the first vector boundary of dst (long buffers only)
//! ```
//!
//! The head and the tail are masked by halving widths, each piece only if the length
//! needs it: no byte loop. Every piece is loaded, masked and stored where it was loaded
//! from, and no two pieces overlap: a byte is masked once, and a later load of the
//! buffer (the UTF-8 check, or the next call in a benchmark) never waits on a store that
//! covers only part of it. (Byte-masked AVX-512 loads and stores would do the head and
//! tail in one instruction each, but measured on Zen 4 a load that meets such a store
//! still in the store buffer stalls: 13 ns instead of 7.5 to unmask the same 512 bytes
//! over and over.)
//! Unaligned load and store instructions throughout; on aligned addresses they cost
//! nothing extra.

use std::arch::x86_64::*;

use super::{mask_under_16, rotate};

/// The AVX-512 kernel hands shorter buffers to the AVX2 one. Measured on Zen 4, which
/// executes a 512-bit operation as two 256-bit halves: up to 4 KiB the AVX2 kernel is
/// as fast (the 512-bit loop only saves instructions, and has a longer tail), and a
/// 512-bit store that a later load of the same bytes meets in the store buffer is not
/// forwarded, a stall when a short buffer is read again right after it was unmasked.
const AVX512_FROM: usize = 4096;

/// AVX2 starts the body of buffers from this length on (AVX-512: of every buffer it
/// takes) at the first vector boundary of `dst`: a vector store to an unaligned address
/// splits a cache line every other time (AVX2) or every time (AVX-512), which costs up
/// to a third of the throughput.
const AVX2_ALIGN_FROM: usize = 512;

/// `key` in every 4-byte lane of a 512-bit vector.
#[inline]
#[target_feature(enable = "avx512f")]
fn splat512(key: [u8; 4]) -> __m512i {
    _mm512_set1_epi32(i32::from_ne_bytes(key))
}

/// `key` in every 4-byte lane of a 256-bit vector.
#[inline]
#[target_feature(enable = "avx")]
fn splat256(key: [u8; 4]) -> __m256i {
    _mm256_set1_epi32(i32::from_ne_bytes(key))
}

/// `key` in every 4-byte lane of a 128-bit vector.
#[inline]
#[target_feature(enable = "sse2")]
fn splat128(key: [u8; 4]) -> __m128i {
    _mm_set1_epi32(i32::from_ne_bytes(key))
}

/// # Safety
/// - The CPU supports AVX-512F and AVX2.
/// - `src` is valid for reads and `dst` for writes of `len` bytes, and the two ranges
///   are either the same (`src == dst`) or disjoint.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn mask_avx512(src: *const u8, dst: *mut u8, len: usize, key: [u8; 4]) {
    if len < AVX512_FROM {
        // SAFETY: forwarded; the CPU supports AVX2 (caller).
        return unsafe { mask_avx2(src, dst, len, key) };
    }
    // Up to the first 64-byte boundary of `dst`, by halving widths: the pieces lie
    // within one 64-byte block, so none splits a cache line.
    let head = dst.addr().wrapping_neg() % 64;
    // SAFETY: `head < 64 <= len`: in bounds (caller); the CPU supports AVX2 (caller).
    unsafe { mask_under_64(src, dst, head, key) };
    let mut off = head;
    let key = rotate(key, head);
    let mask = splat512(key);
    // Four vectors per iteration keep the load and store ports busy.
    while len - off >= 256 {
        // SAFETY: `off + 256 <= len`: the four 64-byte vectors at `off` are in bounds
        // (caller). All four loads come before the stores, and each vector is stored
        // where it was loaded from, so `src == dst` masks every byte once.
        unsafe {
            let from = src.add(off).cast::<__m512i>();
            let to = dst.add(off).cast::<__m512i>();
            let a = _mm512_loadu_si512(from);
            let b = _mm512_loadu_si512(from.add(1));
            let c = _mm512_loadu_si512(from.add(2));
            let d = _mm512_loadu_si512(from.add(3));
            _mm512_storeu_si512(to, _mm512_xor_si512(a, mask));
            _mm512_storeu_si512(to.add(1), _mm512_xor_si512(b, mask));
            _mm512_storeu_si512(to.add(2), _mm512_xor_si512(c, mask));
            _mm512_storeu_si512(to.add(3), _mm512_xor_si512(d, mask));
        }
        off += 256;
    }
    while len - off >= 64 {
        // SAFETY: `off + 64 <= len`: the vector at `off` is in bounds (caller).
        unsafe {
            let v = _mm512_loadu_si512(src.add(off).cast());
            _mm512_storeu_si512(dst.add(off).cast(), _mm512_xor_si512(v, mask));
        }
        off += 64;
    }
    // SAFETY: `off <= len` and `len - off < 64`: the rest is in bounds (caller); the CPU
    // supports AVX2 (caller). The body advanced by whole vectors: `key` is in phase.
    unsafe { mask_under_64(src.add(off), dst.add(off), len - off, key) }
}

/// # Safety
/// - The CPU supports AVX2.
/// - `src` is valid for reads and `dst` for writes of `len` bytes, and the two ranges
///   are either the same (`src == dst`) or disjoint.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mask_avx2(src: *const u8, dst: *mut u8, len: usize, key: [u8; 4]) {
    let mut key = key;
    let mut off = 0;
    if len >= AVX2_ALIGN_FROM {
        // Up to the first 32-byte boundary of `dst`, by halving widths: the pieces lie
        // within one 32-byte block, so none splits a cache line.
        let head = dst.addr().wrapping_neg() % 32;
        // SAFETY: `head < 32 <= len`: in bounds (caller).
        unsafe { mask_under_32(src, dst, head, key) };
        off = head;
        key = rotate(key, head);
    }
    let mask = splat256(key);
    while len - off >= 128 {
        // SAFETY: `off + 128 <= len`: the four 32-byte vectors at `off` are in bounds
        // (caller). All four loads come before the stores, and each vector is stored
        // where it was loaded from.
        unsafe {
            let from = src.add(off).cast::<__m256i>();
            let to = dst.add(off).cast::<__m256i>();
            let a = _mm256_loadu_si256(from);
            let b = _mm256_loadu_si256(from.add(1));
            let c = _mm256_loadu_si256(from.add(2));
            let d = _mm256_loadu_si256(from.add(3));
            _mm256_storeu_si256(to, _mm256_xor_si256(a, mask));
            _mm256_storeu_si256(to.add(1), _mm256_xor_si256(b, mask));
            _mm256_storeu_si256(to.add(2), _mm256_xor_si256(c, mask));
            _mm256_storeu_si256(to.add(3), _mm256_xor_si256(d, mask));
        }
        off += 128;
    }
    // SAFETY: `off <= len`: the rest is in bounds (caller); `key` is still in phase.
    unsafe { mask_under_128(src.add(off), dst.add(off), len - off, key) }
}

/// # Safety
/// - The CPU supports SSE2.
/// - `src` is valid for reads and `dst` for writes of `len` bytes, and the two ranges
///   are either the same (`src == dst`) or disjoint.
#[target_feature(enable = "sse2")]
pub(super) unsafe fn mask_sse2(src: *const u8, dst: *mut u8, len: usize, key: [u8; 4]) {
    let mask = splat128(key);
    let mut off = 0;
    while len - off >= 64 {
        // SAFETY: `off + 64 <= len`: the four 16-byte vectors at `off` are in bounds
        // (caller). All four loads come before the stores, and each vector is stored
        // where it was loaded from.
        unsafe {
            let from = src.add(off).cast::<__m128i>();
            let to = dst.add(off).cast::<__m128i>();
            let a = _mm_loadu_si128(from);
            let b = _mm_loadu_si128(from.add(1));
            let c = _mm_loadu_si128(from.add(2));
            let d = _mm_loadu_si128(from.add(3));
            _mm_storeu_si128(to, _mm_xor_si128(a, mask));
            _mm_storeu_si128(to.add(1), _mm_xor_si128(b, mask));
            _mm_storeu_si128(to.add(2), _mm_xor_si128(c, mask));
            _mm_storeu_si128(to.add(3), _mm_xor_si128(d, mask));
        }
        off += 64;
    }
    while len - off >= 16 {
        // SAFETY: `off + 16 <= len`: the vector at `off` is in bounds (caller).
        unsafe {
            let v = _mm_loadu_si128(src.add(off).cast());
            _mm_storeu_si128(dst.add(off).cast(), _mm_xor_si128(v, mask));
        }
        off += 16;
    }
    // SAFETY: `off <= len` and `len - off < 16`: the rest is in bounds (caller); the
    // key is still in phase.
    unsafe { mask_under_16(src.add(off), dst.add(off), len - off, key) }
}

/// Fewer than 128 bytes: up to three 32-byte vectors, then [`mask_under_32`].
///
/// # Safety
/// As [`mask_avx2`], and `len < 128`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn mask_under_128(src: *const u8, dst: *mut u8, len: usize, key: [u8; 4]) {
    debug_assert!(len < 128);
    let mask = splat256(key);
    let mut off = 0;
    while len - off >= 32 {
        // SAFETY: `off + 32 <= len`: the vector at `off` is in bounds (caller).
        unsafe {
            let v = _mm256_loadu_si256(src.add(off).cast());
            _mm256_storeu_si256(dst.add(off).cast(), _mm256_xor_si256(v, mask));
        }
        off += 32;
    }
    // SAFETY: `off <= len` and `len - off < 32`: in bounds (caller); key in phase.
    unsafe { mask_under_32(src.add(off), dst.add(off), len - off, key) }
}

/// Fewer than 64 bytes: 32 if `len` has that bit, then [`mask_under_32`].
///
/// # Safety
/// As [`mask_avx2`], and `len < 64`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn mask_under_64(src: *const u8, dst: *mut u8, len: usize, key: [u8; 4]) {
    debug_assert!(len < 64);
    let mut off = 0;
    if len & 32 != 0 {
        // SAFETY: `32 <= len`: the vector at 0 is in bounds (caller).
        unsafe {
            let v = _mm256_loadu_si256(src.cast());
            _mm256_storeu_si256(dst.cast(), _mm256_xor_si256(v, splat256(key)));
        }
        off = 32;
    }
    // SAFETY: `off <= len` and `len - off < 32`: in bounds (caller); key in phase.
    unsafe { mask_under_32(src.add(off), dst.add(off), len - off, key) }
}

/// Fewer than 32 bytes: 16 if `len` has that bit, then `mask_under_16`.
///
/// # Safety
/// As [`mask_sse2`], and `len < 32`.
#[inline]
#[target_feature(enable = "sse2")]
unsafe fn mask_under_32(src: *const u8, dst: *mut u8, len: usize, key: [u8; 4]) {
    debug_assert!(len < 32);
    let mut off = 0;
    if len & 16 != 0 {
        // SAFETY: `16 <= len`: the vector at 0 is in bounds (caller).
        unsafe {
            let v = _mm_loadu_si128(src.cast());
            _mm_storeu_si128(dst.cast(), _mm_xor_si128(v, splat128(key)));
        }
        off = 16;
    }
    // SAFETY: `off <= len` and `len - off < 16`: in bounds (caller); key in phase.
    unsafe { mask_under_16(src.add(off), dst.add(off), len - off, key) }
}
