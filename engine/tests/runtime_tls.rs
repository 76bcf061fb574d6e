//! `wss://` over real sockets: our TLS server and client, certificates made by a test CA
//! (rcgen), and raw TLS peers (rustls over a blocking socket) for what our client never
//! does: plain HTTP on the TLS port, a TLS handshake that stalls or is abandoned, a TCP
//! end without `close_notify`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use wsengine::proto::handshake::{Accept, ClientHandshakeError, Reject};
use wsengine::runtime::tls::rustls::{self, CertificateError};
use wsengine::runtime::{ClientTls, ConnectOptions, Error, ServerBuilder, ServerHandle, ServerTls};
use wsengine::{CloseCode, Message};

mod common;
use common::{masked_frame, one_worker, open_fds, run_client, serve_echo};

/// A test certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1, chain and key in PEM.
    fn issue(&self, expired: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server_tls(&self) -> ServerTls {
        let (cert, key) = self.issue(false);
        ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()
    }

    fn client_tls(&self) -> ClientTls {
        ClientTls::from_ca_pem(self.pem.as_bytes()).unwrap()
    }

    /// The rustls client configuration trusting this CA, for the raw peers.
    fn rustls_client(&self) -> Arc<rustls::ClientConfig> {
        self.client_tls().config().clone()
    }
}

fn tls_echo(builder: ServerBuilder, tls: ServerTls) -> ServerHandle {
    serve_echo(builder.tls(tls))
}

fn options(tls: ClientTls) -> ConnectOptions {
    let mut options = ConnectOptions::default();
    options.tls = Some(tls);
    options
}

/// The server by address: the certificate names 127.0.0.1 too (and the client then
/// sends no SNI name, as browsers do for addresses).
fn url(addr: SocketAddr) -> String {
    format!("wss://{addr}/echo")
}

