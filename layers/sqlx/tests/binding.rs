//! `ModelBinding` driven through an `EventRouter`, without sockets: events are
//! built as a transport would build them, pushes are read from the hub's
//! outboxes. Every test runs on SQLite and on PostgreSQL (see
//! `support/db.rs`), each time with a database of its own and its own hub,
//! so tests are independent and deterministic.

// Model bindings need a database: SQLite, PostgreSQL or both.
#![cfg(any(feature = "sqlite", feature = "postgres"))]
// Test bodies are plain functions run by `each_backend!`, which clippy does
// not see as tests: they may unwrap, a panic being a failed test with its
// location.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use channels_binding_core::hub::{Hub, HubConfig, Outbox};
use channels_binding_core::page_size::{PageSize, PageSizeLayer};
use channels_binding_core::protocol::EventName;
use channels_binding_core::{Event, EventRouter, Identity, Principal, Reply};
use channels_binding_sqlx::{
    ConfigError, Field, Fields, Filter, ModelBinding, ModelBindingBuilder, ModelSchema, ModelSchemaBuilder, ReadScope,
    Typed,
};
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt as _};

mod support;
use support::{TestDb, each_backend};

const NOTES: &str = "app.Note";
const USERS: &str = "auth.User";
/// The value of the column no binding declares.
const SECRET: &str = "hunter2-s3cr3t";

// ---------------------------------------------------------------------------
// Database fixtures
// ---------------------------------------------------------------------------

/// `notes` and `users`, in either dialect. `users.secret` is never declared.
async fn create_tables(db: &TestDb) {
    let sqlite = format!(
        "CREATE TABLE notes (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL,
            secret TEXT NOT NULL DEFAULT '{SECRET}'
        );"
    );
    let postgres = format!(
        "CREATE TABLE notes (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            owner_id INTEGER NOT NULL,
            title VARCHAR(200) NOT NULL,
            body TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE users (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL,
            secret TEXT NOT NULL DEFAULT '{SECRET}'
        );"
    );
    db.exec(db.pick(&sqlite, &postgres)).await;
}

/// Inserts notes behind the binding's back (nothing is published).
async fn seed_notes(db: &TestDb, owner: i64, count: usize) {
    let rows: Vec<String> = (0..count)
        .map(|i| format!("({owner}, 'note {i:02}', 'body {i:02}')"))
        .collect();
    if !rows.is_empty() {
        db.exec(&format!(
            "INSERT INTO notes (owner_id, title, body) VALUES {}",
            rows.join(", ")
        ))
        .await;
    }
}

async fn note_count(db: &TestDb) -> i64 {
    db.scalar("SELECT COUNT(*) FROM notes").await
}

async fn user_count(db: &TestDb) -> i64 {
    db.scalar("SELECT COUNT(*) FROM users").await
}

/// The row as the database has it (every readable column of the notes binding).
async fn note_row(db: &TestDb, id: i64) -> Value {
    let mut rows = db
        .rows(&format!("SELECT id, owner_id, title, body FROM notes WHERE id = {id}"))
        .await;
    assert_eq!(rows.len(), 1, "note {id} exists");
    Value::Object(rows.remove(0))
}

fn notes_schema() -> ModelSchemaBuilder {
    ModelSchema::builder("notes")
        .field(Field::integer("id").read().order())
        .field(Field::integer("owner_id").read().write().filter().required())
        .field(Field::text("title").read().write().search().filter().order().required())
        .field(Field::text("body").read().write())
}

fn notes(db: &TestDb) -> ModelBindingBuilder {
    ModelBinding::builder(NOTES, db.database(), notes_schema().build().expect("notes schema"))
}

/// `users.secret` exists in the table and is never declared. `email` is
/// NOT NULL in the table but not declared required.
fn users(db: &TestDb) -> ModelBindingBuilder {
    let schema = ModelSchema::builder("users")
        .field(Field::integer("id").read().order())
        .field(
            Field::text("username")
                .read()
                .write()
                .search()
                .filter()
                .order()
                .required(),
        )
        .field(Field::text("email").read().write().search())
        .build()
        .expect("users schema");
    ModelBinding::builder(USERS, db.database(), schema)
}

/// Only the owner may read a note.
/// Staff read everything, each user their own notes, anonymous nothing.
fn owner_only(identity: &Identity) -> ReadScope {
    match identity.id().and_then(|id| id.parse::<i64>().ok()) {
        _ if identity.is_staff() => ReadScope::All,
        Some(id) => ReadScope::Where(vec![Filter::eq("owner_id", id)]),
        None => ReadScope::Nothing,
    }
}

/// Staff: writes as a server-side admin would.
fn admin() -> Identity {
    Identity::from(Principal::new("0").staff(true))
}

fn user(id: &str) -> Identity {
    Identity::from(Principal::new(id))
}

// ---------------------------------------------------------------------------
// The event stack
// ---------------------------------------------------------------------------

fn event(hub: &Hub, name: &str, data: Value) -> Event {
    let name = EventName::parse(name).unwrap_or_else(|err| panic!("event name {name:?}: {err}"));
    Event::new(name, data, hub.clone())
}

/// The event stack under test: the router, optionally behind the page size layer.
struct Stack {
    router: EventRouter,
    hub: Hub,
    page_size: Option<PageSize>,
}

impl Stack {
    fn new(hub: Hub, bindings: Vec<ModelBinding>) -> Self {
        let router = bindings.into_iter().fold(EventRouter::new(), EventRouter::binding);
        Self {
            router,
            hub,
            page_size: None,
        }
    }

    /// Calls the stack as a tower service: `PageSizeLayer` (when set) around the router.
    async fn send(&self, event: Event) -> Reply {
        let result = match self.page_size {
            Some(size) => {
                ServiceBuilder::new()
                    .layer(PageSizeLayer::new(size))
                    .service(self.router.clone())
                    .oneshot(event)
                    .await
            }
            None => self.router.clone().oneshot(event).await,
        };
        match result {
            Ok(reply) => reply,
            Err(never) => match never {},
        }
    }

    /// An HTTP-like event: anonymous, no connection.
    async fn http(&self, name: &str, data: Value) -> Reply {
        self.send(event(&self.hub, name, data)).await
    }

    /// An HTTP-like event with an identity.
    async fn http_as(&self, identity: &Identity, name: &str, data: Value) -> Reply {
        self.send(event(&self.hub, name, data).with_identity(identity.clone()))
            .await
    }

    /// A socket-like event: request number `conn.next` of the connection.
    async fn ws(&self, conn: &mut Conn, name: &str, data: Value) -> Reply {
        conn.last_request += 1;
        let request = conn.last_request;
        let event = event(&self.hub, name, data).with_connection(conn.outbox.connection().clone(), request);
        self.send(event).await
    }

    fn connect(&self, identity: Identity) -> Conn {
        Conn {
            outbox: self.hub.connect(identity),
            last_request: 0,
        }
    }
}

/// A connection as a transport holds it: its outbox and its request counter.
struct Conn {
    outbox: Outbox,
    last_request: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Push {
    event: String,
    data: Value,
    seq: Option<u64>,
    epoch: Option<String>,
    after_reply: Option<u64>,
    raw: String,
}

impl Conn {
    /// Every frame queued so far.
    fn pushes(&mut self) -> Vec<Push> {
        let mut pushes = Vec::new();
        while let Some(outbound) = self.outbox.try_recv() {
            let raw = String::from_utf8(outbound.frame.to_vec()).expect("frames are UTF-8");
            let frame: Value = serde_json::from_str(&raw).expect("frames are JSON");
            assert!(
                frame.get("request_id").is_none(),
                "a push never carries a request id: {raw}"
            );
            pushes.push(Push {
                event: frame["event"].as_str().expect("push event").to_owned(),
                data: frame["data"].clone(),
                seq: frame["seq"].as_u64(),
                epoch: frame["epoch"].as_str().map(str::to_owned),
                after_reply: outbound.after_reply,
                raw,
            });
        }
        pushes
    }

