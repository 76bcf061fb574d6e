//! The server's opening handshake: parse a browser's upgrade request and build the 101
//! response, beside tungstenite's server handshake on the same bytes.

use std::io::{Cursor, Read, Write};

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wsengine::proto::handshake::{Accept, HandshakeLimits, ServerHandshake};
use wsengine_benches::{BROWSER_REQUEST, MEASURE, SAMPLES, WARM_UP};

/// A stream that reads the request and swallows the response.
struct Duplex {
    input: Cursor<&'static [u8]>,
    output: Vec<u8>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASURE)
        .sample_size(SAMPLES);
    group.bench_function("wsengine", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(BROWSER_REQUEST));
            let request = ServerHandshake::new(HandshakeLimits::default())
                .parse(&mut buf)
                .unwrap()
                .unwrap();
            black_box(request.accept_response(&Accept::new()).unwrap())
        })
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| {
            let stream = Duplex {
                input: Cursor::new(black_box(BROWSER_REQUEST)),
                output: Vec::with_capacity(256),
            };
            black_box(tungstenite::accept(stream).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
