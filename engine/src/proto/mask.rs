//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, in tiers over a scalar reference.
//!
//! RFC 6455 §5.3: "Octet i of the transformed data is the XOR of octet i of the original
//! data with octet at index i modulo 4 of the masking key." Every byte a client sends is
//! masked, so a server unmasks every payload byte it receives: this is the one pass over
//! the payload on the receive path, next to UTF-8 validation for text. How fast it can go
//! depends on the CPU, hence the tiers:
//!
//! - [`apply_mask_scalar`]: one byte at a time, the obviously correct reference that
//!   every other tier is tested (and fuzzed) against.
//! - [`MaskTier::Words`]: eight bytes at a time in safe code, on every CPU. It takes
//!   short payloads (below [`SIMD_THRESHOLD`]) everywhere, where calling into a vector
//!   kernel would cost more than it saves.
//! - [`MaskTier::Sse2`], [`MaskTier::Avx2`], [`MaskTier::Avx512`] (x86_64) and
//!   [`MaskTier::Neon`] (aarch64): 16, 32 or 64 bytes per instruction, with unaligned
//!   loads and stores; long buffers are aligned first, so that no store of the body
//!   splits a cache line. The bytes after the last whole vector are masked by halving
//!   widths (32, 16, 8, 4, 2, 1 bytes), each piece only if the length needs it: no byte
//!   loop, and no two stores to the same byte.
//!
//! The best tier is detected once and cached in an atomic, so dispatching costs a load
//! and a jump per call. The key is rotated by `phase` first (a frame's payload can arrive
//! over several reads; `phase` is how far into the payload this piece starts), so every
//! kernel works on a key that starts at the first byte of its buffer.
//!
//! Masking in place and copying ([`mask_copy`]) share the vector kernels: those read the
//! source and write the destination through raw pointers that are either equal or
//! disjoint, and store each piece where it was loaded from.
//!
//! Miri runs the tests over the scalar and word paths and the SSE2 kernel, which is all
//! Miri reports for x86_64; with `RUSTFLAGS="-C target-feature=+avx2,+avx512f"` (and its
//! own `CARGO_TARGET_DIR`) it checks the AVX2 and AVX-512 kernels too, and with
//! `--target aarch64-unknown-linux-gnu` the NEON kernel.

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86;

/// [`apply_mask`] and [`mask_copy`] take the word path below this length even where a
/// vector tier is available; from it on, the detected tier. Measured on Zen 4: below 256
/// bytes the word path inline is as fast as a call into a vector kernel, or faster.
pub const SIMD_THRESHOLD: usize = 256;

/// An implementation of masking, for [`apply_mask_with`] and [`mask_copy_with`].
///
/// [`detected_tier`] is the one [`apply_mask`] uses; the others exist to be tested and
/// benchmarked against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MaskTier {
    /// One byte at a time: the reference ([`apply_mask_scalar`]).
    Scalar,
    /// Eight bytes at a time in safe code; every CPU.
    Words,
    /// 16 bytes per instruction (x86_64 baseline).
    Sse2,
    /// 32 bytes per instruction (x86_64 with AVX2).
    Avx2,
    /// 64 bytes per instruction (x86_64 with AVX-512F); the AVX2 kernel below 4 KiB.
    Avx512,
    /// 16 bytes per instruction (aarch64 baseline).
    Neon,
}

impl MaskTier {
    /// Every tier, the reference first, then from the slowest to the fastest.
    const ALL: [MaskTier; 6] = [
        MaskTier::Scalar,
        MaskTier::Words,
        MaskTier::Sse2,
        MaskTier::Neon,
        MaskTier::Avx2,
        MaskTier::Avx512,
    ];

