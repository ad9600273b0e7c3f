//! Clients that go away mid-request, against the real quickstart process:
//! nothing they started is lost or half done.
//!
//! * HTTP/1 searches (200) and WebSocket searches (100 sockets × 20) whose
//!   TCP connections are reset
//!   right after sending leave the in-memory database whole: the data is
//!   still there, `/ready` says 200 and a login still works; so do 300
//!   HTTP/2 streams reset (`RST_STREAM`) right after their request.
//! * `PATCH`es reset 0–6 ms after sending, with a subscriber on the stream:
//!   every row whose committed state changed reached the subscriber, and
//!   its last push equals what the database holds (on a SQLite file, and on
//!   PostgreSQL with the memory channel layer).
//! * A write made outside the API (as psql would) that moves a note to
//!   another owner tells the old owner `notes.Note.deleted#<pk>`.
//!
//! The PostgreSQL tests need PostgreSQL (see `pg_schema`); without it they
//! fail under CI and say SKIPPED loudly otherwise.
#![allow(clippy::unwrap_used)]

mod common;
mod pg_schema;
mod quickstart_process_harness;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use channels_binding::jwt::TokenIssuer;
use common::{Client, http};
use futures_util::SinkExt as _;
use quickstart_process_harness::Quickstart;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Users the `PATCH` flood writes to (ids 1–`USERS`, all seeded).
const USERS: i64 = 60;
/// `PATCH`es in the flood, each reset 0–6 ms after it was sent.
const PATCHES: usize = 300;

/// How long after sending a request its connection is reset: spread so
/// that, whatever the machine's speed, many resets land while the request
/// is being served.
const RESET_DELAYS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_micros(300),
    Duration::from_micros(600),
    Duration::from_millis(1),
    Duration::from_micros(1500),
    Duration::from_millis(2),
    Duration::from_millis(3),
    Duration::from_millis(5),
];

async fn start(env: Vec<(String, String)>) -> Quickstart {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Quickstart::start(&env)
    })
    .await
    .unwrap()
}

fn addr(server: &Quickstart) -> SocketAddr {
    server.addr.parse().unwrap()
}

/// Connects, sends `request` and resets the connection (RST, not FIN)
/// after `after`: the server sees the client vanish mid-request.
async fn send_and_reset(addr: SocketAddr, request: &[u8], after: Duration) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_zero_linger().unwrap();
    tcp.write_all(request).await.unwrap();
    // Sub-millisecond waits, which the timer wheel cannot do: a reset that
    // comes before the server read the request discards it unseen, one
    // that comes later lands mid-query.
    std::thread::sleep(after);
    drop(tcp);
}

