//! permessage-deflate throughput (RFC 7692): compressing and inflating a JSON corpus and
//! random bytes with the engine's `Compressor` and `Inflater`, beside the same work done
//! with flate2 directly, which is the ceiling: the same zlib-rs backend, the same level (1,
//! the engine's default), window (15) and sync flush, into one reused buffer.
//!
//! The cases: 100 JSON messages of about 1 KiB (market-data updates and chat messages,
//! each different in its numbers and words), one 64 KiB JSON document, and the same sizes
//! of random bytes (which deflate cannot shrink), all with context takeover (a dedicated
//! stream per connection, the realistic mode); and the 1 KiB JSON messages without context
//! takeover, with the streams lent by a `StreamPool` (the "shared" mode) and, as the
//! connection does without a pool, allocated and freed for every message.
//!
//! Throughput is of the uncompressed bytes in both directions. The streams live across
//! iterations as a connection's do: each batch is larger than the 32 KiB window (or a
//! single message), so a compressor cannot refer back to the previous iteration's copy,
//! and the batch compressed once from a fresh stream inflates again on a stream that has
//! seen it, since its back-references never reach before its own start. Before anything
//! is timed, both compressors' output is inflated back to the input by both inflaters
//! (batch after batch on the same stream, as the timed loop does), and the compressed
//! sizes are printed. (They are not required to be equal: a sync flush whose output
//! exactly fills the buffer is completed by a second call, which adds an empty stored block,
//! five bytes; so the bytes depend on how each side sizes its buffer.)

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::hint::black_box;
use wsengine::proto::extensions::deflate::{Compressor, Inflater, TAIL};
use wsengine::proto::extensions::{DeflateConfig, StreamPool};
use wsengine::proto::utf8::Utf8Validator;
use wsengine_benches::{MEASURE, SAMPLES, WARM_UP};

/// The window every case uses: 15, the default and what browsers use.
const WINDOW_BITS: u8 = 15;
/// The inflated-size limit passed to the `Inflater`: `Config::default().max_message_size`.
const MAX: usize = 64 << 20;

/// A deterministic xorshift64 generator for the corpus.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out: Vec<u8> = (0..len.div_ceil(8))
            .flat_map(|_| self.next().to_le_bytes())
            .collect();
        out.truncate(len);
        out
    }
}

const SYMBOLS: &[&str] = &["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC", "DOGE-USD"];
const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "mallory", "oscar",
];
const ROOMS: &[&str] = &["general", "random", "trading", "support", "announcements"];
const WORDS: &[&str] = &[
    "the",
    "market",
    "is",
    "up",
    "down",
    "again",
    "today",
    "buy",
    "sell",
    "order",
    "book",
    "spread",
    "looks",
    "thin",
    "on",
    "this",
    "pair",
    "anyone",
    "seen",
    "the",
    "latest",
    "release",
    "notes",
    "websocket",
    "latency",
    "fine",
    "here",
    "thanks",
    "for",
    "help",
    "will",
    "check",
    "later",
    "price",
    "moved",
    "fast",
    "after",
    "news",
    "lol",
    "ok",
];

/// One market-data update of at least 1 KiB: a depth snapshot with varying prices.
fn market_message(seq: u64, rng: &mut XorShift) -> String {
    let symbol = rng.pick(SYMBOLS);
    let mid = 20_000 + rng.below(50_000);
    let mut s = format!(
        r#"{{"type":"book","seq":{seq},"symbol":"{symbol}","ts":{},"bids":["#,
        1_750_000_000_000 + seq * 137 + rng.below(100)
    );
    // Ten bid levels below the mid price, then ask levels above it until 1000 bytes.
    let mut level = 0;
    while s.len() < 1000 {
        let px = if level < 10 {
            mid - level
        } else {
            mid + level - 9
        };
        if level == 10 {
            s.push_str(r#"],"asks":["#);
        } else if level > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"px":"{px}.{:02}","qty":"{}.{:04}","n":{}}}"#,
            rng.below(100),
            rng.below(20),
            rng.below(10_000),
            1 + rng.below(40)
        ));
        level += 1;
    }
    s.push_str(if level > 10 { "]}" } else { r#"],"asks":[]}"# });
    s
}

/// One chat message of at least 1 KiB: a sender, a room, and a text of random words.
fn chat_message(seq: u64, rng: &mut XorShift) -> String {
    let mut s = format!(
        r#"{{"type":"message","id":"msg-{seq:08}","room":"{}","user":{{"id":{},"name":"{}","status":"online"}},"sent_at":"2025-06-{:02}T{:02}:{:02}:{:02}Z","text":""#,
        rng.pick(ROOMS),
        1000 + rng.below(9000),
        rng.pick(NAMES),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
    );
    while s.len() < 940 {
        s.push_str(rng.pick(WORDS));
        s.push(' ');
    }
    s.push_str(&format!(
        r#"","mentions":["{}"],"reactions":{{"+1":{},"eyes":{}}},"edited":false}}"#,
        rng.pick(NAMES),
        rng.below(10),
        rng.below(5)
    ));
    s
}

/// `count` JSON messages of at least 1 KiB: two market updates to one chat message.
fn json_messages(count: usize, rng: &mut XorShift) -> Vec<Vec<u8>> {
    (0..count as u64)
        .map(|seq| {
            if seq % 3 == 2 {
                chat_message(seq, rng)
            } else {
                market_message(seq, rng)
            }
            .into_bytes()
        })
        .collect()
}

/// One JSON document of at least 64 KiB: an array of order records.
fn json_document(rng: &mut XorShift) -> Vec<u8> {
    let mut s = String::from(r#"{"type":"orders","orders":["#);
    let mut id = 0u64;
    while s.len() < 64 * 1024 - 2 {
        if id > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"id":{},"user":"{}","symbol":"{}","side":"{}","px":"{}.{:02}","qty":"{}.{:04}","status":"{}"}}"#,
            900_000 + id * 7 + rng.below(7),
            rng.pick(NAMES),
            rng.pick(SYMBOLS),
            if rng.below(2) == 0 { "buy" } else { "sell" },
            20_000 + rng.below(50_000),
            rng.below(100),
            rng.below(20),
            rng.below(10_000),
            rng.pick(&["open", "filled", "cancelled", "partial"]),
        ));
        id += 1;
    }
    s.push_str("]}");
    s.into_bytes()
}