    /// A short name for reports and benchmarks: `"scalar"`, `"words"`, `"sse2"`,
    /// `"avx2"`, `"avx512"` or `"neon"`.
    pub fn name(self) -> &'static str {
        match self {
            MaskTier::Scalar => "scalar",
            MaskTier::Words => "words",
            MaskTier::Sse2 => "sse2",
            MaskTier::Avx2 => "avx2",
            MaskTier::Avx512 => "avx512",
            MaskTier::Neon => "neon",
        }
    }

    /// Whether this CPU can run the tier. (Under Miri, which reports only the target
    /// features the crate is compiled with, x86_64 has SSE2 and no more.)
    pub fn is_supported(self) -> bool {
        match self {
            MaskTier::Scalar | MaskTier::Words => true,
            #[cfg(target_arch = "x86_64")]
            MaskTier::Sse2 => std::arch::is_x86_feature_detected!("sse2"),
            #[cfg(target_arch = "x86_64")]
            MaskTier::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            MaskTier::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
            }
            #[cfg(target_arch = "aarch64")]
            MaskTier::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every tier this CPU can run: [`MaskTier::Scalar`] first, then from the slowest
    /// to the fastest.
    pub fn all_supported() -> Vec<MaskTier> {
        MaskTier::ALL
            .into_iter()
            .filter(|t| t.is_supported())
            .collect()
    }
}

/// `DETECTED` before the first detection.
const UNDETECTED: u8 = u8::MAX;
/// The index in [`MaskTier::ALL`] of the detected tier, or [`UNDETECTED`].
static DETECTED: AtomicU8 = AtomicU8::new(UNDETECTED);

/// The fastest tier this CPU supports, detected on the first call and cached: later
/// calls cost one relaxed atomic load.
#[inline]
pub fn detected_tier() -> MaskTier {
    match MaskTier::ALL.get(usize::from(DETECTED.load(Ordering::Relaxed))) {
        Some(&tier) => tier,
        None => detect(),
    }
}

#[cold]
fn detect() -> MaskTier {
    // Two threads may both get here first; they store the same value.
    let index = MaskTier::ALL
        .iter()
        .rposition(|t| t.is_supported())
        .unwrap_or(0);
    DETECTED.store(index as u8, Ordering::Relaxed);
    MaskTier::ALL[index]
}

/// XORs `buf` with `key`, starting at key phase `phase`: byte `i` of `buf` is XORed with
/// `key[(phase + i) % 4]`. Only `phase % 4` matters.
///
/// Masking and unmasking are the same operation. A payload that arrives in pieces is
/// unmasked piece by piece with `phase` = the number of payload bytes before the piece.
///
/// Buffers shorter than [`SIMD_THRESHOLD`] take the word path inline; longer ones the
/// tier [`detected_tier`] returns.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    let key = rotate(key, phase);
    if buf.len() < SIMD_THRESHOLD {
        mask_words(buf, key);
    } else {
        // SAFETY: `detected_tier` returns a tier the CPU supports.
        unsafe { mask_in_place(detected_tier(), buf, key) };
    }
}

/// [`apply_mask`] with the given tier for every length (no word path in front of it for
/// short buffers). A tier the CPU does not support falls back to the scalar reference.
pub fn apply_mask_with(tier: MaskTier, buf: &mut [u8], key: [u8; 4], phase: usize) {
    let key = rotate(key, phase);
    if tier.is_supported() {
        // SAFETY: checked just above.
        unsafe { mask_in_place(tier, buf, key) };
    } else {
        mask_bytes(buf, key);
    }
}

/// The scalar reference: one byte at a time. Same contract as [`apply_mask`].
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], phase: usize) {
    let phase = phase % 4;
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(phase + i) % 4];
    }
}

/// Masks `src` into `dst` in one pass: `dst[i] = src[i] ^ key[(phase + i) % 4]`; for a
/// client's sends, which must not change the application's buffer. Dispatches like
/// [`apply_mask`].
///
/// # Panics
/// If `dst` and `src` have different lengths.
#[inline]
pub fn mask_copy(dst: &mut [u8], src: &[u8], key: [u8; 4], phase: usize) {
    assert_eq!(dst.len(), src.len(), "mask_copy: lengths differ");
    let key = rotate(key, phase);
    if src.len() < SIMD_THRESHOLD {
        mask_words_copy(dst, src, key);
    } else {
        // SAFETY: `detected_tier` returns a tier the CPU supports; the lengths are equal
        // (asserted above).
        unsafe { mask_by_copy(detected_tier(), dst, src, key) };
    }
}

