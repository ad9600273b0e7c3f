//! Several hubs sharing streams through a broker (PROTOCOL.md §3, "every
//! process that shares the channel layer"), on the in-process
//! `MemoryBroker`: ordering across nodes, permission filtering through
//! codecs, origin tagging, resume from the broker's history, outages, lost
//! history and overflowing queues. The Redis and PostgreSQL brokers run the
//! same hub code against real servers in their own crates' tests.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use channels_binding_core::hub::{
    Broker, Change, ChangeCodec, ChangeKind, Hub, HubConfig, MemoryBroker, Origin, Outbox, StreamPosition, Target,
    Visibility,
};
use channels_binding_core::{Identity, Principal};
use serde_json::{Value, json};

const NOTES: &str = "notes.Note";

fn user(id: &str) -> Identity {
    Identity::from(Principal::new(id))
}

/// Notes: readable by their owner only; the push hides the owner.
struct OwnerOnly;

impl ChangeCodec for OwnerOnly {
    fn visible(&self, facts: &Value, identity: &Identity) -> bool {
        identity.id().is_some_and(|id| facts["owner_id"].as_str() == Some(id))
    }

    fn render(&self, facts: &Value) -> Value {
        json!({"id": facts["id"], "title": facts["title"]})
    }
}

fn codec() -> Arc<dyn ChangeCodec> {
    Arc::new(OwnerOnly)
}

fn note(pk: u64, owner: &str, title: &str) -> Change {
    let facts = json!({"id": pk, "owner_id": owner, "title": title});
    Change::new(NOTES, ChangeKind::Created, json!(pk), OwnerOnly.render(&facts))
        .visible_to(Visibility::scoped(facts, codec()))
}

fn plain(pk: u64) -> Change {
    Change::new(NOTES, ChangeKind::Updated, json!(pk), json!({"id": pk}))
}

fn pair(broker: &Arc<MemoryBroker>) -> (Hub, Hub) {
    let shared: Arc<dyn Broker> = broker.clone();
    (
        Hub::with_broker(HubConfig::default(), shared.clone()),
        Hub::with_broker(HubConfig::default(), shared),
    )
}

async fn follow(hub: &Hub, identity: Identity) -> Outbox {
    let outbox = hub.connect(identity);
    hub.prepare(NOTES, None).await;
    hub.subscribe(outbox.connection(), NOTES, Target::Feed, None).unwrap();
    outbox
}

async fn next(outbox: &mut Outbox) -> Value {
    let frame = tokio::time::timeout(Duration::from_secs(5), outbox.recv())
        .await
        .expect("a push within 5 s")
        .expect("the hub is alive");
    serde_json::from_slice(&frame.frame).unwrap()
}

async fn nothing_more(outbox: &mut Outbox) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Some(frame) = outbox.try_recv() {
        panic!("unexpected push {}", String::from_utf8_lossy(&frame.frame));
    }
}

