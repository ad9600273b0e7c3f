//! The quickstart's authentication settings and permission rules (DEMO.md),
//! end to end over real sockets with HS256 tokens.

mod common;

mod quickstart_server;

use std::net::SocketAddr;
use std::time::Duration;

use channels_binding::Settings;
use channels_binding::jwt::TokenIssuer;
use common::{Client, Sse, http};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "a-demo-secret-of-at-least-32-bytes!!";

async fn start(extra: &[(&str, &str)]) -> SocketAddr {
    let mut env = vec![("CHANNELS_BINDING_JWT_SECRET", SECRET)];
    env.extend_from_slice(extra);
    let settings = Settings::from_sources(None, env).expect("settings");
    quickstart_server::start_with(&settings).await.0
}

fn token(user: &str) -> String {
    TokenIssuer::new(SECRET.as_bytes())
        .expect("issuer")
        .issue(user, Duration::from_secs(300))
        .expect("token")
}

/// Opens a socket as `user` (None: anonymous), with the token in the query
/// string as a browser would; returns the refusal status otherwise.
async fn open(addr: SocketAddr, user: Option<&str>, headers: &[(&str, &str)]) -> Result<Client, u16> {
    let url = match user {
        Some(user) => format!("ws://{addr}/?access_token={}", token(user)),
        None => format!("ws://{addr}/"),
    };
    let mut request = url.into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_str(value).expect("value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("unexpected error {other}"),
    }
}

async fn as_user(addr: SocketAddr, user: &str) -> Client {
    open(addr, Some(user), &[]).await.expect("authenticated socket")
}

fn code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("ok")
}

#[tokio::test]
async fn tokens_from_query_or_header_and_bad_tokens_are_refused_before_the_upgrade() {
    let addr = start(&[]).await;
    let mut admin = as_user(addr, "5763").await;
    let reply = admin
        .call(json!({"event": "auth.User.update#7", "data": {"username": "by-admin"}}))
        .await;
    assert_eq!(code(&reply), "ok", "{reply}");

    let bearer = format!("Bearer {}", token("1"));
    let mut user1 = open(addr, None, &[("authorization", &bearer)])
        .await
        .expect("header token");
    let reply = user1
        .call(json!({"event": "auth.User.update#1", "data": {"username": "me"}}))
        .await;
    assert_eq!(code(&reply), "ok", "{reply}");

    let forged = format!("ws://{addr}/?access_token={}x", token("5763"));
    let refused = tokio_tungstenite::connect_async(forged).await;
    assert!(matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401));
    let unknown_user = format!("Bearer {}", token("424242"));
    assert_eq!(
        open(addr, None, &[("authorization", &unknown_user)]).await.err(),
        Some(401)
    );
    let other_secret = TokenIssuer::new(b"another-secret-of-at-least-32-bytes!!")
        .unwrap()
        .issue("5763", Duration::from_secs(60))
        .unwrap();
    let header = format!("Bearer {other_secret}");
    assert_eq!(open(addr, None, &[("authorization", &header)]).await.err(), Some(401));
}

#[tokio::test]
async fn anonymous_connections_can_be_refused() {
    let addr = start(&[("CHANNELS_BINDING_ANONYMOUS_CONNECTION_ALLOWED", "false")]).await;
    assert_eq!(open(addr, None, &[]).await.err(), Some(401));
    assert!(open(addr, Some("1"), &[]).await.is_ok());
}

#[tokio::test]
async fn users_update_themselves_staff_anyone_only_staff_create_or_delete() {
    let addr = start(&[]).await;
    let mut user1 = as_user(addr, "1").await;
    let mut admin = as_user(addr, "5763").await;
    let mut anonymous = open(addr, None, &[]).await.expect("anonymous allowed by default");

    assert_eq!(
        code(&anonymous.call(json!({"event": "auth.User.retrieve#1"})).await),
        "ok",
        "anyone reads"
    );
    let reply = anonymous
        .call(json!({"event": "auth.User.update#1", "data": {"username": "x"}}))
        .await;
    assert_eq!(code(&reply), "unauthenticated");
    let reply = user1
        .call(json!({"event": "auth.User.update#2", "data": {"username": "x"}}))
        .await;
    assert_eq!(code(&reply), "forbidden");
    let reply = user1
        .call(json!({"event": "auth.User.save", "data": {"id": 1, "is_staff": true}}))
        .await;
    assert_eq!(code(&reply), "validation", "no promoting oneself");
    let reply = user1
        .call(json!({"event": "auth.User.create", "data": {"username": "n", "email": "n@x.io"}}))
        .await;
    assert_eq!(code(&reply), "forbidden");
    let reply = user1.call(json!({"event": "auth.User.delete#1"})).await;
    assert_eq!(code(&reply), "forbidden");

    let reply = admin
        .call(json!({"event": "auth.User.update#2", "data": {"username": "two"}}))
        .await;
    assert_eq!(code(&reply), "ok");
    let reply = admin
        .call(json!({"event": "auth.User.create", "data": {"username": "n", "email": "n@x.io"}}))
        .await;
    let id = reply["data"]["id"].as_i64().expect("created");
    let reply = admin.call(json!({"event": format!("auth.User.delete#{id}")})).await;
    assert_eq!(code(&reply), "ok");
}

