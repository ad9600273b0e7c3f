//! A hub's connection to its channel layer: the task that publishes changes
//! to the broker in order, and the task that applies what the broker delivers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, watch};

use super::broker::{BatchKey, Broker, BrokerEvent, Outgoing};
use super::hub::{HubInner, lock};
use super::wire::WireChange;

/// Changes a hub may have waiting for the broker before it counts changes
/// as lost (and tells their subscribers to resync).
pub(crate) const OUTGOING_CAPACITY: usize = 8192;

/// Changes sent to the broker in one round trip at most.
const MAX_BATCH: usize = 256;

const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(2);

/// The hub's side of the channel layer.
pub(crate) struct Link {
    pub(crate) broker: Arc<dyn Broker>,
    outgoing: mpsc::Sender<Outgoing>,
    /// Streams with changes that never reached the broker; a gap marker
    /// goes out for each before the next batch.
    lost: Arc<Mutex<HashSet<Arc<str>>>>,
    pub(crate) connected: AtomicBool,
    /// Changes queued and not yet taken by the broker.
    pending: Arc<Pending>,
    /// Dropped with the hub: stops the listener.
    _closed: watch::Sender<()>,
}

/// How many changes wait for the broker, and a wake-up for
/// [`Link::flush`] whenever a batch went out.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    published: Notify,
}

/// The tasks of a [`Link`], started once the hub exists.
pub(crate) struct LinkTasks {
    broker: Arc<dyn Broker>,
    queue: mpsc::Receiver<Outgoing>,
    lost: Arc<Mutex<HashSet<Arc<str>>>>,
    pending: Arc<Pending>,
    closed: watch::Receiver<()>,
}

impl LinkTasks {
    /// Starts publishing and applying deliveries for `hub`.
    pub(crate) fn spawn(self, hub: &Arc<HubInner>) {
        tokio::spawn(publish_in_order(
            self.broker.clone(),
            self.queue,
            self.lost,
            self.pending,
        ));
        tokio::spawn(apply_deliveries(Arc::downgrade(hub), self.broker, self.closed));
    }
}

impl Link {
    /// A link on `broker`; its tasks start with [`LinkTasks::spawn`].
    pub(crate) fn new(broker: Arc<dyn Broker>) -> (Link, LinkTasks) {
        let (outgoing, queue) = mpsc::channel(OUTGOING_CAPACITY);
        let (closed, closed_rx) = watch::channel(());
        let lost = Arc::new(Mutex::new(HashSet::new()));
        let pending = Arc::new(Pending::default());
        let tasks = LinkTasks {
            broker: broker.clone(),
            queue,
            lost: lost.clone(),
            pending: pending.clone(),
            closed: closed_rx,
        };
        let link = Link {
            broker,
            outgoing,
            lost,
            connected: AtomicBool::new(false),
            pending,
            _closed: closed,
        };
        (link, tasks)
    }

    /// Queues a change for the broker without waiting. `false` when the
    /// queue is full: the change is lost, and recorded as such.
    pub(crate) fn send(&self, outgoing: Outgoing) -> bool {
        // Counted first: the publisher may take it before `try_send` returns.
        self.pending.count.fetch_add(1, Ordering::SeqCst);
        match self.outgoing.try_send(outgoing) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(outgoing) | mpsc::error::TrySendError::Closed(outgoing)) => {
                self.pending.count.fetch_sub(1, Ordering::SeqCst);
                lock(&self.lost).insert(outgoing.stream);
                false
            }
        }
    }

    /// Waits until the broker took every queued change, or `within`
    /// passed; returns how many still wait.
    pub(crate) async fn flush(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Registered before the count is read: a batch published in
            // between still wakes this wait.
            let published = self.pending.published.notified();
            let waiting = self.pending.count.load(Ordering::SeqCst);
            if waiting == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return self.pending.count.load(Ordering::SeqCst);
            }
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// Sends queued changes to the broker in batches, in queue order. A batch
/// that fails is retried (with growing pauses) until the broker takes it:
/// the writes are committed, so their changes must go out. Every attempt of
/// one batch carries the same [`BatchKey`] (this link's random id and the
/// batch's number), so an attempt that ran although its reply was lost is
/// not published again by the next one. Changes that did not fit in the
/// queue meanwhile are announced as gaps first.
async fn publish_in_order(
    broker: Arc<dyn Broker>,
    mut queue: mpsc::Receiver<Outgoing>,
    lost: Arc<Mutex<HashSet<Arc<str>>>>,
    pending: Arc<Pending>,
) {
    let mut batch: Vec<Outgoing> = Vec::with_capacity(MAX_BATCH);
    // Random per link: keys of another process, or of this one before a
    // restart, never collide with ours.
    let sender = super::hub::new_epoch();
    let mut number: u64 = 0;
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let gaps: Vec<Outgoing> = lock(&lost)
            .drain()
            .map(|stream| Outgoing {
                stream,
                payload: WireChange::gap().encode(),
            })
            .collect();
        let mut sending = gaps;
        let taken = batch.len();
        sending.append(&mut batch);
        number += 1;
        let key = BatchKey::new(&sender, number);
        let mut pause = FIRST_RETRY;
        loop {
            match broker.publish(&key, sending.clone()).await {
                Ok(()) => {
                    pending.count.fetch_sub(taken, Ordering::SeqCst);
                    pending.published.notify_waiters();
                    break;
                }
                Err(err) => {
                    if queue.is_closed() {
                        // The hub is gone: nobody is left to deliver to.
                        return;
                    }
                    tracing::warn!(error = %err, broker = broker.name(), waiting = sending.len(), "publishing to the channel layer failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LAST_RETRY);
                }
            }
        }
    }
}

