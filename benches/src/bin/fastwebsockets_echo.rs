//! A fastwebsockets echo server on one thread, for `benches/compare.sh`. The upgrade
//! request is answered with wsengine's handshake code (fastwebsockets' own server
//! handshake needs hyper); frames are then all fastwebsockets'.
//! Usage: fastwebsockets_echo ADDR — prints `listening on ws://ADDR`.

use bytes::BytesMut;
use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsengine::proto::handshake::{Accept, HandshakeLimits, ServerHandshake};

async fn serve(mut stream: TcpStream) -> Option<()> {
    let mut parser = ServerHandshake::new(HandshakeLimits::default());
    let mut buf = BytesMut::with_capacity(1024);
    let request = loop {
        if stream.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
        if let Some(request) = parser.parse(&mut buf).ok()? {
            break request;
        }
    };
    stream
        .write_all(&request.accept_response(&Accept::new()).ok()?)
        .await
        .ok()?;
    let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Server));
    loop {
        let frame = ws.read_frame().await.ok()?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await.ok()?,
            OpCode::Close => return Some(()),
            _ => {}
        }
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    wsengine_benches::serve_tcp(&addr, "ws", |stream| async move {
        let _ = serve(stream).await;
    })
}
