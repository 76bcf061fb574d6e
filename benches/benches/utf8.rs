//! UTF-8 validation of text payloads: std, simdutf8, and our streaming validator (whole,
//! and fed in 1 KiB pieces as a fragmented message or several reads would feed it).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use wsengine::proto::utf8::Utf8Validator;
use wsengine_benches::{MEASURE, SAMPLES, WARM_UP, ascii_text, korean_text};

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASURE)
        .sample_size(SAMPLES);
    for (name, text) in [
        ("ascii", ascii_text(64 * 1024)),
        ("korean", korean_text(64 * 1024)),
    ] {
        let bytes = text.as_bytes();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("std", name), |b| {
            b.iter(|| std::str::from_utf8(black_box(bytes)).is_ok())
        });
        group.bench_function(BenchmarkId::new("simdutf8", name), |b| {
            b.iter(|| simdutf8::basic::from_utf8(black_box(bytes)).is_ok())
        });
        group.bench_function(BenchmarkId::new("wsengine whole", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(bytes)).is_ok() && v.finish().is_ok()
            })
        });
        group.bench_function(BenchmarkId::new("wsengine 1KiB pieces", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                black_box(bytes)
                    .chunks(1024)
                    .all(|piece| v.feed(piece).is_ok())
                    && v.finish().is_ok()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, utf8);
criterion_main!(benches);
