//! The hub: who is subscribed to what, and delivery of changes and messages.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::broker::{Broker, BrokerError, Delivered, Outgoing, Replay};
use super::change::{Change, ChangeCodec, Visibility};
use super::connection::{Connection, Origin, Outbound, Outbox};
use super::link::Link;
use super::stream::StreamState;
use super::subscription::{StreamPosition, Subscribed, Target};
use super::wire::{WireChange, WireKind};
use crate::identity::Identity;
use crate::protocol::encode_push;

/// The group every connection is in.
pub const ALL_GROUP: &str = "__all__";

/// Named groups one connection may join besides `__all__` and its user group.
pub const MAX_GROUPS_PER_CONNECTION: usize = 256;

/// Limits of a [`Hub`]. Every queue and map on a client's path is bounded by one.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_core::hub::{Hub, HubConfig};
///
/// let hub = Hub::with_config(HubConfig::default().history_len(500).history_age(Duration::from_secs(60)));
/// assert_eq!(hub.config().history_len, 500);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Changes kept per stream for `since` replay (default 1000).
    pub history_len: usize,
    /// Age after which a change leaves history (default 5 minutes).
    pub history_age: Duration,
    /// Frames that may wait for one connection before it counts as a slow
    /// consumer and is closed (default 1024).
    pub queue_capacity: usize,
    /// Feed and object subscriptions one connection may hold (default 4096).
    pub max_subscriptions: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            history_len: 1000,
            history_age: Duration::from_secs(300),
            queue_capacity: 1024,
            max_subscriptions: 4096,
        }
    }
}

impl HubConfig {
    /// Sets [`history_len`](Self::history_len).
    #[must_use]
    pub fn history_len(mut self, len: usize) -> Self {
        self.history_len = len;
        self
    }

    /// Sets [`history_age`](Self::history_age).
    #[must_use]
    pub fn history_age(mut self, age: Duration) -> Self {
        self.history_age = age;
        self
    }

    /// Sets [`queue_capacity`](Self::queue_capacity) (at least 1).
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Sets [`max_subscriptions`](Self::max_subscriptions).
    #[must_use]
    pub fn max_subscriptions(mut self, max: usize) -> Self {
        self.max_subscriptions = max;
        self
    }
}

/// Why a subscription or group join was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The connection holds as many subscriptions as the hub allows.
    #[error("subscription limit reached ({0}); unsubscribe first")]
    TooManySubscriptions(usize),
    /// The connection is in as many groups as allowed.
    #[error("group limit reached ({MAX_GROUPS_PER_CONNECTION})")]
    TooManyGroups,
}

type Shared<T> = Arc<Mutex<T>>;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Our critical sections leave the maps consistent at every step, so a
    // panic elsewhere must not take the hub down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters and gauges a hub reports through the `metrics` facade. Looked
/// up at each use (once per change, not per delivery), so that a recorder
/// installed after the hub was built still sees them.
struct HubMetrics;

impl HubMetrics {
    fn delivered(&self, frames: usize) {
        metrics::counter!("channels_binding_deliveries_total").increment(frames as u64);
    }

    fn resynced(&self) {
        metrics::counter!("channels_binding_resyncs_total").increment(1);
    }

    fn lost(&self) {
        metrics::counter!("channels_binding_drops_total", "reason" => "channel_layer_queue_full").increment(1);
    }

    fn connections(&self, count: u64) {
        metrics::gauge!("channels_binding_connections").set(count as f64);
    }

    fn broker_connected(&self, connected: bool) {
        metrics::gauge!("channels_binding_broker_connected").set(f64::from(u8::from(connected)));
    }
}

pub(crate) struct HubInner {
    config: HubConfig,
    /// This hub's name among the nodes sharing a channel layer.
    node: Arc<str>,
    /// The epoch of locally sequenced streams (no broker), and the
    /// placeholder of streams a broker has not told us about yet.
    epoch: Arc<str>,
    next_connection: AtomicU64,
    streams: Mutex<HashMap<Arc<str>, Shared<StreamState>>>,
    groups: Mutex<HashMap<Arc<str>, HashMap<u64, Connection>>>,
    connections: AtomicU64,
    codecs: RwLock<HashMap<Arc<str>, Arc<dyn ChangeCodec>>>,
    /// Closure visibilities of this node's changes on their way through the
    /// broker (a closure cannot travel), by ticket.
    kept: Mutex<HashMap<u64, Visibility>>,
    next_ticket: AtomicU64,
    link: Option<Link>,
    metrics: HubMetrics,
}