#[tokio::test]
async fn notes_are_private_to_their_owner_and_staff() {
    let addr = start(&[]).await;
    let mut anonymous = open(addr, None, &[]).await.unwrap();
    let mut user1 = as_user(addr, "1").await;
    let mut user2 = as_user(addr, "2").await;
    let mut admin = as_user(addr, "5763").await;

    let reply = anonymous.call(json!({"event": "notes.Note.search"})).await;
    assert_eq!(code(&reply), "unauthenticated");
    let reply = user1.call(json!({"event": "notes.Note.search"})).await;
    assert_eq!(reply["data"]["count"], 1);
    assert_eq!(reply["data"]["rows"][0]["title"], "Welcome");
    let reply = admin.call(json!({"event": "notes.Note.search"})).await;
    assert_eq!(reply["data"]["count"], 2);
    let reply = user2.call(json!({"event": "notes.Note.search"})).await;
    assert_eq!(reply["data"]["count"], 0);

    // Watchers: user2 and Admin follow the feed; user1 too.
    let mut user2_watch = as_user(addr, "2").await;
    let mut admin_watch = as_user(addr, "5763").await;
    let mut user1_watch = as_user(addr, "1").await;
    for watcher in [&mut user2_watch, &mut admin_watch, &mut user1_watch] {
        assert_eq!(
            watcher.call(json!({"event": "notes.Note.subscribe"})).await["data"]["subscribed"],
            "notes.Note"
        );
    }

    // owner_id is the caller's, never the client's.
    let reply = user1
        .call(json!({"event": "notes.Note.create", "data": {"title": "t", "owner_id": 2}}))
        .await;
    assert_eq!(code(&reply), "validation");
    let reply = user1
        .call(json!({"event": "notes.Note.create", "data": {"title": "private", "body": "b"}}))
        .await;
    assert_eq!(reply["data"]["owner_id"], 1);
    let id = reply["data"]["id"].as_i64().expect("created note");
    let reply = user2.call(json!({"event": format!("notes.Note.retrieve#{id}")})).await;
    assert_eq!(code(&reply), "not_found");
    let reply = user2
        .call(json!({"event": format!("notes.Note.update#{id}"), "data": {"title": "mine now"}}))
        .await;
    assert_eq!(code(&reply), "not_found");
    user1
        .call(json!({"event": format!("notes.Note.update#{id}"), "data": {"title": "edited"}}))
        .await;
    user1.call(json!({"event": format!("notes.Note.delete#{id}")})).await;

    for watcher in [&mut admin_watch, &mut user1_watch] {
        let events: Vec<Value> = vec![watcher.recv().await, watcher.recv().await, watcher.recv().await];
        let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "notes.Note.created".to_owned(),
                format!("notes.Note.updated#{id}"),
                format!("notes.Note.deleted#{id}")
            ]
        );
    }
    // user2 never hears of user1's note: not the create, the update or the delete.
    user2_watch.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn origins_are_checked_exactly() {
    let addr = start(&[("CHANNELS_BINDING_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    assert!(
        open(addr, Some("1"), &[("origin", "https://app.example.com")])
            .await
            .is_ok()
    );
    assert_eq!(
        open(addr, Some("1"), &[("origin", "https://app.example.com.evil.com")])
            .await
            .err(),
        Some(403)
    );
}

#[tokio::test]
async fn rate_limited_events_get_retry_after_and_the_socket_stays_open() {
    let addr = start(&[
        ("CHANNELS_BINDING_RATE_LIMIT_PER_SECOND", "1"),
        ("CHANNELS_BINDING_RATE_LIMIT_BURST", "3"),
    ])
    .await;
    let mut user1 = as_user(addr, "1").await;
    let mut limited = None;
    for n in 0..6 {
        let reply = user1
            .call(json!({"event": "simple_reflexion.ping", "request_id": n}))
            .await;
        assert_eq!(reply["request_id"], n, "every frame is answered");
        if code(&reply) == "rate_limited" {
            limited = Some(reply);
        }
    }
    let limited = limited.expect("the burst of 3 is exceeded within six immediate pings");
    assert!(limited["error"]["retry_after_ms"].as_u64().unwrap() > 0);
    // Another user has a budget of their own.
    let mut user2 = as_user(addr, "2").await;
    assert_eq!(code(&user2.call(json!({"event": "simple_reflexion.ping"})).await), "ok");
}

#[tokio::test]
async fn sse_feeds_go_through_the_same_rules() {
    let addr = start(&[]).await;
    // Anonymous followers of notes are refused like any anonymous notes event.
    let reply = http(addr, "GET", "/api/notes.Note/events", &[], "").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["code"], "unauthenticated");

    let (bearer1, bearer2) = (format!("Bearer {}", token("1")), format!("Bearer {}", token("2")));
    let mut owner = Sse::open(addr, "/api/notes.Note/events", &[("authorization", &bearer1)]).await;
    let mut other = Sse::open(addr, "/api/notes.Note/events", &[("authorization", &bearer2)]).await;
    let created = http(
        addr,
        "POST",
        "/api/notes.Note",
        &[("authorization", &bearer1)],
        r#"{"title":"mine"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Then a note of user2, so user2's stream has something to show first.
    let theirs = http(
        addr,
        "POST",
        "/api/notes.Note",
        &[("authorization", &bearer2)],
        r#"{"title":"theirs"}"#,
    )
    .await;
    assert_eq!(theirs.status, 201);

    let (_, event, data) = owner.next_event().await;
    assert_eq!(event, "notes.Note.created");
    assert_eq!(serde_json::from_str::<Value>(&data).unwrap()["data"]["title"], "mine");
    // user2's first event is their own note: user1's never reached them.
    let (_, event, data) = other.next_event().await;
    assert_eq!(event, "notes.Note.created");
    assert_eq!(serde_json::from_str::<Value>(&data).unwrap()["data"]["title"], "theirs");
}
