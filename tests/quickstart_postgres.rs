//! The quickstart on PostgreSQL (`CHANNELS_BINDING_DATABASE_URL=postgres://…`):
//! the seed's exchanges, writes, pushes and notes behave as on SQLite.
//!
//! PostgreSQL is taken from `CHANNELS_BINDING_TEST_POSTGRES_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`; each test works in a schema of
//! its own. Without PostgreSQL the test fails under CI and says SKIPPED
//! loudly otherwise.

// Test set-up may unwrap: a panic here is a failed test with its location.
#![allow(clippy::unwrap_used)]

mod common;

mod pg_schema;
mod quickstart_server;

use std::net::SocketAddr;

use channels_binding::Settings;
use common::{Client, http};
use serde_json::json;

async fn start(url: &str) -> SocketAddr {
    let settings = Settings::from_sources(None, [("CHANNELS_BINDING_DATABASE_URL", url)]).expect("settings");
    quickstart_server::start_with(&settings).await.0
}

#[tokio::test]
async fn the_quickstart_runs_on_postgres() {
    let Some((admin, name, url)) = pg_schema::schema().await else {
        return;
    };
    let addr = start(&url).await;
    let mut ws = Client::connect(addr).await;

    let reply = ws.call(json!({"event": "auth.User.search", "data": {"page": 2}})).await;
    assert_eq!(reply["data"]["count"], 102);
    assert_eq!(
        reply["data"]["rows"][0],
        json!({"id": 5763, "username": "Admin", "email": "admin@admin.com"})
    );
    let admin_user = ws
        .call(json!({"event": "auth.User.retrieve", "data": {"id": 5763}}))
        .await;
    assert_eq!(
        admin_user["data"]["date_joined"], "2024-01-25T12:00:00.000Z",
        "same instants as on SQLite"
    );
    let reply = ws
        .call(json!({"event": "auth.User.save", "data": {"id": 5763, "username": "Changed Username"}}))
        .await;
    assert_eq!(reply["data"]["success"], true);
    assert_eq!(
        ws.recv().await["data"]["username"],
        "Changed Username",
        "the retrieve push"
    );

    // New rows get fresh ids past the seeded ones.
    let created = http(
        addr,
        "POST",
        "/api/auth.User",
        &[],
        r#"{"username":"pg","email":"pg@example.com"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.json()["id"].as_i64().unwrap() > 5763);
    let duplicate = http(
        addr,
        "POST",
        "/api/auth.User",
        &[],
        r#"{"username":"pg","email":"x@example.com"}"#,
    )
    .await;
    assert_eq!(duplicate.status, 422);
    assert!(duplicate.json()["fields"]["username"].is_array());

    // Sessions and notes (on a socket of its own: the first one follows the feed).
    let mut ws = Client::connect(addr).await;
    let reply = ws
        .call(json!({"event": "auth.login", "data": {"username": "user1", "password": "demo"}}))
        .await;
    assert_eq!(reply["data"]["user"], "1", "{reply}");
    assert_eq!(ws.call(json!({"event": "notes.Note.search"})).await["data"]["count"], 1);

    drop(ws);
    sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