    fn subscriptions(&self) -> usize {
        self.outbox.connection().subscription_count()
    }
}

fn events(pushes: &[Push]) -> Vec<&str> {
    pushes.iter().map(|p| p.event.as_str()).collect()
}

fn seqs(pushes: &[Push]) -> Vec<u64> {
    pushes.iter().map(|p| p.seq.expect("stream pushes carry seq")).collect()
}

// ---------------------------------------------------------------------------
// Reply helpers
// ---------------------------------------------------------------------------

#[track_caller]
fn ok(reply: &Reply) -> Value {
    match reply.outcome() {
        Ok(data) => data.clone(),
        Err(err) => panic!("expected a success reply, got {err:?}"),
    }
}

#[track_caller]
fn code(reply: &Reply) -> &'static str {
    match reply.outcome() {
        Ok(data) => panic!("expected an error reply, got {data}"),
        Err(err) => err.code().as_str(),
    }
}

#[track_caller]
fn error_json(reply: &Reply) -> Value {
    let err = reply.error_ref().expect("an error reply");
    serde_json::to_value(err).expect("errors serialize")
}

/// The field names of a `validation` error.
#[track_caller]
fn error_fields(reply: &Reply) -> BTreeSet<String> {
    assert_eq!(code(reply), "validation", "{:?}", reply.error_ref());
    error_json(reply)["fields"]
        .as_object()
        .expect("validation carries fields")
        .keys()
        .cloned()
        .collect()
}

fn position(reply: &Reply) -> Option<(String, u64)> {
    reply
        .meta()
        .position
        .as_ref()
        .map(|(epoch, seq)| (epoch.to_string(), *seq))
}

fn encoded(reply: &Reply) -> String {
    String::from_utf8(reply.encode(Some("x.y"), None).to_vec()).expect("UTF-8")
}

fn id_of(value: &Value) -> i64 {
    value["id"].as_i64().expect("an integer id")
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

// ---------------------------------------------------------------------------
// list / search bounds
// ---------------------------------------------------------------------------

each_backend!(
    #[tokio::test]
    list_over_max_list_size_is_payload_too_large_and_search_never_is
);
async fn list_over_max_list_size_is_payload_too_large_and_search_never_is(db: &TestDb) {
    create_tables(db).await;
    let stack = Stack::new(Hub::new(), vec![notes(db).max_list_size(5).build().unwrap()]);
    seed_notes(db, 1, 5).await;

    // Exactly the maximum is fine.
    let rows = ok(&stack.http("app.Note.list", json!({})).await);
    assert_eq!(rows.as_array().unwrap().len(), 5);

    seed_notes(db, 2, 1).await;
    let mut conn = stack.connect(user("1"));
    let too_many = stack.ws(&mut conn, "app.Note.list", json!({})).await;
    assert_eq!(code(&too_many), "payload_too_large");
    assert_eq!(error_json(&too_many)["max"], 5);
    assert_eq!(conn.subscriptions(), 0, "a refused list subscribes nothing");
    assert_eq!(
        code(&stack.http("app.Note.list", json!({"order": "-id"})).await),
        "payload_too_large"
    );

    // Narrowed to five or fewer, it answers again.
    let owned = ok(&stack.http("app.Note.list", json!({"filters": {"owner_id": 1}})).await);
    assert_eq!(owned.as_array().unwrap().len(), 5);

    // `search` pages; it never refuses a large result.
    let page = ok(&stack.http("app.Note.search", json!({"limit": 100})).await);
    assert_eq!(page["count"], 6);
    assert_eq!(page["rows"].as_array().unwrap().len(), 6);
    seed_notes(db, 3, 20).await;
    let page = ok(&stack.ws(&mut conn, "app.Note.search", json!({"limit": 100})).await);
    assert_eq!(page["count"], 26);
    assert_eq!(page["rows"].as_array().unwrap().len(), 26);
}

// ---------------------------------------------------------------------------
// Subscription bookkeeping
// ---------------------------------------------------------------------------

each_backend!(
    #[tokio::test]
    subscription_limit_refuses_the_third_distinct_subscription
);
async fn subscription_limit_refuses_the_third_distinct_subscription(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 3).await;
    let hub = Hub::with_config(HubConfig::default().max_subscriptions(2));
    let stack = Stack::new(hub, vec![notes(db).build().unwrap()]);
    let mut conn = stack.connect(user("1"));

    ok(&stack.ws(&mut conn, "app.Note.retrieve#1", json!({})).await);
    ok(&stack.ws(&mut conn, "app.Note.retrieve", json!({"id": 2})).await);
    assert_eq!(conn.subscriptions(), 2);

    let third = stack.ws(&mut conn, "app.Note.retrieve#3", json!({})).await;
    assert_eq!(code(&third), "payload_too_large");
    // The feed is a distinct subscription too.
    assert_eq!(
        code(&stack.ws(&mut conn, "app.Note.search", json!({})).await),
        "payload_too_large"
    );
    assert_eq!(
        code(&stack.ws(&mut conn, "app.Note.subscribe", json!({})).await),
        "payload_too_large"
    );
    assert_eq!(conn.subscriptions(), 2);

    // The same object again, under another event string, is not a new subscription.
    ok(&stack.ws(&mut conn, "app.Note.retrieve", json!({"id": 1})).await);
    ok(&stack.ws(&mut conn, "app.Note.retrieve#2", json!({})).await);
    assert_eq!(conn.subscriptions(), 2);

    // Nothing was subscribed by the refused requests: only 1 and 2 push.
    for id in 1..=3 {
        ok(&stack
            .http(&format!("app.Note.update#{id}"), json!({"title": "changed"}))
            .await);
    }
    let pushes = conn.pushes();
    assert!(pushes.iter().all(|p| !p.event.ends_with("#3")), "{:?}", events(&pushes));
    assert!(pushes.iter().any(|p| p.event == "app.Note.retrieve#1"));
    assert!(pushes.iter().any(|p| p.event == "app.Note.retrieve#2"));

    // Leaving one makes room for another.
    let left = ok(&stack.ws(&mut conn, "app.Note.unsubscribe#1", json!({})).await);
    assert_eq!(left, json!({"unsubscribed": "app.Note#1"}));
    assert_eq!(conn.subscriptions(), 1);
    ok(&stack.ws(&mut conn, "app.Note.retrieve#3", json!({})).await);
    assert_eq!(conn.subscriptions(), 2);
}

each_backend!(
    #[tokio::test]
    events_without_a_connection_never_subscribe
);
async fn events_without_a_connection_never_subscribe(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 3).await;
    let hub = Hub::with_config(HubConfig::default().max_subscriptions(1));
    let stack = Stack::new(hub.clone(), vec![notes(db).build().unwrap()]);
    // A connection exists, but these events do not come from it.
    let mut bystander = stack.connect(user("1"));

    for _ in 0..3 {
        for name in ["app.Note.retrieve#1", "app.Note.retrieve#2", "app.Note.retrieve#3"] {
            let reply = stack.http_as(&user("1"), name, json!({})).await;
            ok(&reply);
            assert!(position(&reply).is_none(), "no subscription, no position");
            assert!(!reply.meta().resync);
        }
        ok(&stack.http("app.Note.search", json!({})).await);
        ok(&stack.http("app.Note.list", json!({})).await);
        ok(&stack.http("app.Note.retrieve", json!({"id": [1, 2, 3]})).await);
    }
    assert_eq!(hub.subscriber_count(NOTES), 0);
    assert_eq!(bystander.subscriptions(), 0);

    ok(&stack.http("app.Note.update#1", json!({"title": "x"})).await);
    assert!(bystander.pushes().is_empty());
}

each_backend!(
    #[tokio::test]
    subscribe_and_unsubscribe_need_a_connection
);
async fn subscribe_and_unsubscribe_need_a_connection(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 1).await;
    let stack = Stack::new(Hub::new(), vec![notes(db).build().unwrap()]);

    for name in [
        "app.Note.subscribe",
        "app.Note.subscribe#1",
        "app.Note.unsubscribe",
        "app.Note.unsubscribe#1",
    ] {
        assert_eq!(code(&stack.http(name, json!({})).await), "bad_request", "{name}");
        assert_eq!(
            code(&stack.http_as(&user("1"), name, json!({})).await),
            "bad_request",
            "{name}"
        );
    }

    // Over a connection they work and name what they did.
    let mut conn = stack.connect(user("1"));
    let feed = stack.ws(&mut conn, "app.Note.subscribe", json!({})).await;
    assert_eq!(ok(&feed), json!({"subscribed": "app.Note"}));
    assert_eq!(position(&feed).map(|(_, seq)| seq), Some(0));
    assert_eq!(
        ok(&stack.ws(&mut conn, "app.Note.subscribe", json!({"id": 1})).await),
        json!({"subscribed": "app.Note#1"})
    );
    assert_eq!(conn.subscriptions(), 2);
    assert_eq!(
        ok(&stack.ws(&mut conn, "app.Note.unsubscribe", json!({})).await),
        json!({"unsubscribed": "app.Note"})
    );
    assert_eq!(
        ok(&stack.ws(&mut conn, "app.Note.unsubscribe#1", json!({})).await),
        json!({"unsubscribed": "app.Note#1"})
    );
    assert_eq!(conn.subscriptions(), 0);
    ok(&stack.http("app.Note.update#1", json!({"title": "x"})).await);
    assert!(conn.pushes().is_empty());
}

