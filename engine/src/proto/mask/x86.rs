//! x86_64 masking kernels: SSE2, AVX2 and AVX-512F. Each XORs full vectors with unaligned
//! loads and stores and leaves the tail (fewer bytes than one vector, so a multiple of
//! the vector width has been consumed and the key is still aligned) to the word path.

use std::arch::x86_64::*;

use super::mask_words;

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn mask_avx512(buf: &mut [u8], key: [u8; 4]) {
    let mask = _mm512_set1_epi32(i32::from_ne_bytes(key));
    // Four vectors per iteration keep the load and store ports busy.
    let mut blocks = buf.chunks_exact_mut(256);
    for block in &mut blocks {
        let ptr = block.as_mut_ptr().cast::<__m512i>();
        // SAFETY: `block` is exactly 256 bytes (four 64-byte vectors), valid for reads and
        // writes; the unaligned loads and stores have no alignment requirement.
        unsafe {
            let a = _mm512_loadu_si512(ptr);
            let b = _mm512_loadu_si512(ptr.add(1));
            let c = _mm512_loadu_si512(ptr.add(2));
            let d = _mm512_loadu_si512(ptr.add(3));
            _mm512_storeu_si512(ptr, _mm512_xor_si512(a, mask));
            _mm512_storeu_si512(ptr.add(1), _mm512_xor_si512(b, mask));
            _mm512_storeu_si512(ptr.add(2), _mm512_xor_si512(c, mask));
            _mm512_storeu_si512(ptr.add(3), _mm512_xor_si512(d, mask));
        }
    }
    let mut chunks = blocks.into_remainder().chunks_exact_mut(64);
    for chunk in &mut chunks {
        let ptr = chunk.as_mut_ptr().cast::<__m512i>();
        // SAFETY: `chunk` is exactly 64 bytes, valid for reads and writes; the unaligned
        // load and store have no alignment requirement.
        unsafe { _mm512_storeu_si512(ptr, _mm512_xor_si512(_mm512_loadu_si512(ptr), mask)) };
    }
    mask_words(chunks.into_remainder(), key);
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mask_avx2(buf: &mut [u8], key: [u8; 4]) {
    let mask = _mm256_set1_epi32(i32::from_ne_bytes(key));
    // Four vectors per iteration keep the load and store ports busy.
    let mut blocks = buf.chunks_exact_mut(128);
    for block in &mut blocks {
        let ptr = block.as_mut_ptr().cast::<__m256i>();
        // SAFETY: `block` is exactly 128 bytes (four 32-byte vectors), valid for reads and
        // writes; unaligned loads and stores.
        unsafe {
            let a = _mm256_loadu_si256(ptr);
            let b = _mm256_loadu_si256(ptr.add(1));
            let c = _mm256_loadu_si256(ptr.add(2));
            let d = _mm256_loadu_si256(ptr.add(3));
            _mm256_storeu_si256(ptr, _mm256_xor_si256(a, mask));
            _mm256_storeu_si256(ptr.add(1), _mm256_xor_si256(b, mask));
            _mm256_storeu_si256(ptr.add(2), _mm256_xor_si256(c, mask));
            _mm256_storeu_si256(ptr.add(3), _mm256_xor_si256(d, mask));
        }
    }
    let mut chunks = blocks.into_remainder().chunks_exact_mut(32);
    for chunk in &mut chunks {
        let ptr = chunk.as_mut_ptr().cast::<__m256i>();
        // SAFETY: `chunk` is exactly 32 bytes, valid for reads and writes; unaligned
        // load and store.
        unsafe { _mm256_storeu_si256(ptr, _mm256_xor_si256(_mm256_loadu_si256(ptr), mask)) };
    }
    mask_words(chunks.into_remainder(), key);
}

/// # Safety
/// The CPU must support SSE2.
#[target_feature(enable = "sse2")]
pub(super) unsafe fn mask_sse2(buf: &mut [u8], key: [u8; 4]) {
    let mask = _mm_set1_epi32(i32::from_ne_bytes(key));
    let mut chunks = buf.chunks_exact_mut(16);
    for chunk in &mut chunks {
        let ptr = chunk.as_mut_ptr().cast::<__m128i>();
        // SAFETY: `chunk` is exactly 16 bytes, valid for reads and writes; unaligned
        // load and store.
        unsafe { _mm_storeu_si128(ptr, _mm_xor_si128(_mm_loadu_si128(ptr), mask)) };
    }
    mask_words(chunks.into_remainder(), key);
}