/// Waits until `hub` has applied change `seq`.
async fn settled(hub: &Hub, seq: u64) {
    for _ in 0..500 {
        if hub.position(NOTES).seq == seq {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("hub stuck at {:?}, waiting for {seq}", hub.position(NOTES));
}

#[tokio::test]
async fn a_change_on_one_node_reaches_subscribers_on_both_in_order() {
    let broker = Arc::new(MemoryBroker::new());
    let (a, b) = pair(&broker);
    let mut on_a = follow(&a, Identity::anonymous()).await;
    let mut on_b = follow(&b, Identity::anonymous()).await;

    for pk in 1..=50 {
        // Alternate the writing node: numbering is the broker's, so both
        // nodes see one order.
        let writer = if pk % 2 == 0 { &a } else { &b };
        assert_eq!(
            writer.publish(plain(pk)),
            None,
            "with a broker, the broker numbers changes"
        );
    }
    let mut orders = Vec::new();
    for outbox in [&mut on_a, &mut on_b] {
        let mut order = Vec::new();
        for seq in 1..=50u64 {
            let push = next(outbox).await;
            assert_eq!(push["seq"], seq, "numbered without gaps");
            order.push(push["event"].as_str().unwrap().to_owned());
        }
        orders.push(order);
    }
    assert_eq!(orders[0], orders[1], "both nodes deliver one order");
    let mut events = orders[0].clone();
    events.sort();
    events.dedup();
    assert_eq!(events.len(), 50, "every change exactly once");
    let epoch = broker.position(NOTES).await.unwrap().epoch;
    assert_eq!(
        a.position(NOTES),
        StreamPosition {
            epoch: epoch.clone(),
            seq: 50
        }
    );
    assert_eq!(b.position(NOTES), StreamPosition { epoch, seq: 50 });
}

#[tokio::test]
async fn other_nodes_filter_through_the_streams_codec() {
    let broker = Arc::new(MemoryBroker::new());
    let (a, b) = pair(&broker);
    b.register_codec(NOTES, &codec());
    let mut owner = follow(&b, user("7")).await;
    let mut stranger = follow(&b, user("8")).await;
    let mut anonymous = follow(&b, Identity::anonymous()).await;

    a.publish(note(1, "7", "mine"));
    let push = next(&mut owner).await;
    assert_eq!(push["event"], "notes.Note.created");
    assert_eq!(
        push["data"],
        json!({"id": 1, "title": "mine"}),
        "rendered by B's codec from the facts"
    );
    nothing_more(&mut stranger).await;
    nothing_more(&mut anonymous).await;
}

#[tokio::test]
async fn without_a_codec_a_restricted_change_reaches_nobody_elsewhere() {
    let broker = Arc::new(MemoryBroker::new());
    let (a, b) = pair(&broker);
    let mut on_b = follow(&b, user("7")).await;
    let mut on_a = follow(&a, user("7")).await;

    // A closure cannot travel: B has no way to decide, so it delivers to nobody.
    a.publish(plain(1).visible_to(Visibility::rule(|who: &Identity| who.id() == Some("7"))));
    let push = next(&mut on_a).await;
    assert_eq!(push["event"], "notes.Note.updated#1");
    nothing_more(&mut on_b).await;
}

#[tokio::test]
async fn the_writer_gets_its_reply_first_even_through_the_broker() {
    let broker = Arc::new(MemoryBroker::new());
    let (a, b) = pair(&broker);
    let writer = follow(&a, Identity::anonymous()).await;
    let mut writer = writer;
    let mut other = follow(&b, Identity::anonymous()).await;
    let origin = Origin {
        connection: writer.connection().id(),
        request: 4,
    };
    a.with_origin(Some(origin)).publish(plain(1));

    let frame = tokio::time::timeout(Duration::from_secs(5), writer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame.after_reply, Some(4), "held until request 4 is answered");
    // Connection ids are per hub: the same id on B is another client.
    let frame = tokio::time::timeout(Duration::from_secs(5), other.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame.after_reply, None);
}

#[tokio::test]
async fn a_subscriber_resumes_on_another_node_from_the_brokers_history() {
    let broker = Arc::new(MemoryBroker::new());
    let shared: Arc<dyn Broker> = broker.clone();
    let a = Hub::with_broker(HubConfig::default(), shared.clone());
    let _watcher = follow(&a, Identity::anonymous()).await;
    for pk in 1..=10 {
        a.publish(plain(pk));
    }
    settled(&a, 10).await;
    let seen = StreamPosition {
        epoch: a.position(NOTES).epoch,
        seq: 4,
    };

    // A node started after those changes: its own history is empty.
    let b = Hub::with_broker(HubConfig::default(), shared);
    let outbox = b.connect(Identity::anonymous());
    let mut outbox = outbox;
    b.prepare(NOTES, Some(&seen)).await;
    let subscribed = b
        .subscribe(outbox.connection(), NOTES, Target::Feed, Some(&seen))
        .unwrap();
    assert!(!subscribed.resync);
    assert_eq!(subscribed.replayed, 6);
    for seq in 5..=10u64 {
        assert_eq!(next(&mut outbox).await["seq"], seq);
    }
    a.publish(plain(11));
    assert_eq!(
        next(&mut outbox).await["seq"],
        11,
        "then live, without gap or duplicate"
    );
}

#[tokio::test]
async fn resuming_past_the_brokers_history_says_resync() {
    let broker = Arc::new(MemoryBroker::with_history(3, Duration::from_secs(60)));
    let shared: Arc<dyn Broker> = broker.clone();
    let a = Hub::with_broker(HubConfig::default(), shared.clone());
    let _watcher = follow(&a, Identity::anonymous()).await;
    for pk in 1..=10 {
        a.publish(plain(pk));
    }
    settled(&a, 10).await;
    let b = Hub::with_broker(HubConfig::default(), shared);
    let outbox = b.connect(Identity::anonymous());
    let seen = StreamPosition {
        epoch: a.position(NOTES).epoch,
        seq: 2,
    };
    b.prepare(NOTES, Some(&seen)).await;
    let subscribed = b
        .subscribe(outbox.connection(), NOTES, Target::Feed, Some(&seen))
        .unwrap();
    assert!(subscribed.resync);
    assert_eq!(subscribed.replayed, 0);
}

#[tokio::test]
async fn changes_made_during_an_outage_arrive_after_it() {
    let broker = Arc::new(MemoryBroker::new());
    let (a, b) = pair(&broker);
    let mut on_b = follow(&b, Identity::anonymous()).await;

    broker.set_available(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for pk in 1..=5 {
        a.publish(plain(pk));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!b.broker_connected());
    assert!(b.check_broker().await.is_err());
    broker.set_available(true);

    // The writes were committed: their changes are retried until the broker
    // takes them, and arrive in order.
    for pk in 1..=5u64 {
        let push = next(&mut on_b).await;
        assert_eq!(push["event"], format!("notes.Note.updated#{pk}"));
    }
    assert!(b.check_broker().await.is_ok());
}

#[tokio::test]
async fn a_broker_that_lost_its_history_makes_subscribers_resync() {
    let broker = Arc::new(MemoryBroker::new());
    let (a, b) = pair(&broker);
    let mut on_b = follow(&b, Identity::anonymous()).await;
    a.publish(plain(1));
    assert_eq!(next(&mut on_b).await["seq"], 1);
    let old_epoch = b.position(NOTES).epoch;

    broker.lose_history();
    a.publish(plain(2));
    let resync = next(&mut on_b).await;
    assert_eq!(resync["event"], "notes.Note.resync");
    assert_eq!(resync["resync"], true);
    let push = next(&mut on_b).await;
    assert_eq!(push["event"], "notes.Note.updated#2");
    assert_eq!(push["seq"], 1, "numbering restarts in the new epoch");
    assert_ne!(push["epoch"], Value::from(&*old_epoch));
}

#[tokio::test]
async fn a_node_that_missed_changes_catches_up_from_history() {
    let broker = Arc::new(MemoryBroker::with_history(10_000, Duration::from_secs(60)));
    let shared: Arc<dyn Broker> = broker.clone();
    let a = Hub::with_broker(HubConfig::default(), shared.clone());
    // Room for every push, so that only the broker's feed can fall behind.
    let b = Hub::with_broker(HubConfig::default().queue_capacity(10_000), shared);
    let mut on_b = follow(&b, Identity::anonymous()).await;
    a.publish(plain(1));
    assert_eq!(next(&mut on_b).await["seq"], 1);

    // Publish straight to the broker more than a listener can buffer: B's
    // feed lags, reconnects, and fetches what it missed from history.
    let payload = serde_json::to_vec(&json!({"kind": "updated", "pk": 2, "object": {"id": 2}})).unwrap();
    for _ in 0..5000 {
        broker
            .publish(
                &key(),
                vec![channels_binding_core::hub::Outgoing {
                    stream: NOTES.into(),
                    payload: payload.clone().into(),
                }],
            )
            .await
            .unwrap();
    }
    let mut expected = 2u64;
    while expected <= 5001 {
        let push = next(&mut on_b).await;
        if push["event"] == "notes.Note.resync" {
            panic!("history covered the gap: no resync expected");
        }
        assert_eq!(push["seq"], expected, "no gap, no duplicate");
        expected += 1;
    }
}

#[tokio::test]
async fn changes_that_do_not_fit_the_queue_to_the_broker_make_everyone_resync() {
    let broker = Arc::new(MemoryBroker::new());
    let (a, b) = pair(&broker);
    let mut on_a = follow(&a, Identity::anonymous()).await;
    let mut on_b = follow(&b, Identity::anonymous()).await;
    a.publish(plain(0));
    assert_eq!(next(&mut on_a).await["seq"], 1);
    assert_eq!(next(&mut on_b).await["seq"], 1);

    broker.set_available(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // More than the hub's queue to the broker holds (8192 waiting changes).
    for pk in 0..9000 {
        a.publish(plain(pk));
    }
    // A's own subscribers learn at once.
    assert_eq!(next(&mut on_a).await["event"], "notes.Note.resync");
    broker.set_available(true);
    // B's learn when the broker is back: a gap marker goes out first.
    let mut saw_resync = false;
    for _ in 0..20 {
        let push = next(&mut on_b).await;
        if push["event"] == "notes.Note.resync" {
            saw_resync = true;
            break;
        }
    }
    assert!(saw_resync, "B's subscriber is told, not left with a silent gap");
}

#[tokio::test]
async fn stats_count_connections_and_queued_frames() {
    let hub = Hub::new();
    let outbox = hub.connect(Identity::anonymous());
    hub.subscribe(outbox.connection(), NOTES, Target::Feed, None).unwrap();
    hub.publish(plain(1));
    hub.publish(plain(2));
    let stats = hub.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.queued_frames, 2);
    assert_eq!(stats.max_queue_depth, 2);
    assert_eq!(stats.streams, 1);
    assert!(hub.broker().is_none());
    assert!(hub.broker_connected());
}

/// A key no other batch of this test run has.
fn key() -> channels_binding_core::hub::BatchKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = format!("test-{}", std::process::id());
    channels_binding_core::hub::BatchKey::new(&run, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

#[tokio::test]
async fn a_memory_broker_publishes_a_batch_once_per_key() {
    use channels_binding_core::hub::{Broker, Outgoing};
    let broker = MemoryBroker::new();
    let once = key();
    let batch = vec![Outgoing {
        stream: NOTES.into(),
        payload: "{}".into(),
    }];
    broker.publish(&once, batch.clone()).await.unwrap();
    broker.publish(&once, batch.clone()).await.unwrap();
    assert_eq!(broker.position(NOTES).await.unwrap().seq, 1);
    broker.publish(&key(), batch).await.unwrap();
    assert_eq!(broker.position(NOTES).await.unwrap().seq, 2);
}
