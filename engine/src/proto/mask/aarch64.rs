//! aarch64 masking kernel: NEON, 16 bytes per instruction.
//!
//! Laid out like the x86_64 SSE2 kernel: it reads `len` bytes at `src` and writes them,
//! masked, at `dst` (equal, or disjoint), four vectors per iteration, then one, then the
//! last bytes by halving widths (`mask_under_16`). Every piece is stored where it was
//! loaded from and no two overlap. NEON byte loads and stores need no alignment.

use std::arch::aarch64::*;

use super::mask_under_16;

/// `key` in every 4-byte lane of a 128-bit vector.
#[inline]
#[target_feature(enable = "neon")]
fn splat(key: [u8; 4]) -> uint8x16_t {
    vreinterpretq_u8_u32(vdupq_n_u32(u32::from_ne_bytes(key)))
}

/// # Safety
/// - The CPU supports NEON.
/// - `src` is valid for reads and `dst` for writes of `len` bytes, and the two ranges
///   are either the same (`src == dst`) or disjoint.
#[target_feature(enable = "neon")]
pub(super) unsafe fn mask_neon(src: *const u8, dst: *mut u8, len: usize, key: [u8; 4]) {
    let mask = splat(key);
    let mut off = 0;
    while len - off >= 64 {
        // SAFETY: `off + 64 <= len`: the four vectors at `off` are in bounds (caller).
        // All four loads come before the stores, and each vector is stored where it was
        // loaded from.
        unsafe {
            let (from, to) = (src.add(off), dst.add(off));
            let a = vld1q_u8(from);
            let b = vld1q_u8(from.add(16));
            let c = vld1q_u8(from.add(32));
            let d = vld1q_u8(from.add(48));
            vst1q_u8(to, veorq_u8(a, mask));
            vst1q_u8(to.add(16), veorq_u8(b, mask));
            vst1q_u8(to.add(32), veorq_u8(c, mask));
            vst1q_u8(to.add(48), veorq_u8(d, mask));
        }
        off += 64;
    }
    while len - off >= 16 {
        // SAFETY: `off + 16 <= len`: the vector at `off` is in bounds (caller).
        unsafe { vst1q_u8(dst.add(off), veorq_u8(vld1q_u8(src.add(off)), mask)) };
        off += 16;
    }
    // SAFETY: `off <= len` and `len - off < 16`: the rest is in bounds (caller); the
    // body advanced by whole vectors, so the key is still in phase.
    unsafe { mask_under_16(src.add(off), dst.add(off), len - off, key) }
}
