//! Chaos tests over quickstart processes: the channel layer's bad days.
//!
//! * A reply lost after Redis or PostgreSQL ran the publish, and a Redis that hangs
//!   (SIGSTOP) past the command timeout: every acknowledged write reaches the
//!   subscriber on the other process once, in `seq` order, with no duplicate
//!   (the link retries under the batch's idempotency key).
//! * Four processes started at once on an empty PostgreSQL schema all come up.
//! * A resume on a process that has handled none of the stream's events
//!   replays every change or answers `resync`, never a silent skip.
//! * `/ready` answers 200 (`"slow"`) with a 2 s broker and 503 with a dead one.
//! * The durable hand-off (outbox and relay): a writer killed or terminated
//!   with 150 acknowledged changes waiting for a stopped Redis loses none;
//!   `psql` writes reach subscribers on the Redis layer, permission-filtered;
//!   another process relays within seconds when the relay's leader is
//!   killed; a 5,000-row `UPDATE` costs less than twice as much with capture,
//!   and API writes go on while a foreign transaction holds those rows.
//!
//! Needs PostgreSQL (see `pg_schema`), Redis at 127.0.0.1:6379 (or
//! `CHANNELS_BINDING_TEST_REDIS_URL`) and `redis-server` for a private one.
//! Without them the tests fail under CI and say SKIPPED loudly otherwise.
#![allow(clippy::unwrap_used)]

mod chaos_proxy;
mod cluster_support;
mod common;
mod pg_schema;
mod quickstart_process_harness;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use chaos_proxy::{ChaosProxy, Fault};
use cluster_support::{
    PrivateRedis, addr, redis_addr, redis_url, settings, socket, start, subscribe, try_start, unique,
};
use common::{Client, http};
use quickstart_process_harness::Quickstart;
use serde_json::{Value, json};

async fn write_note(writer: &mut Client, n: usize) -> i64 {
    write_titled(writer, &format!("c{n}")).await
}

async fn write_titled(writer: &mut Client, title: &str) -> i64 {
    let reply = writer
        .call(json!({"event": "notes.Note.create", "data": {"title": title, "body": ""}}))
        .await;
    assert!(
        reply.get("error").is_none(),
        "writes do not wait for the channel layer: {reply}"
    );
    reply["data"]["id"].as_i64().unwrap()
}

/// What a subscriber received of a list of acknowledged writes.
#[derive(Debug)]
struct Received {
    delivered: usize,
    duplicates: usize,
    resynced: bool,
    /// From the call until the last acknowledged write arrived (or the resync).
    took: Duration,
}

/// Reads `reader`'s pushes until every id of `acknowledged` arrived or a
/// resync came. Asserts `seq` order with no hole (a hole must be a resync)
/// and counts duplicates.
async fn receive(reader: &mut Client, acknowledged: &[i64], wait: Duration) -> Received {
    let started = Instant::now();
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut last_seq: Option<u64> = None;
    while seen.len() < acknowledged.len() {
        let push = reader.recv_within(wait).await;
        match push["event"].as_str() {
            Some("notes.Note.resync") => {
                assert_eq!(push["resync"], true, "{push}");
                return Received {
                    delivered: seen.len(),
                    duplicates,
                    resynced: true,
                    took: started.elapsed(),
                };
            }
            Some("notes.Note.created") => {
                let seq = push["seq"].as_u64().unwrap();
                if let Some(last) = last_seq {
                    assert_eq!(seq, last + 1, "a hole in seq without a resync: {push}");
                }
                last_seq = Some(seq);
                let id = push["data"]["id"].as_i64().unwrap();
                assert!(acknowledged.contains(&id), "a push of no write of ours: {push}");
                if !seen.insert(id) {
                    duplicates += 1;
                }
            }
            _ => panic!("unexpected push {push}"),
        }
    }
    let took = started.elapsed();
    // Anything late would be a duplicate.
    while let Ok(push) = tokio::time::timeout(Duration::from_millis(500), reader.recv()).await {
        if push["event"] == "notes.Note.created" {
            duplicates += 1;
        }
    }
    Received {
        delivered: seen.len(),
        duplicates,
        resynced: false,
        took,
    }
}