/// [`mask_copy`] with the given tier for every length. A tier the CPU does not support
/// falls back to the scalar reference.
///
/// # Panics
/// If `dst` and `src` have different lengths.
pub fn mask_copy_with(tier: MaskTier, dst: &mut [u8], src: &[u8], key: [u8; 4], phase: usize) {
    assert_eq!(dst.len(), src.len(), "mask_copy_with: lengths differ");
    let key = rotate(key, phase);
    if tier.is_supported() {
        // SAFETY: checked just above; the lengths are equal (asserted above).
        unsafe { mask_by_copy(tier, dst, src, key) };
    } else {
        mask_bytes_copy(dst, src, key);
    }
}

/// Runs `tier` in place; `key` already rotated to the buffer's start.
///
/// # Safety
/// The CPU supports `tier`.
#[inline]
unsafe fn mask_in_place(tier: MaskTier, buf: &mut [u8], key: [u8; 4]) {
    match tier {
        MaskTier::Scalar => mask_bytes(buf, key),
        #[cfg(target_arch = "x86_64")]
        MaskTier::Avx512 => {
            let (len, ptr) = (buf.len(), buf.as_mut_ptr());
            // SAFETY: the CPU has AVX-512F and AVX2 (caller); `ptr` is valid for reads
            // and writes of `len` bytes, and source and destination are equal.
            unsafe { x86::mask_avx512(ptr, ptr, len, key) }
        }
        #[cfg(target_arch = "x86_64")]
        MaskTier::Avx2 => {
            let (len, ptr) = (buf.len(), buf.as_mut_ptr());
            // SAFETY: as above, with AVX2.
            unsafe { x86::mask_avx2(ptr, ptr, len, key) }
        }
        #[cfg(target_arch = "x86_64")]
        MaskTier::Sse2 => {
            let (len, ptr) = (buf.len(), buf.as_mut_ptr());
            // SAFETY: as above, with SSE2.
            unsafe { x86::mask_sse2(ptr, ptr, len, key) }
        }
        #[cfg(target_arch = "aarch64")]
        MaskTier::Neon => {
            let (len, ptr) = (buf.len(), buf.as_mut_ptr());
            // SAFETY: the CPU has NEON (caller); `ptr` is valid for reads and writes of
            // `len` bytes, and source and destination are equal.
            unsafe { aarch64::mask_neon(ptr, ptr, len, key) }
        }
        _ => mask_words(buf, key),
    }
}

/// Runs `tier` from `src` into `dst`; `key` already rotated to the start.
///
/// # Safety
/// The CPU supports `tier`. (Unequal lengths are not UB: the shorter one counts.)
#[inline]
unsafe fn mask_by_copy(tier: MaskTier, dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    match tier {
        MaskTier::Scalar => mask_bytes_copy(dst, src, key),
        #[cfg(target_arch = "x86_64")]
        MaskTier::Avx512 => {
            let len = src.len().min(dst.len());
            // SAFETY: the CPU has AVX-512F and AVX2 (caller); `src` is valid for reads and
            // `dst` for writes of `len` bytes (both are at least that long), and they do
            // not overlap: `dst` is borrowed mutably.
            unsafe { x86::mask_avx512(src.as_ptr(), dst.as_mut_ptr(), len, key) }
        }
        #[cfg(target_arch = "x86_64")]
        MaskTier::Avx2 => {
            let len = src.len().min(dst.len());
            // SAFETY: as above, with AVX2.
            unsafe { x86::mask_avx2(src.as_ptr(), dst.as_mut_ptr(), len, key) }
        }
        #[cfg(target_arch = "x86_64")]
        MaskTier::Sse2 => {
            let len = src.len().min(dst.len());
            // SAFETY: as above, with SSE2.
            unsafe { x86::mask_sse2(src.as_ptr(), dst.as_mut_ptr(), len, key) }
        }
        #[cfg(target_arch = "aarch64")]
        MaskTier::Neon => {
            let len = src.len().min(dst.len());
            // SAFETY: the CPU has NEON (caller); `src` is valid for reads and `dst` for
            // writes of `len` bytes (both are at least that long), and they do not
            // overlap: `dst` is borrowed mutably.
            unsafe { aarch64::mask_neon(src.as_ptr(), dst.as_mut_ptr(), len, key) }
        }
        _ => mask_words_copy(dst, src, key),
    }
}

