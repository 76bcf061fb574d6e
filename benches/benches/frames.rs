//! The server's receive hot path: header, unmask, UTF-8, and slicing into messages, over
//! 10,000 masked 20-byte text frames and over 100 masked 64 KiB binary frames, beside
//! tungstenite's `WebSocket::read` and fastwebsockets' `read_frame` on the same bytes over
//! an in-memory stream. Throughput is in frames; bytes per second follow from the input
//! sizes (10,000 × 26 B and 100 × 65,550 B). Each iteration starts from a fresh copy of the masked bytes (made
//! outside the measurement), since unmasking happens in place.

use std::io::Cursor;

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wsengine::{Config, Connection, Event, Role};
use wsengine_benches::{MEASURE, SAMPLES, WARM_UP, ascii_text, masked_frames};

/// `input` is already in the receive buffer, as the io_uring reader leaves it (the kernel
/// copies into it); the peers below copy from their stream into their own buffer, which is
/// the same copy on their side.
fn ours(input: BytesMut, expected: usize) {
    let mut conn = Connection::new(Role::Server, Config::default(), input);
    let mut n = 0;
    while let Ok(Some(Event::Message(m))) = conn.poll_event() {
        std::hint::black_box(&m);
        n += 1;
    }
    assert_eq!(n, expected);
}

fn tungstenite(input: Vec<u8>, expected: usize) {
    let mut config = tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(64 << 20);
    config.max_frame_size = Some(64 << 20);
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        Cursor::new(input),
        tungstenite::protocol::Role::Server,
        Some(config),
    );
    let mut n = 0;
    while let Ok(m) = ws.read() {
        std::hint::black_box(&m);
        n += 1;
    }
    assert_eq!(n, expected);
}

fn fastwebsockets(rt: &tokio::runtime::Runtime, input: Vec<u8>, expected: usize) {
    rt.block_on(async {
        let mut ws = fastwebsockets::WebSocket::after_handshake(
            Cursor::new(input),
            fastwebsockets::Role::Server,
        );
        ws.set_max_message_size(64 << 20);
        ws.set_auto_close(false);
        let mut n = 0;
        while n < expected {
            let frame = ws.read_frame().await.expect("a frame");
            if frame.opcode == fastwebsockets::OpCode::Text {
                // fastwebsockets leaves UTF-8 validation of text to the application.
                std::hint::black_box(std::str::from_utf8(&frame.payload).is_ok());
            }
            std::hint::black_box(&frame.payload);
            n += 1;
        }
    });
}

fn frames(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("frames");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASURE)
        .sample_size(SAMPLES);
    let cases = [
        (
            "10000 x 20 B text",
            masked_frames(10_000, 0x1, ascii_text(20).as_bytes()),
            10_000,
        ),
        (
            "100 x 64 KiB binary",
            masked_frames(100, 0x2, &vec![7u8; 64 * 1024]),
            100,
        ),
    ];
    for (name, input, count) in &cases {
        group.throughput(Throughput::Elements(*count as u64));
        group.bench_function(BenchmarkId::new("wsengine", name), |b| {
            b.iter_batched(
                || BytesMut::from(&input[..]),
                |i| ours(i, *count),
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new("tungstenite", name), |b| {
            b.iter_batched(
                || input.clone(),
                |i| tungstenite(i, *count),
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new("fastwebsockets", name), |b| {
            b.iter_batched(
                || input.clone(),
                |i| fastwebsockets(&rt, i, *count),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