// ---------------------------------------------------------------------------
// Read rules
// ---------------------------------------------------------------------------

fn owner_stack(db: &TestDb, hub: Hub) -> Stack {
    let binding = notes(db).read_scope(owner_only).build().expect("notes binding");
    Stack::new(hub, vec![binding])
}

each_backend!(
    #[tokio::test]
    read_rule_filters_feed_pushes
);
async fn read_rule_filters_feed_pushes(db: &TestDb) {
    create_tables(db).await;
    let stack = owner_stack(db, Hub::new());
    let mut alice = stack.connect(user("1"));
    let mut bob = stack.connect(user("2"));
    let mut nobody = stack.connect(Identity::anonymous());
    for conn in [&mut alice, &mut bob, &mut nobody] {
        ok(&stack.ws(conn, "app.Note.subscribe", json!({})).await);
    }

    let created = ok(&stack
        .http_as(
            &admin(),
            "app.Note.create",
            json!({"owner_id": 1, "title": "alice's", "body": "private"}),
        )
        .await);
    let id = id_of(&created);
    ok(&stack
        .http_as(
            &admin(),
            &format!("app.Note.update#{id}"),
            json!({"body": "still private"}),
        )
        .await);
    ok(&stack
        .http_as(&admin(), &format!("app.Note.delete#{id}"), json!({}))
        .await);

    let to_alice = alice.pushes();
    assert_eq!(
        events(&to_alice),
        [
            "app.Note.created".to_owned(),
            format!("app.Note.updated#{id}"),
            format!("app.Note.deleted#{id}")
        ]
    );
    assert_eq!(seqs(&to_alice), [1, 2, 3]);
    assert_eq!(to_alice[0].data, created);
    assert_eq!(to_alice[1].data["body"], "still private");
    assert_eq!(to_alice[2].data, json!({"id": id}));
    assert!(bob.pushes().is_empty(), "another user learns nothing");
    assert!(nobody.pushes().is_empty(), "anonymous learns nothing");

    // Bob's own notes reach Bob, and only Bob.
    ok(&stack
        .http_as(&admin(), "app.Note.create", json!({"owner_id": 2, "title": "bob's"}))
        .await);
    assert_eq!(events(&bob.pushes()), ["app.Note.created"]);
    assert!(alice.pushes().is_empty());
    assert!(nobody.pushes().is_empty());
}

each_backend!(
    #[tokio::test]
    read_rule_filters_object_pushes_and_hides_existence
);
async fn read_rule_filters_object_pushes_and_hides_existence(db: &TestDb) {
    create_tables(db).await;
    let stack = owner_stack(db, Hub::new());
    let mut alice = stack.connect(user("1"));
    let mut bob = stack.connect(user("2"));
    let mut nobody = stack.connect(Identity::anonymous());

    let id = id_of(&ok(&stack
        .http_as(&admin(), "app.Note.create", json!({"owner_id": 1, "title": "mine"}))
        .await));
    let name = format!("app.Note.retrieve#{id}");

    let mine = ok(&stack.ws(&mut alice, &name, json!({})).await);
    assert_eq!(mine["title"], "mine");

    // Unreadable looks exactly like absent, over a socket and over HTTP.
    let missing = stack.ws(&mut bob, "app.Note.retrieve#999", json!({})).await;
    assert_eq!(code(&missing), "not_found");
    for reply in [
        stack.ws(&mut bob, &name, json!({})).await,
        stack.ws(&mut nobody, &name, json!({})).await,
        stack.http_as(&user("2"), &name, json!({})).await,
        stack.http(&name, json!({})).await,
    ] {
        assert_eq!(code(&reply), "not_found");
        assert_eq!(error_json(&reply), error_json(&missing), "never reveals existence");
    }
    assert_eq!(bob.subscriptions(), 0);
    assert_eq!(nobody.subscriptions(), 0);

    ok(&stack
        .http_as(&admin(), &format!("app.Note.update#{id}"), json!({"title": "edited"}))
        .await);
    let to_alice = alice.pushes();
    assert_eq!(events(&to_alice), [name.as_str()]);
    assert_eq!(to_alice[0].data["title"], "edited");
    assert!(bob.pushes().is_empty());
    assert!(nobody.pushes().is_empty());

    ok(&stack
        .http_as(&admin(), &format!("app.Note.delete#{id}"), json!({}))
        .await);
    assert_eq!(events(&alice.pushes()), [format!("app.Note.deleted#{id}")]);
    assert!(bob.pushes().is_empty());
    assert!(nobody.pushes().is_empty());
    assert_eq!(alice.subscriptions(), 0, "a delete ends the object subscription");
}

each_backend!(
    #[tokio::test]
    an_unreadable_object_in_a_list_reads_as_missing
);
async fn an_unreadable_object_in_a_list_reads_as_missing(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 2).await; // ids 1, 2: alice's
    seed_notes(db, 2, 1).await; // id 3: bob's
    let stack = owner_stack(db, Hub::new());
    let mut alice = stack.connect(user("1"));

    let both = ok(&stack.ws(&mut alice, "app.Note.retrieve", json!({"id": [2, 1]})).await);
    let ids: Vec<i64> = both.as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(ids, [2, 1], "objects come back in the order asked");
    assert_eq!(alice.subscriptions(), 2);

    let mut alice2 = stack.connect(user("1"));
    // Bob's note 3 is reported exactly like an id that does not exist:
    // nobody learns that an object they may not read exists.
    let mixed = stack.ws(&mut alice2, "app.Note.retrieve", json!({"id": [1, 3]})).await;
    assert_eq!(code(&mixed), "not_found");
    assert_eq!(error_json(&mixed)["missing"], json!([3]));
    assert_eq!(alice2.subscriptions(), 0, "a refused retrieve subscribes nothing");
    assert_eq!(
        code(&stack.http_as(&user("1"), "app.Note.retrieve", json!({"id": [3]})).await),
        "not_found"
    );

    let absent = stack.ws(&mut alice2, "app.Note.retrieve", json!({"id": [1, 99]})).await;
    assert_eq!(code(&absent), "not_found");
    assert_eq!(error_json(&absent)["missing"], json!([99]));
}