/// The key as it applies from the first byte of a buffer that starts `phase` bytes into
/// the payload.
/// `[key[p], key[p + 1], key[p + 2], key[p + 3]]` (indices mod 4) for `p = phase % 4`,
/// as one rotation of the key read as a little-endian `u32` (byte `i` in bits `8i..`).
#[inline(always)]
fn rotate(key: [u8; 4], phase: usize) -> [u8; 4] {
    let bits = 8 * (phase % 4) as u32;
    u32::from_le_bytes(key).rotate_right(bits).to_le_bytes()
}

/// The key twice over, as a word to XOR eight bytes with: both halves are the key, so
/// its bytes are `key, key` whatever the byte order.
#[inline(always)]
fn word(key: [u8; 4]) -> u64 {
    let key = u64::from(u32::from_ne_bytes(key));
    key << 32 | key
}

/// One byte at a time; `key` already rotated to the buffer's start.
#[inline]
fn mask_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// [`mask_bytes`] from `src` into `dst` (equal lengths).
#[inline]
fn mask_bytes_copy(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    for (i, (d, s)) in dst.iter_mut().zip(src).enumerate() {
        *d = s ^ key[i % 4];
    }
}

/// Eight bytes at a time in safe code; `key` already rotated to the buffer's start.
#[inline(always)]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let word = word(key);
    let (chunks, rest) = buf.as_chunks_mut::<8>();
    for chunk in chunks {
        *chunk = (u64::from_ne_bytes(*chunk) ^ word).to_ne_bytes();
    }
    // The rest starts at a multiple of 8, so the key is still in phase.
    mask_under_8(rest, key);
}