fn client<F: std::future::Future<Output = ()>>(test: F) {
    run_client(async {
        tokio::time::timeout(Duration::from_secs(60), test)
            .await
            .expect("test finished in time")
    });
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// A raw TLS client over a blocking socket, its handshake done.
fn raw_tls(addr: SocketAddr, ca: &Ca) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(ca.rustls_client(), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    stream
}

/// Reads an HTTP head from `stream`.
fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn messages_of_every_size_ping_and_close_over_wss() {
    let ca = Ca::new("wsengine test CA");
    let server = tls_echo(one_worker(), ca.server_tls());
    let addr = server.local_addr();
    let tls = ca.client_tls();
    client(async move {
        let (ws, response) = options(tls).connect(&url(addr)).await.unwrap();
        assert_eq!(response.status(), 101);
        for len in [0, 1, 125, 126, 65535, 65536, 16 * 1024 + 1, 1 << 20] {
            let sent = payload(len);
            ws.send_binary(sent.clone()).await.unwrap();
            match ws.recv().await.unwrap() {
                Message::Binary(got) => assert_eq!(got, sent, "{len} bytes"),
                other => panic!("{other:?}"),
            }
        }
        // Many small messages at once: several leave in one record, all come back.
        for i in 0..500 {
            ws.send_text(format!("message {i}")).await.unwrap();
        }
        for i in 0..500 {
            assert_eq!(
                ws.recv().await.unwrap(),
                Message::text(format!("message {i}"))
            );
        }
        ws.ping(bytes::Bytes::from_static(b"are you there"))
            .unwrap();
        ws.send_text("after the ping").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("after the ping"));
        ws.close(CloseCode::from(4321), "done here").await.unwrap();
        match ws.recv().await {
            Err(Error::Closed(frame)) => assert_eq!(frame.code, CloseCode::from(4321)),
            other => panic!("{other:?}"),
        }
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn the_hook_sees_the_sni_name_and_refuses_over_tls() {
    let ca = Ca::new("wsengine test CA");
    let server = serve_echo(one_worker().tls(ca.server_tls()).on_handshake(|request| {
        match request.tls_server_name() {
            Some("localhost") if request.path() == "/echo" => Ok(Accept::new()),
            Some("localhost") => Err(Reject::new(403, "not here")),
            other => Err(Reject::new(421, format!("SNI {other:?}"))),
        }
    }));
    let addr = server.local_addr();
    let tls = ca.client_tls();
    client(async move {
        let mut by_name = options(tls.clone());
        by_name.tls_server_name = Some("localhost".into());
        let (ws, _) = by_name.connect(&url(addr)).await.unwrap();
        ws.send_text("sni").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("sni"));
        // The refusal comes through TLS: a status, not a broken record.
        let refused = by_name.connect(&format!("wss://{addr}/elsewhere")).await;
        match refused {
            Err(Error::ClientHandshake(ClientHandshakeError::Status(403))) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        // By address: no SNI name, and the hook refuses that.
        match options(tls).connect(&url(addr)).await {
            Err(Error::ClientHandshake(ClientHandshakeError::Status(421))) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
    });
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_certificate_the_client_cannot_accept_is_a_typed_error() {
    let ca = Ca::new("wsengine test CA");
    let (cert, key) = ca.issue(true);
    let expired = tls_echo(
        one_worker(),
        ServerTls::from_pem(cert.as_bytes(), key.as_bytes()).unwrap(),
    );
    let good = tls_echo(one_worker(), ca.server_tls());
    let (expired_addr, good_addr) = (expired.local_addr(), good.local_addr());
    let tls = ca.client_tls();
    client(async move {
        let certificate_error = |result: Result<_, Error>| match result {
            Err(Error::Tls(rustls::Error::InvalidCertificate(e))) => e,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("connected"),
        };
        let e = certificate_error(options(tls.clone()).connect(&url(expired_addr)).await);
        assert!(
            matches!(
                e,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
            "{e:?}"
        );
        // Another name than the certificate's.
        let mut other_name = options(tls.clone());
        other_name.tls_server_name = Some("example.org".into());
        let e = certificate_error(other_name.connect(&url(good_addr)).await);
        assert!(
            matches!(
                e,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{e:?}"
        );
        // Not signed by a root the client trusts (the default: Mozilla's roots).
        let e = certificate_error(ConnectOptions::default().connect(&url(good_addr)).await);
        assert!(matches!(e, CertificateError::UnknownIssuer), "{e:?}");
        // The server is unharmed.
        let (ws, _) = options(tls).connect(&url(good_addr)).await.unwrap();
        ws.send_text("still here").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("still here"));
    });
    expired.shutdown(Duration::from_secs(1));
    good.shutdown(Duration::from_secs(1));
}

#[test]
fn plain_http_on_the_tls_port_gets_a_400_and_tls_on_the_plain_port_an_error() {
    let ca = Ca::new("wsengine test CA");
    let tls_server = tls_echo(one_worker(), ca.server_tls());
    let plain_server = serve_echo(one_worker());
    let mut s = TcpStream::connect(tls_server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(common::upgrade_request().as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    assert!(answer.contains("speaks TLS"), "{answer:?}");
    let plain = plain_server.local_addr();
    let tls = ca.client_tls();
    client(async move {
        match options(tls).connect(&url(plain)).await {
            Err(Error::Tls(_)) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
    });
    tls_server.shutdown(Duration::from_secs(1));
    plain_server.shutdown(Duration::from_secs(1));
}

#[test]
fn our_close_notify_follows_the_closing_handshake_and_a_bare_tcp_end_is_1006() {
    let ca = Ca::new("wsengine test CA");
    let (tx, rx) = std::sync::mpsc::channel();
    let server = one_worker()
        .tls(ca.server_tls())
        .serve(move |ws, _| {
            let tx = tx.clone();
            async move {
                loop {
                    match ws.recv().await {
                        Ok(m) => {
                            let _ = ws.send(m).await;
                        }
                        Err(e) => {
                            let _ = tx.send(e.to_string());
                            break;
                        }
                    }
                }
            }
        })
        .unwrap();
    let addr = server.local_addr();
    let upgrade = |s: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>| {
        s.write_all(common::upgrade_request().as_bytes()).unwrap();
        s.flush().unwrap();
        let head = read_head(s);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    };

    // The closing handshake, then the server's close_notify: a clean TLS end (Ok(0)),
    // not an unexpected EOF.
    let mut s = raw_tls(addr, &ca);
    upgrade(&mut s);
    s.write_all(&masked_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    s.flush().unwrap();
    let mut close = [0u8; 4];
    s.read_exact(&mut close).unwrap();
    assert_eq!(close, [0x88, 0x02, 0x03, 0xe8]);
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "clean end after close_notify"
    );
    assert!(
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap()
            .contains("1000")
    );

    // A message, then the TCP connection ends without close_notify: 1006.
    let mut s = raw_tls(addr, &ca);
    upgrade(&mut s);
    s.write_all(&masked_frame(0x1, b"bye")).unwrap();
    s.flush().unwrap();
    let mut echo = [0u8; 5];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"\x81\x03bye");
    s.sock.shutdown(std::net::Shutdown::Both).unwrap();
    let ended = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(ended.contains("1006"), "{ended}");
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn a_replaced_certificate_serves_new_connections_and_open_ones_keep_theirs() {
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let tls = old_ca.server_tls();
    let server = tls_echo(one_worker(), tls.clone());
    let addr = server.local_addr();
    let (old_trust, new_trust) = (old_ca.client_tls(), new_ca.client_tls());
    let (cert, key) = new_ca.issue(false);
    let dir = std::env::temp_dir().join(format!("wsengine-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    client(async move {
        let (open, _) = options(old_trust.clone())
            .connect(&url(addr))
            .await
            .unwrap();
        // A bad file leaves the current certificate in place.
        assert!(matches!(
            tls.reload_pem_files(dir.join("missing.pem"), dir.join("key.pem")),
            Err(Error::TlsConfig(_))
        ));
        options(old_trust.clone())
            .connect(&url(addr))
            .await
            .unwrap();
        tls.reload_pem_files(dir.join("cert.pem"), dir.join("key.pem"))
            .unwrap();
        let (renewed, _) = options(new_trust).connect(&url(addr)).await.unwrap();
        renewed.send_text("new").await.unwrap();
        assert_eq!(renewed.recv().await.unwrap(), Message::text("new"));
        assert!(matches!(
            options(old_trust).connect(&url(addr)).await,
            Err(Error::Tls(rustls::Error::InvalidCertificate(_)))
        ));
        open.send_text("old").await.unwrap();
        assert_eq!(open.recv().await.unwrap(), Message::text("old"));
        let _ = std::fs::remove_dir_all(&dir);
    });
    server.shutdown(Duration::from_secs(1));
}

/// The first flight of a real TLS client (its ClientHello).
fn client_hello(ca: &Ca) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(ca.rustls_client(), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

#[test]
fn stalled_and_abandoned_tls_handshakes_are_closed_and_leak_nothing() {
    let ca = Ca::new("wsengine test CA");
    let server = tls_echo(
        one_worker().handshake_timeout(Duration::from_millis(500)),
        ca.server_tls(),
    );
    let addr = server.local_addr();
    let hello = client_hello(&ca);
    let tls = ca.client_tls();

    // Half a ClientHello, then nothing: closed at the handshake timeout, while another
    // client is served meanwhile.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(&hello[..hello.len() / 2]).unwrap();
    let began = Instant::now();
    client(async move {
        let (ws, _) = options(tls).connect(&url(addr)).await.unwrap();
        ws.send_text("served").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("served"));
    });
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(4),
        "{waited:?}"
    );

    // 1,000 handshakes abandoned half-way (the ClientHello sent, the answer unread):
    // descriptors come back.
    let fds = open_fds();
    let stats = server.stats().clone();
    for i in 0..1000 {
        let mut s = TcpStream::connect(addr).unwrap();
        let cut = if i % 2 == 0 {
            hello.len()
        } else {
            hello.len() / 3
        };
        s.write_all(&hello[..cut]).unwrap();
        if i % 2 == 0 {
            common::reset(s);
        }
    }
    let began = Instant::now();
    loop {
        let accepted = stats.accepted.load(Ordering::SeqCst);
        let done = stats.rejected.load(Ordering::SeqCst) + stats.upgraded.load(Ordering::SeqCst);
        if accepted == done && open_fds() <= fds {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "still open: {stats:?}, {} descriptors (were {fds})",
            open_fds()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.shutdown(Duration::from_secs(1));
}
