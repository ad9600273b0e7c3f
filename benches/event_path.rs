//! The per-event path, from inbound bytes to outbound bytes, without sockets.
//!
//! `cargo bench --bench event_path`
//!
//! One group, `event_path/ping`, holds three functions measured side by side
//! on the same input frame, so the ratios between them are visible in one run:
//!
//! * `serde_roundtrip` (the baseline): `serde_json::from_slice::<Value>` of the
//!   frame and `serde_json::to_vec` of the result. This is the least any JSON
//!   event server must do per message.
//! * `serde_reply`: the baseline plus building and serializing the same reply
//!   object a hand-written ping server sends (`{"event", "data": {"pong", "time",
//!   "message"}}`): what the `baseline-echo` server of the load generator does.
//! * `channels_binding`: `protocol::parse_frame` → `Event::from_frame` →
//!   `EventRouter` (a `Service<Event>`) → a trivial async handler returning
//!   `Json<Pong>` → `Reply::encode`. This is exactly what the WebSocket
//!   transport runs per text frame, minus the socket I/O.
//!
//! The async functions run on a current-thread tokio runtime: criterion's
//! `to_async` enters the runtime once per sample, so the per-iteration cost is
//! the future itself, not the runtime.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use channels_binding::protocol::parse_frame;
use channels_binding::{Event, EventRouter, Hub, Json};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tower::{Service, ServiceExt};

/// What a client sends: the seed's ping, with a request id as real clients send.
const FRAME: &[u8] = br#"{"event":"simple_reflexion.ping","data":{},"request_id":17}"#;

#[derive(serde::Serialize)]
struct Pong {
    pong: bool,
    time: u64,
    message: &'static str,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The handler a user writes for `simple_reflexion.ping` (DEMO.md).
async fn ping() -> Json<Pong> {
    Json(Pong {
        pong: true,
        time: unix_secs(),
        message: "Hi",
    })
}

fn event_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    let router = EventRouter::new().on("simple_reflexion.ping", ping);
    let hub = Hub::new();

    // Check once, outside the measurement, that our path answers what the
    // baseline answers: a bench of a path that errors would be meaningless.
    let sample = runtime.block_on(one_event(router.clone(), &hub));
    let sample: Value = serde_json::from_slice(&sample).expect("our reply is JSON");
    assert_eq!(sample["data"]["pong"], true, "unexpected reply {sample}");
    assert_eq!(sample["request_id"], 17, "unexpected reply {sample}");

    let mut group = c.benchmark_group("event_path/ping");
    group.throughput(Throughput::Elements(1));

    group.bench_function("serde_roundtrip", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(FRAME)).expect("valid JSON");
            black_box(serde_json::to_vec(&value).expect("a Value serializes"))
        });
    });

    group.bench_function("serde_reply", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(FRAME)).expect("valid JSON");
            let reply = json!({
                "event": value["event"],
                "data": {"pong": true, "time": unix_secs(), "message": "Hi"},
                "request_id": value["request_id"],
            });
            black_box(serde_json::to_vec(&reply).expect("a Value serializes"))
        });
    });

    group.bench_function("channels_binding", |b| {
        b.to_async(&runtime).iter(|| one_event(router.clone(), &hub));
    });

    group.finish();
}

/// One event through the whole stack, as the WebSocket transport runs it.
async fn one_event(mut router: EventRouter, hub: &Hub) -> bytes::Bytes {
    let frame = match parse_frame(black_box(FRAME)) {
        Ok(frame) => frame,
        Err(err) => return err.encode(),
    };
    let event = Event::from_frame(frame, hub.clone());
    // The transport keeps the name and request id to echo them in the reply.
    let name = event.name().as_shared().clone();
    let request_id = event.request_id().cloned();
    let reply = match router.ready().await {
        Ok(service) => service.call(event).await,
        Err(never) => match never {},
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(never) => match never {},
    };
    black_box(reply.encode(Some(&name), request_id.as_ref()))
}

criterion_group!(benches, event_path);
criterion_main!(benches);
