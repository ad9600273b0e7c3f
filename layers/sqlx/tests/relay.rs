//! The outbox relay on a real PostgreSQL server: one leader per schema,
//! takeover when it stops, every recorded change published exactly once in
//! outbox order, even when a publish ran but its reply was lost.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]
// Only part of the shared test support is used here.
#![allow(unused_macros)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use channels_binding_core::hub::{BatchKey, Broker, BrokerError, BrokerEvent, Outgoing, Replay, StreamPosition};
use channels_binding_sqlx::{Field, ModelSchema, PgBroker, PgBrokerConfig, Relay, RelayConfig, install_capture};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;

mod support;
use support::TestDb;

const STREAM: &str = "app.Item";

fn items() -> ModelSchema {
    ModelSchema::builder("items")
        .field(Field::integer("id").read())
        .field(Field::integer("n").read().write())
        .build()
        .unwrap()
}

async fn setup(db: &TestDb) -> PgBroker {
    db.exec("CREATE TABLE items (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
        .await;
    install_capture(&db.pg_pool(), STREAM, &items()).await.unwrap();
    PgBroker::connect(db.pg_pool(), PgBrokerConfig::default().history_len(100_000))
        .await
        .unwrap()
}

/// The payloads published on the stream, in sequence order.
async fn published(db: &TestDb) -> Vec<Value> {
    db.rows("SELECT payload FROM channels_binding_history ORDER BY seq")
        .await
        .into_iter()
        .map(|row| serde_json::from_str(row["payload"].as_str().unwrap()).unwrap())
        .collect()
}

/// Waits until the outbox is empty (everything relayed) or panics.
async fn drained(db: &TestDb, within: Duration) {
    let start = Instant::now();
    while db.scalar("SELECT count(*) FROM channels_binding_outbox").await > 0 {
        assert!(start.elapsed() < within, "the outbox was not relayed in {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A broker that publishes but answers `Err` (a reply lost after the
/// command ran) to the first `lose` publishes.
#[derive(Debug)]
struct LosingReplies {
    inner: PgBroker,
    lose: AtomicUsize,
    calls: AtomicUsize,
}

impl Broker for LosingReplies {
    fn name(&self) -> &'static str {
        "losing"
    }

    fn publish<'a>(&'a self, key: &'a BatchKey, batch: Vec<Outgoing>) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.publish(key, batch).await?;
            let lost = self
                .lose
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if lost {
                Err(BrokerError::Unavailable("reply lost".into()))
            } else {
                Ok(())
            }
        })
    }

    fn listen(&self) -> BoxStream<'static, BrokerEvent> {
        self.inner.listen()
    }

    fn position<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        self.inner.position(stream)
    }

    fn replay<'a>(&'a self, stream: &'a str, after: &'a StreamPosition) -> BoxFuture<'a, Result<Replay, BrokerError>> {
        self.inner.replay(stream, after)
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.inner.check()
    }
}

