//! The Broker contract on the shared test Redis: numbering, delivery to
//! several nodes, replay and epochs. Every test has its own key prefix.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::{Broker, BrokerError, BrokerEvent, Outgoing, Replay, StreamPosition};
use common::{builder, changes, connect, connected, delete_prefix, next_event, unique_prefix};

fn change(stream: &str, payload: &str) -> Outgoing {
    Outgoing {
        stream: Arc::from(stream),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

/// A key no other batch of this test run has.
fn key() -> channels_binding_core::hub::BatchKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = format!("test-{}", std::process::id());
    channels_binding_core::hub::BatchKey::new(&run, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn seqs(replay: &Replay) -> Vec<u64> {
    match replay {
        Replay::Changes(changes) => changes.iter().map(|c| c.position.seq).collect(),
        Replay::Gone => panic!("expected changes, got Gone"),
    }
}

#[tokio::test]
async fn a_batch_is_numbered_from_one_in_order() {
    let prefix = unique_prefix("numbering");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    assert_eq!(broker.name(), "redis");
    broker.check().await.unwrap();
    let mut feed = broker.listen();
    connected(&mut feed).await;

    broker.publish(&key(), Vec::new()).await.unwrap();
    let batch: Vec<Outgoing> = (0..5).map(|i| change("shop.Order", &format!("o{i}"))).collect();
    broker.publish(&key(), batch).await.unwrap();
    broker.publish(&key(), vec![change("shop.Item", "i0")]).await.unwrap();

    let got = changes(&mut feed, 6).await;
    let position = broker.position("shop.Order").await.unwrap();
    let orders: Vec<_> = got.iter().filter(|c| &*c.stream == "shop.Order").collect();
    assert_eq!(
        orders.iter().map(|c| c.position.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    for (i, order) in orders.iter().enumerate() {
        assert_eq!(order.payload, format!("o{i}").as_bytes());
        assert_eq!(order.position.epoch, position.epoch);
    }
    assert_eq!(position.seq, 5);
    // Streams are numbered separately.
    let item = got.iter().find(|c| &*c.stream == "shop.Item").unwrap();
    assert_eq!(item.position.seq, 1);
    assert_eq!(broker.position("shop.Item").await.unwrap().seq, 1);
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn payloads_travel_byte_for_byte() {
    let prefix = unique_prefix("payloads");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    let mut feed = broker.listen();
    connected(&mut feed).await;
    let payloads = [
        Bytes::from_static(b""),
        Bytes::from_static(b"line\nbreaks\n\n"),
        Bytes::from_static(&[0, 255, 10, 13, 0]),
    ];
    let batch = payloads
        .iter()
        .map(|payload| Outgoing {
            stream: Arc::from("a.B"),
            payload: payload.clone(),
        })
        .collect();
    broker.publish(&key(), batch).await.unwrap();
    let got = changes(&mut feed, 3).await;
    assert_eq!(got.iter().map(|c| c.payload.clone()).collect::<Vec<_>>(), payloads);
    let replayed = broker
        .replay(
            "a.B",
            &StreamPosition {
                epoch: got[0].position.epoch.clone(),
                seq: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(replayed, Replay::Changes(got));
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn stream_names_with_newlines_are_refused() {
    let prefix = unique_prefix("names");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    let err = broker.publish(&key(), vec![change("a\nb", "x")]).await.unwrap_err();
    assert!(matches!(err, BrokerError::Protocol(_)), "{err:?}");
    // Nothing of the batch was recorded.
    let err = broker
        .publish(&key(), vec![change("ok.Ok", "x"), change("", "y")])
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Protocol(_)), "{err:?}");
    assert_eq!(broker.position("ok.Ok").await.unwrap().seq, 0);
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn two_nodes_receive_every_change_in_order() {
    let prefix = unique_prefix("two_nodes");
    let Some(node_a) = connect(builder(&prefix)).await else {
        return;
    };
    let Some(node_b) = connect(builder(&prefix)).await else {
        return;
    };
    let mut feed_a = node_a.listen();
    let mut feed_b = node_b.listen();
    connected(&mut feed_a).await;
    connected(&mut feed_b).await;

    node_a
        .publish(&key(), vec![change("s.T", "a1"), change("s.T", "a2")])
        .await
        .unwrap();
    node_b.publish(&key(), vec![change("s.T", "b1")]).await.unwrap();
    node_a.publish(&key(), vec![change("s.T", "a3")]).await.unwrap();

    let got_a = changes(&mut feed_a, 4).await;
    let got_b = changes(&mut feed_b, 4).await;
    assert_eq!(got_a, got_b);
    assert_eq!(
        got_a.iter().map(|c| c.position.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        got_a.iter().map(|c| c.payload.clone()).collect::<Vec<_>>(),
        vec![
            Bytes::from("a1"),
            Bytes::from("a2"),
            Bytes::from("b1"),
            Bytes::from("a3")
        ]
    );
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn interleaved_publishes_from_two_nodes_get_contiguous_numbers() {
    let prefix = unique_prefix("interleaved");
    let Some(node_a) = connect(builder(&prefix)).await else {
        return;
    };
    let Some(node_b) = connect(builder(&prefix)).await else {
        return;
    };
    let mut feed_a = node_a.listen();
    let mut feed_b = node_b.listen();
    connected(&mut feed_a).await;
    connected(&mut feed_b).await;

    const EACH: usize = 50;
    let publisher = |node: channels_binding_redis::RedisBroker, name: &'static str| {
        tokio::spawn(async move {
            for i in 0..EACH {
                // Alternate single changes and small batches.
                let batch = if i % 3 == 0 {
                    vec![
                        change("s.T", &format!("{name}{i}a")),
                        change("s.T", &format!("{name}{i}b")),
                    ]
                } else {
                    vec![change("s.T", &format!("{name}{i}"))]
                };
                node.publish(&key(), batch).await.unwrap();
            }
        })
    };
    let task_a = publisher(node_a.clone(), "a");
    let task_b = publisher(node_b.clone(), "b");
    task_a.await.unwrap();
    task_b.await.unwrap();

    let total = 2 * (EACH + EACH.div_ceil(3));
    let got_a = changes(&mut feed_a, total).await;
    let got_b = changes(&mut feed_b, total).await;
    assert_eq!(got_a, got_b, "both nodes see the same order");
    let numbers: Vec<u64> = got_a.iter().map(|c| c.position.seq).collect();
    assert_eq!(numbers, (1..=total as u64).collect::<Vec<_>>());
    // Each node's own changes keep their order, and a batch stays together.
    for name in ["a", "b"] {
        let mine: Vec<String> = got_a
            .iter()
            .map(|c| String::from_utf8(c.payload.to_vec()).unwrap())
            .filter(|p| p.starts_with(name))
            .collect();
        let mut expected = Vec::new();
        for i in 0..EACH {
            if i % 3 == 0 {
                expected.push(format!("{name}{i}a"));
                expected.push(format!("{name}{i}b"));
            } else {
                expected.push(format!("{name}{i}"));
            }
        }
        assert_eq!(mine, expected);
    }
    for pair in got_a.windows(2) {
        let first = std::str::from_utf8(&pair[0].payload).unwrap();
        if let Some(stem) = first.strip_suffix('a') {
            assert_eq!(std::str::from_utf8(&pair[1].payload).unwrap(), format!("{stem}b"));
        }
    }
    assert_eq!(node_b.position("s.T").await.unwrap().seq, total as u64);
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn replay_returns_exactly_the_missing_changes() {
    let prefix = unique_prefix("replay");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    let batch: Vec<Outgoing> = (1..=6).map(|i| change("r.R", &format!("c{i}"))).collect();
    broker.publish(&key(), batch).await.unwrap();
    let now = broker.position("r.R").await.unwrap();
    assert_eq!(now.seq, 6);

    let after = |seq| StreamPosition {
        epoch: now.epoch.clone(),
        seq,
    };
    let replay = broker.replay("r.R", &after(2)).await.unwrap();
    assert_eq!(seqs(&replay), vec![3, 4, 5, 6]);
    let Replay::Changes(replayed) = replay else {
        unreachable!()
    };
    assert_eq!(replayed[0].payload, "c3");
    assert!(
        replayed
            .iter()
            .all(|c| &*c.stream == "r.R" && c.position.epoch == now.epoch)
    );
    assert_eq!(
        seqs(&broker.replay("r.R", &after(0)).await.unwrap()),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        broker.replay("r.R", &after(6)).await.unwrap(),
        Replay::Changes(Vec::new())
    );
    assert_eq!(broker.replay("r.R", &after(7)).await.unwrap(), Replay::Gone);
    // Another stream's history is its own.
    assert_eq!(
        broker.replay("r.Other", &after(0)).await.unwrap(),
        Replay::Changes(Vec::new())
    );
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn replay_is_gone_when_trimmed_by_count() {
    let prefix = unique_prefix("trim_count");
    let Some(broker) = connect(builder(&prefix).history_len(3)).await else {
        return;
    };
    for i in 1..=5 {
        broker
            .publish(&key(), vec![change("t.T", &format!("c{i}"))])
            .await
            .unwrap();
    }
    let epoch = broker.position("t.T").await.unwrap().epoch;
    let after = |seq| StreamPosition {
        epoch: epoch.clone(),
        seq,
    };
    assert_eq!(broker.replay("t.T", &after(0)).await.unwrap(), Replay::Gone);
    assert_eq!(broker.replay("t.T", &after(1)).await.unwrap(), Replay::Gone);
    assert_eq!(seqs(&broker.replay("t.T", &after(2)).await.unwrap()), vec![3, 4, 5]);
    assert_eq!(seqs(&broker.replay("t.T", &after(4)).await.unwrap()), vec![5]);
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn replay_is_gone_when_older_than_history_age() {
    let prefix = unique_prefix("trim_age");
    let Some(broker) = connect(builder(&prefix).history_age(Duration::from_millis(300))).await else {
        return;
    };
    broker.publish(&key(), vec![change("t.T", "old")]).await.unwrap();
    let epoch = broker.position("t.T").await.unwrap().epoch;
    let after = |seq| StreamPosition {
        epoch: epoch.clone(),
        seq,
    };
    assert_eq!(seqs(&broker.replay("t.T", &after(0)).await.unwrap()), vec![1]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(broker.replay("t.T", &after(0)).await.unwrap(), Replay::Gone);
    // Up to date is still up to date.
    assert_eq!(
        broker.replay("t.T", &after(1)).await.unwrap(),
        Replay::Changes(Vec::new())
    );
    // A fresh change is replayable, the old one still gone.
    broker.publish(&key(), vec![change("t.T", "new")]).await.unwrap();
    assert_eq!(seqs(&broker.replay("t.T", &after(1)).await.unwrap()), vec![2]);
    assert_eq!(broker.replay("t.T", &after(0)).await.unwrap(), Replay::Gone);
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn replay_is_gone_for_another_epoch() {
    let prefix = unique_prefix("other_epoch");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    broker.publish(&key(), vec![change("e.E", "x")]).await.unwrap();
    let other = StreamPosition {
        epoch: Arc::from("not-this-one"),
        seq: 0,
    };
    assert_eq!(broker.replay("e.E", &other).await.unwrap(), Replay::Gone);
    let other = StreamPosition {
        epoch: Arc::from("not-this-one"),
        seq: 1,
    };
    assert_eq!(broker.replay("e.E", &other).await.unwrap(), Replay::Gone);
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn unknown_stream_is_at_zero_with_a_stable_epoch() {
    let prefix = unique_prefix("unknown");
    let Some(node_a) = connect(builder(&prefix)).await else {
        return;
    };
    let Some(node_b) = connect(builder(&prefix)).await else {
        return;
    };
    let first = node_a.position("never.Published").await.unwrap();
    assert_eq!(first.seq, 0);
    assert!(!first.epoch.is_empty());
    assert_eq!(node_a.position("never.Published").await.unwrap(), first);
    assert_eq!(node_b.position("other.Stream").await.unwrap().epoch, first.epoch);
    // Publishing keeps the epoch the position created.
    node_b
        .publish(&key(), vec![change("never.Published", "x")])
        .await
        .unwrap();
    let now = node_a.position("never.Published").await.unwrap();
    assert_eq!(
        now,
        StreamPosition {
            epoch: first.epoch.clone(),
            seq: 1
        }
    );
    assert_eq!(seqs(&node_a.replay("never.Published", &first).await.unwrap()), vec![1]);
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn losing_the_keys_starts_a_new_epoch() {
    let prefix = unique_prefix("lost");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    let mut feed = broker.listen();
    connected(&mut feed).await;
    broker
        .publish(&key(), vec![change("l.L", "1"), change("l.L", "2")])
        .await
        .unwrap();
    let before = broker.position("l.L").await.unwrap();
    assert_eq!(before.seq, 2);
    changes(&mut feed, 2).await;

    delete_prefix(&prefix).await;

    broker.publish(&key(), vec![change("l.L", "again")]).await.unwrap();
    let got = changes(&mut feed, 1).await;
    let after = broker.position("l.L").await.unwrap();
    assert_ne!(after.epoch, before.epoch);
    assert_eq!(after.seq, 1);
    assert_eq!(got[0].position, after);
    assert_eq!(broker.replay("l.L", &before).await.unwrap(), Replay::Gone);
    assert_eq!(
        broker
            .replay(
                "l.L",
                &StreamPosition {
                    epoch: before.epoch.clone(),
                    seq: 0
                }
            )
            .await
            .unwrap(),
        Replay::Gone
    );
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn malformed_messages_are_skipped() {
    let prefix = unique_prefix("malformed");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    let mut feed = broker.listen();
    connected(&mut feed).await;
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    for junk in ["", "no newlines", "s\ne\nnot-a-number\npayload"] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{prefix}:changes"))
            .arg(junk)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    broker.publish(&key(), vec![change("m.M", "fine")]).await.unwrap();
    let event = next_event(&mut feed, Duration::from_secs(5)).await;
    let BrokerEvent::Change(delivered) = event else {
        panic!("expected a change, got {event:?}")
    };
    assert_eq!(delivered.payload, "fine");
    assert_eq!(delivered.position.seq, 1);
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn feeds_end_their_task_when_dropped() {
    let prefix = unique_prefix("drop");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    for _ in 0..3 {
        let mut feed = broker.listen();
        connected(&mut feed).await;
        drop(feed);
    }
    // The subscriptions go away with the feeds.
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("{prefix}:changes"))
            .query_async(&mut connection)
            .await
            .unwrap();
        if counts[0].1 == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "subscribers left: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_batch_sent_again_under_its_key_is_published_once() {
    let prefix = unique_prefix("once");
    let Some(broker) = connect(builder(&prefix)).await else {
        return;
    };
    let mut feed = broker.listen();
    connected(&mut feed).await;
    let once = key();
    let batch = vec![change("o.O", "x1"), change("o.O", "x2")];
    broker.publish(&once, batch.clone()).await.unwrap();
    // A retry after a lost reply, or one that waited in a hung Redis.
    broker.publish(&once, batch.clone()).await.unwrap();
    broker.publish(&once, batch).await.unwrap();
    broker.publish(&key(), vec![change("o.O", "y")]).await.unwrap();
    let got = changes(&mut feed, 3).await;
    let seen: Vec<(u64, Vec<u8>)> = got.iter().map(|c| (c.position.seq, c.payload.to_vec())).collect();
    assert_eq!(seen, [(1, b"x1".to_vec()), (2, b"x2".to_vec()), (3, b"y".to_vec())]);
    assert_eq!(broker.position("o.O").await.unwrap().seq, 3);
    // The key is kept no longer than history.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}:batch:{once}"))
        .query_async(
            &mut redis::Client::open(common::redis_url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 300_000, "{ttl}");
    delete_prefix(&prefix).await;
}
