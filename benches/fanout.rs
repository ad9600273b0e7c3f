//! Fan-out of one change to many subscribers, without sockets.
//!
//! `cargo bench --bench fanout`
//!
//! One group, `fanout/10000_subscribers`, measures side by side:
//!
//! * `mpsc_clone` (the baseline): serialize the push frame once
//!   (`serde_json::to_vec`) and `try_send` a clone of the `Bytes` into 10 000
//!   bounded `tokio::sync::mpsc` channels. This is the floor for "serialize
//!   once, queue everywhere".
//! * `hub_publish`: `Hub::publish` of one `auth.User` update to 10 000
//!   connections (made with `Hub::connect`) that follow the stream's change
//!   feed. It does what the baseline does plus the hub's promises: a sequence
//!   number and epoch in the frame, a permission check per subscriber, the
//!   closed-connection sweep, slow-consumer detection and the history entry
//!   for `since` replay.
//!
//! Only the publish is timed (`iter_custom`); every queue is drained after
//! each publish, outside the timing, so the bounded queues never fill and no
//! connection is ever treated as a slow consumer.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use channels_binding::hub::{Change, ChangeKind, Outbox, Target};
use channels_binding::{Hub, Identity};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Subscribers per publish.
const SUBSCRIBERS: usize = 10_000;

/// Queue capacity of the baseline channels: the hub's default.
const QUEUE: usize = 1024;

/// The object of the change: the demo's admin user, as the model binding sends it.
fn user(n: u64) -> Value {
    json!({
        "id": 5763,
        "username": format!("bench-{n}"),
        "email": "admin@admin.com",
        "is_staff": true,
        "date_joined": "2024-01-01T00:00:00Z",
    })
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("fanout/{SUBSCRIBERS}_subscribers"));
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));

    group.bench_function("mpsc_clone", |b| {
        let (senders, mut receivers): (Vec<_>, Vec<_>) =
            (0..SUBSCRIBERS).map(|_| mpsc::channel::<Bytes>(QUEUE)).unzip();
        let mut n = 0u64;
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let object = user(n);
                let start = Instant::now();
                let frame = json!({"event": "auth.User.updated#5763", "data": object, "seq": n});
                let frame = Bytes::from(serde_json::to_vec(&frame).expect("a Value serializes"));
                for sender in &senders {
                    // A full queue would drop the frame; draining below keeps
                    // every queue empty, so this never happens.
                    let _ = black_box(sender.try_send(frame.clone()));
                }
                timed += start.elapsed();
                for receiver in &mut receivers {
                    while receiver.try_recv().is_ok() {}
                }
            }
            timed
        });
    });

    group.bench_function("hub_publish", |b| {
        let hub = Hub::new();
        let mut outboxes: Vec<Outbox> = (0..SUBSCRIBERS).map(|_| hub.connect(Identity::anonymous())).collect();
        for outbox in &outboxes {
            hub.subscribe(outbox.connection(), "auth.User", Target::Feed, None)
                .expect("a fresh connection may subscribe");
        }
        let mut n = 0u64;
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let change = Change::new("auth.User", ChangeKind::Updated, json!(5763), user(n));
                let start = Instant::now();
                black_box(hub.publish(change));
                timed += start.elapsed();
                let mut delivered = 0;
                for outbox in &mut outboxes {
                    while outbox.try_recv().is_some() {
                        delivered += 1;
                    }
                }
                assert_eq!(delivered, SUBSCRIBERS, "every subscriber gets every change");
            }
            timed
        });
    });

    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