each_backend!(
    #[tokio::test]
    an_owner_change_ends_the_old_owners_object_subscription_with_a_delete
);
async fn an_owner_change_ends_the_old_owners_object_subscription_with_a_delete(db: &TestDb) {
    create_tables(db).await;
    let stack = owner_stack(db, Hub::new());
    let mut alice = stack.connect(user("1"));
    let mut bob_objects = stack.connect(user("2"));
    let mut bob_feed = stack.connect(user("2"));
    ok(&stack.ws(&mut bob_feed, "app.Note.subscribe", json!({})).await);

    let id = id_of(&ok(&stack
        .http_as(&admin(), "app.Note.create", json!({"owner_id": 1, "title": "t0"}))
        .await));
    let name = format!("app.Note.retrieve#{id}");
    ok(&stack.ws(&mut alice, &name, json!({})).await);
    assert_eq!(code(&stack.ws(&mut bob_objects, &name, json!({})).await), "not_found");
    assert!(bob_feed.pushes().is_empty(), "bob does not learn of alice's note");

    // Alice gives the note to Bob.
    ok(&stack
        .http_as(
            &admin(),
            &format!("app.Note.update#{id}"),
            json!({"owner_id": 2, "title": "t1"}),
        )
        .await);
    // The old owner learns only what it knew: the object is gone from its sight.
    let told = alice.pushes();
    assert_eq!(events(&told), [format!("app.Note.deleted#{id}")]);
    assert_eq!(told[0].data, json!({"id": id}));
    assert_eq!(alice.subscriptions(), 0, "the old owner's subscription ended");
    let fed = bob_feed.pushes();
    assert_eq!(events(&fed), [format!("app.Note.updated#{id}")]);
    assert_eq!(fed[0].data["owner_id"], 2);
    assert!(
        bob_objects.pushes().is_empty(),
        "bob never subscribed to the object: his retrieve was refused"
    );

    // Later changes, even one that gives it back, never reach the old subscription.
    ok(&stack
        .http_as(&admin(), &format!("app.Note.update#{id}"), json!({"title": "t2"}))
        .await);
    ok(&stack
        .http_as(
            &admin(),
            &format!("app.Note.update#{id}"),
            json!({"owner_id": 1, "title": "t3"}),
        )
        .await);
    ok(&stack
        .http_as(&admin(), &format!("app.Note.update#{id}"), json!({"title": "t4"}))
        .await);
    assert!(alice.pushes().is_empty(), "the ended subscription stays ended");
    assert!(bob_objects.pushes().is_empty());
    let fed = bob_feed.pushes();
    assert_eq!(
        events(&fed),
        [format!("app.Note.updated#{id}"), format!("app.Note.deleted#{id}")],
        "bob's feed sees t2, then the note leave his sight"
    );
    assert_eq!(fed[0].data["title"], "t2");
    assert_eq!(fed[1].data, json!({"id": id}));

    // Retrieving again is a fresh subscription for whoever may read it now.
    ok(&stack.ws(&mut alice, &name, json!({})).await);
    ok(&stack
        .http_as(&admin(), &format!("app.Note.update#{id}"), json!({"title": "t5"}))
        .await);
    assert_eq!(events(&alice.pushes()), [name.as_str()]);
}

each_backend!(
    #[tokio::test]
    the_new_owner_gets_object_pushes_once_subscribed
);
async fn the_new_owner_gets_object_pushes_once_subscribed(db: &TestDb) {
    create_tables(db).await;
    let stack = owner_stack(db, Hub::new());
    let mut bob = stack.connect(user("2"));

    let id = id_of(&ok(&stack
        .http_as(&admin(), "app.Note.create", json!({"owner_id": 1, "title": "t0"}))
        .await));
    // `subscribe#id` does not reveal anything: it answers the same whatever the object.
    ok(&stack.ws(&mut bob, &format!("app.Note.subscribe#{id}"), json!({})).await);
    ok(&stack
        .http_as(&admin(), &format!("app.Note.update#{id}"), json!({"title": "t1"}))
        .await);
    assert!(bob.pushes().is_empty(), "bob may not read it yet");

    ok(&stack
        .http_as(&admin(), &format!("app.Note.update#{id}"), json!({"owner_id": 2}))
        .await);
    let name = format!("app.Note.retrieve#{id}");
    let got = ok(&stack.ws(&mut bob, &name, json!({})).await);
    assert_eq!(got["owner_id"], 2);
    ok(&stack
        .http_as(&admin(), &format!("app.Note.update#{id}"), json!({"title": "t2"}))
        .await);
    let pushes = bob.pushes();
    assert_eq!(events(&pushes), [name.as_str()]);
    assert_eq!(pushes[0].data["title"], "t2");
}

each_backend!(
    #[tokio::test]
    anonymous_sees_nothing_under_an_owner_rule
);
async fn anonymous_sees_nothing_under_an_owner_rule(db: &TestDb) {
    create_tables(db).await;
    let stack = owner_stack(db, Hub::new());
    let mut nobody = stack.connect(Identity::anonymous());
    ok(&stack.ws(&mut nobody, "app.Note.subscribe", json!({})).await);
    ok(&stack.ws(&mut nobody, "app.Note.subscribe#1", json!({})).await);

    let id = id_of(&ok(&stack
        .http_as(&admin(), "app.Note.create", json!({"owner_id": 1, "title": "t"}))
        .await));
    assert_eq!(id, 1);
    assert_eq!(
        code(&stack.ws(&mut nobody, "app.Note.retrieve#1", json!({})).await),
        "not_found"
    );
    ok(&stack
        .http_as(&admin(), "app.Note.update#1", json!({"title": "u"}))
        .await);
    ok(&stack.http_as(&admin(), "app.Note.delete#1", json!({})).await);
    assert!(nobody.pushes().is_empty());

    // Resuming from the start replays nothing either.
    let since = json!({"since": {"epoch": stack.hub.epoch().to_string(), "seq": 0}});
    let mut late = stack.connect(Identity::anonymous());
    let reply = stack.ws(&mut late, "app.Note.subscribe", since).await;
    ok(&reply);
    assert!(!reply.meta().resync);
    assert!(late.pushes().is_empty());
}

each_backend!(
    #[tokio::test]
    search_and_list_show_only_readable_rows
);
async fn search_and_list_show_only_readable_rows(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 3).await;
    seed_notes(db, 2, 2).await;
    let stack = owner_stack(db, Hub::new());

    let page = ok(&stack.http_as(&user("2"), "app.Note.search", json!({})).await);
    let owners: BTreeSet<i64> = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["owner_id"].as_i64().unwrap())
        .collect();
    assert_eq!(owners, BTreeSet::from([2]), "bob's search lists alice's notes");
    assert_eq!(page["count"], 2);

    let rows = ok(&stack.http_as(&user("2"), "app.Note.list", json!({})).await);
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let rows = ok(&stack.http("app.Note.list", json!({})).await);
    assert_eq!(rows, json!([]), "anonymous lists everything");
}

// ---------------------------------------------------------------------------
// Serializers
// ---------------------------------------------------------------------------

each_backend!(
    #[tokio::test]
    list_serializer_shapes_rows_and_single_objects_use_the_detail_serializer
);
async fn list_serializer_shapes_rows_and_single_objects_use_the_detail_serializer(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 2).await;
    let binding = notes(db).list_serializer(Fields::new(["title", "id"])).build().unwrap();
    let stack = Stack::new(Hub::new(), vec![binding]);
    let mut conn = stack.connect(user("1"));

    let page = ok(&stack.ws(&mut conn, "app.Note.search", json!({})).await);
    for row in page["rows"].as_array().unwrap() {
        assert_eq!(keys(row), ["title", "id"], "the list serializer's fields, in its order");
    }
    assert_eq!(page["rows"][0], json!({"title": "note 00", "id": 1}));
    let rows = ok(&stack.http("app.Note.list", json!({"order": "-id"})).await);
    assert_eq!(
        rows,
        json!([{"title": "note 01", "id": 2}, {"title": "note 00", "id": 1}])
    );

    let detail = ok(&stack.http("app.Note.retrieve#1", json!({})).await);
    assert_eq!(detail, note_row(db, 1).await);
    let many = ok(&stack.http("app.Note.retrieve", json!({"id": [1, 2]})).await);
    assert_eq!(many, json!([note_row(db, 1).await, note_row(db, 2).await]));

    // The feed push (of the search's subscription) is a detail view.
    let created = ok(&stack
        .http("app.Note.create", json!({"owner_id": 1, "title": "new", "body": "b"}))
        .await);
    assert_eq!(created, note_row(db, 3).await);
    let pushes = conn.pushes();
    assert_eq!(events(&pushes), ["app.Note.created"]);
    assert_eq!(pushes[0].data, created);
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct NoteView {
    id: i64,
    #[serde(rename(serialize = "heading"))]
    title: String,
    body: String,
}

