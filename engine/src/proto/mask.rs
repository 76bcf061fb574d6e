//! RFC 6455 §5.3 payload masking: XOR with a 4-byte key.
//!
//! PLACEHOLDER (scalar only) — being replaced by the SIMD-tiered implementation.

/// XOR `buf` with `key`, starting at key phase `phase` (byte `i` of `buf` is XORed with
/// `key[(phase + i) % 4]`). `phase` may be any value; only `phase % 4` matters.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    apply_mask_scalar(buf, key, phase)
}

/// The scalar reference implementation of [`apply_mask`].
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], phase: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(phase + i) % 4];
    }
}

/// Copying variant: `dst[i] = src[i] ^ key[(phase + i) % 4]`. PLACEHOLDER.
pub fn mask_copy(dst: &mut [u8], src: &[u8], key: [u8; 4], phase: usize) {
    for (i, (d, s)) in dst.iter_mut().zip(src).enumerate() {
        *d = s ^ key[(phase + i) % 4];
    }
}
