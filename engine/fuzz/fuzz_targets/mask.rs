//! Every SIMD masking tier against the scalar reference, at any length, alignment and phase.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsengine::proto::mask::{MaskTier, apply_mask, apply_mask_scalar, apply_mask_with, mask_copy};

fuzz_target!(|input: ([u8; 4], u8, u8, &[u8])| {
    let (key, phase, align, data) = input;
    let phase = usize::from(phase);
    let align = usize::from(align % 64).min(data.len());
    let data = &data[align..];
    let mut reference = data.to_vec();
    apply_mask_scalar(&mut reference, key, phase);
    for tier in MaskTier::all_supported() {
        let mut buf = data.to_vec();
        apply_mask_with(tier, &mut buf, key, phase);
        assert_eq!(buf, reference, "{tier:?}");
    }
    let mut buf = data.to_vec();
    apply_mask(&mut buf, key, phase);
    assert_eq!(buf, reference);
    let mut copy = vec![0u8; data.len()];
    mask_copy(&mut copy, data, key, phase);
    assert_eq!(copy, reference);
});