each_backend!(
    #[tokio::test]
    a_typed_detail_serializer_is_used_for_every_single_object_view
);
async fn a_typed_detail_serializer_is_used_for_every_single_object_view(db: &TestDb) {
    create_tables(db).await;
    let binding = notes(db)
        .detail_serializer(Typed::<NoteView>::new())
        .list_serializer(Fields::new(["id", "title"]))
        .build()
        .unwrap();
    let stack = Stack::new(Hub::new(), vec![binding]);
    let mut feed = stack.connect(user("1"));
    ok(&stack.ws(&mut feed, "app.Note.subscribe", json!({})).await);

    let created = ok(&stack
        .http(
            "app.Note.create",
            json!({"owner_id": 1, "title": "hello", "body": "b0"}),
        )
        .await);
    assert_eq!(created, json!({"id": 1, "heading": "hello", "body": "b0"}));

    let mut watcher = stack.connect(user("1"));
    let retrieved = ok(&stack.ws(&mut watcher, "app.Note.retrieve#1", json!({})).await);
    assert_eq!(retrieved, created);
    let many = ok(&stack.http("app.Note.retrieve", json!({"id": [1]})).await);
    assert_eq!(many, json!([created]));

    let updated = ok(&stack.http("app.Note.update", json!({"id": 1, "title": "bye"})).await);
    assert_eq!(updated, json!({"id": 1, "heading": "bye", "body": "b0"}));
    let saved = ok(&stack.http("app.Note.save", json!({"id": 1, "body": "b1"})).await);
    assert_eq!(saved, json!({"success": true, "id": 1}));

    let object_pushes = watcher.pushes();
    assert_eq!(events(&object_pushes), ["app.Note.retrieve#1", "app.Note.retrieve#1"]);
    assert_eq!(object_pushes[0].data, updated);
    assert_eq!(object_pushes[1].data, json!({"id": 1, "heading": "bye", "body": "b1"}));

    let feed_pushes = feed.pushes();
    assert_eq!(
        events(&feed_pushes),
        ["app.Note.created", "app.Note.updated#1", "app.Note.updated#1"]
    );
    assert_eq!(feed_pushes[0].data, created);
    assert_eq!(feed_pushes[1].data, updated);

    // Rows keep the list serializer: the stored name.
    let page = ok(&stack.http("app.Note.search", json!({})).await);
    assert_eq!(page["rows"], json!([{"id": 1, "title": "bye"}]));

    // The renamed field is still written under its declared name only.
    let renamed = stack.http("app.Note.update#1", json!({"heading": "x"})).await;
    assert_eq!(error_fields(&renamed), BTreeSet::from(["heading".to_owned()]));
}

each_backend!(
    #[tokio::test]
    building_checks_serializer_fields_and_the_stream_name
);
async fn building_checks_serializer_fields_and_the_stream_name(db: &TestDb) {
    create_tables(db).await;
    let with_password = || {
        ModelSchema::builder("users")
            .field(Field::integer("id").read())
            .field(Field::text("username").read().write())
            .field(Field::text("password").write())
            .build()
            .unwrap()
    };

    let undeclared = notes(db).list_serializer(Fields::new(["id", "secret"])).build();
    assert_eq!(
        undeclared.unwrap_err(),
        ConfigError::UnreadableSerializerField("secret".into())
    );
    let undeclared = notes(db).detail_serializer(Fields::new(["nope"])).build();
    assert_eq!(
        undeclared.unwrap_err(),
        ConfigError::UnreadableSerializerField("nope".into())
    );
    let write_only = ModelBinding::builder(USERS, db.database(), with_password())
        .detail_serializer(Fields::new(["id", "password"]))
        .build();
    assert_eq!(
        write_only.unwrap_err(),
        ConfigError::UnreadableSerializerField("password".into())
    );
    let write_only = ModelBinding::builder(USERS, db.database(), with_password())
        .list_serializer(Fields::new(["username", "password"]))
        .build();
    assert_eq!(
        write_only.unwrap_err(),
        ConfigError::UnreadableSerializerField("password".into())
    );
    assert!(
        ModelBinding::builder(USERS, db.database(), with_password())
            .detail_serializer(Fields::new(["id", "username"]))
            .build()
            .is_ok()
    );

    for stream in ["", "app Note", "app#Note", "app..Note", ".Note", "app.", "app\nNote"] {
        let built = ModelBinding::builder(stream, db.database(), notes_schema().build().unwrap()).build();
        assert_eq!(
            built.unwrap_err(),
            ConfigError::InvalidStream(stream.into()),
            "{stream:?}"
        );
    }
    // A plain name is a valid stream, as for custom bindings.
    assert!(
        ModelBinding::builder("notes", db.database(), notes_schema().build().unwrap())
            .build()
            .is_ok()
    );
}

// ---------------------------------------------------------------------------
// Hidden columns and constraint mapping
// ---------------------------------------------------------------------------

each_backend!(
    #[tokio::test]
    the_hidden_column_never_appears_in_a_reply_or_a_push
);
async fn the_hidden_column_never_appears_in_a_reply_or_a_push(db: &TestDb) {
    create_tables(db).await;
    let stack = Stack::new(Hub::new(), vec![users(db).build().unwrap()]);
    let mut conn = stack.connect(user("1"));
    ok(&stack.ws(&mut conn, "auth.User.subscribe", json!({})).await);

    let mut replies = Vec::new();
    replies.push(
        stack
            .ws(
                &mut conn,
                "auth.User.create",
                json!({"username": "alice", "email": "a@example.com"}),
            )
            .await,
    );
    replies.push(stack.ws(&mut conn, "auth.User.retrieve#1", json!({})).await);
    replies.push(stack.ws(&mut conn, "auth.User.retrieve", json!({"id": [1]})).await);
    replies.push(stack.ws(&mut conn, "auth.User.search", json!({})).await);
    replies.push(stack.ws(&mut conn, "auth.User.list", json!({})).await);
    replies.push(
        stack
            .ws(&mut conn, "auth.User.update#1", json!({"email": "alice@example.com"}))
            .await,
    );
    replies.push(
        stack
            .ws(&mut conn, "auth.User.save", json!({"id": 1, "username": "alice2"}))
            .await,
    );
    // Searching for the secret's text finds nothing: it is not a search field.
    let search = stack.http("auth.User.search", json!({"query": SECRET})).await;
    assert_eq!(ok(&search)["count"], 0);
    replies.push(search);
    replies.push(stack.ws(&mut conn, "auth.User.delete#1", json!({})).await);

    for reply in &replies {
        ok(reply);
        let text = encoded(reply);
        assert!(!text.contains("secret") && !text.contains(SECRET), "{text}");
    }
    let pushes = conn.pushes();
    assert!(pushes.len() >= 6, "{:?}", events(&pushes));
    for push in &pushes {
        assert!(
            !push.raw.contains("secret") && !push.raw.contains(SECRET),
            "{}",
            push.raw
        );
    }

    // Nor can it be filtered or ordered on.
    let filtered = stack
        .http("auth.User.search", json!({"filters": {"secret": SECRET}}))
        .await;
    assert_eq!(error_fields(&filtered), BTreeSet::from(["secret".to_owned()]));
    assert_eq!(
        error_fields(&stack.http("auth.User.list", json!({"order": "secret"})).await),
        BTreeSet::from(["order".to_owned()])
    );
    assert!(!encoded(&filtered).contains(SECRET));
}

each_backend!(
    #[tokio::test]
    writing_the_hidden_column_is_validation_and_writes_nothing
);
async fn writing_the_hidden_column_is_validation_and_writes_nothing(db: &TestDb) {
    create_tables(db).await;
    let stack = Stack::new(Hub::new(), vec![users(db).build().unwrap()]);
    let mut feed = stack.connect(user("1"));
    let subscribed = stack.ws(&mut feed, "auth.User.subscribe", json!({})).await;
    assert_eq!(position(&subscribed).map(|(_, seq)| seq), Some(0));

    let create = stack
        .http(
            "auth.User.create",
            json!({"username": "mallory", "email": "m@example.com", "secret": "mine"}),
        )
        .await;
    assert_eq!(error_fields(&create), BTreeSet::from(["secret".to_owned()]));
    assert_eq!(user_count(db).await, 0, "nothing was inserted");

    ok(&stack
        .http(
            "auth.User.create",
            json!({"username": "alice", "email": "a@example.com"}),
        )
        .await);
    for (name, data) in [
        ("auth.User.update#1", json!({"secret": "mine"})),
        (
            "auth.User.update#1",
            json!({"email": "new@example.com", "secret": "mine"}),
        ),
        ("auth.User.save", json!({"id": 1, "username": "x", "secret": "mine"})),
        (
            "auth.User.save",
            json!({"username": "bob", "email": "b@example.com", "secret": "mine"}),
        ),
        (
            "auth.User.create",
            json!({"username": "carol", "email": "c@example.com", "id": 7}),
        ),
    ] {
        let reply = stack.http(name, data.clone()).await;
        assert_eq!(code(&reply), "validation", "{name} {data}");
        assert!(!encoded(&reply).contains(SECRET), "messages never echo stored values");
    }
    let stored = db.rows("SELECT username, email, secret FROM users").await;
    assert_eq!(
        Value::Array(stored.into_iter().map(Value::Object).collect()),
        json!([{"username": "alice", "email": "a@example.com", "secret": SECRET}])
    );
    // Only the one successful create was published.
    assert_eq!(events(&feed.pushes()), ["auth.User.created"]);
    assert_eq!(stack.hub.position(USERS).seq, 1);
}

