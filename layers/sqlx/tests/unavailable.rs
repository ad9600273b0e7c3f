//! A database that goes away answers `unavailable`, and no error reply ever
//! carries SQL, table names or driver messages.

// Test set-up may unwrap: a panic here is a failed test with its location.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use channels_binding_core::hub::Hub;
use channels_binding_core::protocol::EventName;
use channels_binding_core::{Event, EventRouter, Reply};
use channels_binding_sqlx::{Field, ModelBinding, ModelSchema};
use serde_json::{Value, json};
use sqlx::sqlite::SqlitePoolOptions;
use tower::ServiceExt;

async fn router() -> (EventRouter, sqlx::SqlitePool) {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::query("CREATE TABLE secret_things (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let schema = ModelSchema::builder("secret_things")
        .field(Field::integer("id").read().order())
        .field(Field::text("name").read().write().search().required())
        .build()
        .unwrap();
    let binding = ModelBinding::builder("app.Thing", pool.clone(), schema)
        .build()
        .unwrap();
    (EventRouter::new().binding(binding), pool)
}

async fn call(router: &EventRouter, event: &str, data: Value) -> Reply {
    let event = Event::new(EventName::parse(event).unwrap(), data, Hub::new());
    let reply: Result<Reply, Infallible> = router.clone().oneshot(event).await;
    match reply {
        Ok(reply) => reply,
        Err(never) => match never {},
    }
}

fn assert_no_internals(reply: &Reply) {
    let text = String::from_utf8_lossy(&reply.encode(Some("x.y"), None)).to_lowercase();
    for leak in [
        "select",
        "insert",
        "secret_things",
        "sqlite",
        "pool",
        "sqlx",
        "error returned from database",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaked into {text}");
    }
}

#[tokio::test]
async fn a_closed_database_answers_unavailable_for_every_action() {
    let (router, pool) = router().await;
    assert!(call(&router, "app.Thing.create", json!({"name": "a"})).await.is_ok());
    pool.close().await;
    for (event, data) in [
        ("app.Thing.retrieve", json!({"id": 1})),
        ("app.Thing.search", json!({})),
        ("app.Thing.list", json!({})),
        ("app.Thing.create", json!({"name": "b"})),
        ("app.Thing.update", json!({"id": 1, "name": "c"})),
        ("app.Thing.save", json!({"name": "d"})),
        ("app.Thing.delete", json!({"id": 1})),
    ] {
        let reply = call(&router, event, data).await;
        let error = reply
            .error_ref()
            .unwrap_or_else(|| panic!("{event} succeeded on a closed pool"));
        assert_eq!(error.code().as_str(), "unavailable", "{event}: {error}");
        assert_no_internals(&reply);
    }
}

#[tokio::test]
async fn client_errors_carry_no_sql_either() {
    let (router, _pool) = router().await;
    for (event, data) in [
        ("app.Thing.search", json!({"order": "name; DROP TABLE t"})),
        ("app.Thing.search", json!({"filters": {"name') OR 1=1 --": 1}})),
        ("app.Thing.retrieve", json!({"id": "1 OR 1=1"})),
        ("app.Thing.create", json!({"name": "x", "id": 1})),
        ("app.Thing.search", json!({"query": "%' OR '1'='1"})),
    ] {
        let reply = call(&router, event, data).await;
        if let Some(error) = reply.error_ref() {
            assert_ne!(error.code().as_str(), "internal", "{event}");
        }
        assert_no_internals(&reply);
    }
    // The table is intact and the injection-looking search matched nothing.
    let reply = call(&router, "app.Thing.search", json!({"query": "%' OR '1'='1"})).await;
    assert_eq!(reply.outcome().unwrap()["count"], 0);
}