/// Applies the broker's feed to the hub until the hub is dropped.
async fn apply_deliveries(hub: Weak<HubInner>, broker: Arc<dyn Broker>, mut closed: watch::Receiver<()>) {
    let mut feed = broker.listen();
    loop {
        let event = tokio::select! {
            event = feed.next() => event,
            _ = closed.changed() => return,
        };
        let Some(event) = event else { return };
        let Some(hub) = hub.upgrade() else { return };
        match event {
            BrokerEvent::Change(delivered) => hub.receive(&*broker, delivered).await,
            BrokerEvent::Connected => {
                hub.set_broker_connected(true);
                tracing::info!(broker = broker.name(), "channel layer connected");
                // Whatever was published while the feed was away is fetched
                // from history, or its subscribers are told to resync.
                hub.recover(&*broker).await;
            }
            BrokerEvent::Disconnected => {
                hub.set_broker_connected(false);
                tracing::warn!(broker = broker.name(), "channel layer disconnected; reconnecting");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::future::BoxFuture;
    use futures_util::stream::{self, BoxStream};
    use serde_json::json;

    use super::*;
    use crate::hub::{BrokerError, Change, ChangeKind, Hub, HubConfig, MemoryBroker, Replay, StreamPosition};

    /// A channel layer that refuses every publish.
    #[derive(Debug)]
    struct Down;

    impl Broker for Down {
        fn name(&self) -> &'static str {
            "down"
        }
        fn publish<'a>(&'a self, _: &'a BatchKey, _: Vec<Outgoing>) -> BoxFuture<'a, Result<(), BrokerError>> {
            Box::pin(async { Err(BrokerError::Unavailable("down".into())) })
        }
        fn listen(&self) -> BoxStream<'static, BrokerEvent> {
            stream::pending().boxed()
        }
        fn position<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
            Box::pin(async { Err(BrokerError::Unavailable("down".into())) })
        }
        fn replay<'a>(&'a self, _: &'a str, _: &'a StreamPosition) -> BoxFuture<'a, Result<Replay, BrokerError>> {
            Box::pin(async { Err(BrokerError::Unavailable("down".into())) })
        }
        fn check(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
            Box::pin(async { Err(BrokerError::Unavailable("down".into())) })
        }
    }

    fn change(n: i64) -> Change {
        Change::new("app.Note", ChangeKind::Created, json!(n), json!({"id": n}))
    }

    #[tokio::test]
    async fn flush_waits_until_the_broker_took_every_change() {
        let hub = Hub::with_broker(HubConfig::default(), Arc::new(MemoryBroker::new()));
        for n in 0..100 {
            hub.publish(change(n));
        }
        assert_eq!(hub.flush(Duration::from_secs(5)).await, 0);
    }

    #[tokio::test]
    async fn flush_tells_how_many_changes_still_wait_after_its_bound() {
        let hub = Hub::with_broker(HubConfig::default(), Arc::new(Down));
        for n in 0..3 {
            hub.publish(change(n));
        }
        let started = std::time::Instant::now();
        assert_eq!(hub.flush(Duration::from_millis(200)).await, 3);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
