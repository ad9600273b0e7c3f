//! Several quickstart processes sharing one database and one channel layer
//! behave as one server (PROTOCOL.md §3): a write on one process reaches
//! subscribers on the others, in order and permission-filtered, on the Redis
//! and on the PostgreSQL layer; writes made outside the API (as with psql)
//! reach WebSocket and SSE subscribers; a payload over PostgreSQL's NOTIFY
//! limit arrives whole; and a Redis restart mid-stream loses no
//! acknowledged write and leaves no subscriber with a silent gap.
//!
//! Needs PostgreSQL (see `pg_schema`) and Redis at 127.0.0.1:6379 (or
//! `CHANNELS_BINDING_TEST_REDIS_URL`); the restart test runs its own
//! `redis-server` on a free port. Without them the tests fail under CI and
//! say SKIPPED loudly otherwise.
#![allow(clippy::unwrap_used)]

mod cluster_support;
mod common;
mod pg_schema;
mod quickstart_process_harness;

use std::time::Duration;

use cluster_support::{PrivateRedis, addr, redis_addr, redis_url, socket, start, subscribe, unique};
use common::{Client, Sse, http};
use quickstart_process_harness::Quickstart;
use serde_json::{Value, json};

/// Creates notes on `writer` and checks that `reader` (same owner, another
/// process) receives them in order with consecutive `seq`, and that
/// `stranger` (another user, on the reader's process) receives none.
async fn notes_cross_processes(writer: &Quickstart, reader: &Quickstart) {
    let mut alice_reader = socket(reader, Some("1")).await;
    let mut bob = socket(reader, Some("2")).await;
    let mut anonymous = socket(reader, None).await;
    subscribe(&mut alice_reader, "notes.Note").await;
    subscribe(&mut bob, "notes.Note").await;
    subscribe(&mut anonymous, "auth.User").await;

    let mut alice_writer = socket(writer, Some("1")).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let reply = alice_writer
            .call(json!({"event": "notes.Note.create", "data": {"title": format!("note {n}"), "body": "b"}}))
            .await;
        assert!(reply.get("error").is_none(), "{reply}");
        ids.push(reply["data"]["id"].as_i64().unwrap());
    }
    let mut last_seq = None;
    for (n, id) in ids.iter().enumerate() {
        let push = alice_reader.recv().await;
        assert_eq!(push["event"], "notes.Note.created", "{push}");
        assert_eq!(push["data"]["id"], *id, "in commit order");
        assert_eq!(push["data"]["title"], format!("note {n}"));
        let seq = push["seq"].as_u64().unwrap();
        if let Some(last) = last_seq {
            assert_eq!(seq, last + 1, "consecutive sequence numbers");
        }
        last_seq = Some(seq);
    }
    bob.expect_silence(Duration::from_millis(300)).await;

    // A user write on the writer reaches the public feed on the reader.
    let reply = alice_writer
        .call(json!({"event": "auth.User.update", "data": {"id": 1, "username": "alice"}}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    let push = anonymous.recv().await;
    assert_eq!(push["event"], "auth.User.updated#1");
    assert_eq!(push["data"]["username"], "alice");
}

#[tokio::test]
async fn two_processes_on_redis_share_changes_in_order_and_filtered() {
    if redis_addr().await.is_none() {
        return;
    }
    let Some((_admin, _schema, database)) = pg_schema::schema().await else {
        return;
    };
    let prefix = unique("cb_cluster");
    let a = start(&database, &redis_url(), &prefix).await;
    let b = start(&database, &redis_url(), &prefix).await;
    notes_cross_processes(&a, &b).await;
    notes_cross_processes(&b, &a).await;
}

#[tokio::test]
async fn two_processes_on_postgres_share_changes_and_see_outside_writes() {
    let Some((admin, schema, database)) = pg_schema::schema().await else {
        return;
    };
    let a = start(&database, &database, "unused").await;
    let b = start(&database, &database, "unused").await;
    notes_cross_processes(&a, &b).await;

    // Writes made outside the API, as psql would: WebSocket and SSE
    // subscribers on both processes hear of them, filtered as usual.
    let mut on_a = socket(&a, None).await;
    subscribe(&mut on_a, "auth.User").await;
    let mut sse = Sse::open(addr(&b), "/api/auth.User/events", &[]).await;
    let mut owner = socket(&b, Some("1")).await;
    subscribe(&mut owner, "notes.Note").await;
    let mut stranger = socket(&a, Some("2")).await;
    subscribe(&mut stranger, "notes.Note").await;

    sqlx::query(&format!(
        "UPDATE {schema}.auth_user SET username = 'from_psql' WHERE id = 3"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let push = on_a.recv().await;
    assert_eq!(push["event"], "auth.User.updated#3", "{push}");
    assert_eq!(push["data"]["username"], "from_psql", "{push}");
    assert!(
        push["data"].get("password_hash").is_none(),
        "only readable fields: {push}"
    );
    let (_, event, data) = sse.next_event().await;
    assert_eq!(event, "auth.User.updated#3");
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap()["data"]["username"],
        "from_psql"
    );

    let (note,): (i64,) = sqlx::query_as(&format!(
        "INSERT INTO {schema}.notes_note (owner_id, title, body, created_at) VALUES (1, 'psql', '', '2026-01-01T00:00:00.000Z') RETURNING id"
    ))
    .fetch_one(&admin)
    .await
    .unwrap();
    let push = owner.recv().await;
    assert_eq!(push["event"], "notes.Note.created", "{push}");
    assert_eq!(push["data"]["id"], note);
    sqlx::query(&format!("DELETE FROM {schema}.notes_note WHERE id = {note}"))
        .execute(&admin)
        .await
        .unwrap();
    let push = owner.recv().await;
    assert_eq!(push["event"], format!("notes.Note.deleted#{note}"));
    assert_eq!(push["data"], json!({"id": note}));
    stranger.expect_silence(Duration::from_millis(300)).await;

    // Written through the API: announced once, not by both the API and the trigger.
    let mut writer = socket(&a, Some("1")).await;
    let reply = writer
        .call(json!({"event": "notes.Note.create", "data": {"title": "once", "body": ""}}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    let push = owner.recv().await;
    assert_eq!(push["data"]["title"], "once");
    owner.expect_silence(Duration::from_millis(300)).await;

    // A change bigger than NOTIFY's 8000 bytes arrives whole.
    let body = "x".repeat(9_500);
    let reply = writer
        .call(json!({"event": "notes.Note.create", "data": {"title": "big", "body": body}}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    let push = owner.recv().await;
    assert_eq!(push["data"]["title"], "big");
    assert_eq!(push["data"]["body"].as_str().map(str::len), Some(9_500));
}

/// A private `redis-server` on a free port, for the restart test.
#[tokio::test]
async fn a_redis_restart_loses_no_acknowledged_write_and_no_subscriber_is_left_unaware() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let Some((admin, schema, database)) = pg_schema::schema().await else {
        return;
    };
    let prefix = unique("cb_restart");
    let a = start(&database, &redis.url(), &prefix).await;
    let b = start(&database, &redis.url(), &prefix).await;
    let mut reader = socket(&b, Some("1")).await;
    subscribe(&mut reader, "notes.Note").await;
    let mut writer = socket(&a, Some("1")).await;

    let mut acknowledged = Vec::new();
    let write = async |writer: &mut Client, n: usize| {
        let reply = writer
            .call(json!({"event": "notes.Note.create", "data": {"title": format!("w{n}"), "body": ""}}))
            .await;
        // Every write is answered, and a success means committed.
        assert!(
            reply.get("error").is_none(),
            "writes do not depend on the channel layer: {reply}"
        );
        reply["data"]["id"].as_i64().unwrap()
    };
    for n in 0..10 {
        acknowledged.push(write(&mut writer, n).await);
    }
    let ready = http(addr(&a), "GET", "/ready", &[], "").await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json(),
        json!({"status": "ready", "checks": {"database": "ok", "channel_layer": "ok"}})
    );
    redis.stop();
    for n in 10..30 {
        acknowledged.push(write(&mut writer, n).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Readiness tells the load balancer while the channel layer is away.
    let ready = http(addr(&b), "GET", "/ready", &[], "").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.json(),
        json!({"status": "unavailable", "checks": {"database": "ok", "channel_layer": "unavailable"}})
    );
    assert!(redis.restart());
    for n in 30..40 {
        acknowledged.push(write(&mut writer, n).await);
    }

    // Every acknowledged write is in the database.
    let (stored,): (i64,) = sqlx::query_as(&format!(
        "SELECT count(*) FROM {schema}.notes_note WHERE id = ANY($1) AND title LIKE 'w%'"
    ))
    .bind(&acknowledged)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(stored as usize, acknowledged.len());

    // The reader heard of every change, or was told to resync (all the
    // writes were made before it reads: a resync covers what it missed).
    let last = *acknowledged.last().unwrap();
    let mut seen = Vec::new();
    let mut resynced = false;
    while !resynced && !seen.contains(&last) {
        // Reconnecting to Redis and catching up takes a few seconds at most.
        let push = reader.recv_within(Duration::from_secs(20)).await;
        match push["event"].as_str() {
            Some("notes.Note.resync") => {
                assert_eq!(push["resync"], true);
                resynced = true;
            }
            Some("notes.Note.created") => seen.push(push["data"]["id"].as_i64().unwrap()),
            _ => panic!("unexpected push {push}"),
        }
    }
    let missed: Vec<i64> = acknowledged.iter().copied().filter(|id| !seen.contains(id)).collect();
    assert!(
        missed.is_empty() || resynced,
        "missed {missed:?} without being told to resync"
    );

    // And the system recovered on its own: live pushes flow again.
    let id = write(&mut writer, 99).await;
    loop {
        let push = reader.recv_within(Duration::from_secs(20)).await;
        match push["event"].as_str() {
            Some("notes.Note.created") if push["data"]["id"] == id => break,
            // Late pushes of the first writes, or more resyncs: fine.
            Some("notes.Note.created" | "notes.Note.resync") => {}
            _ => panic!("unexpected push {push}"),
        }
    }
    assert_eq!(http(addr(&b), "GET", "/ready", &[], "").await.status, 200);

    // Metrics: connections, queues, deliveries, resyncs and events.
    let metrics = http(addr(&b), "GET", "/metrics", &[], "").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body;
    for name in [
        "channels_binding_connections",
        "channels_binding_queued_frames",
        "channels_binding_max_queue_depth",
        "channels_binding_deliveries_total",
        "channels_binding_resyncs_total",
        "channels_binding_broker_connected 1",
        "channels_binding_events_total{event=\"notes.Note.subscribe\",outcome=\"ok\"} 1",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
}
