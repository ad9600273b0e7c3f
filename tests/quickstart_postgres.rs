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

mod quickstart_server;

use std::io::Write as _;
use std::net::SocketAddr;

use channels_binding::Settings;
use common::{Client, http};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

fn base_url() -> String {
    std::env::var("CHANNELS_BINDING_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema, and the URL that makes it the search path.
async fn schema() -> Option<(sqlx::PgPool, String, String)> {
    let base = base_url();
    let admin = match PgPoolOptions::new().max_connections(1).connect(&base).await {
        Ok(pool) => pool,
        Err(err) if std::env::var_os("CI").is_some() => panic!("PostgreSQL is required in CI ({base}): {err}"),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED: PostgreSQL not reachable at {base} ({err})");
            return None;
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Schemas of runs that died before dropping theirs: gone after an hour.
    let stale: Vec<(String,)> = sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cb_qs_%'")
        .fetch_all(&admin)
        .await
        .unwrap();
    for (old,) in stale {
        let born = old.rsplit('_').next().and_then(|n| n.parse::<u128>().ok()).unwrap_or(0);
        if nanos.saturating_sub(born) > 3_600_000_000_000 {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {old} CASCADE"))
                .execute(&admin)
                .await;
        }
    }
    let name = format!("cb_qs_{}_{nanos}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
    Some((admin, name, url))
}

async fn start(url: &str) -> SocketAddr {
    let settings = Settings::from_sources(None, [("CHANNELS_BINDING_DATABASE_URL", url)]).expect("settings");
    quickstart_server::start_with(&settings).await.0
}

#[tokio::test]
async fn the_quickstart_runs_on_postgres() {
    let Some((admin, name, url)) = schema().await else {
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
