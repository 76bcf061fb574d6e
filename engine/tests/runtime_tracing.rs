//! The `tracing` feature: each connection's span (`websocket`: peer, role, path,
//! subprotocol, then close_code and end_cause) as a subscriber sees it, over sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use wsengine::proto::handshake::Accept;
use wsengine::runtime::{ConnectOptions, WebSocket};
use wsengine::{CloseCode, Message};

mod common;

/// Every `websocket` span's fields, by id, as the subscriber recorded them, and the
/// messages of the events inside them.
#[derive(Default)]
struct Spans {
    fields: Mutex<HashMap<u64, HashMap<String, String>>>,
    events: Mutex<Vec<(u64, String)>>,
    next: AtomicU64,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").trim_matches('"').to_string(),
        );
    }
}

struct Recorder(Arc<Spans>);

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::SeqCst) + 1;
        if span.metadata().name() == "websocket" {
            let mut fields = HashMap::new();
            span.record(&mut Fields(&mut fields));
            self.0.fields.lock().unwrap().insert(id, fields);
        }
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(fields) = self.0.fields.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        if let (Some(parent), Some(message)) = (event.parent(), fields.get("message")) {
            self.0
                .events
                .lock()
                .unwrap()
                .push((parent.into_u64(), message.clone()));
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[test]
fn each_connection_has_a_span_that_ends_with_its_close_code_and_cause() {
    let spans = Arc::new(Spans::default());
    tracing::subscriber::set_global_default(Recorder(spans.clone())).unwrap();
    let server = common::one_worker()
        .on_handshake(|_| Ok(Accept::new().protocol("chat")))
        .serve(|ws: WebSocket, _req| async move {
            while let Ok(m) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let url = format!("ws://{}/chat?room=1", server.local_addr());
    common::run_client(async move {
        let mut options = ConnectOptions::default();
        options.protocols = vec!["chat".into()];
        let (ws, _) = options.connect(url.as_str()).await.unwrap();
        ws.send_text("traced").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("traced"));
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    });
    // The server's side ends when it has our FIN.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ended = |role: &str| {
        spans
            .fields
            .lock()
            .unwrap()
            .values()
            .find(|f| {
                f.get("role").map(String::as_str) == Some(role) && f.contains_key("close_code")
            })
            .cloned()
    };
    while (ended("Server").is_none() || ended("Client").is_none())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    for role in ["Server", "Client"] {
        let fields = ended(role).unwrap_or_else(|| panic!("no ended {role} span"));
        assert_eq!(fields["close_code"], "1000", "{role}: {fields:?}");
        assert_eq!(
            fields["end_cause"], "closing_handshake",
            "{role}: {fields:?}"
        );
        assert_eq!(fields["path"], "/chat", "{role}: {fields:?}");
        assert_eq!(fields["subprotocol"], "chat", "{role}: {fields:?}");
        assert!(
            fields["peer"].starts_with("127.0.0.1:"),
            "{role}: {fields:?}"
        );
    }
    let events = spans.events.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|(_, m)| m == "websocket connection ended")
            .count(),
        2
    );
    server.shutdown(Duration::from_secs(1));
}
