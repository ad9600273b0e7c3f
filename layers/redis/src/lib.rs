//! A Redis channel layer for **channels-binding**: [`RedisBroker`], a
//! [`Broker`] that lets several server processes ("nodes") share their
//! changes through one Redis server.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use channels_binding_core::hub::Broker;
//! use channels_binding_redis::RedisBroker;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = RedisBroker::builder("redis://127.0.0.1:6379")
//!     .prefix("myapp")
//!     .history_len(1000)
//!     .history_age(Duration::from_secs(300))
//!     .connect()
//!     .await?;
//! // Hubs hold it type-erased.
//! let broker: Arc<dyn Broker> = Arc::new(broker);
//! assert_eq!(broker.name(), "redis");
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! Everything lives under a key prefix (the default is `channels_binding`).
//! Pub/sub channels are not scoped by Redis database number, so the prefix,
//! not the database, is what keeps two deployments (or two test runs) apart.
//!
//! | key | type | holds |
//! |-----|------|-------|
//! | `{prefix}:state` | hash | field `epoch`: the current epoch; field `seq:{stream}`: the stream's last sequence number |
//! | `{prefix}:history:{stream}` | list | the last `history_len` changes of the stream, oldest first, as `{unix_ms}\n{envelope}` |
//! | `{prefix}:batch:{key}` | string | the epoch a batch was published in, kept `history_age`: marks the batch's [`BatchKey`] as published |
//! | `{prefix}:changes` | pub/sub channel | every change of every stream, as an envelope |
//!
//! An envelope is `{stream}\n{epoch}\n{seq}\n{payload}`: stream names
//! (`app.Model`) and epochs never contain a newline, so everything after the
//! third newline is the payload, byte for byte.
//!
//! [`publish`](Broker::publish) runs one Lua script (with `EVALSHA`, loading
//! it on `NOSCRIPT`) for the whole batch, in one round trip. The script first
//! looks for the batch's key marker: when it exists, the batch ran already
//! (its reply was lost, or Redis hung and now runs a request and its retry),
//! and the script returns without publishing anything, so each change gets
//! one sequence number and one delivery. Otherwise, for each change,
//! in batch order, the script reads the epoch (creating a fresh random one if
//! there is none), increments the stream's sequence number, appends the
//! envelope with Redis' clock (`TIME`) to the stream's history, trims it to
//! `history_len`, and `PUBLISH`es the envelope. Scripts run atomically, so
//! the publish order on the channel is the sequence order of every stream,
//! whichever node published. The script ends by writing the key marker,
//! which expires after `history_age`: exactly-once holds for retries within
//! that window (see [`Broker`]).
//!
//! ## Epochs and expiry
//!
//! The epoch and the sequence numbers share one hash and never expire: an
//! expiring sequence number would restart at 1 in the same epoch and make
//! old positions point at new changes. Because Redis evicts (or loses) whole
//! keys, the epoch and the numbers always disappear together; whoever writes
//! next creates a new epoch, and every position of the old one is void (the
//! hub then tells its subscribers to resync). This costs one hash field per
//! stream, and streams are models, so there are few.
//!
//! The history lists do expire, `history_age` after the stream's last
//! change: by then every entry is older than `history_age`, which
//! [`replay`](Broker::replay) would refuse anyway. Replay treats an entry
//! older than `history_age` (by Redis' clock) as gone, and so also any gap,
//! trimmed or expired entries, and entries of another epoch.
//!
//! ## Connections
//!
//! Commands go through a [`redis::aio::ConnectionManager`], which reconnects
//! by itself; while Redis is down they fail with
//! [`BrokerError::Unavailable`] after at most the command timeout.
//! [`listen`](Broker::listen) runs a task with its own pub/sub connection; it
//! reconnects forever with a backoff from 50 ms doubling to 2 s and checks
//! an idle connection with a `PING` every 15 s. Error messages and the
//! [`Debug`](std::fmt::Debug) form never show the password of the URL.
//!
//! A slow consumer of the feed makes the task wait (the buffer between them
//! is bounded); Redis then buffers for the pub/sub connection, up to its
//! `client-output-buffer-limit pubsub`, beyond which it drops the connection:
//! the feed reports [`Disconnected`](BrokerEvent::Disconnected) and
//! [`Connected`](BrokerEvent::Connected), and the hub resyncs.
//!
//! Requires Redis 5 or later (scripts are replicated by effects, so they may
//! read `TIME` before writing). Redis Cluster is not supported: the script
//! touches keys of several slots.

mod envelope;
mod listen;
mod scripts;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use channels_binding_core::hub::{
    BatchKey, Broker, BrokerError, BrokerEvent, Delivered, Outgoing, Replay, StreamPosition,
};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use tokio::runtime::Handle;

