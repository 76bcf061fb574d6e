//! A hostile client for memory tests (`scripts/memory_attack.sh`): opens N connections to
//! a WebSocket server and, on each, starts a binary frame that claims CLAIM bytes, sends
//! SENT bytes of it (or, with `fragments`, a message of one-byte fragments that never
//! ends; with `drip`, one byte per second; with `flood`, SENT bytes of complete 1 KiB
//! messages whose echoes it never reads; with `publish`, the same but reading everything
//! it is sent: against a broadcast server, a publisher; with `listen`, nothing: against
//! a broadcast server, subscribers that never read), then holds the connection open
//! without reading for HOLD seconds. Prints, at the end, how many connections the server closed
//! with which close code and how many it left open.
//!
//! ```sh
//! cargo run --release -p wsengine --example hostile_frames -- ws://127.0.0.1:9001/ 300 62914560 52428800 30 [frame|fragments|drip|flood|publish|listen]
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn handshake(addr: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&head).into_owned(),
        ));
    }
    Ok(s)
}

/// A masked frame header with a zero key (the payload goes as it is).
fn header(first: u8, len: u64) -> Vec<u8> {
    let mut h = vec![first];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xFFFF => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// What the server did with the connection by the end: its close code, or "open". Data
/// frames before it (echoes, published messages) are skipped.
fn outcome(s: &mut TcpStream, until: Instant) -> String {
    let left = until.saturating_duration_since(Instant::now());
    let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(10))));
    let mut skip = vec![0u8; 64 * 1024];
    loop {
        let mut head = [0u8; 2];
        let read = s.read_exact(&mut head).and_then(|()| {
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    s.read_exact(&mut b)?;
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    s.read_exact(&mut b)?;
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = Vec::new();
            let mut left = len;
            while left > 0 {
                let n = left.min(skip.len() as u64) as usize;
                s.read_exact(&mut skip[..n])?;
                if head[0] & 0x0f == 0x8 && payload.len() < 2 {
                    payload.extend_from_slice(&skip[..n.min(2)]);
                }
                left -= n as u64;
            }
            Ok(payload)
        });
        match read {
            Ok(payload) if head[0] & 0x0f == 0x8 => {
                return match payload[..] {
                    [a, b, ..] => format!("closed {}", u16::from_be_bytes([a, b])),
                    _ => "closed (no code)".into(),
                };
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return "open".into();
            }
            Err(_) => return "dropped".into(),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!(
            "usage: hostile_frames URL CONNECTIONS CLAIM SENT HOLD_SECS [frame|fragments|drip|flood|publish|listen]"
        );
        std::process::exit(2);
    }
    let addr = args[1]
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_string();
    let n: usize = args[2].parse().expect("CONNECTIONS");
    let claim: u64 = args[3].parse().expect("CLAIM");
    let sent: usize = args[4].parse().expect("SENT");
    let hold = Duration::from_secs_f64(args[5].parse().expect("HOLD_SECS"));
    let mode = args.get(6).map_or("frame", String::as_str).to_string();
    let until = Instant::now() + hold;
    let payload = Arc::new(vec![0x5au8; sent.min(1 << 20)]);
    let outcomes = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (addr, payload, outcomes, mode) = (
                addr.clone(),
                payload.clone(),
                outcomes.clone(),
                mode.clone(),
            );
            let done = Arc::new(AtomicBool::new(false));
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let what = match handshake(&addr) {
                        Err(_) => "handshake failed".to_string(),
                        Ok(mut s) => {
                            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                            match mode.as_str() {
                                "fragments" => {
                                    let mut first = header(0x02, 1);
                                    first.push(b'x');
                                    let _ = s.write_all(&first);
                                    let mut one = header(0x00, 1);
                                    one.push(b'x');
                                    let mut frames = Vec::with_capacity(1 << 20);
                                    while frames.len() < (1 << 20) {
                                        frames.extend_from_slice(&one);
                                    }
                                    let mut total = 0;
                                    while total < sent && Instant::now() < until {
                                        if s.write_all(&frames).is_err() {
                                            break;
                                        }
                                        total += frames.len() / one.len();
                                    }
                                }
                                "flood" | "publish" => {
                                    let reader = (mode == "publish").then(|| {
                                        let mut r = s.try_clone().expect("a second handle");
                                        let done = done.clone();
                                        std::thread::spawn(move || {
                                            let end = outcome(&mut r, until + hold);
                                            if done.load(Ordering::Relaxed) && end == "dropped" {
                                                "open".to_string()
                                            } else {
                                                end
                                            }
                                        })
                                    });
                                    // Complete 1 KiB messages as fast as the server takes
                                    // them, its echoes never read.
                                    let mut frame = header(0x82, 1024);
                                    frame.extend_from_slice(&[0x5a; 1024]);
                                    let frames: Vec<u8> = frame.repeat(64);
                                    // Where the next write starts: a write that timed out
                                    // may have sent part of the block, and the stream goes
                                    // on from there (starting again would cut a frame).
                                    let (mut total, mut at) = (0, 0);
                                    while total < sent && Instant::now() < until {
                                        match s.write(&frames[at..]) {
                                            Ok(n) => {
                                                total += n;
                                                at = (at + n) % frames.len();
                                            }
                                            Err(e)
                                                if matches!(
                                                    e.kind(),
                                                    std::io::ErrorKind::WouldBlock
                                                        | std::io::ErrorKind::TimedOut
                                                        | std::io::ErrorKind::Interrupted
                                                ) => {}
                                            Err(_) => break,
                                        }
                                    }
                                    if let Some(reader) = reader {
                                        done.store(true, Ordering::Relaxed);
                                        let _ = s.shutdown(std::net::Shutdown::Read);
                                        let end = reader
                                            .join()
                                            .unwrap_or_else(|_| "reader panicked".into());
                                        *outcomes.lock().unwrap().entry(end).or_insert(0) += 1;
                                        return;
                                    }
                                }
                                "listen" => {
                                    // A subscriber that never reads, until the end.
                                    std::thread::sleep(
                                        until.saturating_duration_since(Instant::now()),
                                    );
                                }
                                "drip" => {
                                    let _ = s.write_all(&header(0x82, claim));
                                    while Instant::now() + Duration::from_secs(1) < until {
                                        if s.write_all(b"x").is_err() {
                                            break;
                                        }
                                        std::thread::sleep(Duration::from_secs(1));
                                    }
                                }
                                _ => {
                                    let _ = s.write_all(&header(0x82, claim));
                                    let mut total = 0;
                                    while total < sent && Instant::now() < until {
                                        let n = payload.len().min(sent - total);
                                        match s.write_all(&payload[..n]) {
                                            Ok(()) => {}
                                            // Not read from (paused): keep trying until the end.
                                            Err(e)
                                                if matches!(
                                                    e.kind(),
                                                    std::io::ErrorKind::WouldBlock
                                                        | std::io::ErrorKind::TimedOut
                                                ) =>
                                            {
                                                continue;
                                            }
                                            Err(_) => break,
                                        }
                                        total += n;
                                    }
                                }
                            }
                            outcome(&mut s, until)
                        }
                    };
                    *outcomes.lock().unwrap().entry(what).or_insert(0) += 1;
                })
                .expect("a thread per connection")
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    println!("hostile_frames: {:?}", outcomes.lock().unwrap());
}