/// Fewer than eight bytes: a `u32`, then up to three bytes.
#[inline(always)]
fn mask_under_8(buf: &mut [u8], key: [u8; 4]) {
    let rest = match buf.split_first_chunk_mut::<4>() {
        Some((four, rest)) => {
            *four = (u32::from_ne_bytes(*four) ^ u32::from_ne_bytes(key)).to_ne_bytes();
            rest
        }
        None => buf,
    };
    for (byte, k) in rest.iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// [`mask_words`] from `src` into `dst` (equal lengths).
#[inline(always)]
fn mask_words_copy(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    let word = word(key);
    let (to, dst) = dst.as_chunks_mut::<8>();
    let (from, src) = src.as_chunks::<8>();
    for (d, s) in to.iter_mut().zip(from) {
        *d = (u64::from_ne_bytes(*s) ^ word).to_ne_bytes();
    }
    let (dst, src) = match (
        dst.split_first_chunk_mut::<4>(),
        src.split_first_chunk::<4>(),
    ) {
        (Some((d, dst)), Some((s, src))) => {
            *d = (u32::from_ne_bytes(*s) ^ u32::from_ne_bytes(key)).to_ne_bytes();
            (dst, src)
        }
        _ => (dst, src),
    };
    for ((d, s), k) in dst.iter_mut().zip(src).zip(key) {
        *d = s ^ k;
    }
}

/// The vector kernels' last bytes: fewer than 16 from `src` into `dst` (which may be
/// equal), as a `u64`, a `u32`, a `u16` and a byte, each only if `len` has that bit;
/// `key` already rotated to the start.
///
/// # Safety
/// - `len < 16`.
/// - `src` is valid for reads and `dst` for writes of `len` bytes, and the two ranges are
///   either the same (`src == dst`) or disjoint.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
unsafe fn mask_under_16(src: *const u8, dst: *mut u8, len: usize, key: [u8; 4]) {
    debug_assert!(len < 16);
    let mut off = 0;
    // The pieces do not overlap, so each is loaded, masked and stored on its own.
    // Unaligned reads and writes.
    if len & 8 != 0 {
        // SAFETY: `off + 8 <= len`: in bounds of both ranges (caller).
        unsafe {
            let v = src.cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(v ^ word(key));
        }
        off = 8;
    }
    if len & 4 != 0 {
        // SAFETY: `off` counts the pieces done, higher bits of `len` than this one, so
        // `off + 4 <= len`: in bounds of both ranges (caller).
        unsafe {
            let v = src.add(off).cast::<u32>().read_unaligned();
            dst.add(off)
                .cast::<u32>()
                .write_unaligned(v ^ u32::from_ne_bytes(key));
        }
        off += 4;
    }
    // `off` is a multiple of 4 here: the key is in phase.
    if len & 2 != 0 {
        // SAFETY: `off + 2 <= len`, as above.
        unsafe {
            let v = src.add(off).cast::<u16>().read_unaligned();
            dst.add(off)
                .cast::<u16>()
                .write_unaligned(v ^ u16::from_ne_bytes([key[0], key[1]]));
        }
        off += 2;
    }
    if len & 1 != 0 {
        // SAFETY: `off + 1 == len`, as above.
        unsafe { *dst.add(off) = *src.add(off) ^ key[off % 4] };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every tier, supported here or not (those fall back to the reference).
    const EVERY_TIER: [MaskTier; 6] = MaskTier::ALL;

    /// Every length up to here is tested: past 4 KiB for the AVX-512 kernel's aligned
    /// path, with every head (0..64) and tail (0..256) length. Miri interprets every
    /// instruction: it checks a smaller range.
    const MAX_LEN: usize = if cfg!(miri) { 200 } else { 4096 + 64 + 256 };

    /// Random bytes either side of a placed buffer, to see writes out of bounds.
    const GUARD: usize = 16;

    fn random_bytes(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
        std::iter::repeat_with(|| rng.u8(..)).take(len).collect()
    }

    fn reference(src: &[u8], key: [u8; 4], phase: usize) -> Vec<u8> {
        let mut out = src.to_vec();
        apply_mask_scalar(&mut out, key, phase);
        out
    }

    /// Random bytes to fill the room around placed buffers with, made once.
    fn noise(len: usize) -> &'static [u8] {
        static NOISE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let noise = NOISE.get_or_init(|| random_bytes(&mut fastrand::Rng::with_seed(0), 1 << 15));
        &noise[..len]
    }

    /// A buffer holding `data` at an address `align` bytes past a 64-byte boundary,
    /// between random guard bytes; and where `data` starts in it.
    fn placed(data: &[u8], align: usize) -> (Vec<u8>, usize) {
        let mut buf = noise(data.len() + 64 + 2 * GUARD).to_vec();
        let base = buf.as_ptr().addr() + GUARD;
        let start = GUARD + (align % 64 + 64 - base % 64) % 64;
        buf[start..start + data.len()].copy_from_slice(data);
        (buf, start)
    }

    /// Masks `data` placed at `align` with `tier`, in place and by copy (from a source
    /// at another alignment), and checks it against `want` and that no byte around it
    /// changed.
    fn check(tier: MaskTier, data: &[u8], align: usize, key: [u8; 4], phase: usize, want: &[u8]) {
        let len = data.len();
        let case = || format!("{tier:?} len {len} align {align} phase {phase} key {key:x?}");

        let (mut buf, at) = placed(data, align);
        let before = buf.clone();
        apply_mask_with(tier, &mut buf[at..at + len], key, phase);
        assert!(buf[at..at + len] == *want, "in place: {}", case());
        assert!(buf[..at] == before[..at], "wrote before: {}", case());
        assert!(
            buf[at + len..] == before[at + len..],
            "wrote after: {}",
            case()
        );

        let (src, from) = placed(data, align * 5 + 3);
        let (mut buf, at) = placed(&src[from..from + len], align);
        let before = buf.clone();
        mask_copy_with(
            tier,
            &mut buf[at..at + len],
            &src[from..from + len],
            key,
            phase,
        );
        assert!(buf[at..at + len] == *want, "copy: {}", case());
        assert!(buf[..at] == before[..at], "copy wrote before: {}", case());
        assert!(
            buf[at + len..] == before[at + len..],
            "copy wrote after: {}",
            case()
        );
    }

    /// [`check`] for every supported tier, and the dispatching entry points.
    fn check_all(data: &[u8], align: usize, key: [u8; 4], phase: usize) {
        let want = reference(data, key, phase);
        for tier in MaskTier::all_supported() {
            check(tier, data, align, key, phase, &want);
        }
        let (mut buf, at) = placed(data, align);
        apply_mask(&mut buf[at..at + data.len()], key, phase);
        assert!(
            buf[at..at + data.len()] == want,
            "apply_mask {align} {phase}"
        );
        let mut copy = vec![0u8; data.len()];
        mask_copy(&mut copy, data, key, phase);
        assert!(copy == want, "mask_copy {align} {phase}");
    }

    #[test]
    fn rfc_5_7_masked_hello() {
        // RFC 6455 §5.7: "A single-frame masked text message":
        // 0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58 contains "Hello".
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let masked = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let mut buf = masked;
        apply_mask(&mut buf, key, 0);
        assert_eq!(&buf, b"Hello");
        let mut buf = masked;
        apply_mask_scalar(&mut buf, key, 0);
        assert_eq!(&buf, b"Hello");
        let mut copy = [0u8; 5];
        mask_copy(&mut copy, b"Hello", key, 0);
        assert_eq!(copy, masked);
        for tier in EVERY_TIER {
            let mut buf = masked;
            apply_mask_with(tier, &mut buf, key, 0);
            assert_eq!(&buf, b"Hello", "{tier:?}");
            let mut copy = [0u8; 5];
            mask_copy_with(tier, &mut copy, b"Hello", key, 0);
            assert_eq!(copy, masked, "{tier:?}");
        }
    }

    #[test]
    fn rotate_and_word() {
        let key = [1, 2, 3, 4];
        assert_eq!(rotate(key, 0), [1, 2, 3, 4]);
        assert_eq!(rotate(key, 1), [2, 3, 4, 1]);
        assert_eq!(rotate(key, 2), [3, 4, 1, 2]);
        assert_eq!(rotate(key, 7), [4, 1, 2, 3]);
        assert_eq!(word(key).to_ne_bytes(), [1, 2, 3, 4, 1, 2, 3, 4]);
    }

    #[test]
    fn phase_selects_the_key_byte() {
        let key = [1, 2, 4, 8];
        for phase in (0..12).chain([usize::MAX - 3, usize::MAX]) {
            let mut buf = [0u8; 9];
            apply_mask_scalar(&mut buf, key, phase);
            let want: Vec<u8> = (0..9).map(|i| key[(phase % 4 + i) % 4]).collect();
            assert_eq!(buf[..], want[..], "phase {phase}");
            let mut buf = [0u8; 9];
            apply_mask(&mut buf, key, phase);
            assert_eq!(buf[..], want[..], "phase {phase}");
        }
    }

    /// Every length up to [`MAX_LEN`] for every tier; the alignment (0..64), phase (0..4)
    /// and key change with the length, so every alignment and phase meets many lengths.
    #[test]
    fn every_tier_matches_scalar_for_every_length() {
        let mut rng = fastrand::Rng::with_seed(1);
        let data = random_bytes(&mut rng, MAX_LEN);
        for len in 0..=MAX_LEN {
            let key = rng.u32(..).to_ne_bytes();
            check_all(&data[..len], len * 7 % 64, key, len / 3 % 4);
        }
    }

    /// Every alignment and phase at the lengths where the kernels change path: around the
    /// vector widths, their unrolled blocks, [`SIMD_THRESHOLD`], and where AVX2 (512) and
    /// AVX-512 (4096) start aligning.
    #[test]
    fn every_alignment_and_phase_at_the_edges() {
        let lengths: &[usize] = if cfg!(miri) {
            &[0, 3, 7, 8, 15, 17, 31, 33, 63, 65, 130, 257, 530]
        } else {
            &[
                0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 127,
                128, 129, 191, 192, 255, 256, 257, 300, 319, 320, 321, 383, 384, 511, 512, 513,
                575, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 4159, 4351, 5000,
            ]
        };
        let step = if cfg!(miri) { 21 } else { 1 };
        let mut rng = fastrand::Rng::with_seed(2);
        for &len in lengths {
            let data = random_bytes(&mut rng, len);
            for align in (0..64).step_by(step) {
                for phase in 0..4 {
                    check_all(&data, align, rng.u32(..).to_ne_bytes(), phase);
                }
            }
        }
    }

    /// The AVX-512 kernel's aligned path starts at 4 KiB: a few alignments for Miri.
    #[test]
    fn long_buffers_at_a_few_alignments() {
        let mut rng = fastrand::Rng::with_seed(3);
        let data = random_bytes(&mut rng, 4096 + 100);
        let aligns: &[usize] = if cfg!(miri) {
            &[1, 63]
        } else {
            &[0, 1, 33, 63]
        };
        for &align in aligns {
            check_all(&data, align, [0x37, 0xfa, 0x21, 0x3d], align);
        }
    }

    #[test]
    fn unsupported_tiers_fall_back_to_the_reference() {
        let data = random_bytes(&mut fastrand::Rng::with_seed(4), 150);
        let key = [0xde, 0xad, 0xbe, 0xef];
        let want = reference(&data, key, 3);
        for tier in EVERY_TIER {
            check(tier, &data, 5, key, 3, &want);
        }
    }

    #[test]
    fn masking_in_pieces_with_the_phase_equals_masking_once() {
        let key = [1, 2, 3, 250];
        let len = if cfg!(miri) { 140 } else { 600 };
        let original = random_bytes(&mut fastrand::Rng::with_seed(5), len);
        let whole = reference(&original, key, 0);
        for cut in 0..=len {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(pieces, whole, "apply_mask, cut {cut}");

            let mut pieces = vec![0u8; len];
            let (a, b) = pieces.split_at_mut(cut);
            mask_copy(a, &original[..cut], key, 0);
            mask_copy(b, &original[cut..], key, cut);
            assert_eq!(pieces, whole, "mask_copy, cut {cut}");

            for tier in MaskTier::all_supported() {
                let mut pieces = original.clone();
                let (a, b) = pieces.split_at_mut(cut);
                apply_mask_with(tier, a, key, 0);
                apply_mask_with(tier, b, key, cut);
                assert_eq!(pieces, whole, "{tier:?}, cut {cut}");
            }
        }
    }

    #[test]
    fn masking_twice_is_the_identity() {
        let key = [9, 8, 7, 6];
        let src = random_bytes(&mut fastrand::Rng::with_seed(6), 1000);
        let mut buf = src.clone();
        apply_mask(&mut buf, key, 3);
        assert_ne!(buf, src);
        apply_mask(&mut buf, key, 3);
        assert_eq!(buf, src);
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn mask_copy_panics_on_different_lengths() {
        mask_copy(&mut [0u8; 3], &[0u8; 4], [1, 2, 3, 4], 0);
    }

    #[test]
    fn detection_is_cached_and_supported() {
        let tier = detected_tier();
        assert!(tier.is_supported());
        assert_eq!(detected_tier(), tier);
        let all = MaskTier::all_supported();
        assert_eq!(all[0], MaskTier::Scalar);
        assert_eq!(all.last(), Some(&tier), "the best tier is detected");
        assert!(all.contains(&MaskTier::Words));
        #[cfg(target_arch = "x86_64")]
        assert!(all.contains(&MaskTier::Sse2));
        #[cfg(target_arch = "aarch64")]
        assert!(all.contains(&MaskTier::Neon));
        let names: Vec<&str> = EVERY_TIER.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["scalar", "words", "sse2", "neon", "avx2", "avx512"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Random data, length (up to 20 000), alignment, key and phase.
        #[test]
        #[cfg_attr(miri, ignore = "too slow under Miri; the exhaustive tests cover the paths")]
        fn random_buffers_keys_phases_and_alignments(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            align in 0usize..64,
            key in any::<[u8; 4]>(),
            phase in any::<usize>(),
        ) {
            check_all(&data, align, key, phase);
        }
    }
}
