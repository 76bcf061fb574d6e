//! A chat server with rooms and direct messages, on wsengine's pub/sub: each room is a
//! topic, and each user's direct-message address is a `Sender` kept in shared state, so
//! a message reaches its room's members and a direct message its user on whichever
//! worker they are.
//!
//! ```sh
//! cargo run --release -p wsengine --example chat -- 127.0.0.1:9100 127.0.0.1:8080
//! ```
//!
//! The first address is the WebSocket server, the second a small HTTP server for the page
//! (open `http://127.0.0.1:8080/` in two browser windows). It prints
//! `listening on ws://ADDR` and `page on http://ADDR` when ready.
//!
//! The protocol is one text message per command, answered or broadcast as text:
//!
//! | client sends | server sends |
//! |---|---|
//! | `nick NAME` (first) | `welcome NAME`, or `error nick taken` |
//! | `join ROOM` | `joined ROOM N` (N members now) to it; `presence ROOM NAME joined` to the others |
//! | `leave ROOM` | `left ROOM`; `presence ROOM NAME left` to the others |
//! | `say ROOM TEXT` | `msg ROOM NAME TEXT` to every member (the sender too) |
//! | `dm NAME TEXT` | `dm FROM TEXT` to that user; `error no such user NAME` otherwise |
//!
//! `scripts/test.sh` drives it with two headless Chromium windows
//! (`tests/interop/chat_test.py`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wsengine::Message;
use wsengine::runtime::{Publisher, Sender, Server, TrySendError, WebSocket};

/// Users by name: where their direct messages go, from any worker.
type Users = Arc<Mutex<HashMap<String, Sender>>>;

const PAGE: &str = include_str!("chat_page.html");

fn room_topic(room: &str) -> String {
    format!("room:{room}")
}

/// One connection: its nick first, then commands until it closes.
async fn session(ws: WebSocket, users: Users, publisher: Publisher) {
    let Some(nick) = register(&ws, &users).await else {
        return;
    };
    while let Ok(message) = ws.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        let (command, rest) = text.as_str().split_once(' ').unwrap_or((text.as_str(), ""));
        let reply = match command {
            "join" if !rest.is_empty() => {
                let topic = room_topic(rest);
                if ws.subscribe(&topic).unwrap_or(false) {
                    let presence = format!("presence {rest} {nick} joined");
                    let _ = ws.publish_to_others(&topic, &Message::text(presence));
                }
                Some(format!("joined {rest} {}", publisher.subscribers(&topic)))
            }
            "leave" if !rest.is_empty() => {
                let topic = room_topic(rest);
                if ws.unsubscribe(&topic) {
                    let presence = format!("presence {rest} {nick} left");
                    let _ = ws.publish(&topic, &Message::text(presence));
                }
                Some(format!("left {rest}"))
            }
            "say" => match rest.split_once(' ') {
                Some((room, said)) => {
                    let line = Message::text(format!("msg {room} {nick} {said}"));
                    let _ = ws.publish(room_topic(room), &line);
                    None
                }
                None => Some("error say ROOM TEXT".to_string()),
            },
            "dm" => match rest.split_once(' ') {
                Some((to, said)) => {
                    let sender = users.lock().unwrap().get(to).cloned();
                    match sender {
                        Some(sender) => {
                            match sender.try_send(Message::text(format!("dm {nick} {said}"))) {
                                Ok(()) => None,
                                Err(TrySendError::Full(_)) => Some(format!("error {to} is busy")),
                                Err(TrySendError::Closed(_)) => {
                                    Some(format!("error no such user {to}"))
                                }
                            }
                        }
                        None => Some(format!("error no such user {to}")),
                    }
                }
                None => Some("error dm NAME TEXT".to_string()),
            },
            _ => Some(format!("error unknown command {command}")),
        };
        if let Some(reply) = reply
            && ws.send_text(reply).await.is_err()
        {
            break;
        }
    }
    // Gone: its rooms forget it by themselves; its name is free again.
    let mut users = users.lock().unwrap();
    if users.get(&nick).is_some_and(Sender::is_closed) {
        users.remove(&nick);
    }
}

/// Waits for `nick NAME` and takes the name if it is free.
async fn register(ws: &WebSocket, users: &Users) -> Option<String> {
    loop {
        let Message::Text(text) = ws.recv().await.ok()? else {
            continue;
        };
        let Some(nick) = text.as_str().strip_prefix("nick ") else {
            ws.send_text("error nick NAME first").await.ok()?;
            continue;
        };
        let nick = nick.trim().to_string();
        if nick.is_empty() || nick.contains(' ') {
            ws.send_text("error nick NAME: one word").await.ok()?;
            continue;
        }
        let taken = {
            let mut users = users.lock().unwrap();
            match users.get(&nick) {
                Some(sender) if !sender.is_closed() => true,
                _ => {
                    users.insert(nick.clone(), ws.sender().ok()?);
                    false
                }
            }
        };
        if taken {
            ws.send_text("error nick taken").await.ok()?;
            continue;
        }
        ws.send_text(format!("welcome {nick}")).await.ok()?;
        return Some(nick);
    }
}

/// The page, for any GET (a small blocking server on its own thread).
fn serve_page(listener: TcpListener, ws_addr: SocketAddr) {
    let page = PAGE.replace("__WS_PORT__", &ws_addr.port().to_string());
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = stream.write_all(response.as_bytes());
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let ws_addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:9100".into())
        .parse()
        .expect("a WebSocket address, e.g. 127.0.0.1:9100");
    let page_addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8080".into())
        .parse()
        .expect("a page address, e.g. 127.0.0.1:8080");
    let users: Users = Arc::default();
    let builder = Server::builder(ws_addr);
    let publisher = builder.publisher();
    let server = builder
        .serve(move |ws, _request| session(ws, users.clone(), publisher.clone()))
        .expect("the chat server starts");
    let page = TcpListener::bind(page_addr).expect("the page's address");
    let page_addr = page.local_addr().expect("an address");
    let ws_addr = server.local_addr();
    std::thread::spawn(move || serve_page(page, ws_addr));
    println!("listening on ws://{ws_addr}");
    println!("page on http://{page_addr}");
    server.join();
}