/// flate2's compressor as the engine configures it.
fn flate2_compressor(level: u8) -> Compress {
    Compress::new_with_window_bits(Compression::new(u32::from(level)), false, WINDOW_BITS)
}

/// flate2 directly: `input` deflated with a sync flush into `out` (cleared first), tail
/// stripped.
fn flate2_compress(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    loop {
        if out.len() == out.capacity() {
            // More than level 1's worst case (static Huffman codes, 9 bits a byte), so one
            // call completes the flush.
            out.reserve(out.capacity().max(input.len() + input.len() / 8 + 128));
        }
        let before = c.total_in();
        c.compress_vec(input, out, FlushCompress::Sync).unwrap();
        input = &input[(c.total_in() - before) as usize..];
        // A sync flush is complete when it returns with output room left.
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&TAIL));
    out.truncate(out.len() - TAIL.len());
}

/// flate2 directly: a payload inflated into `out` (cleared first), with the tail restored.
fn flate2_inflate(d: &mut Decompress, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for (mut input, flush) in [
        (payload, FlushDecompress::None),
        (&TAIL[..], FlushDecompress::Sync),
    ] {
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(4 * input.len()).max(4096));
            }
            let before = d.total_in();
            d.decompress_vec(input, out, flush).unwrap();
            input = &input[(d.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
    }
}

/// The engine: one message compressed, lending the stream from `pool` if given.
fn ws_compress(c: &mut Compressor, pool: Option<&mut StreamPool>, message: &[u8]) -> Bytes {
    match pool {
        Some(pool) => {
            c.borrow_from(pool);
            let z = c.compress(message);
            c.give_back(pool);
            z
        }
        None => c.compress(message),
    }
    .expect("compressed")
}

/// The engine: one message inflated whole, as a connection does when its frame has
/// arrived, lending the stream from `pool` if given, validating UTF-8 if `utf8`.
fn ws_inflate(
    inf: &mut Inflater,
    pool: Option<&mut StreamPool>,
    utf8: Option<&mut Utf8Validator>,
    payload: &[u8],
) -> Bytes {
    let run = |inf: &mut Inflater, mut utf8: Option<&mut Utf8Validator>| {
        inf.inflate(payload, MAX, utf8.as_deref_mut()).unwrap();
        let out = inf.finish(MAX, utf8.as_deref_mut()).unwrap();
        if let Some(v) = utf8 {
            v.finish().unwrap();
        }
        out
    };
    match pool {
        Some(pool) => {
            inf.borrow_from(pool);
            let out = run(inf, utf8);
            inf.give_back(pool);
            out
        }
        None => run(inf, utf8),
    }
}

struct Case {
    name: &'static str,
    messages: Vec<Vec<u8>>,
    no_context_takeover: bool,
    text: bool,
}

/// Checks, outside the timed loops, that both inflaters give the input back from either
/// compressor's output, each batch after the other on one stream (as the timed loop
/// inflates the same batch again); returns the engine's compressed messages.
fn check(case: &Case, level: u8) -> Vec<Vec<u8>> {
    let nct = case.no_context_takeover;
    let mut ws = Compressor::new(WINDOW_BITS, nct, level, 0);
    let ws_out: Vec<Vec<u8>> = case
        .messages
        .iter()
        .map(|m| ws_compress(&mut ws, None, m).to_vec())
        .collect();
    let mut fl = flate2_compressor(level);
    let fl_out: Vec<Vec<u8>> = case
        .messages
        .iter()
        .map(|m| {
            let mut out = Vec::new();
            flate2_compress(&mut fl, m, &mut out);
            if nct {
                fl.reset();
            }
            out
        })
        .collect();
    let mut inf = Inflater::new(WINDOW_BITS, nct);
    let mut d = Decompress::new_with_window_bits(false, WINDOW_BITS);
    let mut out = Vec::new();
    for z_all in [&ws_out, &fl_out, &ws_out] {
        for (m, z) in case.messages.iter().zip(z_all) {
            let mut v = Utf8Validator::new();
            let utf8 = case.text.then_some(&mut v);
            assert_eq!(
                &ws_inflate(&mut inf, None, utf8, z)[..],
                &m[..],
                "{}",
                case.name
            );
            flate2_inflate(&mut d, z, &mut out);
            assert_eq!(out, *m, "{}", case.name);
            if nct {
                d.reset(false);
            }
        }
    }
    let total = |ms: &[Vec<u8>]| ms.iter().map(Vec::len).sum::<usize>();
    let (raw, ws_len, fl_len) = (total(&case.messages), total(&ws_out), total(&fl_out));
    eprintln!(
        "deflate/{}: {} messages, {raw} B -> wsengine {ws_len} B ({:.1}%), flate2 {fl_len} B",
        case.name,
        case.messages.len(),
        100.0 * ws_len as f64 / raw as f64
    );
    ws_out
}

