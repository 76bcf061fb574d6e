//! Shared inputs for the criterion benchmarks in `benches/`: masked client frames, text
//! samples, a browser-like upgrade request, and the word-at-a-time unmasking loop that
//! tungstenite uses (its function is private, so the algorithm is restated here).

use std::time::Duration;

/// The settings every group uses: 0.3 s warm-up, 1 s measurement, 20 samples.
pub const WARM_UP: Duration = Duration::from_millis(300);
/// See [`WARM_UP`].
pub const MEASURE: Duration = Duration::from_secs(1);
/// See [`WARM_UP`].
pub const SAMPLES: usize = 20;

/// The mask key used by every benchmark.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Unmasking eight bytes at a time with a rotated u64 key, the algorithm of tungstenite's
/// `apply_mask_fast32` (private in that crate).
pub fn unmask_words(buf: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(b) ^ word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// `count` masked client frames with `payload` each, as a browser would send them.
pub fn masked_frames(count: usize, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * (payload.len() + 14));
    for _ in 0..count {
        out.push(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    }
    out
}

/// ASCII text of `len` bytes.
pub fn ascii_text(len: usize) -> String {
    "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(len)
        .collect()
}

/// Mixed Korean and ASCII text of about `len` bytes.
pub fn korean_text(len: usize) -> String {
    let mut s = String::with_capacity(len + 8);
    for word in "안녕하세요 WebSocket 세계 hello 한국어 text "
        .split_inclusive(' ')
        .cycle()
    {
        if s.len() + word.len() > len {
            break;
        }
        s.push_str(word);
    }
    s
}

/// A browser's upgrade request (Chromium's headers).
pub const BROWSER_REQUEST: &[u8] = b"GET /chat?room=42 HTTP/1.1\r\n\
Host: 127.0.0.1:9001\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://127.0.0.1:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=abc123; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// Runs a one-thread tokio accept loop on `addr` for the peer echo servers of
/// `compare.sh`: prints `listening on SCHEME://ADDR`, then serves each connection (with
/// `TCP_NODELAY`) with `serve` as its own task.
pub fn serve_tcp<F, Fut>(addr: &str, scheme: &str, serve: F) -> std::io::Result<()>
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on {scheme}://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream));
        }
    })
}