each_backend!(
    #[tokio::test]
    a_unique_violation_is_validation_on_the_field
);
async fn a_unique_violation_is_validation_on_the_field(db: &TestDb) {
    create_tables(db).await;
    let stack = Stack::new(Hub::new(), vec![users(db).build().unwrap()]);
    let mut feed = stack.connect(user("1"));
    ok(&stack.ws(&mut feed, "auth.User.subscribe", json!({})).await);

    ok(&stack
        .http(
            "auth.User.create",
            json!({"username": "alice", "email": "a@example.com"}),
        )
        .await);
    ok(&stack
        .http("auth.User.create", json!({"username": "bob", "email": "b@example.com"}))
        .await);
    assert_eq!(feed.pushes().len(), 2);

    let mut writer = stack.connect(user("1"));
    let dup = stack
        .ws(
            &mut writer,
            "auth.User.create",
            json!({"username": "alice", "email": "other@example.com"}),
        )
        .await;
    assert_eq!(error_fields(&dup), BTreeSet::from(["username".to_owned()]));
    let renamed = stack.http("auth.User.update#2", json!({"username": "alice"})).await;
    assert_eq!(error_fields(&renamed), BTreeSet::from(["username".to_owned()]));
    let saved = stack
        .http("auth.User.save", json!({"username": "bob", "email": "x@example.com"}))
        .await;
    assert_eq!(error_fields(&saved), BTreeSet::from(["username".to_owned()]));

    assert_eq!(user_count(db).await, 2);
    assert!(feed.pushes().is_empty(), "a refused write publishes nothing");
    assert!(writer.pushes().is_empty());
    assert_eq!(stack.hub.position(USERS).seq, 2, "nor takes a sequence number");
    let bob = ok(&stack.http("auth.User.retrieve#2", json!({})).await);
    assert_eq!(bob["username"], "bob");
}

each_backend!(
    #[tokio::test]
    a_not_null_column_not_declared_required_is_a_client_error
);
async fn a_not_null_column_not_declared_required_is_a_client_error(db: &TestDb) {
    create_tables(db).await;
    let stack = Stack::new(Hub::new(), vec![users(db).build().unwrap()]);
    let mut feed = stack.connect(user("1"));
    ok(&stack.ws(&mut feed, "auth.User.subscribe", json!({})).await);

    let reply = stack.http("auth.User.create", json!({"username": "alice"})).await;
    let error = reply.error_ref().expect("the insert violates NOT NULL");
    assert_ne!(
        code(&reply),
        "internal",
        "a constraint is the client's input, not a bug"
    );
    assert!(error.code().http_status().is_client_error(), "{error:?}");
    assert_eq!(
        error_fields(&reply),
        BTreeSet::from(["email".to_owned()]),
        "the store names the column"
    );
    assert!(!encoded(&reply).to_lowercase().contains("insert"), "no SQL leaks");
    assert_eq!(user_count(db).await, 0);
    assert!(feed.pushes().is_empty());

    // Explicit null on a non-nullable field is caught before the database.
    let null = stack
        .http("auth.User.create", json!({"username": "alice", "email": null}))
        .await;
    assert_eq!(error_fields(&null), BTreeSet::from(["email".to_owned()]));
}

// ---------------------------------------------------------------------------
// Push tagging and ordering
// ---------------------------------------------------------------------------

each_backend!(
    #[tokio::test]
    pushes_caused_by_a_request_wait_for_its_reply_on_its_connection_only
);
async fn pushes_caused_by_a_request_wait_for_its_reply_on_its_connection_only(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 1).await;
    let stack = Stack::new(Hub::new(), vec![notes(db).build().unwrap()]);
    let mut writer = stack.connect(user("1"));
    let mut other = stack.connect(user("2"));

    ok(&stack.ws(&mut writer, "app.Note.subscribe", json!({})).await); // request 1
    ok(&stack.ws(&mut writer, "app.Note.retrieve#1", json!({})).await); // request 2
    ok(&stack.ws(&mut other, "app.Note.subscribe", json!({})).await);
    ok(&stack.ws(&mut other, "app.Note.retrieve#1", json!({})).await);

    ok(&stack.ws(&mut writer, "app.Note.update#1", json!({"title": "a"})).await); // request 3
    let mine = writer.pushes();
    assert_eq!(events(&mine), ["app.Note.retrieve#1", "app.Note.updated#1"]);
    assert!(
        mine.iter().all(|p| p.after_reply == Some(3)),
        "{:?}",
        mine.iter().map(|p| p.after_reply).collect::<Vec<_>>()
    );
    let theirs = other.pushes();
    assert_eq!(events(&theirs), ["app.Note.retrieve#1", "app.Note.updated#1"]);
    assert!(theirs.iter().all(|p| p.after_reply.is_none()));

    // Every write action tags the same way, with its own request number.
    let created = ok(&stack
        .ws(&mut writer, "app.Note.create", json!({"owner_id": 1, "title": "b"}))
        .await); // request 4
    ok(&stack
        .ws(&mut writer, "app.Note.save", json!({"id": 1, "title": "c"}))
        .await); // request 5
    ok(&stack
        .ws(&mut writer, &format!("app.Note.delete#{}", id_of(&created)), json!({}))
        .await); // request 6
    let tags: Vec<(String, Option<u64>)> = writer.pushes().into_iter().map(|p| (p.event, p.after_reply)).collect();
    assert_eq!(
        tags,
        [
            ("app.Note.created".to_owned(), Some(4)),
            ("app.Note.retrieve#1".to_owned(), Some(5)),
            ("app.Note.updated#1".to_owned(), Some(5)),
            ("app.Note.deleted#2".to_owned(), Some(6)),
        ]
    );
    assert!(other.pushes().iter().all(|p| p.after_reply.is_none()));

    // The other connection's write is tagged for it, not for the writer.
    ok(&stack.ws(&mut other, "app.Note.update#1", json!({"title": "d"})).await); // other's request 3
    assert!(writer.pushes().iter().all(|p| p.after_reply.is_none()));
    assert!(other.pushes().iter().all(|p| p.after_reply == Some(3)));

    // Writes without a connection tag nobody.
    ok(&stack.http("app.Note.update#1", json!({"title": "e"})).await);
    assert!(writer.pushes().iter().all(|p| p.after_reply.is_none()));
    assert!(other.pushes().iter().all(|p| p.after_reply.is_none()));

    // A delete reaches a connection that follows both the object and the feed once.
    ok(&stack.ws(&mut writer, "app.Note.delete#1", json!({})).await); // request 7
    let gone = writer.pushes();
    assert_eq!(events(&gone), ["app.Note.deleted#1"]);
    assert_eq!(gone[0].data, json!({"id": 1}));
    assert_eq!(gone[0].after_reply, Some(7));
    assert_eq!(events(&other.pushes()), ["app.Note.deleted#1"]);
    assert_eq!(writer.subscriptions(), 1, "only the feed is left");
}

each_backend!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_updates_publish_in_commit_order
);
async fn concurrent_updates_publish_in_commit_order(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 1).await;
    let stack = Arc::new(Stack::new(Hub::new(), vec![notes(db).build().unwrap()]));
    let mut feed = stack.connect(user("1"));
    ok(&stack.ws(&mut feed, "app.Note.subscribe", json!({})).await);

    let mut last_seq = 0;
    for round in 0..10 {
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let stack = stack.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let data = json!({"title": format!("r{round} t{i}"), "body": format!("{i}")});
                    stack.http("app.Note.update#1", data).await
                })
            })
            .collect();
        let mut replied = BTreeSet::new();
        for task in tasks {
            let reply = task.await.expect("the task completes");
            replied.insert(ok(&reply)["title"].as_str().unwrap().to_owned());
        }

        let pushes = feed.pushes();
        assert_eq!(pushes.len(), 8, "round {round}: {:?}", events(&pushes));
        let got = seqs(&pushes);
        let expected: Vec<u64> = (last_seq + 1..=last_seq + 8).collect();
        assert_eq!(
            got, expected,
            "round {round}: seq grows by one per change, in queue order"
        );
        last_seq += 8;
        let pushed: BTreeSet<String> = pushes
            .iter()
            .map(|p| p.data["title"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(pushed, replied, "round {round}: one push per update");
        let last = pushes.last().unwrap();
        assert_eq!(
            last.data,
            note_row(db, 1).await,
            "round {round}: the last push is the committed state"
        );
        let retrieved = ok(&stack.http("app.Note.retrieve#1", json!({})).await);
        assert_eq!(retrieved, last.data);
    }
}

