//! aarch64 masking kernel: NEON, 16 bytes per instruction, the tail by the word path.

use std::arch::aarch64::*;

use super::mask_words;

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn mask_neon(buf: &mut [u8], key: [u8; 4]) {
    let pattern = [
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3], key[0], key[1], key[2],
        key[3], key[0], key[1], key[2], key[3],
    ];
    // SAFETY: `pattern` is 16 readable bytes.
    let mask = unsafe { vld1q_u8(pattern.as_ptr()) };
    let mut chunks = buf.chunks_exact_mut(16);
    for chunk in &mut chunks {
        let ptr = chunk.as_mut_ptr();
        // SAFETY: `chunk` is exactly 16 bytes, valid for reads and writes; NEON loads and
        // stores of bytes need no alignment.
        unsafe { vst1q_u8(ptr, veorq_u8(vld1q_u8(ptr), mask)) };
    }
    mask_words(chunks.into_remainder(), key);
}
