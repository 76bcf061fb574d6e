//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, in tiers over a scalar reference.
//!
//! Every byte a client sends is masked, so a server unmasks every payload byte it
//! receives: this is the one pass over the payload on the receive path, next to UTF-8
//! validation for text. The tiers:
//!
//! - [`apply_mask_scalar`]: one byte at a time, the obviously correct reference that
//!   every other tier is tested (and fuzzed) against, and the one Miri runs.
//! - the word path: 8 bytes at a time in safe code; it handles short payloads (below
//!   [`SIMD_THRESHOLD`]) on every CPU, where vector setup would cost more than it saves
//!   (measured: at 125 bytes the word loop takes 4 ns, the AVX2 and AVX-512 kernels 7–8).
//! - SSE2, AVX2, AVX-512 (x86_64) and NEON (aarch64): 16, 32 or 64 bytes per
//!   instruction with unaligned loads and stores, the tail done by the word path.
//!
//! The best tier is detected once and cached in an atomic, so dispatching costs a load
//! and a branch per call. The key is rotated by `phase` first (a frame's payload can
//! arrive over several reads; `phase` is how far into the payload this piece starts), so
//! every tier works on a key that starts at the first byte of its buffer.

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Buffers shorter than this take the word path even where SIMD is available.
pub const SIMD_THRESHOLD: usize = 256;

/// An implementation of masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MaskTier {
    /// One byte at a time: the reference.
    Scalar,
    /// Eight bytes at a time, in safe code; every CPU.
    Words,
    /// 16 bytes per instruction (x86_64 baseline).
    Sse2,
    /// 32 bytes per instruction.
    Avx2,
    /// 64 bytes per instruction (AVX-512F).
    Avx512,
    /// 16 bytes per instruction (aarch64 baseline).
    Neon,
}

impl MaskTier {
    const ALL: [MaskTier; 6] = [
        MaskTier::Scalar,
        MaskTier::Words,
        MaskTier::Sse2,
        MaskTier::Avx2,
        MaskTier::Avx512,
        MaskTier::Neon,
    ];

    /// A short name for reports and benchmarks.
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

    /// Whether this CPU can run the tier.
    pub fn is_supported(self) -> bool {
        match self {
            MaskTier::Scalar | MaskTier::Words => true,
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            MaskTier::Sse2 => std::arch::is_x86_feature_detected!("sse2"),
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            MaskTier::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            MaskTier::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(all(target_arch = "aarch64", not(miri)))]
            MaskTier::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every tier this CPU can run, the reference first.
    pub fn all_supported() -> Vec<MaskTier> {
        MaskTier::ALL
            .into_iter()
            .filter(|t| t.is_supported())
            .collect()
    }
}

const UNDETECTED: u8 = u8::MAX;
static DETECTED: AtomicU8 = AtomicU8::new(UNDETECTED);

/// The fastest tier this CPU supports, detected on the first call and cached.
#[inline]
pub fn detected_tier() -> MaskTier {
    match DETECTED.load(Ordering::Relaxed) {
        UNDETECTED => detect(),
        index => MaskTier::ALL[usize::from(index)],
    }
}

#[cold]
fn detect() -> MaskTier {
    let best = [
        MaskTier::Avx512,
        MaskTier::Avx2,
        MaskTier::Neon,
        MaskTier::Sse2,
    ]
    .into_iter()
    .find(|t| t.is_supported())
    .unwrap_or(MaskTier::Words);
    let index = MaskTier::ALL.iter().position(|t| *t == best).unwrap_or(1);
    DETECTED.store(index as u8, Ordering::Relaxed);
    best
}

/// The key as it applies from the first byte of a buffer that starts `phase` bytes into
/// the payload.
#[inline]
fn rotate(key: [u8; 4], phase: usize) -> [u8; 4] {
    let p = phase % 4;
    [key[p], key[(p + 1) % 4], key[(p + 2) % 4], key[(p + 3) % 4]]
}

/// XORs `buf` with `key`, starting at key phase `phase`: byte `i` of `buf` is XORed with
/// `key[(phase + i) % 4]`. Only `phase % 4` matters.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    let key = rotate(key, phase);
    if buf.len() < SIMD_THRESHOLD {
        mask_words(buf, key);
    } else {
        mask_rotated(detected_tier(), buf, key);
    }
}

/// Runs `tier` (falling back to the word path where the CPU lacks it).
pub fn apply_mask_with(tier: MaskTier, buf: &mut [u8], key: [u8; 4], phase: usize) {
    let key = rotate(key, phase);
    if tier == MaskTier::Scalar {
        mask_bytes(buf, key);
    } else if tier.is_supported() {
        mask_rotated(tier, buf, key);
    } else {
        mask_words(buf, key);
    }
}

/// The scalar reference: one byte at a time.
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], phase: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(phase + i) % 4];
    }
}

/// Masks `src` into `dst` (equal lengths): `dst[i] = src[i] ^ key[(phase + i) % 4]`.
///
/// # Panics
/// If the lengths differ.
pub fn mask_copy(dst: &mut [u8], src: &[u8], key: [u8; 4], phase: usize) {
    dst.copy_from_slice(src);
    apply_mask(dst, key, phase);
}

