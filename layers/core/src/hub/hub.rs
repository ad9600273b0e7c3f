//! The hub: who is subscribed to what, and delivery of changes and messages.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::change::Change;
use super::connection::{Connection, Origin, Outbound, Outbox};
use super::stream::StreamState;
use super::subscription::{StreamPosition, Subscribed, Target};
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Our critical sections leave the maps consistent at every step, so a
    // panic elsewhere must not take the hub down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct HubInner {
    config: HubConfig,
    epoch: Arc<str>,
    next_connection: AtomicU64,
    streams: Mutex<HashMap<Arc<str>, Shared<StreamState>>>,
    groups: Mutex<HashMap<Arc<str>, HashMap<u64, Connection>>>,
    connections: AtomicU64,
}

impl HubInner {
    fn stream(&self, name: &str) -> Shared<StreamState> {
        let mut streams = lock(&self.streams);
        if let Some(state) = streams.get(name) {
            return state.clone();
        }
        let name: Arc<str> = Arc::from(name);
        let state = Arc::new(Mutex::new(StreamState::new(name.clone())));
        streams.insert(name, state.clone());
        state
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
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
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
            inner: Arc::new(HubInner {
                config,
                epoch: new_epoch(),
                next_connection: AtomicU64::new(1),
                streams: Mutex::new(HashMap::new()),
                groups: Mutex::new(HashMap::new()),
                connections: AtomicU64::new(0),
            }),
            origin: None,
        }
    }

    /// The hub's limits.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// The epoch of this hub's history. A new hub (a restart of an in-memory
    /// layer) has a new one, so clients know their positions are void.
    pub fn epoch(&self) -> &Arc<str> {
        &self.inner.epoch
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
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
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
    pub fn publish(&self, change: Change) -> StreamPosition {
        let state = self.inner.stream(&change.stream);
        let config = &self.inner.config;
        let seq = lock(&state).publish(
            change,
            &self.inner.epoch,
            self.origin,
            config.history_len,
            config.history_age,
        );
        self.position_at(seq)
    }

    fn position_at(&self, seq: u64) -> StreamPosition {
        StreamPosition {
            epoch: self.inner.epoch.clone(),
            seq,
        }
    }

    /// The stream's current position: the last change published.
    pub fn position(&self, stream: &str) -> StreamPosition {
        let seq = lock(&self.inner.stream(stream)).seq;
        self.position_at(seq)
    }

    /// Whether every change after `since` can still be replayed.
    pub fn can_resume(&self, stream: &str, since: &StreamPosition) -> bool {
        if since.epoch != self.inner.epoch {
            return false;
        }
        let config = &self.inner.config;
        lock(&self.inner.stream(stream)).can_replay_after(since.seq, config.history_len, config.history_age)
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
        // Reserve first: a refused subscription must replay nothing.
        let is_new = state
            .reserve(connection, &target, config.max_subscriptions)
            .map_err(|_| SubscribeError::TooManySubscriptions(config.max_subscriptions))?;
        let mut resync = false;
        let mut replayed = 0;
        let mut ended = false;
        if let Some(since) = since {
            let resumable = since.epoch == self.inner.epoch
                && state.can_replay_after(since.seq, config.history_len, config.history_age);
            if resumable {
                (replayed, ended) = state.replay(connection, &target, since.seq, &self.inner.epoch, self.origin);
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
            position: self.position_at(state.seq),
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
fn new_epoch() -> Arc<str> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let random = RandomState::new().hash_one(nanos);
    Arc::from(format!("{random:016x}"))
}
