//! The channel layer between server processes: the [`Broker`] trait.
//!
//! A hub without a broker sequences its own changes (the in-memory layer of
//! one process). A hub given a broker hands every change to it instead; the
//! broker gives the change the stream's next sequence number, keeps it in a
//! history shared by every node, and delivers it, in sequence order, to every
//! node's hub, this one included. Each hub then fans out to its own
//! connections, filtered by each subscriber's identity.
//!
//! Implementations: [`MemoryBroker`](super::MemoryBroker) (several hubs in
//! one process), `channels_binding_redis::RedisBroker` (Redis pub/sub) and
//! `channels_binding_sqlx::PgBroker` (PostgreSQL `LISTEN`/`NOTIFY`).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use super::subscription::StreamPosition;

/// One change on its way to the broker. The payload is opaque to brokers:
/// the hub encodes and decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The stream (`app.Model`) it belongs to: the unit of sequencing.
    pub stream: Arc<str>,
    /// The encoded change.
    pub payload: Bytes,
}

/// The name of one batch sent to a broker: sending the same batch again under
/// the same key (after a lost reply, a timeout or a hung broker) publishes it
/// once.
///
/// A hub's link makes one key per batch from an id of its own, random per
/// process, and a counter (`"9f3c…:42"`), and reuses the key for every retry
/// of that batch. Brokers remember a key for a bounded time (see
/// [`Broker`]), so a key must not be reused for another batch.
///
/// ```
/// use channels_binding_core::hub::BatchKey;
///
/// let key = BatchKey::new("node-a", 42);
/// assert_eq!(key.as_str(), "node-a:42");
/// assert_eq!(key, BatchKey::new("node-a", 42));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey(Arc<str>);

impl BatchKey {
    /// The key of the `number`-th batch of the sender `origin`.
    pub fn new(origin: &str, number: u64) -> Self {
        Self(Arc::from(format!("{origin}:{number}")))
    }

    /// The key as text.
    ///
    /// ```
    /// assert_eq!(channels_binding_core::hub::BatchKey::new("n", 1).as_str(), "n:1");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One sequenced change, as a broker delivers or replays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The stream.
    pub stream: Arc<str>,
    /// Where it sits in the stream: the broker's epoch and the change's number.
    pub position: StreamPosition,
    /// The payload, exactly as published.
    pub payload: Bytes,
}

/// What a broker's feed tells a hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerEvent {
    /// A change, in sequence order within its stream.
    Change(Delivered),
    /// The feed is (again) connected and subscribed. Changes published while
    /// it was down were not delivered: the hub compares positions and
    /// replays or resyncs.
    Connected,
    /// The feed lost its connection. The broker reconnects on its own and
    /// sends [`Connected`](BrokerEvent::Connected) when it is back.
    Disconnected,
}

/// What a broker's history holds after a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Every change after the position, in order (possibly none).
    Changes(Vec<Delivered>),
    /// Some change after the position is gone (trimmed by count or age, or
    /// the epoch differs): the subscriber must resync.
    Gone,
}

/// Why a broker operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The broker cannot be reached now; the operation may succeed later.
    #[error("channel layer unavailable: {0}")]
    Unavailable(String),
    /// The broker answered something this version does not understand.
    #[error("channel layer protocol error: {0}")]
    Protocol(String),
}

/// A channel layer shared by several server processes.
///
/// Object-safe: hubs hold it as `Arc<dyn Broker>`, so no type parameter
/// reaches user types. The contract every implementation keeps:
///
/// * [`publish`](Broker::publish) gives each change of a stream the next
///   sequence number of that stream (starting at 1 in a new epoch), records
///   it in a history bounded by count and age, and delivers it to every
///   [`listen`](Broker::listen)er, in sequence order per stream. The changes
///   of one batch keep their order. `Ok` means every change of the batch was
///   recorded; `Err` means none or all were: a broker applies a batch
///   atomically (one Lua script, one SQL transaction).
/// * Publication is **exactly once per [`BatchKey`] within the key's
///   retention window**: a broker records the key with the batch, and a
///   batch published again under a key it still holds is not sequenced or
///   delivered again; the call answers `Ok` as the first one did. A hub's
///   link retries a failed batch under the same key until the broker takes
///   it, so a lost reply or a broker that hung and then ran both the
///   request and its retry delivers each change once. The window is the
///   broker's history age (5 minutes by default for every broker here):
///   only a first attempt that ran, followed by a retry that reaches the
///   broker more than the window later (a broker that hung or stayed
///   unreachable that long), publishes a change twice, under two sequence
///   numbers.
/// * What this does not cover: changes a hub queued itself
///   ([`Hub::publish`](super::Hub::publish)) still waiting in a process that
///   dies before the broker took them are lost with it (the queue lives in
///   memory), and their subscribers are not told. Model bindings on
///   PostgreSQL avoid this with capture: the change is recorded in an
///   outbox table in the writing transaction and relayed to the broker by
///   `channels_binding_sqlx::Relay`, whichever process is left.
/// * The epoch changes whenever the broker lost its history (a restart of a
///   broker that keeps nothing): positions of the old epoch are void.
/// * [`listen`](Broker::listen) reconnects by itself after an outage and
///   reports it with [`BrokerEvent::Disconnected`] and
///   [`BrokerEvent::Connected`].
///
/// ```
/// use std::sync::Arc;
/// use channels_binding_core::hub::{Broker, Hub, HubConfig, MemoryBroker};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // Two hubs (two "nodes") sharing one channel layer.
/// let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
/// let a = Hub::with_broker(HubConfig::default(), broker.clone());
/// let b = Hub::with_broker(HubConfig::default(), broker);
/// assert_ne!(a.node(), b.node());
/// # }
/// ```
pub trait Broker: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and metrics: `memory`, `redis`, `postgres`.
    fn name(&self) -> &'static str;

    /// Sequences, records and delivers a batch of changes, in order, once
    /// per `key`: a batch whose key the broker still holds answers `Ok`
    /// and changes nothing.
    fn publish<'a>(&'a self, key: &'a BatchKey, batch: Vec<Outgoing>) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// The feed of every change of every stream from now on, with
    /// connection events. Called once per hub.
    fn listen(&self) -> BoxStream<'static, BrokerEvent>;

    /// The stream's current position (sequence 0 when it has no change yet).
    fn position<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<StreamPosition, BrokerError>>;

    /// The recorded changes after `after`, or [`Replay::Gone`] when history
    /// cannot cover them.
    fn replay<'a>(&'a self, stream: &'a str, after: &'a StreamPosition) -> BoxFuture<'a, Result<Replay, BrokerError>>;

    /// Whether the broker answers now (for readiness probes).
    fn check(&self) -> BoxFuture<'_, Result<(), BrokerError>>;
}
