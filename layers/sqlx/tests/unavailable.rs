//! A database that goes away answers `unavailable`, and no error reply ever
//! carries SQL, table names or driver messages. On SQLite and on PostgreSQL.

// Model bindings need a database: SQLite, PostgreSQL or both.
#![cfg(any(feature = "sqlite", feature = "postgres"))]
// Test set-up may unwrap: a panic here is a failed test with its location.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use channels_binding_core::hub::Hub;
use channels_binding_core::protocol::EventName;
use channels_binding_core::{Event, EventRouter, Reply};
use channels_binding_sqlx::{Database, Field, ModelBinding, ModelSchema};
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;
use support::{TestDb, each_backend};

fn schema() -> ModelSchema {
    ModelSchema::builder("secret_things")
        .field(Field::integer("id").read().order())
        .field(Field::text("name").read().write().search().required())
        .build()
        .unwrap()
}

fn router(database: impl Into<Database>) -> EventRouter {
    let binding = ModelBinding::builder("app.Thing", database, schema()).build().unwrap();
    EventRouter::new().binding(binding)
}

async fn create_table(db: &TestDb) {
    db.exec(db.pick(
        "CREATE TABLE secret_things (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "CREATE TABLE secret_things (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL)",
    ))
    .await;
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
        "postgres",
        "pool",
        "sqlx",
        "error returned from database",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaked into {text}");
    }
}

fn every_action() -> [(&'static str, Value); 7] {
    [
        ("app.Thing.retrieve", json!({"id": 1})),
        ("app.Thing.search", json!({})),
        ("app.Thing.list", json!({})),
        ("app.Thing.create", json!({"name": "b"})),
        ("app.Thing.update", json!({"id": 1, "name": "c"})),
        ("app.Thing.save", json!({"name": "d"})),
        ("app.Thing.delete", json!({"id": 1})),
    ]
}

async fn assert_every_action_is_unavailable(router: &EventRouter) {
    for (event, data) in every_action() {
        let reply = call(router, event, data).await;
        let error = reply
            .error_ref()
            .unwrap_or_else(|| panic!("{event} succeeded without a database"));
        assert_eq!(error.code().as_str(), "unavailable", "{event}: {error}");
        assert_no_internals(&reply);
    }
}

each_backend!(
    #[tokio::test]
    a_closed_database_answers_unavailable_for_every_action
);
async fn a_closed_database_answers_unavailable_for_every_action(db: &TestDb) {
    create_table(db).await;
    let router = router(db.database());
    assert!(call(&router, "app.Thing.create", json!({"name": "a"})).await.is_ok());
    db.close().await;
    assert_every_action_is_unavailable(&router).await;
}

/// Needs no PostgreSQL: nothing listens on port 1.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn an_unreachable_postgres_answers_unavailable_for_every_action() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(250))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    assert_every_action_is_unavailable(&router(pool)).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_sqlite_file_that_cannot_be_opened_answers_unavailable_for_every_action() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(250))
        .connect_lazy("sqlite:///nonexistent-dir/channels-binding/db.sqlite")
        .unwrap();
    assert_every_action_is_unavailable(&router(pool)).await;
}

each_backend!(
    #[tokio::test]
    client_errors_carry_no_sql_either
);
async fn client_errors_carry_no_sql_either(db: &TestDb) {
    create_table(db).await;
    let router = router(db.database());
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
