//! `PgBroker` on a real PostgreSQL server, each test in a schema of its own
//! (see `support/db.rs`; skipped loudly without a server unless `CI` is set).

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]
// Only part of the shared test support is used here.
#![allow(unused_macros)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::{Broker, BrokerError, BrokerEvent, Delivered, Outgoing, Replay, StreamPosition};
use channels_binding_sqlx::{PgBroker, PgBrokerConfig};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use sqlx::postgres::PgListener;

mod support;
use support::TestDb;

const WAIT: Duration = Duration::from_secs(10);

type Feed = BoxStream<'static, BrokerEvent>;

async fn broker(db: &TestDb, config: PgBrokerConfig) -> PgBroker {
    PgBroker::connect(db.pg_pool(), config).await.unwrap()
}

async fn next(feed: &mut Feed) -> BrokerEvent {
    tokio::time::timeout(WAIT, feed.next())
        .await
        .expect("an event in time")
        .expect("the feed goes on")
}

/// A feed that is connected (its first event said so).
async fn listening(broker: &PgBroker) -> Feed {
    let mut feed = broker.listen();
    assert_eq!(next(&mut feed).await, BrokerEvent::Connected);
    feed
}

async fn change(feed: &mut Feed) -> Delivered {
    match next(feed).await {
        BrokerEvent::Change(delivered) => delivered,
        other => panic!("expected a change, got {other:?}"),
    }
}

/// `(stream, seq, payload)` of the next `n` changes.
async fn changes(feed: &mut Feed, n: usize) -> Vec<(String, u64, String)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let d = change(feed).await;
        seen.push((
            d.stream.to_string(),
            d.position.seq,
            String::from_utf8(d.payload.to_vec()).unwrap(),
        ));
    }
    seen
}

fn out(stream: &str, payload: &str) -> Outgoing {
    Outgoing {
        stream: Arc::from(stream),
        payload: Bytes::from(payload.to_owned()),
    }
}

/// A key no other batch of this test run has.
fn key() -> channels_binding_core::hub::BatchKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = format!("test-{}", std::process::id());
    channels_binding_core::hub::BatchKey::new(&run, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn triple(stream: &str, seq: u64, payload: &str) -> (String, u64, String) {
    (stream.to_owned(), seq, payload.to_owned())
}

async fn quiet(feed: &mut Feed) {
    let extra = tokio::time::timeout(Duration::from_millis(500), feed.next()).await;
    assert!(extra.is_err(), "unexpected event: {extra:?}");
}

fn seqs(replay: &Replay) -> Vec<u64> {
    match replay {
        Replay::Changes(changes) => changes.iter().map(|d| d.position.seq).collect(),
        Replay::Gone => panic!("expected changes, got Gone"),
    }
}

#[tokio::test]
async fn numbers_from_one_in_batch_order() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default()).await;
    assert_eq!(broker.name(), "postgres");
    broker.check().await.unwrap();
    let mut feed = listening(&broker).await;

    broker
        .publish(&key(), vec![out("app.A", "a1"), out("app.B", "b1"), out("app.A", "a2")])
        .await
        .unwrap();
    broker.publish(&key(), vec![]).await.unwrap();
    broker.publish(&key(), vec![out("app.A", "a3")]).await.unwrap();
    assert_eq!(
        changes(&mut feed, 4).await,
        [
            triple("app.A", 1, "a1"),
            triple("app.B", 1, "b1"),
            triple("app.A", 2, "a2"),
            triple("app.A", 3, "a3")
        ]
    );
    let position = broker.position("app.A").await.unwrap();
    assert_eq!(position.seq, 3);
    let replay = broker
        .replay(
            "app.A",
            &StreamPosition {
                epoch: position.epoch.clone(),
                seq: 0,
            },
        )
        .await
        .unwrap();
    let Replay::Changes(replayed) = replay else {
        panic!("history holds all")
    };
    let payloads: Vec<&[u8]> = replayed.iter().map(|d| d.payload.as_ref()).collect();
    assert_eq!(payloads, [b"a1".as_ref(), b"a2", b"a3"]);
    assert!(
        replayed
            .iter()
            .all(|d| d.position.epoch == position.epoch && &*d.stream == "app.A")
    );
    drop(feed);
    db.finish().await;
}

