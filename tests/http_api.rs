//! The HTTP side of the quickstart (PROTOCOL.md §4): the frame endpoint,
//! every REST action and error status, parity with the WebSocket, the SSE
//! change feed with Last-Event-ID resuming, and one layer acting on both
//! transports.

mod common;

mod quickstart_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use channels_binding::http::HttpApi;
use channels_binding::ws::WebSocket;
use channels_binding::{Event, EventRouter, Hub, Reply, Shutdown};
use common::{Client, Sse, http, spawn_server};
use serde_json::{Value, json};

use quickstart_server::start;

#[tokio::test]
async fn the_frame_endpoint_answers_reply_frames_with_statuses() {
    let addr = start().await;
    let reply = http(
        addr,
        "POST",
        "/",
        &[],
        r#"{"event":"auth.User.retrieve","data":{"id":5763},"request_id":"r1"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let frame = reply.json();
    assert_eq!(frame["event"], "auth.User.retrieve");
    assert_eq!(frame["request_id"], "r1");
    assert_eq!(frame["data"]["username"], "Admin");

    for (body, status, code) in [
        (r#"{"event":"auth.User.retrieve#999999"}"#, 404, "not_found"),
        (r#"{"event":"auth.User.frobnicate"}"#, 404, "unknown_event"),
        (r#"{"event":"auth.User.search","data":{"page":0}}"#, 422, "validation"),
        (r#"not json"#, 400, "bad_request"),
        (r#"{"event":"auth.User.search","data":[1]}"#, 400, "bad_request"),
        (r#"{"event":"notes.Note.search"}"#, 401, "unauthenticated"),
    ] {
        let reply = http(addr, "POST", "/", &[], body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.json()["error"]["code"], code, "{body}");
    }
    let big = format!(
        r#"{{"event":"auth.User.search","data":{{"query":"{}"}}}}"#,
        "x".repeat(70 * 1024)
    );
    let reply = http(addr, "POST", "/", &[], &big).await;
    assert_eq!(reply.status, 413);
    // Still a reply frame, with no event to echo.
    assert_eq!(reply.json()["error"]["code"], "payload_too_large");
    assert!(reply.json()["event"].is_null());
}

#[tokio::test]
async fn rest_round_trip_of_every_action() {
    let addr = start().await;
    // search with query parameters
    let page = http(
        addr,
        "GET",
        "/api/auth.User?page=2&limit=5&order=-id&is_staff=false",
        &[],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
    let page = page.json();
    assert_eq!(
        (page["page"].clone(), page["limit"].clone(), page["count"].clone()),
        (json!(2), json!(5), json!(101))
    );
    assert_eq!(page["rows"][0]["id"], 96);
    let found = http(addr, "GET", "/api/auth.User?query=admin", &[], "").await.json();
    assert_eq!(found["count"], 1);
    // retrieve
    let admin = http(addr, "GET", "/api/auth.User/5763", &[], "").await;
    assert_eq!((admin.status, admin.json()["username"].clone()), (200, json!("Admin")));
    // create
    let created = http(
        addr,
        "POST",
        "/api/auth.User",
        &[],
        r#"{"username":"rest","email":"rest@example.com"}"#,
    )
    .await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_i64().unwrap();
    // update (partial)
    let path = format!("/api/auth.User/{id}");
    let updated = http(addr, "PATCH", &path, &[], r#"{"email":"new@example.com"}"#).await;
    assert_eq!(
        (updated.status, updated.json()["username"].clone()),
        (200, json!("rest"))
    );
    // save
    let saved = http(addr, "PUT", &path, &[], r#"{"username":"rest2"}"#).await;
    assert_eq!(saved.json(), json!({"success": true, "id": id}));
    // custom action
    let pong = http(addr, "POST", "/api/simple_reflexion/ping", &[], "").await;
    assert_eq!(pong.json()["pong"], true);
    // delete
    let deleted = http(addr, "DELETE", &path, &[], "").await;
    assert_eq!(deleted.json(), json!({"success": true, "id": id}));
    assert_eq!(http(addr, "GET", &path, &[], "").await.status, 404);

    // Error statuses; error bodies are the error object alone.
    for (method, path, body, status, code) in [
        ("GET", "/api/auth.User/999999", "", 404, "not_found"),
        ("GET", "/api/auth.User/abc", "", 422, "validation"),
        ("GET", "/api/auth.User?order=password_hash", "", 422, "validation"),
        (
            "POST",
            "/api/auth.User",
            r#"{"username":"x","email":"x@x.io","is_staff":true}"#,
            422,
            "validation",
        ),
        ("POST", "/api/auth.User", "{not json", 400, "bad_request"),
        (
            "PATCH",
            "/api/auth.User/1",
            r#"{"id":2,"username":"x"}"#,
            422,
            "validation",
        ),
        ("POST", "/api/auth.User/frobnicate", "", 404, "unknown_event"),
        ("GET", "/api/notes.Note", "", 401, "unauthenticated"),
        ("GET", "/nowhere", "", 404, "not_found"),
    ] {
        let reply = http(addr, method, path, &[], body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        assert_eq!(reply.json()["code"], code, "{method} {path}");
    }
    assert_eq!(http(addr, "PATCH", "/api/auth.User", &[], "{}").await.status, 405);
}

#[tokio::test]
async fn http_and_websocket_give_identical_data() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    for (frame, rest) in [
        (json!({"event": "auth.User.retrieve#42"}), "/api/auth.User/42"),
        (
            json!({"event": "auth.User.search", "data": {"page": 3, "order": ["-username"]}}),
            "/api/auth.User?page=3&order=-username",
        ),
        (
            json!({"event": "auth.User.search", "data": {"filters": {"is_staff": true}}}),
            "/api/auth.User?is_staff=true",
        ),
    ] {
        let over_ws = ws.call(frame.clone()).await["data"].clone();
        let over_post = http(addr, "POST", "/", &[], &frame.to_string()).await.json()["data"].clone();
        let over_rest = http(addr, "GET", rest, &[], "").await.json();
        assert_eq!(over_ws, over_post, "{frame}");
        assert_eq!(over_ws, over_rest, "{rest}");
    }
}

#[tokio::test]
async fn sse_streams_the_change_feed_and_resumes_from_last_event_id() {
    let addr = start().await;
    let mut feed = Sse::open(addr, "/api/auth.User/events", &[]).await;

    let created = http(
        addr,
        "POST",
        "/api/auth.User",
        &[],
        r#"{"username":"sse","email":"sse@example.com"}"#,
    )
    .await;
    let id = created.json()["id"].as_i64().unwrap();
    http(
        addr,
        "PATCH",
        &format!("/api/auth.User/{id}"),
        &[],
        r#"{"username":"sse2"}"#,
    )
    .await;
    http(addr, "DELETE", &format!("/api/auth.User/{id}"), &[], "").await;

    let (first_id, event, data) = feed.next_event().await;
    assert_eq!(event, "auth.User.created");
    let push: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(push["data"]["username"], "sse");
    let (_, event, _) = feed.next_event().await;
    assert_eq!(event, format!("auth.User.updated#{id}"));
    let (_, event, data) = feed.next_event().await;
    assert_eq!(event, format!("auth.User.deleted#{id}"));
    assert_eq!(serde_json::from_str::<Value>(&data).unwrap()["data"], json!({"id": id}));

    // Resume after the first event: the update and the delete are replayed.
    let first_id = first_id.expect("events carry ids");
    let mut resumed = Sse::open(addr, "/api/auth.User/events", &[("last-event-id", &first_id)]).await;
    assert_eq!(resumed.next_event().await.1, format!("auth.User.updated#{id}"));
    assert_eq!(resumed.next_event().await.1, format!("auth.User.deleted#{id}"));

    // An id from another epoch cannot be honoured: a resync event comes first.
    let mut stale = Sse::open(addr, "/api/auth.User/events", &[("last-event-id", "old-epoch:3")]).await;
    let (_, event, data) = stale.next_event().await;
    assert_eq!(event, "resync");
    assert!(serde_json::from_str::<Value>(&data).unwrap()["seq"].is_u64());

    // Unknown streams have no feed.
    assert_eq!(http(addr, "GET", "/api/nope.Nothing/events", &[], "").await.status, 404);
}

/// A layer added once acts on WebSocket frames and HTTP requests alike.
#[derive(Clone)]
struct Counting<S> {
    inner: S,
    seen: Arc<AtomicUsize>,
}

impl<S: tower::Service<Event, Response = Reply>> tower::Service<Event> for Counting<S> {
    type Response = Reply;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: Event) -> Self::Future {
        self.seen.fetch_add(1, Ordering::SeqCst);
        self.inner.call(event)
    }
}

#[tokio::test]
async fn one_layer_acts_on_both_transports() {
    let router = EventRouter::new().on("demo.ping", || async { json!({"pong": true}) });
    let seen = Arc::new(AtomicUsize::new(0));
    let events = Counting {
        inner: router.clone(),
        seen: seen.clone(),
    };
    let hub = Hub::new();
    let shutdown = Shutdown::new();
    let service = WebSocket::new(events.clone(), hub.clone())
        .shutdown(shutdown.clone())
        .fallback(HttpApi::new(events, hub, &router));
    let addr = spawn_server(service, shutdown).await;

    let mut ws = Client::connect(addr).await;
    assert_eq!(ws.call(json!({"event": "demo.ping"})).await["data"]["pong"], true);
    assert_eq!(
        http(addr, "POST", "/", &[], r#"{"event":"demo.ping"}"#).await.json()["data"]["pong"],
        true
    );
    assert_eq!(http(addr, "POST", "/api/demo/ping", &[], "").await.json()["pong"], true);
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}
