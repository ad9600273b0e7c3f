//! A channel layer inside one process: several hubs sharing streams.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, ready};
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::{broadcast, watch};

use super::broker::{BatchKey, Broker, BrokerError, BrokerEvent, Delivered, Outgoing, Replay};
use super::hub::lock;
use super::subscription::StreamPosition;

/// Deliveries a slow listener may lag behind before it is told it missed
/// some (it then recovers from history, as after an outage).
const FEED_CAPACITY: usize = 4096;

/// Batch keys remembered at most, besides the age bound: a sender that
/// publishes faster than this many batches per history age gets the
/// exactly-once guarantee for its most recent batches only.
const MAX_KEYS: usize = 65_536;

struct StreamLog {
    seq: u64,
    history: VecDeque<(Instant, Delivered)>,
}

struct State {
    epoch: Arc<str>,
    streams: HashMap<Arc<str>, StreamLog>,
    /// Keys of the batches published within the history age, oldest first.
    published: VecDeque<(Instant, BatchKey)>,
    known: HashSet<BatchKey>,
}

impl State {
    /// Forgets keys older than `age` or beyond [`MAX_KEYS`].
    fn forget_keys(&mut self, now: Instant, age: Duration) {
        while let Some((at, key)) = self.published.front() {
            if self.published.len() <= MAX_KEYS && now.saturating_duration_since(*at) <= age {
                break;
            }
            self.known.remove(key);
            self.published.pop_front();
        }
    }
}

/// A [`Broker`] inside one process: hubs built on the same `MemoryBroker`
/// behave as the nodes of a cluster. Useful to run several hubs in one
/// program, and to test multi-node behaviour without a server; its
/// [`set_available`](Self::set_available) and
/// [`lose_history`](Self::lose_history) play the part of an outage and of a
/// restart that loses everything.
///
/// Like every broker, it publishes a batch once per [`BatchKey`]: it
/// remembers the keys of the history age (at most 65 536 of them).
///
/// ```
/// use channels_binding_core::hub::{BatchKey, Broker, MemoryBroker, Outgoing};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let broker = MemoryBroker::new();
/// let key = BatchKey::new("node-a", 1);
/// let batch = vec![Outgoing { stream: "a.B".into(), payload: "{}".into() }];
/// broker.publish(&key, batch.clone()).await.unwrap();
/// // A retry of the same batch (its reply was lost, say) publishes nothing.
/// broker.publish(&key, batch).await.unwrap();
/// assert_eq!(broker.position("a.B").await.unwrap().seq, 1);
/// # }
/// ```
pub struct MemoryBroker {
    state: Mutex<State>,
    feed: broadcast::Sender<Delivered>,
    available: watch::Sender<bool>,
    history_len: usize,
    history_age: Duration,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A broker keeping 1000 changes per stream for 5 minutes.
    pub fn new() -> Self {
        Self::with_history(1000, Duration::from_secs(300))
    }