impl HubInner {
    fn stream(&self, name: &str) -> Shared<StreamState> {
        let mut streams = lock(&self.streams);
        if let Some(state) = streams.get(name) {
            return state.clone();
        }
        let name: Arc<str> = Arc::from(name);
        let mut state = StreamState::new(name.clone(), self.epoch.clone());
        // Without a broker this hub is the authority on its streams.
        state.synced = self.link.is_none();
        let state = Arc::new(Mutex::new(state));
        streams.insert(name, state.clone());
        state
    }

    fn codec(&self, stream: &str) -> Option<Arc<dyn ChangeCodec>> {
        self.codecs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    fn register_codec(&self, stream: &str, codec: &Arc<dyn ChangeCodec>) {
        let known = self
            .codecs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(stream);
        if !known {
            self.codecs
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(Arc::from(stream), codec.clone());
        }
    }

    pub(crate) fn set_broker_connected(&self, connected: bool) {
        if let Some(link) = &self.link {
            link.connected.store(connected, Ordering::Relaxed);
        }
        self.metrics.broker_connected(connected);
    }

    /// The wire change a delivery carries; `None` when it cannot be read
    /// (treated as a gap: its subscribers resync rather than miss it).
    fn decode(&self, delivered: &Delivered) -> Option<WireChange> {
        match serde_json::from_slice::<WireChange>(&delivered.payload) {
            Ok(wire) => Some(wire),
            Err(err) => {
                tracing::warn!(stream = %delivered.stream, seq = delivered.position.seq, error = %err, "unreadable change from the channel layer");
                None
            }
        }
    }

    /// Applies the next change of a stream (`seq == state.seq + 1`).
    fn apply(&self, state: &mut StreamState, stream: &Arc<str>, seq: u64, wire: Option<WireChange>) {
        let wire = wire.filter(|wire| wire.kind != WireKind::Gap);
        let Some(wire) = wire else {
            let epoch = state.epoch.clone();
            self.resync(state, epoch, seq);
            return;
        };
        let origin = wire
            .origin
            .as_ref()
            .filter(|origin| *origin.node == *self.node)
            .map(|origin| Origin {
                connection: origin.connection,
                request: origin.request,
            });
        let kept = self.take_kept(&wire);
        match wire.into_change(stream.clone(), self.codec(stream), kept) {
            Some(change) => {
                let delivered = state.apply(seq, change, origin, self.config.history_len, self.config.history_age);
                self.metrics.delivered(delivered);
            }
            None => {
                let epoch = state.epoch.clone();
                self.resync(state, epoch, seq);
            }
        }
    }

    /// Keeps a closure visibility for a change of this node; `None` when too
    /// many wait already (the change then reaches nobody through the codec-less path).
    fn keep(&self, visibility: &Visibility) -> Option<u64> {
        let Visibility::Rule(_) = visibility else {
            return None;
        };
        let mut kept = lock(&self.kept);
        if kept.len() >= super::link::OUTGOING_CAPACITY {
            tracing::warn!("too many closure visibilities waiting for the channel layer");
            return None;
        }
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        kept.insert(ticket, visibility.clone());
        Some(ticket)
    }

    fn take_kept(&self, wire: &WireChange) -> Option<Visibility> {
        let kept = wire.kept.as_ref().filter(|kept| *kept.node == *self.node)?;
        lock(&self.kept).remove(&kept.ticket)
    }

    fn resync(&self, state: &mut StreamState, epoch: Arc<str>, seq: u64) {
        let told = state.resync(epoch, seq);
        if told > 0 {
            self.metrics.resynced();
            tracing::info!(
                connections = told,
                seq,
                "stream lost changes; subscribers told to resync"
            );
        }
    }

    /// Applies one delivery from the broker, fetching any change it skipped.
    pub(crate) async fn receive(&self, broker: &dyn Broker, delivered: Delivered) {
        let stream = delivered.stream.clone();
        let seq = delivered.position.seq;
        let state = self.stream(&stream);
        let wire = self.decode(&delivered);
        let missing_after = {
            let mut state = lock(&state);
            if !state.synced || state.epoch != delivered.position.epoch {
                // A stream heard of for the first time, or a new epoch (the
                // broker lost its history): start over from this change.
                // Nobody subscribed can be left believing nothing happened.
                if state.subscriber_count() > 0 {
                    self.resync(&mut state, delivered.position.epoch.clone(), seq.saturating_sub(1));
                } else {
                    state.adopt(delivered.position.epoch.clone(), seq.saturating_sub(1));
                }
                None
            } else if seq <= state.seq {
                return;
            } else if seq == state.seq + 1 {
                None
            } else {
                Some(StreamPosition {
                    epoch: state.epoch.clone(),
                    seq: state.seq,
                })
            }
        };
        if let Some(after) = missing_after {
            self.catch_up(broker, &stream, &after, seq).await;
        }
        let mut state = lock(&state);
        if seq <= state.seq {
            return;
        }
        if seq != state.seq + 1 {
            let epoch = state.epoch.clone();
            self.resync(&mut state, epoch, seq.saturating_sub(1));
        }
        self.apply(&mut state, &stream, seq, wire);
    }

    /// Delivers, from the broker's history, the changes after `after` and
    /// before `until`; when history cannot cover them, tells the stream's
    /// subscribers to resync.
    async fn catch_up(&self, broker: &dyn Broker, stream: &Arc<str>, after: &StreamPosition, until: u64) {
        let replay = broker.replay(stream, after).await;
        let state = self.stream(stream);
        let mut state = lock(&state);
        if state.epoch != after.epoch || state.seq != after.seq {
            // Someone else moved the stream meanwhile; `receive` checks again.
            return;
        }
        match replay {
            Ok(Replay::Changes(list)) => {
                for delivered in list {
                    let seq = delivered.position.seq;
                    if seq >= until || delivered.position.epoch != state.epoch {
                        break;
                    }
                    if seq != state.seq + 1 {
                        continue;
                    }
                    let wire = self.decode(&delivered);
                    self.apply(&mut state, stream, seq, wire);
                }
                if state.seq + 1 < until {
                    let epoch = state.epoch.clone();
                    self.resync(&mut state, epoch, until.saturating_sub(1));
                }
            }
            Ok(Replay::Gone) => {
                let epoch = state.epoch.clone();
                self.resync(&mut state, epoch, until.saturating_sub(1));
            }
            Err(err) => {
                tracing::warn!(stream = %stream, error = %err, "channel layer history unavailable; subscribers resync");
                let epoch = state.epoch.clone();
                self.resync(&mut state, epoch, until.saturating_sub(1));
            }
        }
    }

    /// After the broker's feed (re)connects: every stream this node follows
    /// catches up with what was published meanwhile, or resyncs.
    pub(crate) async fn recover(&self, broker: &dyn Broker) {
        let streams: Vec<(Arc<str>, Shared<StreamState>)> = lock(&self.streams)
            .iter()
            .map(|(name, state)| (name.clone(), state.clone()))
            .collect();
        for (name, state) in streams {
            let local = {
                let state = lock(&state);
                if !state.synced {
                    continue;
                }
                StreamPosition {
                    epoch: state.epoch.clone(),
                    seq: state.seq,
                }
            };
            match position_with_retries(broker, &name).await {
                Ok(remote) if remote.epoch != local.epoch => {
                    let mut state = lock(&state);
                    self.resync(&mut state, remote.epoch, remote.seq);
                }
                Ok(remote) if remote.seq > local.seq => {
                    self.catch_up(broker, &name, &local, remote.seq + 1).await;
                }
                Ok(_) => {}
                Err(err) => {
                    // What was published meanwhile cannot be known: tell the
                    // subscribers now, and take the next change as a fresh
                    // start.
                    tracing::warn!(stream = %name, error = %err, "channel layer position unavailable during recovery");
                    let mut state = lock(&state);
                    let (epoch, seq) = (state.epoch.clone(), state.seq);
                    self.resync(&mut state, epoch, seq);
                    state.synced = false;
                }
            }
        }
    }

    fn join_group(&self, connection: &Connection, group: &str) {
        let group: Arc<str> = Arc::from(group);
        connection.memberships().groups.insert(group.clone());
        lock(&self.groups)
            .entry(group)
            .or_default()
            .insert(connection.id(), connection.clone());
    }

    fn leave_group(&self, connection_id: u64, group: &Arc<str>) {
        let mut groups = lock(&self.groups);
        if let Some(members) = groups.get_mut(group) {
            members.remove(&connection_id);
            if members.is_empty() {
                groups.remove(group);
            }
        }
    }

    /// Forgets a connection: every subscription and group membership.
    pub(crate) fn disconnect(&self, connection: &Connection) {
        let (feeds, objects, groups) = {
            let mut memberships = connection.memberships();
            (
                std::mem::take(&mut memberships.feeds),
                std::mem::take(&mut memberships.objects),
                std::mem::take(&mut memberships.groups),
            )
        };
        let mut by_stream: HashMap<Arc<str>, Vec<Arc<str>>> = HashMap::new();
        for stream in feeds {
            by_stream.entry(stream).or_default();
        }
        for (stream, pk) in objects {
            by_stream.entry(stream).or_default().push(pk);
        }
        for (stream, pks) in by_stream {
            let state = self.stream(&stream);
            lock(&state).remove_connection(connection.id(), pks.iter());
        }
        for group in &groups {
            self.leave_group(connection.id(), group);
        }
        let left = self.connections.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        self.metrics.connections(left);
    }
}

/// The broker's position of `stream`, asked a few times: right after a
/// reconnection the broker's other connections may still be recovering.
async fn position_with_retries(broker: &dyn Broker, stream: &str) -> Result<StreamPosition, BrokerError> {
    let mut pause = Duration::from_millis(50);
    let mut attempts = 0;
    loop {
        match broker.position(stream).await {
            Ok(position) => return Ok(position),
            Err(err) if attempts >= 5 => return Err(err),
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
}

/// A snapshot of a hub's load, for metrics and health pages.
///
/// ```
/// use channels_binding_core::{Hub, Identity};
///
/// let hub = Hub::new();
/// let _outbox = hub.connect(Identity::anonymous());
/// assert_eq!(hub.stats().connections, 1);
/// assert_eq!(hub.stats().queued_frames, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HubStats {
    /// Connections registered.
    pub connections: u64,
    /// Frames waiting in all connections' queues.
    pub queued_frames: usize,
    /// The longest connection queue.
    pub max_queue_depth: usize,
    /// Streams the hub holds state for.
    pub streams: usize,
}

/// The subscription hub: groups of interest, change delivery and history.
///
/// Cheap to clone; every clone is the same hub. Server code can hold one and
/// send to a group, a user or everyone from any task. Handlers receive a clone
/// that remembers which request they serve, so that a push caused by a request
/// reaches its sender after the reply.
///
/// ```
/// use channels_binding_core::hub::{Change, ChangeKind, Hub, Target};
/// use channels_binding_core::Identity;
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let hub = Hub::new();
/// let mut outbox = hub.connect(Identity::anonymous());
/// hub.subscribe(outbox.connection(), "auth.User", Target::Feed, None).unwrap();
///
/// hub.publish(Change::new("auth.User", ChangeKind::Created, json!(1), json!({"id": 1})));
///
/// let push = outbox.recv().await.unwrap();
/// let push: serde_json::Value = serde_json::from_slice(&push.frame).unwrap();
/// assert_eq!(push["event"], "auth.User.created");
/// assert_eq!(push["seq"], 1);
/// # }
/// ```
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
    origin: Option<Origin>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with default limits.
    pub fn new() -> Self {
        Self::with_config(HubConfig::default())
    }

    /// A hub with these limits.
    pub fn with_config(config: HubConfig) -> Self {
        Self {
            inner: Arc::new(Self::inner(config, None)),
            origin: None,
        }
    }

    /// A hub that shares its streams with every other hub on `broker` (the
    /// other server processes): changes are sequenced by the broker, and
    /// every hub delivers every change to its own subscribers, in order and
    /// filtered per subscriber. A change whose visibility is a closure
    /// ([`Visibility::Rule`]) reaches other nodes' subscribers only through
    /// the codec registered for its stream ([`register_codec`](Self::register_codec)).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime: the hub runs two tasks, one publishing to
    /// the broker and one applying what it delivers.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use channels_binding_core::hub::{Change, ChangeKind, Hub, HubConfig, MemoryBroker, Target};
    /// use channels_binding_core::Identity;
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let broker = Arc::new(MemoryBroker::new());
    /// let a = Hub::with_broker(HubConfig::default(), broker.clone());
    /// let b = Hub::with_broker(HubConfig::default(), broker);
    ///
    /// let mut outbox = b.connect(Identity::anonymous());
    /// b.prepare("chat.Message", None).await;
    /// b.subscribe(outbox.connection(), "chat.Message", Target::Feed, None).unwrap();
    ///
    /// a.publish(Change::new("chat.Message", ChangeKind::Created, json!(1), json!({"id": 1})));
    /// let push: serde_json::Value = serde_json::from_slice(&outbox.recv().await.unwrap().frame).unwrap();
    /// assert_eq!(push["event"], "chat.Message.created");
    /// assert_eq!(push["seq"], 1);
    /// # }
    /// ```
    pub fn with_broker(config: HubConfig, broker: Arc<dyn Broker>) -> Self {
        let (link, tasks) = Link::new(broker);
        let inner = Arc::new(Self::inner(config, Some(link)));
        tasks.spawn(&inner);
        Self { inner, origin: None }
    }

    fn inner(config: HubConfig, link: Option<Link>) -> HubInner {
        HubInner {
            config,
            node: new_epoch(),
            epoch: new_epoch(),
            next_connection: AtomicU64::new(1),
            streams: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            connections: AtomicU64::new(0),
            codecs: RwLock::new(HashMap::new()),
            kept: Mutex::new(HashMap::new()),
            next_ticket: AtomicU64::new(1),
            link,
            metrics: HubMetrics,
        }
    }

    /// The hub's limits.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// The epoch of this hub's own history. A new hub (a restart of an
    /// in-memory layer) has a new one, so clients know their positions are
    /// void. With a broker, streams carry the broker's epoch instead: see
    /// [`position`](Self::position).
    pub fn epoch(&self) -> &Arc<str> {
        &self.inner.epoch
    }

    /// This hub's name among the nodes of a channel layer (random per hub).
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The broker this hub shares streams through, if any.
    pub fn broker(&self) -> Option<&Arc<dyn Broker>> {
        self.inner.link.as_ref().map(|link| &link.broker)
    }

    /// Waits until the channel layer took every change this hub queued for
    /// it, or `within` passed; returns how many still wait (0 without a
    /// broker). Call it on shutdown, after the last request finished:
    /// changes still waiting when the process exits are lost with it, and
    /// their subscribers on other processes are not told. (Model bindings
    /// with capture on PostgreSQL hand their changes over durably instead,
    /// through the outbox and its relay, and queue nothing here.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use channels_binding_core::hub::Hub;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(Hub::new().flush(Duration::from_secs(1)).await, 0);
    /// # }
    /// ```
    pub async fn flush(&self, within: Duration) -> usize {
        match &self.inner.link {
            Some(link) => link.flush(within).await,
            None => 0,
        }
    }

    /// Whether the broker's feed is connected (`true` without a broker).
    pub fn broker_connected(&self) -> bool {
        self.inner.link.as_ref().is_none_or(Link::is_connected)
    }

    /// Checks the broker answers (for readiness probes); `Ok` without one.
    ///
    /// # Errors
    ///
    /// The broker's error when it cannot be reached, or when its feed is
    /// disconnected (changes would not reach this node's subscribers).
    pub async fn check_broker(&self) -> Result<(), BrokerError> {
        let Some(link) = &self.inner.link else {
            return Ok(());
        };
        link.broker.check().await?;
        if !link.is_connected() {
            return Err(BrokerError::Unavailable("the change feed is not connected".to_owned()));
        }
        Ok(())
    }

    /// Registers how `stream`'s changes are rendered and filtered on this
    /// node when they come from another one (see [`ChangeCodec`]). Bindings
    /// register themselves; the first registration of a stream wins.
    pub fn register_codec(&self, stream: &str, codec: &Arc<dyn ChangeCodec>) {
        self.inner.register_codec(stream, codec);
    }

    /// Load figures: connections, queued frames, deepest queue, streams.
    pub fn stats(&self) -> HubStats {
        let (queued_frames, max_queue_depth) = lock(&self.inner.groups).get(ALL_GROUP).map_or((0, 0), |members| {
            members.values().fold((0, 0), |(sum, max), connection| {
                let queued = connection.queued();
                (sum + queued, max.max(queued))
            })
        });
        HubStats {
            connections: self.connection_count(),
            queued_frames,
            max_queue_depth,
            streams: lock(&self.inner.streams).len(),
        }
    }

    /// A clone whose pushes to `origin`'s connection wait for that request's reply.
    #[must_use]
    pub fn with_origin(&self, origin: Option<Origin>) -> Hub {
        Hub {
            inner: self.inner.clone(),
            origin,
        }
    }

    /// The request this handle serves, if any.
    pub fn origin(&self) -> Option<Origin> {
        self.origin
    }

    /// Registers a connection. It joins `__all__`, and `user.<id>` when
    /// authenticated. Dropping the returned [`Outbox`] unregisters it.
    pub fn connect(&self, identity: Identity) -> Outbox {
        let id = self.inner.next_connection.fetch_add(1, Ordering::Relaxed);
        let user_group = identity.id().map(user_group);
        let (connection, rx) = Connection::new(id, identity, self.inner.config.queue_capacity);
        let count = self.inner.connections.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.metrics.connections(count);
        self.inner.join_group(&connection, ALL_GROUP);
        if let Some(group) = user_group {
            self.inner.join_group(&connection, &group);
        }
        Outbox {
            connection,
            rx,
            hub: Arc::downgrade(&self.inner),
        }
    }

    /// Switches a connection's identity in-band (sign-in or sign-out on an
    /// open socket): it leaves the old `user.<id>` group and joins the new
    /// one, and every later push is filtered for the new identity. Later
    /// events of the connection carry it.
    pub fn set_identity(&self, connection: &Connection, identity: Identity) {
        let new_group = identity.id().map(user_group);
        let old = connection.replace_identity(identity);
        if let Some(old_group) = old.id().map(user_group) {
            self.leave(connection, &old_group);
        }
        if let Some(group) = new_group {
            self.inner.join_group(connection, &group);
        }
    }

    /// Connections currently registered.
    pub fn connection_count(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Publishes a committed change: it gets the stream's next sequence
    /// number and is delivered, in order, to every subscriber allowed to read
    /// it, then kept in history for `since` replay.
    ///
    /// Call it in commit order: a binding holds its own write lock from the
    /// write until this returns, so that sequence order is commit order.
    ///
    /// Returns the change's position. With a broker the change is queued for
    /// it (never waiting), the broker numbers it, and `None` is returned;
    /// every node, this one included, delivers it when the broker does. Should
    /// the queue to the broker be full, the change is lost and the stream's
    /// subscribers on every node are told to resync.
    pub fn publish(&self, change: Change) -> Option<StreamPosition> {
        if let Some(link) = &self.inner.link {
            if let Visibility::Scoped { codec, .. } = &change.visibility {
                self.inner.register_codec(&change.stream, codec);
            }
            let ticket = self.inner.keep(&change.visibility);
            let stream = change.stream.clone();
            let payload = WireChange::from_change(change, &self.inner.node, self.origin, ticket).encode();
            if !link.send(Outgoing {
                stream: stream.clone(),
                payload,
            }) {
                self.inner.metrics.lost();
                if let Some(ticket) = ticket {
                    lock(&self.inner.kept).remove(&ticket);
                }
                tracing::error!(stream = %stream, "channel layer queue full: change lost, subscribers resync");
                let state = self.inner.stream(&stream);
                let mut state = lock(&state);
                let (epoch, seq) = (state.epoch.clone(), state.seq);
                self.inner.resync(&mut state, epoch, seq);
            }
            return None;
        }
        let state = self.inner.stream(&change.stream);
        let config = &self.inner.config;
        let mut state = lock(&state);
        let (seq, delivered) = state.publish(change, self.origin, config.history_len, config.history_age);
        self.inner.metrics.delivered(delivered);
        Some(StreamPosition {
            epoch: state.epoch.clone(),
            seq,
        })
    }

    /// The stream's current position: the last change published.
    pub fn position(&self, stream: &str) -> StreamPosition {
        let state = self.inner.stream(stream);
        let state = lock(&state);
        StreamPosition {
            epoch: state.epoch.clone(),
            seq: state.seq,
        }
    }

    /// Whether every change after `since` can still be replayed.
    pub fn can_resume(&self, stream: &str, since: &StreamPosition) -> bool {
        let state = self.inner.stream(stream);
        let mut state = lock(&state);
        since.epoch == state.epoch && state.can_replay_after(since.seq, self.inner.config.history_age)
    }

    /// Gets a stream ready for [`subscribe`](Self::subscribe) on a hub with a
    /// broker: learns the stream's position from the broker when this node
    /// has not heard of it yet, and, for a subscriber resuming `since`,
    /// fetches from the broker's history the changes older than this node's
    /// own. Without a broker it does nothing. Never fails: when the broker
    /// cannot answer, the subscription is answered from what this node
    /// knows, and a resuming subscriber is told to resync.
    pub async fn prepare(&self, stream: &str, since: Option<&StreamPosition>) {
        let Some(link) = &self.inner.link else {
            return;
        };
        let state = self.inner.stream(stream);
        if !lock(&state).synced {
            match link.broker.position(stream).await {
                Ok(position) => {
                    let mut state = lock(&state);
                    if !state.synced {
                        state.adopt(position.epoch, position.seq);
                    }
                }
                Err(err) => {
                    tracing::warn!(stream, error = %err, "channel layer position unavailable");
                    return;
                }
            }
        }
        let Some(since) = since else {
            return;
        };
        let needs_history = {
            let mut state = lock(&state);
            since.epoch == state.epoch
                && since.seq < state.seq
                && !state.can_replay_after(since.seq, self.inner.config.history_age)
        };
        if !needs_history {
            return;
        }
        let stream: Arc<str> = Arc::from(stream);
        match link.broker.replay(&stream, since).await {
            Ok(Replay::Changes(list)) => {
                let codec = self.inner.codec(&stream);
                let mut older = Vec::with_capacity(list.len());
                for delivered in list {
                    // A record this node cannot filter (restricted, and no
                    // codec here) would reach nobody: a gap, never a silent skip.
                    let wire = self
                        .inner
                        .decode(&delivered)
                        .filter(|wire| !wire.restricted || codec.is_some());
                    // A gap (or an unreadable change) cannot be replayed past.
                    // A kept closure is only for the live delivery; a replay
                    // of a closure-visible change goes to nobody.
                    let Some(change) = wire.and_then(|wire| wire.into_change(stream.clone(), codec.clone(), None))
                    else {
                        older.clear();
                        continue;
                    };
                    if delivered.position.epoch == since.epoch {
                        older.push((delivered.position.seq, change));
                    }
                }
                lock(&state).prepend(older);
            }
            Ok(Replay::Gone) => {}
            Err(err) => tracing::warn!(stream = %stream, error = %err, "channel layer history unavailable"),
        }
    }

    /// Subscribes a connection. With `since`, first replays (in order) every
    /// change after it that the connection may read, then goes live, with no
    /// gap and no duplicate between the two. When the history needed is gone,
    /// nothing is replayed and the result says `resync`.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::TooManySubscriptions`] when the connection already
    /// holds [`HubConfig::max_subscriptions`].
    pub fn subscribe(
        &self,
        connection: &Connection,
        stream: &str,
        target: Target,
        since: Option<&StreamPosition>,
    ) -> Result<Subscribed, SubscribeError> {
        let config = &self.inner.config;
        let state = self.inner.stream(stream);
        let mut state = lock(&state);
        if connection.is_closed() {
            // Its client left while the request ran (requests finish on
            // tasks of their own): nobody would receive a push, and nothing
            // would ever remove the subscription.
            return Ok(Subscribed {
                position: StreamPosition {
                    epoch: state.epoch.clone(),
                    seq: state.seq,
                },
                replayed: 0,
                resync: false,
                created: false,
            });
        }
        // Reserve first: a refused subscription must replay nothing.
        let is_new = state
            .reserve(connection, &target, config.max_subscriptions)
            .map_err(|_| SubscribeError::TooManySubscriptions(config.max_subscriptions))?;
        let mut resync = false;
        let mut replayed = 0;
        let mut ended = false;
        if let Some(since) = since {
            let resumable = since.epoch == state.epoch && state.can_replay_after(since.seq, config.history_age);
            if resumable {
                (replayed, ended) = state.replay(connection, &target, since.seq, self.origin);
            } else {
                resync = true;
            }
        }
        if ended {
            // The replay told the client the object is gone (or unreadable):
            // a live push would have ended this subscription, so does replay.
            if is_new {
                state.release(connection, &target);
            }
        } else {
            state.attach(connection, target);
        }
        Ok(Subscribed {
            position: StreamPosition {
                epoch: state.epoch.clone(),
                seq: state.seq,
            },
            replayed,
            resync,
            created: is_new && !ended,
        })
    }

    /// Ends a subscription. For an object, every push form of it ends.
    /// Returns whether there was one.
    pub fn unsubscribe(&self, connection: &Connection, stream: &str, target: &Target) -> bool {
        let state = self.inner.stream(stream);
        let mut state = lock(&state);
        state.remove(connection, target)
    }

    /// Subscribers (feed and object) of a stream.
    pub fn subscriber_count(&self, stream: &str) -> usize {
        lock(&self.inner.stream(stream)).subscriber_count()
    }

    /// Adds a connection to a named group.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::TooManyGroups`] past [`MAX_GROUPS_PER_CONNECTION`].
    pub fn join(&self, connection: &Connection, group: &str) -> Result<(), SubscribeError> {
        // `__all__` and the user group do not count against the limit.
        let implicit = 1 + usize::from(connection.identity().id().is_some());
        if connection.memberships().groups.len() >= MAX_GROUPS_PER_CONNECTION + implicit {
            return Err(SubscribeError::TooManyGroups);
        }
        self.inner.join_group(connection, group);
        Ok(())
    }

    /// Removes a connection from a named group.
    pub fn leave(&self, connection: &Connection, group: &str) {
        let group: Arc<str> = Arc::from(group);
        connection.memberships().groups.remove(&group);
        self.inner.leave_group(connection.id(), &group);
    }

    /// Sends `{"event", "data"}` to every member of a group. Returns how many
    /// connections it was queued for.
    ///
    /// # Errors
    ///
    /// Fails only when `data` cannot be serialized to JSON.
    pub fn send_to_group(&self, group: &str, event: &str, data: &impl Serialize) -> Result<usize, serde_json::Error> {
        let data = serde_json::value::to_raw_value(data)?;
        let frame = encode_push(event, &data, None);
        let members: Vec<Connection> = match lock(&self.inner.groups).get(group) {
            Some(members) => members.values().cloned().collect(),
            None => return Ok(0),
        };
        let mut sent = 0;
        for connection in &members {
            let after_reply = self
                .origin
                .filter(|o| o.connection == connection.id())
                .map(|o| o.request);
            if connection.push(Outbound {
                frame: frame.clone(),
                after_reply,
            }) {
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Sends to every connection of one user (group `user.<id>`).
    ///
    /// # Errors
    ///
    /// Fails only when `data` cannot be serialized to JSON.
    pub fn send_to_user(&self, user_id: &str, event: &str, data: &impl Serialize) -> Result<usize, serde_json::Error> {
        self.send_to_group(&user_group(user_id), event, data)
    }

    /// Sends to every connection.
    ///
    /// # Errors
    ///
    /// Fails only when `data` cannot be serialized to JSON.
    pub fn broadcast(&self, event: &str, data: &impl Serialize) -> Result<usize, serde_json::Error> {
        self.send_to_group(ALL_GROUP, event, data)
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("epoch", &self.inner.epoch)
            .field("connections", &self.connection_count())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The group of every connection of one user.
pub fn user_group(user_id: &str) -> String {
    format!("user.{user_id}")
}

/// A fresh epoch: unique per hub instance, not a secret.
pub(crate) fn new_epoch() -> Arc<str> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let random = RandomState::new().hash_one(nanos);
    Arc::from(format!("{random:016x}"))
}