/// A private `redis-server` on a free port, to stop and continue.
/// Writes on `a` (whose channel layer goes through `proxy`), loses the reply
/// of one publish, and checks that `b`'s subscriber gets every write once.
async fn a_lost_reply_is_published_once(a: &Quickstart, b: &Quickstart, proxy: &ChaosProxy, layer: &str) {
    let mut reader = socket(b, Some("1")).await;
    subscribe(&mut reader, "notes.Note").await;
    let mut writer = socket(a, Some("1")).await;

    let mut acknowledged = Vec::new();
    for n in 0..5 {
        acknowledged.push(write_note(&mut writer, n).await);
    }
    // Let those go out, then lose the reply of the next publish.
    let first = receive(&mut reader, &acknowledged, Duration::from_secs(10)).await;
    assert_eq!((first.delivered, first.duplicates, first.resynced), (5, 0, false));
    // The publish of this change (its payload holds the title) runs, and
    // its reply is lost.
    proxy.lose_reply_to(b"reply-to-lose");
    acknowledged.push(write_titled(&mut writer, "reply-to-lose").await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.reply_lost() {
        assert!(Instant::now() < deadline, "the publish never went through the proxy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for n in 6..15 {
        acknowledged.push(write_note(&mut writer, n).await);
    }
    let rest = receive(&mut reader, &acknowledged[5..], Duration::from_secs(10)).await;
    eprintln!("{layer}, reply lost: acknowledged 10, {rest:?}");
    assert!(!rest.resynced, "nothing was lost: no resync needed");
    assert_eq!(
        rest.duplicates, 0,
        "the retry of a batch that ran is not published again"
    );
    assert_eq!(rest.delivered, 10);
}

#[tokio::test]
async fn a_publish_whose_reply_is_lost_is_delivered_once_on_redis() {
    let Some(redis) = redis_addr().await else {
        return;
    };
    let Some((_admin, _schema, database)) = pg_schema::schema().await else {
        return;
    };
    let proxy = ChaosProxy::start(redis).await;
    let prefix = unique("cb_chaos_lost");
    // The writer reaches Redis through the proxy; the reader directly.
    let a = start(&database, &format!("redis://{}", proxy.addr()), &prefix).await;
    let b = start(&database, &redis_url(), &prefix).await;
    a_lost_reply_is_published_once(&a, &b, &proxy, "redis").await;
}

/// `url` with its `host:port` replaced by `addr`, and the address it had.
fn through(url: &str, addr: SocketAddr) -> (String, SocketAddr) {
    let after_scheme = url.find("://").unwrap() + 3;
    let host_start = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |at| after_scheme + at + 1);
    let host_end = url[host_start..]
        .find(['/', '?'])
        .map_or(url.len(), |end| host_start + end);
    let original = &url[host_start..host_end];
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(original)
        .unwrap()
        .next()
        .unwrap();
    (format!("{}{addr}{}", &url[..host_start], &url[host_end..]), upstream)
}

#[tokio::test]
async fn a_publish_whose_reply_is_lost_is_delivered_once_on_postgres() {
    let Some((_admin, _schema, database)) = pg_schema::schema().await else {
        return;
    };
    // Both processes reach the PostgreSQL channel layer through proxies (so
    // neither installs capture triggers: every change goes through the
    // link); only the writer's proxy loses a reply.
    let (_, upstream) = through(&database, "127.0.0.1:1".parse().unwrap());
    let lossy = ChaosProxy::start(upstream).await;
    let plain = ChaosProxy::start(upstream).await;
    let a = start(&database, &through(&database, lossy.addr()).0, "unused").await;
    let b = start(&database, &through(&database, plain.addr()).0, "unused").await;
    a_lost_reply_is_published_once(&a, &b, &lossy, "postgres").await;
}

#[tokio::test]
async fn a_hung_redis_delivers_every_acknowledged_write_once() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let Some((_admin, _schema, database)) = pg_schema::schema().await else {
        return;
    };
    let prefix = unique("cb_chaos_hung");
    let a = start(&database, &redis.url(), &prefix).await;
    let b = start(&database, &redis.url(), &prefix).await;
    let mut reader = socket(&b, Some("1")).await;
    subscribe(&mut reader, "notes.Note").await;
    let mut writer = socket(&a, Some("1")).await;

    let mut acknowledged = Vec::new();
    for n in 0..5 {
        acknowledged.push(write_note(&mut writer, n).await);
    }
    let first = receive(&mut reader, &acknowledged, Duration::from_secs(10)).await;
    assert_eq!((first.delivered, first.duplicates), (5, 0));

    // Redis hangs past the 5 s command timeout: the link's publish times
    // out and is sent again; both wait in Redis' socket.
    redis.signal("-STOP");
    let stopped = Instant::now();
    for n in 5..25 {
        acknowledged.push(write_note(&mut writer, n).await);
    }
    tokio::time::sleep(Duration::from_millis(6500).saturating_sub(stopped.elapsed())).await;
    redis.signal("-CONT");
    let rest = receive(&mut reader, &acknowledged[5..], Duration::from_secs(15)).await;
    eprintln!("hung 6.5 s: acknowledged 20, {rest:?} after CONT");
    assert_eq!(rest.duplicates, 0, "a batch Redis ran twice is published once");
    assert!(rest.resynced || rest.delivered == 20, "{rest:?}");
    assert!(rest.took < Duration::from_secs(10), "recovered in {:?}", rest.took);
}