    /// A broker keeping `len` changes per stream for `age`.
    pub fn with_history(len: usize, age: Duration) -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let (available, _) = watch::channel(true);
        Self {
            state: Mutex::new(State {
                epoch: super::hub::new_epoch(),
                streams: HashMap::new(),
                published: VecDeque::new(),
                known: HashSet::new(),
            }),
            feed,
            available,
            history_len: len,
            history_age: age,
        }
    }

    /// Simulates an outage (`false`) and the recovery (`true`): while
    /// unavailable every operation fails and listeners are disconnected.
    pub fn set_available(&self, available: bool) {
        self.available.send_replace(available);
    }

    /// Simulates a restart that lost everything: a new epoch, no history,
    /// numbering from 1 again.
    pub fn lose_history(&self) {
        let mut state = lock(&self.state);
        state.epoch = super::hub::new_epoch();
        state.streams.clear();
        state.published.clear();
        state.known.clear();
    }

    fn ensure_available(&self) -> Result<(), BrokerError> {
        if *self.available.borrow() {
            Ok(())
        } else {
            Err(BrokerError::Unavailable("memory broker switched off".to_owned()))
        }
    }

    fn publish_now(&self, key: &BatchKey, batch: Vec<Outgoing>) -> Result<(), BrokerError> {
        self.ensure_available()?;
        let mut state = lock(&self.state);
        let epoch = state.epoch.clone();
        let now = Instant::now();
        state.forget_keys(now, self.history_age);
        if !state.known.insert(key.clone()) {
            // Published already: this is a retry.
            return Ok(());
        }
        state.published.push_back((now, key.clone()));
        for outgoing in batch {
            let log = state
                .streams
                .entry(outgoing.stream.clone())
                .or_insert_with(|| StreamLog {
                    seq: 0,
                    history: VecDeque::new(),
                });
            log.seq += 1;
            let delivered = Delivered {
                stream: outgoing.stream,
                position: StreamPosition {
                    epoch: epoch.clone(),
                    seq: log.seq,
                },
                payload: outgoing.payload,
            };
            log.history.push_back((now, delivered.clone()));
            while log.history.len() > self.history_len {
                log.history.pop_front();
            }
            // Sent under the lock, so that every listener sees seq order.
            let _ = self.feed.send(delivered);
        }
        Ok(())
    }

    fn position_now(&self, stream: &str) -> Result<StreamPosition, BrokerError> {
        self.ensure_available()?;
        let state = lock(&self.state);
        Ok(StreamPosition {
            epoch: state.epoch.clone(),
            seq: state.streams.get(stream).map_or(0, |log| log.seq),
        })
    }

    fn replay_now(&self, stream: &str, after: &StreamPosition) -> Result<Replay, BrokerError> {
        self.ensure_available()?;
        let state = lock(&self.state);
        if after.epoch != state.epoch {
            return Ok(Replay::Gone);
        }
        let Some(log) = state.streams.get(stream) else {
            return Ok(if after.seq == 0 {
                Replay::Changes(Vec::new())
            } else {
                Replay::Gone
            });
        };
        if after.seq > log.seq {
            return Ok(Replay::Gone);
        }
        let now = Instant::now();
        let kept: Vec<&(Instant, Delivered)> = log
            .history
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= self.history_age)
            .collect();
        let oldest = kept.first().map_or(log.seq + 1, |(_, d)| d.position.seq);
        if oldest > after.seq + 1 {
            return Ok(Replay::Gone);
        }
        Ok(Replay::Changes(
            kept.into_iter()
                .filter(|(_, d)| d.position.seq > after.seq)
                .map(|(_, d)| d.clone())
                .collect(),
        ))
    }
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("epoch", &lock(&self.state).epoch)
            .field("history_len", &self.history_len)
            .field("history_age", &self.history_age)
            .finish_non_exhaustive()
    }
}

/// One listener's view: its receiver and whether it is connected.
struct Listener {
    feed: broadcast::Receiver<Delivered>,
    available: watch::Receiver<bool>,
    connected: bool,
}

impl Listener {
    async fn next(&mut self) -> Option<BrokerEvent> {
        loop {
            if !self.connected {
                // Wait for the broker to come back, then start over.
                if self.available.wait_for(|up| *up).await.is_err() {
                    return None;
                }
                self.feed = self.feed.resubscribe();
                self.connected = true;
                return Some(BrokerEvent::Connected);
            }
            tokio::select! {
                changed = self.available.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    if !*self.available.borrow() {
                        self.connected = false;
                        return Some(BrokerEvent::Disconnected);
                    }
                }
                received = self.feed.recv() => match received {
                    Ok(delivered) => return Some(BrokerEvent::Change(delivered)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "memory broker listener lagged; recovering from history");
                        self.connected = false;
                        return Some(BrokerEvent::Disconnected);
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

impl Broker for MemoryBroker {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn publish<'a>(&'a self, key: &'a BatchKey, batch: Vec<Outgoing>) -> BoxFuture<'a, Result<(), BrokerError>> {
        ready(self.publish_now(key, batch)).boxed()
    }

    fn listen(&self) -> BoxStream<'static, BrokerEvent> {
        let listener = Listener {
            feed: self.feed.subscribe(),
            available: self.available.subscribe(),
            connected: false,
        };
        stream::unfold(listener, |mut listener| async move {
            let event = listener.next().await?;
            Some((event, listener))
        })
        .boxed()
    }

    fn position<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        ready(self.position_now(stream)).boxed()
    }

    fn replay<'a>(&'a self, stream: &'a str, after: &'a StreamPosition) -> BoxFuture<'a, Result<Replay, BrokerError>> {
        ready(self.replay_now(stream, after)).boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        ready(self.ensure_available()).boxed()
    }
}