#[tokio::test]
async fn unknown_stream_is_at_zero() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default()).await;
    let position = broker.position("app.Nothing").await.unwrap();
    assert_eq!(position.seq, 0);
    assert!(!position.epoch.is_empty());
    assert_eq!(
        broker.replay("app.Nothing", &position).await.unwrap(),
        Replay::Changes(vec![])
    );
    // A second connect keeps the epoch: the history is still there.
    let again = PgBroker::connect(db.pg_pool(), PgBrokerConfig::default())
        .await
        .unwrap();
    assert_eq!(again.position("app.Nothing").await.unwrap(), position);
    db.finish().await;
}

#[tokio::test]
async fn two_brokers_hear_every_change_in_order() {
    let Some(db) = TestDb::postgres().await else { return };
    let one = broker(&db, PgBrokerConfig::default()).await;
    let other_pool = db.pg_pool_with(&[]).await;
    let two = PgBroker::connect(other_pool.clone(), PgBrokerConfig::default())
        .await
        .unwrap();
    let mut feed_one = listening(&one).await;
    let mut feed_two = listening(&two).await;

    one.publish(&key(), vec![out("s", "x")]).await.unwrap();
    two.publish(&key(), vec![out("s", "y"), out("t", "t1")]).await.unwrap();
    one.publish(&key(), vec![out("s", "z")]).await.unwrap();
    let expected = [
        triple("s", 1, "x"),
        triple("s", 2, "y"),
        triple("t", 1, "t1"),
        triple("s", 3, "z"),
    ];
    assert_eq!(changes(&mut feed_one, 4).await, expected);
    assert_eq!(changes(&mut feed_two, 4).await, expected);
    quiet(&mut feed_one).await;
    drop((feed_one, feed_two));
    other_pool.close().await;
    db.finish().await;
}

#[tokio::test]
async fn concurrent_publishers_are_numbered_in_commit_order() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default()).await;
    let mut feed = listening(&broker).await;
    let pool = db.pg_pool();

    let mut first = pool.begin().await.unwrap();
    let seq: i64 = sqlx::query_scalar("SELECT channels_binding_publish('s', 'first')")
        .fetch_one(&mut *first)
        .await
        .unwrap();
    assert_eq!(seq, 1);

    // The second writer waits for the first one's row lock...
    let second_pool = pool.clone();
    let second = tokio::spawn(async move {
        let mut tx = second_pool.begin().await.unwrap();
        let seq: i64 = sqlx::query_scalar("SELECT channels_binding_publish('s', 'second')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        seq
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second writer waits for the first to commit");
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), 2);
    assert_eq!(
        changes(&mut feed, 2).await,
        [triple("s", 1, "first"), triple("s", 2, "second")]
    );

    // A rolled-back publish leaves no hole and announces nothing.
    let mut aborted = pool.begin().await.unwrap();
    sqlx::query("SELECT channels_binding_publish('s', 'never')")
        .execute(&mut *aborted)
        .await
        .unwrap();
    aborted.rollback().await.unwrap();
    broker.publish(&key(), vec![out("s", "third")]).await.unwrap();
    assert_eq!(changes(&mut feed, 1).await, [triple("s", 3, "third")]);
    drop(feed);
    db.finish().await;
}