/// The database still answers, with its data: a search finds the seeded
/// users, `/ready` says 200, and a login succeeds.
async fn assert_database_whole(addr: SocketAddr) {
    let search = http(addr, "GET", "/api/auth.User?limit=100&query=user", &[], "").await;
    assert_eq!(search.status, 200, "{}", search.body);
    assert!(
        search.json()["count"].as_u64().unwrap_or(0) >= 100,
        "the seeded users are still there: {}",
        search.body
    );
    let ready = http(addr, "GET", "/ready", &[], "").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let mut ws = Client::connect(addr).await;
    let login = ws
        .call(json!({"event": "auth.login", "data": {"username": "user1", "password": "demo"}}))
        .await;
    assert!(login.get("error").is_none(), "a login still works: {login}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_http1_searches_leave_the_in_memory_database_whole() {
    let server = start(Vec::new()).await;
    let addr = addr(&server);
    let request = b"GET /api/auth.User?limit=100&query=user HTTP/1.1\r\nhost: test\r\n\r\n";
    for round in 0..200 {
        send_and_reset(addr, request, RESET_DELAYS[round % RESET_DELAYS.len()]).await;
    }
    assert_database_whole(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_websocket_searches_leave_the_in_memory_database_whole() {
    let server = start(Vec::new()).await;
    let addr = addr(&server);
    let search = json!({"event": "auth.User.search", "data": {"query": "user", "limit": 100}}).to_string();
    for round in 0..100 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_zero_linger().unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp)
            .await
            .unwrap();
        for _ in 0..20 {
            ws.feed(Message::text(search.clone())).await.unwrap();
        }
        ws.flush().await.unwrap();
        // Dropped with linger 0: the socket is reset with its searches in flight.
        std::thread::sleep(RESET_DELAYS[round % RESET_DELAYS.len()]);
        drop(ws);
    }
    assert_database_whole(addr).await;
}

/// An HTTP/2 frame: length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A `GET` request's HEADERS frame, HPACK-encoded by hand (static-table
/// names, literal values without Huffman coding, nothing indexed).
fn h2_get(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    for (name_index, value) in [(0x04u8, path), (0x01, "test")] {
        // :path, :authority
        block.push(name_index);
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    }
    const END_STREAM_AND_HEADERS: u8 = 0x1 | 0x4;
    h2_frame(0x1, END_STREAM_AND_HEADERS, stream, &block)
}

/// An HTTP/2 connection with prior knowledge (h2c): the preface and empty
/// SETTINGS, then the server's SETTINGS (its first frame) acknowledged.
/// Whatever the server sends next is read and ignored by the returned task.
async fn h2_connect(addr: SocketAddr) -> (tokio::io::WriteHalf<TcpStream>, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncReadExt as _;

    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_zero_linger().unwrap();
    let (mut read, mut write) = tokio::io::split(tcp);
    write.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    write.write_all(&h2_frame(0x4, 0, 0, &[])).await.unwrap();
    let mut head = [0u8; 9];
    read.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 0x4, "the server speaks HTTP/2 first with SETTINGS");
    let mut settings = vec![0u8; usize::from(head[2]) | usize::from(head[1]) << 8];
    read.read_exact(&mut settings).await.unwrap();
    write.write_all(&h2_frame(0x4, 0x1, 0, &[])).await.unwrap();
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 64 * 1024];
        while read.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    (write, drain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_http2_streams_leave_the_in_memory_database_whole() {
    const CANCEL: [u8; 4] = 0x8u32.to_be_bytes();
    let server = start(Vec::new()).await;
    let addr = addr(&server);
    let (mut write, mut drain) = h2_connect(addr).await;
    let mut stream = 1;
    for i in 0..300 {
        let request = h2_get(stream, "/api/auth.User?limit=100&query=user");
        let mut sent = write.write_all(&request).await.is_ok();
        if sent {
            std::thread::sleep(RESET_DELAYS[i % RESET_DELAYS.len()]);
            sent = write.write_all(&h2_frame(0x3, 0, stream, &CANCEL)).await.is_ok();
        }
        stream += 2;
        if !sent {
            // The server may end a connection that resets many streams
            // (rapid-reset protection): go on with a new one.
            drain.abort();
            (write, drain) = h2_connect(addr).await;
            stream = 1;
        }
    }
    drop(write);
    drain.abort();
    assert_database_whole(addr).await;
}

/// Floods `PATCH /api/auth.User/<id>` with resets while a WebSocket client
/// follows `auth.User`; then checks, for every user whose email the
/// database now holds changed, that the subscriber's last push says the
/// same. Returns (rows changed, rows whose last push is stale).
async fn patch_flood(addr: SocketAddr) -> (usize, usize) {
    let mut subscriber = Client::connect(addr).await;
    let reply = subscriber
        .call(json!({"event": "auth.User.subscribe", "request_id": "s"}))
        .await;
    assert_eq!(reply["data"]["subscribed"], "auth.User", "{reply}");

    let before = emails(addr).await;
    for i in 0..PATCHES {
        let id = i as i64 % USERS + 1;
        let body = format!(r#"{{"email":"flood-{i}@example.com"}}"#);
        let request = format!(
            "PATCH /api/auth.User/{id} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        send_and_reset(addr, request.as_bytes(), Duration::from_micros(i as u64 % 25 * 250)).await;
    }

    // Every push that is coming arrives well within a second of the last.
    let mut last_push: HashMap<i64, String> = HashMap::new();
    loop {
        let frame = match tokio::time::timeout(Duration::from_secs(2), subscriber.recv()).await {
            Ok(frame) => frame,
            Err(_) => break,
        };
        let event = frame["event"].as_str().unwrap_or_default();
        if let Some(id) = event.strip_prefix("auth.User.updated#") {
            let email = frame["data"]["email"].as_str().unwrap_or_default().to_owned();
            last_push.insert(id.parse().unwrap(), email);
        }
        assert!(!event.ends_with(".resync"), "no resync expected: {frame}");
    }

    let after = emails(addr).await;
    let mut changed = 0;
    let mut stale = Vec::new();
    for (id, email) in &after {
        if before.get(id) == Some(email) {
            continue;
        }
        changed += 1;
        if last_push.get(id) != Some(email) {
            stale.push((*id, email.clone(), last_push.get(id).cloned()));
        }
    }
    eprintln!(
        "PATCH flood: {PATCHES} reset requests, {changed} rows changed, {} pushes distinct rows, {} stale",
        last_push.len(),
        stale.len()
    );
    (changed, stale.len())
}

/// The emails of users 1–`USERS`, as the API reads them now.
async fn emails(addr: SocketAddr) -> HashMap<i64, String> {
    let mut emails = HashMap::new();
    for id in 1..=USERS {
        let user = http(addr, "GET", &format!("/api/auth.User/{id}"), &[], "").await;
        assert_eq!(user.status, 200, "{}", user.body);
        emails.insert(id, user.json()["email"].as_str().unwrap().to_owned());
    }
    emails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_patches_on_a_sqlite_file_are_all_pushed() {
    let file = std::env::temp_dir().join(format!(
        "channels-binding-hardening-{}-{}.db",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let url = format!("sqlite://{}", file.display());
    let server = start(vec![("CHANNELS_BINDING_DATABASE_URL".into(), url)]).await;
    let (changed, stale) = patch_flood(addr(&server)).await;
    drop(server);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    assert!(changed > 0, "the flood changed rows");
    assert_eq!(stale, 0, "of {changed} changed rows, {stale} have a stale last push");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_patches_on_postgres_are_all_pushed() {
    let Some((admin, name, url)) = pg_schema::schema().await else {
        return;
    };
    let server = start(vec![("CHANNELS_BINDING_DATABASE_URL".into(), url)]).await;
    let (changed, stale) = patch_flood(addr(&server)).await;
    drop(server);
    drop_schema(&admin, &name).await;
    assert!(changed > 0, "the flood changed rows");
    assert_eq!(stale, 0, "of {changed} changed rows, {stale} have a stale last push");
}

async fn drop_schema(admin: &sqlx::PgPool, name: &str) {
    sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
        .execute(admin)
        .await
        .unwrap();
}

const SECRET: &str = "hardening-test-secret-of-at-least-32-bytes";

fn token(user: &str) -> String {
    TokenIssuer::new(SECRET.as_bytes())
        .unwrap()
        .issue(user, Duration::from_secs(600))
        .unwrap()
}

async fn notes_subscriber(server: &Quickstart, user: &str) -> Client {
    let mut client = Client::connect_url(&format!("ws://{}/?access_token={}", server.addr, token(user))).await;
    let reply = client
        .call(json!({"event": "notes.Note.subscribe", "request_id": "s"}))
        .await;
    assert_eq!(reply["data"]["subscribed"], "notes.Note", "{reply}");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_write_that_moves_a_note_away_tells_its_old_owner_it_is_gone() {
    let Some((admin, schema, url)) = pg_schema::schema().await else {
        return;
    };
    let server = start(vec![
        ("CHANNELS_BINDING_DATABASE_URL".into(), url.clone()),
        ("CHANNELS_BINDING_CHANNEL_LAYER".into(), url),
        ("CHANNELS_BINDING_JWT_SECRET".into(), SECRET.into()),
    ])
    .await;
    let mut old_owner = notes_subscriber(&server, "1").await;
    let mut new_owner = notes_subscriber(&server, "2").await;
    let mut stranger = notes_subscriber(&server, "3").await;

    let (note,): (i64,) = sqlx::query_as(&format!(
        "INSERT INTO {schema}.notes_note (owner_id, title, body, created_at) \
         VALUES (1, 'moving', '', '2026-01-01T00:00:00.000Z') RETURNING id"
    ))
    .fetch_one(&admin)
    .await
    .unwrap();
    let created = old_owner.recv().await;
    assert_eq!(created["event"], "notes.Note.created", "{created}");

    // As psql would: the note changes hands.
    sqlx::query(&format!(
        "UPDATE {schema}.notes_note SET owner_id = 2 WHERE id = {note}"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let gone = old_owner.recv().await;
    assert_eq!(gone["event"], format!("notes.Note.deleted#{note}"), "{gone}");
    assert_eq!(gone["data"], json!({"id": note}), "nothing but the id: {gone}");
    let arrived = new_owner.recv().await;
    assert_eq!(arrived["event"], format!("notes.Note.updated#{note}"), "{arrived}");
    assert_eq!(arrived["data"]["title"], "moving");

    // A later change of the note is the new owner's business only.
    sqlx::query(&format!(
        "UPDATE {schema}.notes_note SET title = 'moved' WHERE id = {note}"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let update = new_owner.recv().await;
    assert_eq!(update["data"]["title"], "moved", "{update}");
    old_owner.expect_silence(Duration::from_millis(300)).await;
    stranger.expect_silence(Duration::from_millis(300)).await;
    drop(server);
    drop_schema(&admin, &schema).await;
}
