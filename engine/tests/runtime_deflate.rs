//! permessage-deflate over real sockets: our client and server negotiate it in both memory
//! modes and echo compressed messages; the handshake hook refuses it per connection; a zip
//! bomb from a raw peer ends with 1009 without the server's memory following the bomb, and
//! the other connections never notice.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};
use wsengine::proto::extensions::DeflateConfig;
use wsengine::proto::handshake::Accept;
use wsengine::runtime::{ConnectOptions, ServerHandle, SocketOptions};
use wsengine::{CloseCode, Message};

mod common;

/// These tests measure the process's RSS: they run one at a time, so that none counts
/// another's memory.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
use common::{KEY, read_head, rss_kib, run_client, serve_echo};

fn deflate_options(config: DeflateConfig) -> SocketOptions {
    let mut options = SocketOptions::default();
    options.protocol.deflate = config;
    options
}

fn server(config: DeflateConfig) -> ServerHandle {
    serve_echo(common::one_worker().socket_options(deflate_options(config)))
}

/// Compressible text of exactly `n` bytes.
fn json_of(n: usize) -> String {
    let record = r#"{"symbol":"ABC","bid":101.25,"ask":101.5,"size":300},"#;
    record.repeat(n / record.len() + 1)[..n].to_string()
}

/// Our client with permessage-deflate against `server`: every size echoes, compressible
/// messages take fewer bytes on the wire than their payload, and both ends agree.
fn echo_compressed(server: &ServerHandle, client: DeflateConfig, shared: bool) {
    let url = format!("ws://{}/", server.local_addr());
    run_client(async move {
        let mut options = ConnectOptions::default();
        options.socket = deflate_options(client);
        let (ws, response) = options.connect(&url).await.expect("connects");
        let agreed = ws.deflate().expect("negotiated");
        assert_eq!(response.deflate(), Some(agreed));
        assert_eq!(agreed.server_no_context_takeover, shared);
        assert_eq!(agreed.client_no_context_takeover, shared);
        let mut payload = 0u64;
        for n in [0, 1, 125, 1023, 1024, 4096, 65_536, 1 << 20] {
            let text = Message::text(json_of(n));
            ws.send(text.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), text, "text of {n} bytes");
            let binary = Message::binary(json_of(n).into_bytes());
            ws.send(binary.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), binary, "binary of {n} bytes");
            payload += 2 * n as u64;
        }
        // Incompressible bytes round-trip too (sent as they are, or compressed and larger).
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<u8> = (0..100_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        ws.send(Message::binary(random.clone())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::binary(random));
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        let wire = ws.wire_bytes();
        assert!(
            wire.received < payload / 5 + 120_000,
            "compressed on the wire: {} bytes for {payload} payload bytes",
            wire.received
        );
        assert!(wire.sent < payload / 5 + 120_000, "{wire:?}");
    });
}

#[test]
fn our_client_and_server_echo_compressed_in_both_memory_modes() {
    let _serial = one_at_a_time();
    let shared = server(DeflateConfig::shared());
    echo_compressed(&shared, DeflateConfig::enabled(), true);
    shared.shutdown(Duration::from_secs(1));
    let dedicated = server(DeflateConfig::dedicated());
    echo_compressed(&dedicated, DeflateConfig::enabled(), false);
    dedicated.shutdown(Duration::from_secs(1));
}

#[test]
fn the_hook_refuses_compression_per_connection_and_a_client_need_not_offer() {
    let _serial = one_at_a_time();
    let server = serve_echo(
        common::one_worker()
            .socket_options(deflate_options(DeflateConfig::shared()))
            .on_handshake(|request| {
                if request.uri().contains("plain") {
                    Ok(Accept::new().no_compression())
                } else {
                    Ok(Accept::new())
                }
            }),
    );
    let base = format!("ws://{}", server.local_addr());
    run_client(async move {
        let mut options = ConnectOptions::default();
        options.socket = deflate_options(DeflateConfig::enabled());
        let (refused, _) = options.connect(&format!("{base}/plain")).await.unwrap();
        let (accepted, _) = options.connect(&format!("{base}/")).await.unwrap();
        let (not_offered, _) = ConnectOptions::default()
            .connect(&format!("{base}/"))
            .await
            .unwrap();
        assert!(refused.deflate().is_none());
        assert!(accepted.deflate().is_some());
        assert!(not_offered.deflate().is_none());
        for ws in [&refused, &accepted, &not_offered] {
            let m = Message::text(json_of(10_000));
            ws.send(m.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), m);
        }
        // Without deflate the wire carries the payload as it is.
        refused.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(refused.wire_bytes().received >= 10_000);
    });
    server.shutdown(Duration::from_secs(1));
}