#[tokio::test]
async fn large_payloads_travel_by_reference() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default()).await;
    let mut feed = listening(&broker).await;
    // A raw listener sees the envelope itself.
    let mut raw = PgListener::connect_with(&db.pg_pool()).await.unwrap();
    raw.listen(broker.channel()).await.unwrap();

    let big: String = (0..20_000)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap()))
        .collect();
    let big = format!("{{\"text\":\"{big}\\u00e9\"}}");
    broker
        .publish(&key(), vec![out("s", &big), out("s", "small")])
        .await
        .unwrap();
    assert_eq!(
        changes(&mut feed, 2).await,
        [triple("s", 1, &big), triple("s", 2, "small")]
    );

    let envelope = tokio::time::timeout(WAIT, raw.recv()).await.unwrap().unwrap();
    let envelope: serde_json::Value = serde_json::from_str(envelope.payload()).unwrap();
    assert_eq!(envelope["seq"], 1);
    assert_eq!(envelope["stream"], "s");
    assert!(envelope.get("payload").is_none(), "sent by reference: {envelope}");
    let envelope = tokio::time::timeout(WAIT, raw.recv()).await.unwrap().unwrap();
    let envelope: serde_json::Value = serde_json::from_str(envelope.payload()).unwrap();
    assert_eq!(envelope["payload"], "small");
    drop((feed, raw));
    db.finish().await;
}

#[tokio::test]
async fn replay_covers_history_or_says_gone() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default().history_len(3)).await;
    for i in 1..=5 {
        broker.publish(&key(), vec![out("s", &format!("p{i}"))]).await.unwrap();
    }
    let epoch = broker.position("s").await.unwrap().epoch;
    let after = |seq| StreamPosition {
        epoch: epoch.clone(),
        seq,
    };

    assert_eq!(seqs(&broker.replay("s", &after(2)).await.unwrap()), [3, 4, 5]);
    assert_eq!(seqs(&broker.replay("s", &after(4)).await.unwrap()), [5]);
    assert_eq!(broker.replay("s", &after(5)).await.unwrap(), Replay::Changes(vec![]));
    // Trimmed by count: 1 and 2 are gone.
    assert_eq!(broker.replay("s", &after(1)).await.unwrap(), Replay::Gone);
    assert_eq!(broker.replay("s", &after(0)).await.unwrap(), Replay::Gone);
    // From the future, or another epoch.
    assert_eq!(broker.replay("s", &after(6)).await.unwrap(), Replay::Gone);
    let other = StreamPosition {
        epoch: Arc::from("other"),
        seq: 4,
    };
    assert_eq!(broker.replay("s", &other).await.unwrap(), Replay::Gone);
    assert_eq!(db.scalar("SELECT count(*) FROM channels_binding_history").await, 3);

    // Older than the history's age (5 minutes by default).
    db.exec("UPDATE channels_binding_history SET at = at - interval '1 hour' WHERE seq = 4")
        .await;
    assert_eq!(broker.replay("s", &after(3)).await.unwrap(), Replay::Gone);
    assert_eq!(seqs(&broker.replay("s", &after(4)).await.unwrap()), [5]);
    // ... and the next publish trims it.
    broker.publish(&key(), vec![out("s", "p6")]).await.unwrap();
    assert_eq!(db.scalar("SELECT min(seq) FROM channels_binding_history").await, 5);
    db.finish().await;
}

#[tokio::test]
async fn history_age_is_configurable() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default().history_age(Duration::from_millis(200))).await;
    broker.publish(&key(), vec![out("s", "old")]).await.unwrap();
    let start = broker.position("s").await.unwrap();
    let zero = StreamPosition {
        epoch: start.epoch.clone(),
        seq: 0,
    };
    assert_eq!(seqs(&broker.replay("s", &zero).await.unwrap()), [1]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(broker.replay("s", &zero).await.unwrap(), Replay::Gone);
    db.finish().await;
}