// ---------------------------------------------------------------------------
// Resuming with `since`
// ---------------------------------------------------------------------------

each_backend!(
    #[tokio::test]
    retrieve_since_replays_missed_changes_under_the_exact_event
);
async fn retrieve_since_replays_missed_changes_under_the_exact_event(db: &TestDb) {
    create_tables(db).await;
    let stack = Stack::new(Hub::new(), vec![notes(db).build().unwrap()]);
    ok(&stack
        .http("app.Note.create", json!({"owner_id": 1, "title": "a0"}))
        .await); // seq 1
    ok(&stack
        .http("app.Note.create", json!({"owner_id": 1, "title": "b0"}))
        .await); // seq 2

    let mut first = stack.connect(user("1"));
    let seen = stack.ws(&mut first, "app.Note.retrieve#1", json!({})).await;
    let (epoch, seq) = position(&seen).expect("a subscribing reply carries its position");
    assert_eq!(seq, 2);
    assert_eq!(epoch, stack.hub.epoch().to_string());
    drop(first); // the client goes away

    ok(&stack.http("app.Note.update#1", json!({"title": "a1"})).await); // seq 3
    ok(&stack.http("app.Note.update#2", json!({"title": "b1"})).await); // seq 4
    ok(&stack.http("app.Note.update#1", json!({"title": "a2"})).await); // seq 5
    ok(&stack.http("app.Note.update#1", json!({"title": "a3"})).await); // seq 6

    let mut again = stack.connect(user("1"));
    ok(&stack.ws(&mut again, "app.Note.subscribe#2", json!({})).await); // request 1
    let reply = stack
        .ws(
            &mut again,
            "app.Note.retrieve#1",
            json!({"since": {"epoch": epoch, "seq": seq}}),
        )
        .await; // request 2
    assert_eq!(ok(&reply)["title"], "a3");
    assert!(!reply.meta().resync);
    assert_eq!(position(&reply), Some((epoch.clone(), 6)));

    let replayed = again.pushes();
    assert_eq!(events(&replayed), ["app.Note.retrieve#1"; 3]);
    assert_eq!(seqs(&replayed), [3, 5, 6]);
    let titles: Vec<&Value> = replayed.iter().map(|p| &p.data["title"]).collect();
    assert_eq!(titles, [&json!("a1"), &json!("a2"), &json!("a3")]);
    assert!(replayed.iter().all(|p| p.epoch.as_deref() == Some(epoch.as_str())));
    assert!(
        replayed.iter().all(|p| p.after_reply == Some(2)),
        "replay waits for the retrieve's reply"
    );

    // Then live, with no gap and no duplicate.
    ok(&stack.http("app.Note.update#1", json!({"title": "a4"})).await); // seq 7
    let live = again.pushes();
    assert_eq!(events(&live), ["app.Note.retrieve#1"]);
    assert_eq!(seqs(&live), [7]);
    assert_eq!(live[0].after_reply, None);

    // The `data.id` form echoes its own event string.
    let mut third = stack.connect(user("1"));
    ok(&stack
        .ws(
            &mut third,
            "app.Note.retrieve",
            json!({"id": 1, "since": {"epoch": epoch, "seq": 6}}),
        )
        .await);
    let replayed = third.pushes();
    assert_eq!(events(&replayed), ["app.Note.retrieve"]);
    assert_eq!(seqs(&replayed), [7]);
}