#[tokio::test]
async fn four_processes_started_at_once_on_an_empty_database_all_come_up() {
    let Some((admin, schema, database)) = pg_schema::schema().await else {
        return;
    };
    // The PostgreSQL channel layer in the same database: tables, demo rows,
    // sessions, the broker's objects and capture triggers, all at start-up.
    let started = Instant::now();
    let starts: Vec<_> = (0..4)
        .map(|_| tokio::spawn(try_start(settings(&database, &database, "unused"))))
        .collect();
    let mut servers = Vec::new();
    for start in starts {
        match start.await.unwrap() {
            Ok(server) => servers.push(server),
            Err(complaint) => panic!("a process did not come up: {complaint}"),
        }
    }
    eprintln!("4 processes up in {:?}", started.elapsed());
    for server in &servers {
        assert_eq!(http(addr(server), "GET", "/ready", &[], "").await.status, 200);
    }
    let (users,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {schema}.auth_user"))
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(users, 102, "the demo rows, once");
}

#[tokio::test]
async fn a_cold_process_resumes_with_every_change_or_a_resync() {
    let Some((_admin, _schema, database)) = pg_schema::schema().await else {
        return;
    };
    let a = start(&database, &database, "unused").await;
    let b = start(&database, &database, "unused").await;
    let mut on_a = socket(&a, None).await;
    let reply = subscribe(&mut on_a, "auth.User").await;
    let since = json!({"epoch": reply["epoch"], "seq": reply["seq"]});
    let seq = reply["seq"].as_u64().unwrap();
    drop(on_a);

    let mut writer = socket(&a, Some("1")).await;
    for n in 1..=200 {
        let reply = writer
            .call(json!({"event": "auth.User.update", "data": {"id": 1, "username": format!("u{n}")}}))
            .await;
        assert!(reply.get("error").is_none(), "{reply}");
    }

    // B has handled no auth.User event yet.
    let mut on_b = socket(&b, None).await;
    let reply = on_b
        .call(json!({"event": "auth.User.subscribe", "data": {"since": since}}))
        .await;
    assert_eq!(reply["data"]["subscribed"], "auth.User", "{reply}");
    if reply["resync"] == true {
        eprintln!("cold resume: resync");
        return;
    }
    // The relay publishes after commit: the last few changes may still be
    // on their way, and then arrive live, right after the replay.
    let at = reply["seq"].as_u64().unwrap();
    assert!((seq..=seq + 200).contains(&at), "{reply}");
    for n in 1..=200u64 {
        let push = on_b.recv().await;
        assert_eq!(push["seq"], seq + n, "replayed in order, no hole: {push}");
        assert_eq!(push["data"]["username"], format!("u{n}"), "{push}");
    }
    eprintln!("cold resume: 200 of 200, {} replayed, the rest live", at - seq);
}

#[tokio::test]
async fn ready_tells_a_slow_broker_from_a_dead_one() {
    let Some(redis) = redis_addr().await else {
        return;
    };
    let Some((_admin, _schema, database)) = pg_schema::schema().await else {
        return;
    };
    let proxy = ChaosProxy::start(redis).await;
    let a = start(
        &database,
        &format!("redis://{}", proxy.addr()),
        &unique("cb_chaos_ready"),
    )
    .await;
    let ready = http(addr(&a), "GET", "/ready", &[], "").await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    // Slow: every reply 2 s late. Still delivering, so still ready.
    proxy.set(Fault::Delay(Duration::from_secs(2)));
    let asked = Instant::now();
    let ready = http(addr(&a), "GET", "/ready", &[], "").await;
    eprintln!(
        "slow broker: /ready {} in {:?}: {}",
        ready.status,
        asked.elapsed(),
        ready.body
    );
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(
        ready.json(),
        json!({"status": "ready", "checks": {"database": "ok", "channel_layer": "slow"}})
    );

    // Dead: every connection cut.
    proxy.set(Fault::Drop);
    let asked = Instant::now();
    let ready = http(addr(&a), "GET", "/ready", &[], "").await;
    eprintln!(
        "dead broker: /ready {} in {:?}: {}",
        ready.status,
        asked.elapsed(),
        ready.body
    );
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.json(),
        json!({"status": "unavailable", "checks": {"database": "ok", "channel_layer": "unavailable"}})
    );
}