#[tokio::test]
async fn schemas_do_not_hear_each_other() {
    let Some(db) = TestDb::postgres().await else { return };
    let Some(elsewhere) = TestDb::postgres().await else {
        return;
    };
    let here = broker(&db, PgBrokerConfig::default()).await;
    let there = broker(&elsewhere, PgBrokerConfig::default()).await;
    assert_ne!(here.channel(), there.channel());
    let mut feed_here = listening(&here).await;
    let mut feed_there = listening(&there).await;

    here.publish(&key(), vec![out("s", "here")]).await.unwrap();
    assert_eq!(changes(&mut feed_here, 1).await, [triple("s", 1, "here")]);
    quiet(&mut feed_there).await;
    assert_eq!(there.position("s").await.unwrap().seq, 0);
    drop((feed_here, feed_there));
    elsewhere.finish().await;
    db.finish().await;
}

#[tokio::test]
async fn concurrent_installs_succeed() {
    let Some(db) = TestDb::postgres().await else { return };
    let other = db.pg_pool_with(&[]).await;
    let (a, b, c) = tokio::join!(
        PgBroker::connect(db.pg_pool(), PgBrokerConfig::default()),
        PgBroker::connect(other.clone(), PgBrokerConfig::default()),
        PgBroker::connect(db.pg_pool(), PgBrokerConfig::default()),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let epochs = [
        a.position("s").await.unwrap().epoch,
        b.position("s").await.unwrap().epoch,
        c.position("s").await.unwrap().epoch,
    ];
    assert!(epochs.iter().all(|e| *e == epochs[0]), "{epochs:?}");
    other.close().await;
    db.finish().await;
}

#[tokio::test]
async fn feed_reconnects_after_losing_its_connection() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default()).await;
    let mut feed = listening(&broker).await;

    let killed = db
        .scalar(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN \"{}\"%' AND pid <> pg_backend_pid()",
            broker.channel()
        ))
        .await;
    assert_eq!(killed, 1);
    assert_eq!(next(&mut feed).await, BrokerEvent::Disconnected);
    assert_eq!(next(&mut feed).await, BrokerEvent::Connected);
    broker.publish(&key(), vec![out("s", "after")]).await.unwrap();
    assert_eq!(changes(&mut feed, 1).await, [triple("s", 1, "after")]);
    drop(feed);
    db.finish().await;
}

#[tokio::test]
async fn closed_pool_is_unavailable() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default()).await;
    db.close().await;
    assert!(matches!(broker.check().await, Err(BrokerError::Unavailable(_))));
    assert!(matches!(
        broker.publish(&key(), vec![out("s", "x")]).await,
        Err(BrokerError::Unavailable(_))
    ));
    assert!(matches!(broker.position("s").await, Err(BrokerError::Unavailable(_))));
    db.finish().await;
}

#[tokio::test]
async fn payloads_must_be_text() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default()).await;
    let bad = Outgoing {
        stream: Arc::from("s"),
        payload: Bytes::from_static(&[0xff, 0xfe]),
    };
    assert!(matches!(
        broker.publish(&key(), vec![out("s", "fine"), bad]).await,
        Err(BrokerError::Protocol(_))
    ));
    assert_eq!(broker.position("s").await.unwrap().seq, 0, "the batch is refused whole");
    db.finish().await;
}

#[tokio::test]
async fn a_batch_sent_again_under_its_key_is_published_once() {
    let Some(db) = TestDb::postgres().await else { return };
    let broker = broker(&db, PgBrokerConfig::default()).await;
    let mut feed = listening(&broker).await;
    let once = key();
    let batch = vec![out("s", "x1"), out("s", "x2")];
    broker.publish(&once, batch.clone()).await.unwrap();
    // A retry after a lost reply, and two concurrent ones: nothing more.
    broker.publish(&once, batch.clone()).await.unwrap();
    let (left, right) = tokio::join!(broker.publish(&once, batch.clone()), broker.publish(&once, batch));
    left.unwrap();
    right.unwrap();
    broker.publish(&key(), vec![out("s", "y")]).await.unwrap();
    assert_eq!(
        changes(&mut feed, 3).await,
        [triple("s", 1, "x1"), triple("s", 2, "x2"), triple("s", 3, "y")]
    );
    quiet(&mut feed).await;
    assert_eq!(broker.position("s").await.unwrap().seq, 3);
}