/// The prefix used unless [`RedisBrokerBuilder::prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "channels_binding";
/// The history length used unless [`RedisBrokerBuilder::history_len`] says otherwise.
pub const DEFAULT_HISTORY_LEN: usize = 1000;
/// The history age used unless [`RedisBrokerBuilder::history_age`] says otherwise.
pub const DEFAULT_HISTORY_AGE: Duration = Duration::from_secs(300);

/// How many feed events wait between the listening task and the stream.
const FEED_CAPACITY: usize = 1024;

/// Settings for a [`RedisBroker`], from [`RedisBroker::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use channels_binding_redis::RedisBroker;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = RedisBroker::builder("redis://:secret@redis.internal:6379/0")
///     .prefix("shop_prod")
///     .history_len(5000)
///     .history_age(Duration::from_secs(600))
///     .connect_timeout(Duration::from_secs(1))
///     .command_timeout(Duration::from_secs(2))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBrokerBuilder {
    url: String,
    prefix: String,
    history_len: usize,
    history_age: Duration,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl fmt::Debug for RedisBrokerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RedisBrokerBuilder")
            .field("prefix", &self.prefix)
            .field("history_len", &self.history_len)
            .field("history_age", &self.history_age)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisBrokerBuilder {
    /// The prefix of every key and of the pub/sub channel (default
    /// [`DEFAULT_PREFIX`]). Nodes sharing changes use the same prefix;
    /// separate deployments on one Redis use different ones.
    ///
    /// ```
    /// let builder = channels_binding_redis::RedisBroker::builder("redis://127.0.0.1").prefix("shop_staging");
    /// ```
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many changes per stream history keeps (default
    /// [`DEFAULT_HISTORY_LEN`]; at least 1).
    ///
    /// ```
    /// let builder = channels_binding_redis::RedisBroker::builder("redis://127.0.0.1").history_len(10_000);
    /// ```
    #[must_use]
    pub fn history_len(mut self, len: usize) -> Self {
        self.history_len = len.max(1);
        self
    }

    /// How long a change stays replayable (default [`DEFAULT_HISTORY_AGE`];
    /// at least a millisecond).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = channels_binding_redis::RedisBroker::builder("redis://127.0.0.1").history_age(Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn history_age(mut self, age: Duration) -> Self {
        self.history_age = age.max(Duration::from_millis(1));
        self
    }

    /// How long one connection attempt may take (default 2 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = channels_binding_redis::RedisBroker::builder("redis://127.0.0.1").connect_timeout(Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one operation ([`publish`](Broker::publish),
    /// [`position`](Broker::position), …) may take, reconnecting included,
    /// before it fails with [`BrokerError::Unavailable`] (default 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = channels_binding_redis::RedisBroker::builder("redis://127.0.0.1").command_timeout(Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Connects to Redis. Fails with [`BrokerError::Unavailable`] when the URL
    /// is invalid or Redis cannot be reached. Must run inside a Tokio runtime,
    /// whose tasks then run [`listen`](Broker::listen)'s feed.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// match channels_binding_redis::RedisBroker::builder("redis://127.0.0.1:6379").connect().await {
    ///     Ok(broker) => println!("connected: {broker:?}"),
    ///     Err(err) => eprintln!("{err}"),
    /// }
    /// # }
    /// ```
    pub async fn connect(self) -> Result<RedisBroker, BrokerError> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|_| BrokerError::Unavailable("invalid Redis URL".to_owned()))?;
        let info = client.get_connection_info();
        let redactor = Redactor {
            password: info.redis_settings().password().map(str::to_owned),
        };
        let address = format!("{}/{}", info.addr(), info.redis_settings().db());
        let handle = Handle::try_current()
            .map_err(|_| BrokerError::Unavailable("RedisBroker::connect must run in a Tokio runtime".to_owned()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        let connection = tokio::time::timeout(
            self.connect_timeout.saturating_mul(2),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| BrokerError::Unavailable(format!("redis at {address}: connection timed out")))?
        .map_err(|err| redactor.error(&err))?;
        let keys = Keys::new(&self.prefix);
        Ok(RedisBroker {
            inner: Arc::new(Inner {
                client,
                connection,
                handle,
                redactor,
                address,
                prefix: self.prefix,
                keys,
                history_len: self.history_len,
                history_age: self.history_age,
                connect_timeout: self.connect_timeout,
                command_timeout: self.command_timeout,
                publish: Script::new(scripts::PUBLISH),
                replay: Script::new(scripts::REPLAY),
            }),
        })
    }
}

