//! Unmasking: each SIMD tier this CPU has, the scalar reference, the dispatching entry
//! point, fastwebsockets' `unmask`, tungstenite's word loop, and memcpy of the same size
//! (the bandwidth ceiling), in one group so the figures compare within one run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use wsengine::proto::mask::{MaskTier, apply_mask, apply_mask_with};
use wsengine_benches::{KEY, MEASURE, SAMPLES, WARM_UP, unmask_words};

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASURE)
        .sample_size(SAMPLES);
    for size in [16usize, 125, 1024, 16 * 1024, 64 * 1024, 1 << 20] {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5au8; size];
        for tier in MaskTier::all_supported() {
            group.bench_function(BenchmarkId::new(tier.name(), size), |b| {
                b.iter(|| apply_mask_with(tier, black_box(&mut buf), KEY, 0))
            });
        }
        group.bench_function(BenchmarkId::new("wsengine", size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 0))
        });
        group.bench_function(BenchmarkId::new("fastwebsockets", size), |b| {
            b.iter(|| fastwebsockets::unmask(black_box(&mut buf), KEY))
        });
        group.bench_function(BenchmarkId::new("u64-words (tungstenite)", size), |b| {
            b.iter(|| unmask_words(black_box(&mut buf), KEY))
        });
        let src = vec![0xa5u8; size];
        group.bench_function(BenchmarkId::new("memcpy", size), |b| {
            b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)))
        });
    }
    group.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