fn deflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    group
        .warm_up_time(WARM_UP)
        .measurement_time(MEASURE)
        .sample_size(SAMPLES);
    let level = DeflateConfig::default().level;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let json = json_messages(100, &mut rng);
    let cases = [
        Case {
            name: "json 100 x 1 KiB",
            messages: json.clone(),
            no_context_takeover: false,
            text: true,
        },
        Case {
            name: "json 64 KiB",
            messages: vec![json_document(&mut rng)],
            no_context_takeover: false,
            text: true,
        },
        Case {
            name: "random 100 x 1 KiB",
            messages: (0..100).map(|_| rng.bytes(1024)).collect(),
            no_context_takeover: false,
            text: false,
        },
        Case {
            name: "random 64 KiB",
            messages: vec![rng.bytes(64 * 1024)],
            no_context_takeover: false,
            text: false,
        },
        Case {
            name: "json 100 x 1 KiB no context takeover",
            messages: json,
            no_context_takeover: true,
            text: true,
        },
    ];
    for case in &cases {
        let compressed = check(case, level);
        let nct = case.no_context_takeover;
        let bytes = case.messages.iter().map(Vec::len).sum::<usize>();
        group.throughput(Throughput::Bytes(bytes as u64));

        let mut ws = Compressor::new(WINDOW_BITS, nct, level, 0);
        let mut pool = StreamPool::default();
        group.bench_function(BenchmarkId::new("wsengine compress", case.name), |b| {
            b.iter(|| {
                for m in &case.messages {
                    black_box(ws_compress(&mut ws, nct.then_some(&mut pool), black_box(m)));
                }
            })
        });
        if nct {
            let mut ws = Compressor::new(WINDOW_BITS, nct, level, 0);
            group.bench_function(
                BenchmarkId::new("wsengine compress, no pool", case.name),
                |b| {
                    b.iter(|| {
                        for m in &case.messages {
                            black_box(ws_compress(&mut ws, None, black_box(m)));
                        }
                    })
                },
            );
        }
        let mut fl = flate2_compressor(level);
        let mut out = Vec::new();
        group.bench_function(BenchmarkId::new("flate2 compress", case.name), |b| {
            b.iter(|| {
                for m in &case.messages {
                    flate2_compress(&mut fl, black_box(m), &mut out);
                    black_box(&out);
                    if nct {
                        fl.reset();
                    }
                }
            })
        });

        let mut inf = Inflater::new(WINDOW_BITS, nct);
        group.bench_function(BenchmarkId::new("wsengine inflate", case.name), |b| {
            b.iter(|| {
                for z in &compressed {
                    black_box(ws_inflate(
                        &mut inf,
                        nct.then_some(&mut pool),
                        None,
                        black_box(z),
                    ));
                }
            })
        });
        if case.text {
            // What a connection does with a text message: UTF-8 checked as it is inflated.
            let mut inf = Inflater::new(WINDOW_BITS, nct);
            let mut v = Utf8Validator::new();
            group.bench_function(BenchmarkId::new("wsengine inflate+utf8", case.name), |b| {
                b.iter(|| {
                    for z in &compressed {
                        black_box(ws_inflate(
                            &mut inf,
                            nct.then_some(&mut pool),
                            Some(&mut v),
                            black_box(z),
                        ));
                    }
                })
            });
        }
        if nct {
            let mut inf = Inflater::new(WINDOW_BITS, nct);
            group.bench_function(
                BenchmarkId::new("wsengine inflate, no pool", case.name),
                |b| {
                    b.iter(|| {
                        for z in &compressed {
                            black_box(ws_inflate(&mut inf, None, None, black_box(z)));
                        }
                    })
                },
            );
        }
        let mut d = Decompress::new_with_window_bits(false, WINDOW_BITS);
        group.bench_function(BenchmarkId::new("flate2 inflate", case.name), |b| {
            b.iter(|| {
                for z in &compressed {
                    flate2_inflate(&mut d, black_box(z), &mut out);
                    black_box(&out);
                    if nct {
                        d.reset(false);
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, deflate);
criterion_main!(benches);
