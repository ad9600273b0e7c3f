//! A channel layer inside one process: several hubs sharing streams.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, ready};
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::{broadcast, watch};

use super::broker::{Broker, BrokerError, BrokerEvent, Delivered, Outgoing, Replay};
use super::hub::lock;
use super::subscription::StreamPosition;

/// Deliveries a slow listener may lag behind before it is told it missed
/// some (it then recovers from history, as after an outage).
const FEED_CAPACITY: usize = 4096;

struct StreamLog {
    seq: u64,
    history: VecDeque<(Instant, Delivered)>,
}

struct State {
    epoch: Arc<str>,
    streams: HashMap<Arc<str>, StreamLog>,
}

/// A [`Broker`] inside one process: hubs built on the same `MemoryBroker`
/// behave as the nodes of a cluster. Useful to run several hubs in one
/// program, and to test multi-node behaviour without a server; its
/// [`set_available`](Self::set_available) and
/// [`lose_history`](Self::lose_history) play the part of an outage and of a
/// restart that loses everything.
///
/// ```
/// use channels_binding_core::hub::{Broker, MemoryBroker, Outgoing};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let broker = MemoryBroker::new();
/// broker.publish(vec![Outgoing { stream: "a.B".into(), payload: "{}".into() }]).await.unwrap();
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
    }

    fn ensure_available(&self) -> Result<(), BrokerError> {
        if *self.available.borrow() {
            Ok(())
        } else {
            Err(BrokerError::Unavailable("memory broker switched off".to_owned()))
        }
    }

    fn publish_now(&self, batch: Vec<Outgoing>) -> Result<(), BrokerError> {
        self.ensure_available()?;
        let mut state = lock(&self.state);
        let epoch = state.epoch.clone();
        let now = Instant::now();
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

    fn publish(&self, batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), BrokerError>> {
        ready(self.publish_now(batch)).boxed()
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