/// Sends `frame` with `request_id` and returns its reply, skipping pushes.
async fn reply_to(client: &mut Client, mut frame: Value, request_id: &str) -> Value {
    frame["request_id"] = json!(request_id);
    client.send(frame).await;
    loop {
        let frame = client.recv_within(Duration::from_secs(20)).await;
        if frame["request_id"] == request_id {
            return frame;
        }
    }
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// Writer A (the outbox relay's leader: it started first) acknowledges 150
/// creates while Redis is stopped, then dies by `signal`; Redis continues.
/// B's subscriber gets all 150 exactly once in `seq` order (or a resync):
/// the changes were in the outbox, and B's relay took over.
async fn a_writer_dying_with_a_backlog_loses_nothing(signal: &str) {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let Some((_admin, _schema, database)) = pg_schema::schema().await else {
        return;
    };
    let prefix = unique("cb_chaos_backlog");
    let mut a = start(&database, &redis.url(), &prefix).await;
    let b = start(&database, &redis.url(), &prefix).await;
    let mut reader = socket(&b, Some("1")).await;
    subscribe(&mut reader, "notes.Note").await;
    let mut writer = socket(&a, Some("1")).await;
    let mut warm = Vec::new();
    for n in 0..5 {
        warm.push(write_note(&mut writer, n).await);
    }
    let first = receive(&mut reader, &warm, Duration::from_secs(10)).await;
    assert_eq!((first.delivered, first.duplicates, first.resynced), (5, 0, false));

    redis.signal("-STOP");
    let mut acknowledged = Vec::new();
    for n in 0..150 {
        let reply = reply_to(
            &mut writer,
            json!({"event": "notes.Note.create", "data": {"title": format!("backlog{n}"), "body": ""}}),
            &format!("w{n}"),
        )
        .await;
        assert!(reply.get("error").is_none(), "{reply}");
        acknowledged.push(reply["data"]["id"].as_i64().unwrap());
    }
    drop(writer);
    if signal == "-TERM" {
        let status = a.terminate();
        assert!(status.success(), "{status:?}");
    } else {
        kill(a.pid(), signal);
    }
    redis.signal("-CONT");
    let received = receive(&mut reader, &acknowledged, Duration::from_secs(15)).await;
    eprintln!(
        "writer {signal} with a backlog: acknowledged 150, delivered {}, duplicates {}, resync {}, recovered {:?} after CONT",
        received.delivered, received.duplicates, received.resynced, received.took
    );
    assert_eq!(received.duplicates, 0);
    assert!(received.resynced || received.delivered == 150, "{received:?}");
    assert!(received.took < Duration::from_secs(10), "{received:?}");
    drop(a);
}

#[tokio::test]
async fn a_writer_killed_with_a_backlog_loses_nothing() {
    a_writer_dying_with_a_backlog_loses_nothing("-KILL").await;
}

#[tokio::test]
async fn a_writer_terminated_with_a_backlog_loses_nothing() {
    a_writer_dying_with_a_backlog_loses_nothing("-TERM").await;
}

/// The next push of `notes.Note` other than `created` (pushes of the
/// set-up's creates may still be arriving).
async fn next_change(reader: &mut Client) -> Value {
    loop {
        let push = reader.recv_within(Duration::from_secs(10)).await;
        if push["event"] != "notes.Note.created" {
            return push;
        }
    }
}

/// Notes of users 1 and 2, made through `server`.
async fn two_owners_notes(server: &Quickstart) -> (i64, i64) {
    let mut one = socket(server, Some("1")).await;
    let mine = write_titled(&mut one, "mine").await;
    let mut two = socket(server, Some("2")).await;
    let theirs = write_titled(&mut two, "theirs").await;
    (mine, theirs)
}

#[tokio::test]
async fn outside_writes_reach_subscribers_on_the_redis_layer() {
    let Some(_) = redis_addr().await else {
        return;
    };
    let Some((admin, schema, database)) = pg_schema::schema().await else {
        return;
    };
    let prefix = unique("cb_chaos_outside");
    let a = start(&database, &redis_url(), &prefix).await;
    let b = start(&database, &redis_url(), &prefix).await;
    let (mine, theirs) = two_owners_notes(&a).await;
    let mut reader = socket(&b, Some("1")).await;
    subscribe(&mut reader, "notes.Note").await;

    // As psql would: no API, no origin.
    let written = Instant::now();
    for sql in [
        format!("UPDATE {schema}.notes_note SET title = 'outside-theirs' WHERE id = {theirs}"),
        format!("UPDATE {schema}.notes_note SET title = 'outside-mine' WHERE id = {mine}"),
        format!("DELETE FROM {schema}.notes_note WHERE id = {mine}"),
    ] {
        sqlx::query(&sql).execute(&admin).await.unwrap();
    }
    // User 2's note is not user 1's to see: the first push is their own.
    let updated = next_change(&mut reader).await;
    let latency = written.elapsed();
    assert_eq!(updated["event"], format!("notes.Note.updated#{mine}"), "{updated}");
    assert_eq!(updated["data"]["title"], "outside-mine", "{updated}");
    let deleted = next_change(&mut reader).await;
    assert_eq!(deleted["event"], format!("notes.Note.deleted#{mine}"), "{deleted}");
    assert_eq!(deleted["data"]["id"], mine, "{deleted}");
    assert_eq!(deleted["seq"], updated["seq"].as_u64().unwrap() + 1, "{deleted}");
    reader.expect_silence(Duration::from_millis(700)).await;
    eprintln!("outside writes on Redis: 2 of 2 visible changes delivered, 1 filtered out, first after {latency:?}");
}

#[tokio::test]
async fn another_process_relays_within_seconds_when_the_leader_is_killed() {
    let Some(_) = redis_addr().await else {
        return;
    };
    let Some((admin, schema, database)) = pg_schema::schema().await else {
        return;
    };
    let prefix = unique("cb_chaos_takeover");
    // A started first: its relay leads.
    let a = start(&database, &redis_url(), &prefix).await;
    let b = start(&database, &redis_url(), &prefix).await;
    let (mine, _) = two_owners_notes(&b).await;
    let mut reader = socket(&b, Some("1")).await;
    subscribe(&mut reader, "notes.Note").await;

    kill(a.pid(), "-KILL");
    let killed = Instant::now();
    sqlx::query(&format!(
        "UPDATE {schema}.notes_note SET title = 'after-the-leader' WHERE id = {mine}"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let updated = next_change(&mut reader).await;
    let takeover = killed.elapsed();
    assert_eq!(updated["data"]["title"], "after-the-leader", "{updated}");
    eprintln!("relay leader SIGKILLed: the next change arrived through B after {takeover:?}");
    assert!(takeover < Duration::from_secs(5), "{takeover:?}");
    drop(a);
}

/// Runs `sql` on `admin` `times` times; the fastest run.
async fn fastest(admin: &sqlx::PgPool, sql: &str, times: usize) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..times {
        let started = Instant::now();
        sqlx::query(sql).execute(admin).await.unwrap();
        best = best.min(started.elapsed());
    }
    best
}

#[tokio::test]
async fn a_bulk_update_costs_little_more_with_capture_and_blocks_no_api_write() {
    let Some((admin, schema, database)) = pg_schema::schema().await else {
        return;
    };
    // The PostgreSQL layer in the same database: capture was on there before.
    let a = start(&database, &database, "unused").await;
    let table = format!("{schema}.notes_note");
    sqlx::query(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {table} (owner_id, title) SELECT 2, 'bulk' || g FROM generate_series(1, 5000) g"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let bulk = format!("UPDATE {table} SET body = body || 'x' WHERE title LIKE 'bulk%'");
    let without = fastest(&admin, &bulk, 3).await;
    sqlx::query(&format!("ALTER TABLE {table} ENABLE TRIGGER USER"))
        .execute(&admin)
        .await
        .unwrap();
    let with = fastest(&admin, &bulk, 3).await;
    let ratio = with.as_secs_f64() / without.as_secs_f64();
    eprintln!("5,000-row UPDATE: {without:?} without capture, {with:?} with capture, ratio {ratio:.2}");
    // A few milliseconds of slack for a loaded machine.
    assert!(
        with < without * 2 + Duration::from_millis(20),
        "{with:?} vs {without:?}"
    );

    // A foreign transaction holds 5,000 captured rows for 3 s; API writes
    // of other rows go on meanwhile.
    let mut foreign = admin.begin().await.unwrap();
    sqlx::query(&bulk).execute(&mut *foreign).await.unwrap();
    let held = Instant::now();
    let mut writer = socket(&a, Some("1")).await;
    let mut latencies = Vec::new();
    let mut n = 0;
    while held.elapsed() < Duration::from_secs(3) {
        let asked = Instant::now();
        let reply = reply_to(
            &mut writer,
            json!({"event": "notes.Note.create", "data": {"title": format!("during{n}"), "body": ""}}),
            &format!("d{n}"),
        )
        .await;
        assert!(reply.get("error").is_none(), "{reply}");
        latencies.push(asked.elapsed());
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    foreign.commit().await.unwrap();
    latencies.sort();
    let worst = *latencies.last().unwrap();
    eprintln!(
        "API creates during a 3 s bulk transaction: {} writes, median {:?}, worst {worst:?}",
        latencies.len(),
        latencies[latencies.len() / 2]
    );
    assert!(latencies.len() >= 10, "writes went on: {}", latencies.len());
    assert!(
        worst < Duration::from_secs(1),
        "no write waited for the bulk: {worst:?}"
    );
}

#[tokio::test]
async fn a_terminated_writer_without_an_outbox_flushes_its_queue_before_exiting() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    // SQLite: no outbox, the changes wait in the writer's memory.
    let prefix = unique("cb_chaos_flush");
    let mut a = start("sqlite::memory:", &redis.url(), &prefix).await;
    let b = start("sqlite::memory:", &redis.url(), &prefix).await;
    let mut reader = socket(&b, Some("1")).await;
    subscribe(&mut reader, "notes.Note").await;
    let mut writer = socket(&a, Some("1")).await;
    let mut warm = Vec::new();
    for n in 0..3 {
        warm.push(write_note(&mut writer, n).await);
    }
    let first = receive(&mut reader, &warm, Duration::from_secs(10)).await;
    assert_eq!((first.delivered, first.duplicates), (3, 0));

    redis.signal("-STOP");
    let mut acknowledged = Vec::new();
    for n in 0..20 {
        let reply = reply_to(
            &mut writer,
            json!({"event": "notes.Note.create", "data": {"title": format!("queued{n}"), "body": ""}}),
            &format!("q{n}"),
        )
        .await;
        assert!(reply.get("error").is_none(), "{reply}");
        acknowledged.push(reply["data"]["id"].as_i64().unwrap());
    }
    drop(writer);
    let exiting = std::thread::spawn(move || {
        let status = a.terminate();
        (a, status)
    });
    // Redis comes back within the writer's flush bound.
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.signal("-CONT");
    let received = receive(&mut reader, &acknowledged, Duration::from_secs(10)).await;
    let (a, status) = exiting.join().unwrap();
    eprintln!("writer SIGTERM without an outbox, Redis back after 1 s: acknowledged 20, {received:?}");
    assert!(status.success(), "{status:?}");
    assert_eq!(received.duplicates, 0);
    assert!(received.resynced || received.delivered == 20, "{received:?}");
    drop(a);
}

#[tokio::test]
async fn another_process_takes_over_from_a_frozen_relay_leader() {
    let Some(_) = redis_addr().await else {
        return;
    };
    let Some((admin, schema, database)) = pg_schema::schema().await else {
        return;
    };
    let prefix = unique("cb_chaos_frozen");
    // A started first: its relay leads.
    let a = start(&database, &redis_url(), &prefix).await;
    let b = start(&database, &redis_url(), &prefix).await;
    let (mine, _) = two_owners_notes(&b).await;
    let mut reader = socket(&b, Some("1")).await;
    subscribe(&mut reader, "notes.Note").await;

    kill(a.pid(), "-STOP");
    let frozen = Instant::now();
    sqlx::query(&format!(
        "UPDATE {schema}.notes_note SET title = 'while-frozen' WHERE id = {mine}"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let mut updated = None;
    while frozen.elapsed() < Duration::from_secs(25) {
        let push = reader.recv_within(Duration::from_secs(25)).await;
        if push["event"] != "notes.Note.created" {
            updated = Some(push);
            break;
        }
    }
    let takeover = frozen.elapsed();
    kill(a.pid(), "-CONT");
    let updated = updated.expect("the change arrived");
    assert_eq!(updated["data"]["title"], "while-frozen", "{updated}");
    eprintln!("relay leader SIGSTOPped: the change arrived through B after {takeover:?} (stale after 15 s)");
    assert!(takeover < Duration::from_secs(20), "{takeover:?}");
    drop(a);
}