/// A masked client frame with FIN, RSV1 and `opcode`.
fn compressed_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = common::masked_frame(opcode, payload);
    frame[0] |= 0x40;
    frame
}

/// `mib` MiB of zero bytes deflated (raw, sync-flushed, tail stripped), built without
/// holding what it inflates to: after the first MiB the window is all zeros, so every
/// further MiB deflates to the same bytes, which are repeated.
fn zip_bomb(mib: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut z = Compress::new(Compression::best(), false);
    let chunk = |z: &mut Compress| {
        let mut out = Vec::with_capacity(64 * 1024);
        z.compress_vec(&zeros, &mut out, FlushCompress::Sync)
            .unwrap();
        assert_eq!(z.total_in() % (1 << 20), 0, "took the whole MiB");
        out
    };
    let first = chunk(&mut z);
    let _second = chunk(&mut z);
    let steady = chunk(&mut z);
    let mut out = first;
    for _ in 1..mib {
        out.extend_from_slice(&steady);
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

#[test]
fn a_zip_bomb_gets_1009_and_server_memory_stays_under_twice_the_limit() {
    let _serial = one_at_a_time();
    const LIMIT: usize = 4 << 20;
    let mut options = deflate_options(DeflateConfig::dedicated());
    options.protocol.max_message_size = LIMIT;
    let server = serve_echo(common::one_worker().socket_options(options));
    let addr = server.local_addr();
    // 1 GiB of zeros in about a megabyte: 256 times the limit.
    let bomb = zip_bomb(1024);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let frame = compressed_frame(0x2, &bomb);
    drop(bomb);

    // A bystander on the same worker, mid-conversation. Its first 300 echoes come before
    // the measurement: they touch every buffer of both receive rings (256 each, taken in
    // turn) and allocate both sides' streams, which are not the bomb's doing.
    let url = format!("ws://{addr}/");
    let (warm_tx, warm_rx) = std::sync::mpsc::channel();
    let bystander = std::thread::spawn(move || {
        run_client(async move {
            let mut options = ConnectOptions::default();
            options.socket = deflate_options(DeflateConfig::enabled());
            let (ws, _) = options.connect(&url).await.unwrap();
            for i in 0..500 {
                if i == 300 {
                    warm_tx.send(()).unwrap();
                }
                let m = Message::text(json_of(2000 + i));
                ws.send(m.clone()).await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), m);
                if i >= 300 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
        })
    });
    warm_rx.recv().expect("the bystander warmed up");

    let rss_before = rss_kib();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate"),
        "{head}"
    );
    // The server may fail the connection before it has read the whole frame: a write
    // error after that is its close, not a failure.
    let _ = s.write_all(&frame);
    let mut head = [0u8; 2];
    s.read_exact(&mut head).expect("a close frame");
    assert_eq!(head[0], 0x88, "a close frame: {head:?}");
    let mut body = vec![0u8; usize::from(head[1] & 0x7f)];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[..2], &1009u16.to_be_bytes(), "close {body:?}");
    let grown_kib = rss_kib().saturating_sub(rss_before);
    assert!(
        grown_kib * 1024 < 2 * LIMIT,
        "RSS grew by {grown_kib} KiB for a {LIMIT}-byte limit"
    );
    drop(s);
    bystander
        .join()
        .expect("the bystander's echoes all came back");
    server.shutdown(Duration::from_secs(1));
}