/// A [`Broker`] on Redis: sequence numbers, epoch and history in keys under
/// a prefix, delivery by pub/sub. See the [crate] documentation for the
/// layout and the guarantees.
///
/// Cheap to clone: clones share the connection.
///
/// ```no_run
/// use channels_binding_core::hub::{BatchKey, Broker, Outgoing};
/// use channels_binding_redis::RedisBroker;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = RedisBroker::builder("redis://127.0.0.1:6379").prefix("demo").connect().await?;
/// let key = BatchKey::new("doc-example", 1);
/// broker
///     .publish(&key, vec![Outgoing { stream: "shop.Order".into(), payload: r#"{"kind":"deleted","pk":7}"#.into() }])
///     .await?;
/// let position = broker.position("shop.Order").await?;
/// assert!(position.seq >= 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: ConnectionManager,
    handle: Handle,
    redactor: Redactor,
    address: String,
    prefix: String,
    keys: Keys,
    history_len: usize,
    history_age: Duration,
    connect_timeout: Duration,
    command_timeout: Duration,
    publish: Script,
    replay: Script,
}

impl fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBroker")
            .field("address", &self.inner.address)
            .field("prefix", &self.inner.prefix)
            .field("history_len", &self.inner.history_len)
            .field("history_age", &self.inner.history_age)
            .finish_non_exhaustive()
    }
}

impl RedisBroker {
    /// Starts the settings of a broker on the Redis at `url`
    /// (`redis://[[user]:password@]host[:port][/db]`, or `rediss://` with a
    /// TLS feature of the `redis` crate enabled).
    ///
    /// ```
    /// let builder = channels_binding_redis::RedisBroker::builder("redis://127.0.0.1:6379/0");
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisBrokerBuilder {
        RedisBrokerBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            history_len: DEFAULT_HISTORY_LEN,
            history_age: DEFAULT_HISTORY_AGE,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
        }
    }

    /// The key and channel prefix.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let broker = channels_binding_redis::RedisBroker::builder("redis://127.0.0.1").prefix("x").connect().await?;
    /// assert_eq!(broker.prefix(), "x");
    /// # Ok(()) }
    /// ```
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Runs a Redis call on a clone of the managed connection, within the
    /// command timeout, mapping errors.
    ///
    /// A call refused by a connection that is down is tried once more: the
    /// request never left, and the manager has meanwhile started
    /// reconnecting, so the first call after Redis came back does not fail
    /// for nothing. Other errors are not retried: the request may have run.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, BrokerError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.call_with(op, redis::RedisError::is_connection_refusal).await
    }

    /// [`call`](Self::call) for reads, which may run twice: also retried
    /// once after a connection that died under them (broken pipe, reset),
    /// as happens to the first read after Redis restarted.
    async fn read<T, F, Fut>(&self, op: F) -> Result<T, BrokerError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.call_with(op, |err: &RedisError| {
            err.is_connection_refusal() || err.is_io_error() || err.is_connection_dropped()
        })
        .await
    }

    async fn call_with<T, F, Fut>(&self, op: F, retry: impl Fn(&RedisError) -> bool) -> Result<T, BrokerError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempts = async {
            match op(self.inner.connection.clone()).await {
                Err(err) if retry(&err) => op(self.inner.connection.clone()).await,
                other => other,
            }
        };
        match tokio::time::timeout(self.inner.command_timeout, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.inner.redactor.error(&err)),
            Err(_) => Err(BrokerError::Unavailable(format!(
                "redis at {}: no answer within {:?}",
                self.inner.address, self.inner.command_timeout
            ))),
        }
    }

    async fn publish_batch(&self, key: &BatchKey, batch: Vec<Outgoing>) -> Result<(), BrokerError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(bad) = batch.iter().find(|change| !valid_stream(&change.stream)) {
            return Err(BrokerError::Protocol(format!(
                "stream name {:?} is empty or contains a newline",
                bad.stream
            )));
        }
        let keys = &self.inner.keys;
        let mut invocation = self.inner.publish.prepare_invoke();
        invocation.key(&keys.state).key(keys.batch(key));
        for change in &batch {
            invocation.key(keys.history(&change.stream));
        }
        invocation
            .arg(&keys.channel)
            .arg(fresh_epoch())
            .arg(self.inner.history_len)
            .arg(millis(self.inner.history_age));
        for change in &batch {
            invocation.arg(&*change.stream).arg(&change.payload[..]);
        }
        let invocation = &invocation;
        let (_epoch, ran): (String, i64) = self
            .call(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await?;
        if ran == 0 {
            tracing::info!(batch = %key, "batch published already (a retry after a lost reply); not published again");
        }
        Ok(())
    }

    async fn current_position(&self, stream: &str) -> Result<StreamPosition, BrokerError> {
        let state = &self.inner.keys.state;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSETNX")
            .arg(state)
            .arg("epoch")
            .arg(fresh_epoch())
            .ignore()
            .cmd("HGET")
            .arg(state)
            .arg("epoch")
            .cmd("HGET")
            .arg(state)
            .arg(seq_field(stream));
        let pipe = &pipe;
        let (epoch, seq): (String, Option<u64>) = self
            .read(|mut connection| async move { pipe.query_async(&mut connection).await })
            .await?;
        Ok(StreamPosition {
            epoch: epoch.into(),
            seq: seq.unwrap_or(0),
        })
    }

    async fn replay_after(&self, stream: &str, after: &StreamPosition) -> Result<Replay, BrokerError> {
        let keys = &self.inner.keys;
        let mut invocation = self.inner.replay.prepare_invoke();
        invocation
            .key(&keys.state)
            .key(keys.history(stream))
            .arg(stream)
            .arg(&*after.epoch)
            .arg(after.seq);
        let invocation = &invocation;
        let (status, now, entries): (i64, String, Vec<Vec<u8>>) = self
            .read(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await?;
        match status {
            0 => return Ok(Replay::Gone),
            1 => return Ok(Replay::Changes(Vec::new())),
            2 => {}
            other => return Err(BrokerError::Protocol(format!("replay script answered status {other}"))),
        }
        let now: u64 = now
            .parse()
            .map_err(|_| BrokerError::Protocol(format!("replay script answered time {now:?}")))?;
        let oldest_allowed = now.saturating_sub(millis(self.inner.history_age));
        if entries.is_empty() {
            return Ok(Replay::Gone);
        }
        let mut changes: Vec<Delivered> = Vec::with_capacity(entries.len());
        for (expected, entry) in (after.seq.saturating_add(1)..).zip(&entries) {
            let Some((time, delivered)) = envelope::decode_entry(entry) else {
                tracing::warn!(stream, "malformed entry in the Redis history; treating history as gone");
                return Ok(Replay::Gone);
            };
            if delivered.position.epoch != after.epoch
                || delivered.position.seq != expected
                || &*delivered.stream != stream
                || time < oldest_allowed
            {
                return Ok(Replay::Gone);
            }
            changes.push(delivered);
        }
        Ok(Replay::Changes(changes))
    }
}