#[inline]
fn mask_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Eight bytes at a time; `key` already rotated to the buffer's start.
#[inline]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so the key is still aligned to it.
    mask_bytes(chunks.into_remainder(), key);
}

#[inline]
fn mask_rotated(tier: MaskTier, buf: &mut [u8], key: [u8; 4]) {
    match tier {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        MaskTier::Avx512 => {
            // SAFETY: `Avx512` comes from `detected_tier` or from `apply_mask_with` after
            // `is_supported`, both of which checked that the CPU has AVX-512F.
            unsafe { x86::mask_avx512(buf, key) }
        }
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        MaskTier::Avx2 => {
            // SAFETY: as above, the CPU has AVX2.
            unsafe { x86::mask_avx2(buf, key) }
        }
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        MaskTier::Sse2 => {
            // SAFETY: as above, the CPU has SSE2 (every x86_64 CPU does).
            unsafe { x86::mask_sse2(buf, key) }
        }
        #[cfg(all(target_arch = "aarch64", not(miri)))]
        MaskTier::Neon => {
            // SAFETY: as above, the CPU has NEON.
            unsafe { aarch64::mask_neon(buf, key) }
        }
        MaskTier::Scalar => mask_bytes(buf, key),
        _ => mask_words(buf, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn rfc_5_7_masked_hello() {
        let mut buf = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&buf, b"Hello");
    }

    /// Miri interprets every instruction: it checks the scalar and word paths on a
    /// smaller range, the native run on all of it.
    const MAX_LEN: usize = if cfg!(miri) { 200 } else { 4096 };

    #[test]
    fn every_tier_matches_scalar_for_lengths_0_to_4096() {
        let key = [0x12, 0x9a, 0xfe, 0x01];
        let tiers = MaskTier::all_supported();
        let backing = data(MAX_LEN + 64, 7);
        // Exhaustive over length; alignments and phases rotate with it.
        for len in 0..=MAX_LEN {
            let align = len % 64;
            let phase = len / 64 % 4;
            let src = &backing[align..align + len];
            let mut reference = src.to_vec();
            apply_mask_scalar(&mut reference, key, phase);
            for &tier in &tiers {
                let mut owned = backing.clone();
                let buf = &mut owned[align..align + len];
                apply_mask_with(tier, buf, key, phase);
                assert_eq!(
                    buf,
                    &reference[..],
                    "{tier:?} len {len} align {align} phase {phase}"
                );
                // Bytes around the buffer are untouched.
                assert_eq!(owned[..align], backing[..align]);
                assert_eq!(owned[align + len..], backing[align + len..]);
            }
            let mut buf = src.to_vec();
            apply_mask(&mut buf, key, phase);
            assert_eq!(buf, reference);
        }
    }

    #[test]
    fn every_alignment_and_phase_at_a_few_lengths() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let backing = data(1200, 3);
        for len in [1, 7, 63, 64, 65, 127, 200, 1000] {
            for align in (0..64).step_by(if cfg!(miri) { 13 } else { 1 }) {
                for phase in 0..4 {
                    let mut reference = backing[align..align + len].to_vec();
                    apply_mask_scalar(&mut reference, key, phase);
                    for tier in MaskTier::all_supported() {
                        let mut buf = backing[align..align + len].to_vec();
                        apply_mask_with(tier, &mut buf, key, phase);
                        assert_eq!(buf, reference, "{tier:?} {len} {align} {phase}");
                    }
                }
            }
        }
    }

    #[test]
    fn masking_in_pieces_with_the_phase_equals_masking_once() {
        let key = [1, 2, 3, 250];
        let original = data(300, 9);
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for cut in 0..=original.len() {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(pieces, whole, "cut {cut}");
        }
    }

    #[test]
    fn mask_copy_matches_and_unmasking_twice_is_identity() {
        let key = [9, 8, 7, 6];
        let src = data(1000, 1);
        let mut dst = vec![0u8; 1000];
        mask_copy(&mut dst, &src, key, 3);
        let mut reference = src.clone();
        apply_mask_scalar(&mut reference, key, 3);
        assert_eq!(dst, reference);
        apply_mask(&mut dst, key, 3);
        assert_eq!(dst, src);
    }

    #[test]
    fn detection_is_cached_and_supported() {
        let tier = detected_tier();
        assert!(tier.is_supported());
        assert_eq!(detected_tier(), tier);
        assert_eq!(MaskTier::all_supported()[0], MaskTier::Scalar);
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore)]
        fn random_buffers_keys_and_phases(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            key in any::<[u8; 4]>(),
            phase in 0usize..16,
            align in 0usize..64,
        ) {
            let align = align.min(bytes.len());
            let mut reference = bytes[align..].to_vec();
            apply_mask_scalar(&mut reference, key, phase);
            for tier in MaskTier::all_supported() {
                let mut buf = bytes.clone();
                apply_mask_with(tier, &mut buf[align..], key, phase);
                prop_assert_eq!(&buf[align..], &reference[..]);
            }
        }
    }
}