#[tokio::test]
async fn every_recorded_change_is_published_once_in_outbox_order() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = setup(&db).await;
    // Recorded before any relay runs: they wait in the outbox.
    db.exec("INSERT INTO items SELECT g, 0 FROM generate_series(1, 300) g")
        .await;
    db.exec("UPDATE items SET n = n + 1").await;
    db.exec("DELETE FROM items WHERE id > 250").await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM channels_binding_outbox").await,
        3,
        "one outbox row per statement"
    );

    let relay = Relay::start(db.pg_pool(), Arc::new(broker), RelayConfig::default().batch_size(64))
        .await
        .unwrap();
    drained(&db, Duration::from_secs(20)).await;
    let changes = published(&db).await;
    assert_eq!(changes.len(), 650, "each change once: {:?}", changes.first());
    assert_eq!(db.scalar("SELECT max(seq) FROM channels_binding_history").await, 650);
    let kinds: Vec<&str> = changes.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert!(kinds[..300].iter().all(|k| *k == "created"));
    assert!(kinds[300..600].iter().all(|k| *k == "updated"));
    assert!(kinds[600..].iter().all(|k| *k == "deleted"));
    // Within each statement, in key order; updates carry the row before.
    let pks: Vec<i64> = changes.iter().map(|c| c["pk"].as_i64().unwrap()).collect();
    assert!(pks[..300].windows(2).all(|w| w[0] < w[1]), "{pks:?}");
    assert_eq!(changes[300]["previous"]["n"], 0);
    assert_eq!(changes[300]["facts"]["n"], 1);
    relay.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn a_batch_whose_reply_was_lost_is_published_once() {
    let Some(db) = TestDb::postgres().await else { return };
    let inner = setup(&db).await;
    let losing = Arc::new(LosingReplies {
        inner,
        lose: AtomicUsize::new(3),
        calls: AtomicUsize::new(0),
    });
    let relay = Relay::start(db.pg_pool(), losing.clone(), RelayConfig::default())
        .await
        .unwrap();
    db.exec("INSERT INTO items SELECT g, 0 FROM generate_series(1, 40) g")
        .await;
    drained(&db, Duration::from_secs(20)).await;
    assert!(losing.calls.load(Ordering::SeqCst) >= 4, "the batch was tried again");
    assert_eq!(published(&db).await.len(), 40, "published once despite the retries");
    relay.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn one_relay_leads_and_another_takes_over_when_it_stops() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = Arc::new(setup(&db).await);
    let config = RelayConfig::default().takeover(Duration::from_millis(200));
    let first = Relay::start(db.pg_pool(), broker.clone(), config).await.unwrap();
    assert!(first.wait_leader(Duration::from_secs(5)).await);
    let second = Relay::start(db.pg_pool(), broker.clone(), config).await.unwrap();
    assert!(
        !second.wait_leader(Duration::from_secs(1)).await,
        "one leader at a time"
    );

    db.exec("INSERT INTO items SELECT g, 0 FROM generate_series(1, 10) g")
        .await;
    drained(&db, Duration::from_secs(10)).await;

    let stopped = Instant::now();
    first.stop().await;
    assert!(
        second.wait_leader(Duration::from_secs(5)).await,
        "the other relay takes over"
    );
    let takeover = stopped.elapsed();
    db.exec("UPDATE items SET n = 1").await;
    drained(&db, Duration::from_secs(10)).await;
    assert_eq!(published(&db).await.len(), 20);
    eprintln!("takeover after the leader stopped: {takeover:?}");
    second.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn a_successor_publishes_a_claimed_batch_under_its_key_once() {
    let Some(db) = TestDb::postgres().await else { return };
    let inner = setup(&db).await;
    // The first leader's every reply is lost: it publishes its batch and
    // never learns it did, so the batch stays claimed in the outbox.
    let losing = Arc::new(LosingReplies {
        inner: inner.clone(),
        lose: AtomicUsize::new(usize::MAX),
        calls: AtomicUsize::new(0),
    });
    let first = Relay::start(db.pg_pool(), losing.clone(), RelayConfig::default())
        .await
        .unwrap();
    db.exec("INSERT INTO items SELECT g, 0 FROM generate_series(1, 30) g")
        .await;
    let start = Instant::now();
    while losing.calls.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.stop().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM channels_binding_outbox WHERE batch IS NOT NULL")
            .await,
        1,
        "the statement's row stays claimed"
    );
    let second = Relay::start(db.pg_pool(), Arc::new(inner), RelayConfig::default())
        .await
        .unwrap();
    drained(&db, Duration::from_secs(10)).await;
    assert_eq!(
        published(&db).await.len(),
        30,
        "the successor's publish was the same batch"
    );
    second.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn a_key_change_is_a_deletion_then_a_creation() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = setup(&db).await;
    db.exec("INSERT INTO items VALUES (1, 10), (2, 20)").await;
    db.exec("UPDATE items SET id = id + 100, n = n + 1").await;
    let relay = Relay::start(db.pg_pool(), Arc::new(broker), RelayConfig::default())
        .await
        .unwrap();
    drained(&db, Duration::from_secs(10)).await;
    let changes: Vec<(String, i64)> = published(&db)
        .await
        .iter()
        .map(|c| (c["kind"].as_str().unwrap().to_owned(), c["pk"].as_i64().unwrap()))
        .collect();
    let expected: Vec<(String, i64)> = [
        ("created", 1),
        ("created", 2),
        ("deleted", 1),
        ("deleted", 2),
        ("created", 101),
        ("created", 102),
    ]
    .iter()
    .map(|(kind, pk)| ((*kind).to_owned(), *pk))
    .collect();
    assert_eq!(changes, expected);
    relay.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn writers_of_one_row_are_published_in_commit_order() {
    use sqlx::{Connection as _, Executor as _};

    let Some(db) = TestDb::postgres().await else { return };
    let broker = setup(&db).await;
    db.exec("INSERT INTO items VALUES (1, 0)").await;
    let options = db.pg_pool().connect_options();
    let mut first = sqlx::postgres::PgConnection::connect_with(&options).await.unwrap();
    let mut second = sqlx::postgres::PgConnection::connect_with(&options).await.unwrap();
    let mut tx = first.begin().await.unwrap();
    tx.execute("UPDATE items SET n = 1 WHERE id = 1").await.unwrap();
    // Waits for the row until the first transaction commits.
    let later = tokio::spawn(async move {
        second.execute("UPDATE items SET n = 2 WHERE id = 1").await.unwrap();
        second
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    let _second = later.await.unwrap();

    let relay = Relay::start(db.pg_pool(), Arc::new(broker), RelayConfig::default())
        .await
        .unwrap();
    drained(&db, Duration::from_secs(10)).await;
    let n: Vec<i64> = published(&db)
        .await
        .iter()
        .skip(1)
        .map(|c| c["facts"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(n, [1, 2], "the later commit is published later");
    relay.stop().await;
    db.finish().await;
}

#[tokio::test]
async fn a_leader_whose_heartbeat_stopped_is_ended_and_replaced() {
    use sqlx::Connection as _;

    let Some(db) = TestDb::postgres().await else { return };
    let broker = Arc::new(setup(&db).await);
    // A frozen leader: it holds the relay's lock ("cbrl" and the schema's
    // hash), and its last beat is old.
    let options = db.pg_pool().connect_options();
    let mut frozen = sqlx::postgres::PgConnection::connect_with(&options).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(1667396204, hashtext(current_schema()::text))")
        .execute(&mut frozen)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO channels_binding_relay (id, pid, beat) VALUES (true, pg_backend_pid(), now() - interval '1 hour') \
         ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, beat = excluded.beat",
    )
    .execute(&mut frozen)
    .await
    .unwrap();
    let config = RelayConfig::default()
        .takeover(Duration::from_millis(200))
        .stale_after(Duration::from_secs(1));
    let relay = Relay::start(db.pg_pool(), broker, config).await.unwrap();
    assert!(relay.wait_leader(Duration::from_secs(10)).await, "took over");
    let ended = sqlx::query("SELECT 1").execute(&mut frozen).await;
    assert!(ended.is_err(), "the frozen leader's session was ended: {ended:?}");
    db.exec("INSERT INTO items VALUES (1, 1)").await;
    drained(&db, Duration::from_secs(10)).await;
    assert_eq!(published(&db).await.len(), 1);
    relay.stop().await;
    db.finish().await;
}