impl Broker for RedisBroker {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn publish<'a>(&'a self, key: &'a BatchKey, batch: Vec<Outgoing>) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.publish_batch(key, batch))
    }

    fn listen(&self) -> BoxStream<'static, BrokerEvent> {
        let feed = listen::Feed {
            client: self.inner.client.clone(),
            channel: self.inner.keys.channel.clone(),
            connect_timeout: self.inner.connect_timeout,
            command_timeout: self.inner.command_timeout,
            redactor: self.inner.redactor.clone(),
        };
        listen::spawn(&self.inner.handle, feed, FEED_CAPACITY)
    }

    fn position<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        Box::pin(self.current_position(stream))
    }

    fn replay<'a>(&'a self, stream: &'a str, after: &'a StreamPosition) -> BoxFuture<'a, Result<Replay, BrokerError>> {
        Box::pin(self.replay_after(stream, after))
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            let _pong: String = self
                .read(|mut connection| async move { redis::cmd("PING").query_async(&mut connection).await })
                .await?;
            Ok(())
        })
    }
}

/// The names under a prefix.
struct Keys {
    prefix: String,
    state: String,
    channel: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            state: format!("{prefix}:state"),
            channel: format!("{prefix}:changes"),
        }
    }

    fn history(&self, stream: &str) -> String {
        format!("{}:history:{stream}", self.prefix)
    }

    fn batch(&self, key: &BatchKey) -> String {
        format!("{}:batch:{key}", self.prefix)
    }
}

fn seq_field(stream: &str) -> String {
    format!("seq:{stream}")
}

fn valid_stream(stream: &str) -> bool {
    !stream.is_empty() && !stream.contains('\n')
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A new epoch candidate: 16 hex digits, unique in practice (the hub compares
/// epochs for equality only; nothing needs them to be secret).
fn fresh_epoch() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Keeps the URL's password out of error messages and logs.
#[derive(Clone)]
pub(crate) struct Redactor {
    password: Option<String>,
}

impl Redactor {
    /// The message of `err`, without the password.
    pub(crate) fn message(&self, err: &RedisError) -> String {
        let message = err.to_string();
        match &self.password {
            Some(password) if password.len() >= 3 => message.replace(password.as_str(), "***"),
            _ => message,
        }
    }

    /// `err` as a broker error.
    fn error(&self, err: &RedisError) -> BrokerError {
        BrokerError::Unavailable(format!("redis: {}", self.message(err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_differ() {
        let a = fresh_epoch();
        let b = fresh_epoch();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn debug_hides_the_password() {
        let builder = RedisBroker::builder("redis://:hunter22@example.invalid:6379");
        assert!(!format!("{builder:?}").contains("hunter22"));
    }

    #[test]
    fn stream_names() {
        assert!(valid_stream("app.Model"));
        assert!(!valid_stream(""));
        assert!(!valid_stream("a\nb"));
    }
}
