//! Write permissions and server-owned fields: who may create, update and
//! delete, and `owner_id` taken from the caller, never from the client.

// Test set-up may unwrap: a panic here is a failed test with its location.
#![allow(clippy::unwrap_used)]

use channels_binding_core::hub::{Hub, Outbox, Target};
use channels_binding_core::protocol::EventName;
use channels_binding_core::{Event, EventRouter, Identity, Principal, Reply};
use channels_binding_sqlx::{
    Field, Filter, ModelBinding, ModelSchema, ReadScope, SqlValue, WriteAction, owner_or_staff,
};
use serde_json::{Value, json};
use sqlx::SqlitePool;
use sqlx::sqlite::SqlitePoolOptions;
use tower::ServiceExt;

async fn pool() -> SqlitePool {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE);
         INSERT INTO users (id, username) VALUES (1, 'alice'), (2, 'bob'), (3, 'boss');
         CREATE TABLE notes (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, title TEXT NOT NULL);",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool
}

fn alice() -> Identity {
    Identity::from(Principal::new("1"))
}
fn bob() -> Identity {
    Identity::from(Principal::new("2"))
}
fn boss() -> Identity {
    Identity::from(Principal::new("3").staff(true))
}

/// Users as in the demo: anyone reads; a user updates only themself; staff
/// anyone; only staff create or delete.
fn users(pool: SqlitePool) -> ModelBinding {
    let schema = ModelSchema::builder("users")
        .field(Field::integer("id").read().order())
        .field(Field::text("username").read().write().required())
        .build()
        .unwrap();
    ModelBinding::builder("auth.User", pool, schema)
        .write_permission(owner_or_staff("id", &[WriteAction::Update]))
        .build()
        .unwrap()
}

/// Notes as in the demo: owner and staff read; owner_id comes from the caller.
fn notes(pool: SqlitePool) -> ModelBinding {
    let schema = ModelSchema::builder("notes")
        .field(Field::integer("id").read().order())
        .field(Field::integer("owner_id").read())
        .field(Field::text("title").read().write().required())
        .build()
        .unwrap();
    ModelBinding::builder("notes.Note", pool, schema)
        .read_scope(|identity| match identity.id().and_then(|id| id.parse::<i64>().ok()) {
            _ if identity.is_staff() => ReadScope::All,
            Some(id) => ReadScope::Where(vec![Filter::eq("owner_id", id)]),
            None => ReadScope::Nothing,
        })
        .write_permission(owner_or_staff(
            "owner_id",
            &[WriteAction::Create, WriteAction::Update, WriteAction::Delete],
        ))
        .before_create(|identity, values| {
            let owner = identity
                .id()
                .and_then(|id| id.parse::<i64>().ok())
                .ok_or_else(|| channels_binding_core::protocol::EventError::unauthenticated("sign in to write"))?;
            values.set("owner_id", SqlValue::Int(owner));
            Ok(())
        })
        .build()
        .unwrap()
}

async fn call(router: &EventRouter, hub: &Hub, identity: Identity, event: &str, data: Value) -> Reply {
    let event = Event::new(EventName::parse(event).unwrap(), data, hub.clone()).with_identity(identity);
    router.clone().oneshot(event).await.unwrap()
}

fn code(reply: &Reply) -> &'static str {
    reply.error_ref().map_or("ok", |e| e.code().as_str())
}

fn feed(hub: &Hub, identity: Identity, stream: &str) -> Outbox {
    let outbox = hub.connect(identity);
    hub.subscribe(outbox.connection(), stream, Target::Feed, None).unwrap();
    outbox
}

