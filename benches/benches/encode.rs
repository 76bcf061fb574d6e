//! Building server frames (header plus payload by reference) for the same message mixes
//! as `frames`: 10,000 20-byte text messages, and 100 64 KiB binary messages.

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use wsengine::{Config, Connection, Message, Role};
use wsengine_benches::{MEASURE, SAMPLES, WARM_UP, ascii_text};

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASURE)
        .sample_size(SAMPLES);
    let cases = [
        (
            "10000 x 20 B text",
            Message::text(ascii_text(20)),
            10_000u64,
        ),
        (
            "100 x 64 KiB binary",
            Message::binary(vec![7u8; 64 * 1024]),
            100,
        ),
    ];
    for (name, message, count) in &cases {
        group.throughput(Throughput::Elements(*count));
        let mut conn = Connection::new(Role::Server, Config::default(), BytesMut::new());
        let mut out = Vec::new();
        group.bench_function(BenchmarkId::new("wsengine", name), |b| {
            b.iter(|| {
                for _ in 0..*count {
                    conn.send(black_box(message)).unwrap();
                }
                conn.drain_transmit(&mut out);
                black_box(&out);
                out.clear();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