each_backend!(
    #[tokio::test]
    retrieve_since_an_unknown_position_asks_for_a_resync
);
async fn retrieve_since_an_unknown_position_asks_for_a_resync(db: &TestDb) {
    create_tables(db).await;
    let hub = Hub::with_config(HubConfig::default().history_len(2));
    let stack = Stack::new(hub, vec![notes(db).build().unwrap()]);
    ok(&stack
        .http("app.Note.create", json!({"owner_id": 1, "title": "a0"}))
        .await);
    for i in 1..=4 {
        ok(&stack.http("app.Note.update#1", json!({"title": format!("a{i}")})).await);
    }
    let epoch = stack.hub.epoch().to_string();

    for since in [
        json!({"epoch": "another-hub", "seq": 1}),
        json!({"epoch": epoch, "seq": 99}),
        json!({"epoch": epoch, "seq": 1}), // trimmed: only 2 changes are kept
    ] {
        let now = stack.hub.position(NOTES).seq;
        let mut conn = stack.connect(user("1"));
        let reply = stack
            .ws(&mut conn, "app.Note.retrieve#1", json!({"since": since}))
            .await;
        assert_eq!(ok(&reply)["title"], "a4", "{since}");
        assert!(reply.meta().resync, "{since}");
        assert!(encoded(&reply).contains(r#""resync":true"#));
        assert_eq!(position(&reply), Some((epoch.clone(), now)), "{since}");
        assert!(conn.pushes().is_empty(), "{since}: nothing replayed");
        // Still subscribed from now on.
        ok(&stack.http("app.Note.update#1", json!({"title": "a4"})).await);
        assert_eq!(events(&conn.pushes()), ["app.Note.retrieve#1"]);
    }

    // Within history it resumes.
    let now = stack.hub.position(NOTES).seq;
    let mut conn = stack.connect(user("1"));
    let reply = stack
        .ws(
            &mut conn,
            "app.Note.retrieve#1",
            json!({"since": {"epoch": epoch, "seq": now - 1}}),
        )
        .await;
    assert!(!reply.meta().resync);
    assert_eq!(seqs(&conn.pushes()), [now]);

    // A malformed `since` is validation.
    let mut conn = stack.connect(user("1"));
    let bad = stack
        .ws(&mut conn, "app.Note.retrieve#1", json!({"since": {"seq": "x"}}))
        .await;
    assert_eq!(error_fields(&bad), BTreeSet::from(["since".to_owned()]));
    assert_eq!(conn.subscriptions(), 0);
}

// ---------------------------------------------------------------------------
// save, delete, update
// ---------------------------------------------------------------------------

each_backend!(
    #[tokio::test]
    save_creates_without_an_id_and_updates_with_one
);
async fn save_creates_without_an_id_and_updates_with_one(db: &TestDb) {
    create_tables(db).await;
    let stack = Stack::new(Hub::new(), vec![notes(db).build().unwrap()]);
    let mut feed = stack.connect(user("1"));
    ok(&stack.ws(&mut feed, "app.Note.subscribe", json!({})).await);

    let created = ok(&stack
        .http("app.Note.save", json!({"owner_id": 1, "title": "draft"}))
        .await);
    assert_eq!(created, json!({"success": true, "id": 1}));
    assert_eq!(
        note_row(db, 1).await,
        json!({"id": 1, "owner_id": 1, "title": "draft", "body": ""})
    );

    let updated = ok(&stack.http("app.Note.save", json!({"id": 1, "body": "text"})).await);
    assert_eq!(updated, json!({"success": true, "id": 1}));
    let by_hash = ok(&stack.http("app.Note.save#1", json!({"title": "final"})).await);
    assert_eq!(by_hash, json!({"success": true, "id": 1}));
    assert_eq!(
        note_row(db, 1).await,
        json!({"id": 1, "owner_id": 1, "title": "final", "body": "text"})
    );
    assert_eq!(note_count(db).await, 1);
    assert_eq!(
        events(&feed.pushes()),
        ["app.Note.created", "app.Note.updated#1", "app.Note.updated#1"]
    );

    // A create through save still needs the required fields.
    let incomplete = stack.http("app.Note.save", json!({"title": "no owner"})).await;
    assert_eq!(error_fields(&incomplete), BTreeSet::from(["owner_id".to_owned()]));
    // Saving a missing id does not create it.
    assert_eq!(
        code(&stack.http("app.Note.save", json!({"id": 42, "title": "x"})).await),
        "not_found"
    );
    assert_eq!(note_count(db).await, 1);
    assert!(feed.pushes().is_empty());
}

each_backend!(
    #[tokio::test]
    delete_and_update_reject_what_they_cannot_do
);
async fn delete_and_update_reject_what_they_cannot_do(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 1).await;
    let stack = Stack::new(Hub::new(), vec![notes(db).build().unwrap()]);
    let mut feed = stack.connect(user("1"));
    ok(&stack.ws(&mut feed, "app.Note.subscribe", json!({})).await);

    assert_eq!(code(&stack.http("app.Note.delete#99", json!({})).await), "not_found");
    assert_eq!(
        code(&stack.http("app.Note.delete", json!({"id": 99})).await),
        "not_found"
    );
    assert_eq!(
        error_fields(&stack.http("app.Note.delete", json!({})).await),
        BTreeSet::from(["id".to_owned()])
    );
    assert_eq!(
        code(&stack.http("app.Note.update#99", json!({"title": "x"})).await),
        "not_found"
    );

    let only_id = stack.http("app.Note.update", json!({"id": 1})).await;
    assert_eq!(code(&only_id), "validation");
    let only_hash = stack.http("app.Note.update#1", json!({})).await;
    assert_eq!(code(&only_hash), "validation");
    let no_id = stack.http("app.Note.update", json!({"title": "x"})).await;
    assert_eq!(error_fields(&no_id), BTreeSet::from(["id".to_owned()]));
    let read_only = stack.http("app.Note.update#1", json!({"id": 1, "title": "x"})).await;
    ok(&read_only); // `id` names the target, it is not written
    let typo = stack.http("app.Note.update#1", json!({"titel": "x"})).await;
    assert_eq!(error_fields(&typo), BTreeSet::from(["titel".to_owned()]));
    let typo = stack.http("app.Note.search", json!({"pgae": 2})).await;
    assert_eq!(error_fields(&typo), BTreeSet::from(["pgae".to_owned()]));
    let typo = stack.http("app.Note.delete#1", json!({"force": true})).await;
    assert_eq!(error_fields(&typo), BTreeSet::from(["force".to_owned()]));
    assert_eq!(
        code(&stack.http("app.Note.archive#1", json!({})).await),
        "unknown_event"
    );
    assert_eq!(
        code(&stack.http("app.Other.retrieve#1", json!({})).await),
        "unknown_event"
    );

    let deleted = ok(&stack.http("app.Note.delete#1", json!({})).await);
    assert_eq!(deleted, json!({"success": true, "id": 1}));
    assert_eq!(code(&stack.http("app.Note.delete#1", json!({})).await), "not_found");
    assert_eq!(code(&stack.http("app.Note.retrieve#1", json!({})).await), "not_found");
    assert_eq!(note_count(db).await, 0);
    assert_eq!(
        events(&feed.pushes()),
        ["app.Note.updated#1", "app.Note.deleted#1"],
        "only the two successful writes were published"
    );
}

// ---------------------------------------------------------------------------
// Page sizes
// ---------------------------------------------------------------------------

async fn search_limit(stack: &Stack, data: Value) -> (u64, usize) {
    let page = ok(&stack.http("app.Note.search", data).await);
    let limit = page["limit"].as_u64().expect("limit");
    (limit, page["rows"].as_array().expect("rows").len())
}

each_backend!(
    #[tokio::test]
    the_page_size_layer_sets_the_default_and_max_limit
);
async fn the_page_size_layer_sets_the_default_and_max_limit(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 130).await;
    let mut stack = Stack::new(Hub::new(), vec![notes(db).build().unwrap()]);

    // Without the layer: the protocol's 25 and 100.
    assert_eq!(search_limit(&stack, json!({})).await, (25, 25));
    assert_eq!(search_limit(&stack, json!({"limit": 1000})).await, (100, 100));

    stack.page_size = Some(PageSize::new(10, 20).unwrap());
    assert_eq!(search_limit(&stack, json!({})).await, (10, 10));
    assert_eq!(search_limit(&stack, json!({"limit": 15})).await, (15, 15));
    assert_eq!(search_limit(&stack, json!({"limit": 50})).await, (20, 20));
    assert_eq!(search_limit(&stack, json!({"limit": 0})).await, (1, 1));
    let last = ok(&stack.http("app.Note.search", json!({"page": 7, "limit": 50})).await);
    assert_eq!(last["limit"], 20);
    assert_eq!(last["count"], 130);
    assert_eq!(last["rows"].as_array().unwrap().len(), 10);
    assert_eq!(last["rows"][0]["id"], 121);
    let past = ok(&stack.http("app.Note.search", json!({"page": 8, "limit": 20})).await);
    assert_eq!(past["rows"], json!([]));
    assert_eq!(past["count"], 130);
}

each_backend!(
    #[tokio::test]
    a_schema_page_size_overrides_the_layers_default_but_not_its_max
);
async fn a_schema_page_size_overrides_the_layers_default_but_not_its_max(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 130).await;
    let binding = |size: u32| {
        let schema = notes_schema().page_size(size).build().unwrap();
        ModelBinding::builder(NOTES, db.database(), schema).build().unwrap()
    };

    let mut stack = Stack::new(Hub::new(), vec![binding(15)]);
    assert_eq!(search_limit(&stack, json!({})).await, (15, 15));
    assert_eq!(search_limit(&stack, json!({"limit": 1000})).await, (100, 100));
    stack.page_size = Some(PageSize::new(10, 20).unwrap());
    assert_eq!(search_limit(&stack, json!({})).await, (15, 15));
    assert_eq!(search_limit(&stack, json!({"limit": 50})).await, (20, 20));

    let mut stack = Stack::new(Hub::new(), vec![binding(30)]);
    assert_eq!(search_limit(&stack, json!({})).await, (30, 30));
    stack.page_size = Some(PageSize::new(10, 20).unwrap());
    assert_eq!(
        search_limit(&stack, json!({})).await,
        (20, 20),
        "the max still caps the schema's default"
    );
}

// ---------------------------------------------------------------------------
// Refusals have no side effects
// ---------------------------------------------------------------------------

each_backend!(
    #[tokio::test]
    a_refused_multi_retrieve_subscribes_nothing
);
async fn a_refused_multi_retrieve_subscribes_nothing(db: &TestDb) {
    create_tables(db).await;
    seed_notes(db, 1, 3).await;
    let hub = Hub::with_config(HubConfig::default().max_subscriptions(2));
    let stack = Stack::new(hub, vec![notes(db).build().unwrap()]);
    let mut conn = stack.connect(user("1"));

    let refused = stack.ws(&mut conn, "app.Note.retrieve", json!({"id": [1, 2, 3]})).await;
    assert_eq!(code(&refused), "payload_too_large");
    assert_eq!(conn.subscriptions(), 0, "an error reply leaves no subscription behind");
    ok(&stack.http("app.Note.update#1", json!({"title": "x"})).await);
    assert!(conn.pushes().is_empty(), "the client was told its retrieve failed");
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StrictView {
    id: i64,
    title: String,
    /// Does not fit the rows whose body is `"-"`: the serializer fails on them.
    #[serde(deserialize_with = "no_dash")]
    body: String,
}

fn no_dash<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let body = <String as serde::Deserialize>::deserialize(deserializer)?;
    if body == "-" {
        Err(serde::de::Error::custom("a dash"))
    } else {
        Ok(body)
    }
}

each_backend!(
    #[tokio::test]
    a_detail_serializer_failure_never_leaves_a_silent_gap
);
async fn a_detail_serializer_failure_never_leaves_a_silent_gap(db: &TestDb) {
    create_tables(db).await;
    let binding = notes(db).detail_serializer(Typed::<StrictView>::new()).build().unwrap();
    let stack = Stack::new(Hub::new(), vec![binding]);
    let mut feed = stack.connect(user("2"));
    ok(&stack.ws(&mut feed, "app.Note.subscribe", json!({})).await);

    let reply = stack
        .http("app.Note.create", json!({"owner_id": 1, "title": "t", "body": "-"}))
        .await;
    assert_eq!(code(&reply), "internal");
    let written = note_count(db).await;
    let pushes = feed.pushes();
    assert!(
        written == 0 || !pushes.is_empty(),
        "the row was committed ({written} rows) but the change was never published: \
         feed subscribers miss it with no resync (position {:?})",
        stack.hub.position(NOTES).seq
    );
}