#[tokio::test]
async fn users_update_themselves_staff_anyone_only_staff_create_or_delete() {
    let pool = pool().await;
    let hub = Hub::new();
    let router = EventRouter::new().binding(users(pool.clone()));
    let mut watcher = feed(&hub, boss(), "auth.User");

    let reply = call(
        &router,
        &hub,
        alice(),
        "auth.User.update#1",
        json!({"username": "alice2"}),
    )
    .await;
    assert_eq!(code(&reply), "ok");
    let reply = call(
        &router,
        &hub,
        alice(),
        "auth.User.update#2",
        json!({"username": "hacked"}),
    )
    .await;
    assert_eq!(code(&reply), "forbidden");
    let reply = call(
        &router,
        &hub,
        Identity::anonymous(),
        "auth.User.update#2",
        json!({"username": "x"}),
    )
    .await;
    assert_eq!(code(&reply), "unauthenticated");
    let reply = call(
        &router,
        &hub,
        boss(),
        "auth.User.update#2",
        json!({"username": "bobby"}),
    )
    .await;
    assert_eq!(code(&reply), "ok");

    let reply = call(&router, &hub, alice(), "auth.User.create", json!({"username": "carol"})).await;
    assert_eq!(code(&reply), "forbidden");
    let reply = call(&router, &hub, alice(), "auth.User.save", json!({"username": "carol"})).await;
    assert_eq!(code(&reply), "forbidden", "save without id is a create");
    let reply = call(&router, &hub, alice(), "auth.User.delete#1", json!({})).await;
    assert_eq!(code(&reply), "forbidden", "users may not delete, even themselves");
    let reply = call(&router, &hub, boss(), "auth.User.create", json!({"username": "carol"})).await;
    assert_eq!(code(&reply), "ok");
    let reply = call(&router, &hub, boss(), "auth.User.delete#2", json!({})).await;
    assert_eq!(code(&reply), "ok");

    // Only the four allowed writes were published.
    let mut events = Vec::new();
    while let Some(push) = watcher.try_recv() {
        let push: Value = serde_json::from_slice(&push.frame).unwrap();
        events.push(push["event"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        events,
        [
            "auth.User.updated#1",
            "auth.User.updated#2",
            "auth.User.created",
            "auth.User.deleted#2"
        ]
    );
    let (bob_exists,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE id = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(bob_exists, 0);
}

#[tokio::test]
async fn owner_id_comes_from_the_caller_and_others_cannot_touch_a_note() {
    let pool = pool().await;
    let hub = Hub::new();
    let router = EventRouter::new().binding(notes(pool.clone()));

    // A client cannot choose the owner: owner_id is read-only.
    let reply = call(
        &router,
        &hub,
        alice(),
        "notes.Note.create",
        json!({"title": "t", "owner_id": 2}),
    )
    .await;
    assert_eq!(code(&reply), "validation");
    assert!(reply.error_ref().unwrap().details()["fields"]["owner_id"].is_array());

    let reply = call(&router, &hub, alice(), "notes.Note.create", json!({"title": "mine"})).await;
    let note = reply.outcome().unwrap().clone();
    assert_eq!(note["owner_id"], 1);
    let id = note["id"].as_i64().unwrap();

    // Bob cannot see it, so for him it does not exist.
    for (event, data) in [
        (format!("notes.Note.retrieve#{id}"), json!({})),
        (format!("notes.Note.update#{id}"), json!({"title": "bob was here"})),
        (format!("notes.Note.delete#{id}"), json!({})),
    ] {
        assert_eq!(
            code(&call(&router, &hub, bob(), &event, data).await),
            "not_found",
            "{event}"
        );
    }
    let reply = call(&router, &hub, bob(), "notes.Note.search", json!({})).await;
    assert_eq!(reply.outcome().unwrap()["count"], 0);
    // Anonymous cannot create.
    let reply = call(
        &router,
        &hub,
        Identity::anonymous(),
        "notes.Note.create",
        json!({"title": "x"}),
    )
    .await;
    assert_eq!(code(&reply), "unauthenticated");
    // Staff see and change it; the owner does too.
    let reply = call(
        &router,
        &hub,
        boss(),
        &format!("notes.Note.update#{id}"),
        json!({"title": "edited"}),
    )
    .await;
    assert_eq!(reply.outcome().unwrap()["owner_id"], 1, "staff edits keep the owner");
    let reply = call(&router, &hub, alice(), &format!("notes.Note.delete#{id}"), json!({})).await;
    assert_eq!(code(&reply), "ok");
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn nobody_hears_of_another_users_note_but_its_owner_and_staff_do() {
    let pool = pool().await;
    let hub = Hub::new();
    let router = EventRouter::new().binding(notes(pool.clone()));
    let mut alice_feed = feed(&hub, alice(), "notes.Note");
    let mut bob_feed = feed(&hub, bob(), "notes.Note");
    let mut boss_feed = feed(&hub, boss(), "notes.Note");
    let mut anonymous_feed = feed(&hub, Identity::anonymous(), "notes.Note");

    let id = call(&router, &hub, alice(), "notes.Note.create", json!({"title": "secret"}))
        .await
        .outcome()
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    call(
        &router,
        &hub,
        alice(),
        &format!("notes.Note.update#{id}"),
        json!({"title": "still secret"}),
    )
    .await;
    call(&router, &hub, alice(), &format!("notes.Note.delete#{id}"), json!({})).await;

    let drain = |outbox: &mut Outbox| {
        let mut events = Vec::new();
        while let Some(push) = outbox.try_recv() {
            let push: Value = serde_json::from_slice(&push.frame).unwrap();
            events.push(push["event"].as_str().unwrap().to_owned());
        }
        events
    };
    let expected = [
        "notes.Note.created".to_owned(),
        format!("notes.Note.updated#{id}"),
        format!("notes.Note.deleted#{id}"),
    ];
    assert_eq!(drain(&mut alice_feed), expected);
    assert_eq!(drain(&mut boss_feed), expected);
    assert!(
        drain(&mut bob_feed).is_empty(),
        "create, update and delete all stay hidden"
    );
    assert!(drain(&mut anonymous_feed).is_empty());
}
