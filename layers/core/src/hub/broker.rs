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
///   recorded; `Err` means none or some were (the hub then tells the
///   affected subscribers to resync).
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

    /// Sequences, records and delivers a batch of changes, in order.
    fn publish(&self, batch: Vec<Outgoing>) -> BoxFuture<'_, Result<(), BrokerError>>;

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
