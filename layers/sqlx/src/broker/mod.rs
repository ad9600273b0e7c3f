//! [`PgBroker`]: a channel layer between server processes on PostgreSQL
//! `LISTEN`/`NOTIFY`, with sequence numbers and history in tables.

mod install;
mod listen;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::{
    BatchKey, Broker, BrokerError, BrokerEvent, Delivered, Outgoing, Replay, StreamPosition,
};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::Row as _;
use sqlx::postgres::PgPool;

pub(crate) use install::install_objects;

/// History kept per stream by default: the last 1000 changes...
pub const DEFAULT_HISTORY_LEN: u64 = 1000;
/// ...of the last five minutes.
pub const DEFAULT_HISTORY_AGE: Duration = Duration::from_secs(5 * 60);

/// How much history a [`PgBroker`] keeps per stream.
///
/// The settings live in the database (table `channels_binding_settings`),
/// shared by every process and by capture triggers: the last broker to
/// connect sets them.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_sqlx::PgBrokerConfig;
///
/// let config = PgBrokerConfig::default().history_len(500).history_age(Duration::from_secs(60));
/// assert_eq!(config.max_len(), 500);
/// assert_eq!(config.max_age(), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct PgBrokerConfig {
    history_len: u64,
    history_age: Duration,
}

impl Default for PgBrokerConfig {
    fn default() -> Self {
        Self {
            history_len: DEFAULT_HISTORY_LEN,
            history_age: DEFAULT_HISTORY_AGE,
        }
    }
}

impl PgBrokerConfig {
    /// Changes kept per stream (at least 1; default 1000).
    pub fn history_len(mut self, len: u64) -> Self {
        self.history_len = len.clamp(1, i64::MAX.cast_unsigned());
        self
    }

    /// Age past which changes are dropped (default 5 minutes; at most about
    /// 292 000 years).
    pub fn history_age(mut self, age: Duration) -> Self {
        self.history_age = age;
        self
    }

    /// See [`history_len`](Self::history_len).
    #[must_use]
    pub fn max_len(&self) -> u64 {
        self.history_len
    }

    /// See [`history_age`](Self::history_age).
    #[must_use]
    pub fn max_age(&self) -> Duration {
        self.history_age
    }

    fn age_micros(&self) -> i64 {
        i64::try_from(self.history_age.as_micros()).unwrap_or(i64::MAX)
    }
}

/// A [`Broker`] on PostgreSQL: sequence numbers and history in tables of
/// the pool's current schema, delivery by `LISTEN`/`NOTIFY`.
///
/// Every process connected to the same database and schema shares the
/// streams, and so do writes recorded by capture triggers
/// ([`install_capture`](crate::install_capture)) once a
/// [`Relay`](crate::Relay) publishes them.
///
/// Each [`listen`](Broker::listen) feed is a task on a connection of its
/// own (opened with the pool's options, not taken from the pool): it sends
/// [`BrokerEvent::Connected`] once `LISTEN` succeeded, and after losing its
/// connection [`BrokerEvent::Disconnected`], then reconnects with a backoff
/// of 100 ms doubling up to 5 s. It ends when the feed is dropped.
///
/// # SQL objects
///
/// Installed (idempotently, under an advisory lock) in the pool's current
/// schema by [`PgBroker::connect`] and by
/// [`install_capture`](crate::install_capture):
///
/// * `channels_binding_streams (stream text PRIMARY KEY, seq bigint)`: the
///   last sequence number of each stream;
/// * `channels_binding_epoch (id, epoch text, channel text)`: one row, a
///   random epoch made when the table is, and the `NOTIFY` channel of the
///   schema, `'cb_' || left(md5(current_schema()), 20)` (`NOTIFY` is
///   database-wide, so each schema needs a channel of its own);
/// * `channels_binding_history (stream, seq, at timestamptz, payload text)`,
///   keyed by `(stream, seq)`: recent changes, trimmed by count and age on
///   every publish;
/// * `channels_binding_settings (id, history_len bigint, history_age
///   interval)`: one row, written by [`PgBroker::connect`];
/// * `channels_binding_publish(stream text, payload text) RETURNS bigint`:
///   gives the change the stream's next number (`INSERT ... ON CONFLICT DO
///   UPDATE ... RETURNING`, whose row lock serializes the writers of a
///   stream until they commit, so that numbers follow commit order across
///   processes), records it, trims history and notifies;
/// * `channels_binding_publish_batch(streams text[], payloads text[])
///   RETURNS SETOF bigint`: the same for a batch, in order;
/// * `channels_binding_batches (id text PRIMARY KEY, at timestamptz)`: the
///   [`BatchKey`]s of batches published within the history age, and
///   `channels_binding_publish_keyed(batch_key text, streams text[],
///   payloads text[]) RETURNS SETOF bigint`, which [`publish`](Broker::publish)
///   calls: it records the key and publishes the batch in one transaction,
///   or, when the key is recorded already (a retry after a lost reply),
///   publishes nothing and returns no row. Keys older than the history age
///   are deleted on every publish: exactly-once holds within that window;
/// * `channels_binding_outbox (id bigserial, stream, payload, batch)`:
///   changes capture triggers recorded, waiting for the
///   [`Relay`](crate::Relay), and `channels_binding_outbox_channel()`, the
///   channel they notify (the `NOTIFY` channel with `_outbox` appended);
/// * `channels_binding_relay (id, pid, beat)`: the relay leader's
///   heartbeat;
/// * `channels_binding_channel()` and `channels_binding_number_json(text)`
///   (used by capture triggers).
///
/// # Notifications
///
/// The `NOTIFY` payload is a JSON envelope,
/// `{"stream": "app.Note", "epoch": "9f3c…", "seq": 42, "payload": "<the change>"}`.
/// When it would exceed 7900 bytes (PostgreSQL refuses 8000), the envelope
/// is sent without `payload`, and listeners read the payload from
/// `channels_binding_history` by `(stream, seq)`.
///
/// ```no_run
/// use std::sync::Arc;
/// use channels_binding_core::hub::Broker;
/// use channels_binding_sqlx::{PgBroker, PgBrokerConfig};
///
/// # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::PgPool::connect("postgres://app@db/app").await?;
/// let broker: Arc<dyn Broker> = Arc::new(PgBroker::connect(pool, PgBrokerConfig::default()).await?);
/// assert_eq!(broker.name(), "postgres");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PgBroker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    channel: String,
    config: PgBrokerConfig,
}

/// The size of the queue between the listening task and the feed.
const FEED_CAPACITY: usize = 1024;

impl PgBroker {
    /// Installs the SQL objects in the pool's current schema (a no-op when
    /// they exist; safe when several processes start at once), writes the
    /// history settings of `config`, and returns the broker.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use channels_binding_sqlx::{PgBroker, PgBrokerConfig};
    ///
    /// # async fn doc(pool: sqlx::PgPool) -> Result<(), channels_binding_core::hub::BrokerError> {
    /// let config = PgBrokerConfig::default().history_len(200).history_age(Duration::from_secs(120));
    /// let broker = PgBroker::connect(pool, config).await?;
    /// # drop(broker); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`BrokerError::Unavailable`] when the database cannot be reached or
    /// refuses the objects (no current schema, no `CREATE` privilege).
    pub async fn connect(pool: PgPool, config: PgBrokerConfig) -> Result<Self, BrokerError> {
        let mut tx = pool.begin().await.map_err(unavailable)?;
        install_objects(&mut tx).await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO channels_binding_settings (id, history_len, history_age) \
             VALUES (true, $1, $2 * interval '1 microsecond') \
             ON CONFLICT (id) DO UPDATE SET history_len = excluded.history_len, history_age = excluded.history_age",
        )
        .bind(i64::try_from(config.history_len).unwrap_or(i64::MAX))
        .bind(config.age_micros())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let channel: String = sqlx::query_scalar("SELECT channels_binding_channel()")
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Self {
            inner: Arc::new(Inner { pool, channel, config }),
        })
    }

    /// The `NOTIFY` channel of this broker's schema.
    ///
    /// ```no_run
    /// # async fn doc(broker: channels_binding_sqlx::PgBroker) {
    /// assert!(broker.channel().starts_with("cb_"));
    /// # }
    /// ```
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// The history settings this broker was connected with.
    ///
    /// ```no_run
    /// # async fn doc(broker: channels_binding_sqlx::PgBroker) {
    /// assert_eq!(broker.config().max_len(), 1000);
    /// # }
    /// ```
    pub fn config(&self) -> PgBrokerConfig {
        self.inner.config
    }

    async fn publish_batch(&self, key: &BatchKey, batch: Vec<Outgoing>) -> Result<(), BrokerError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut streams = Vec::with_capacity(batch.len());
        let mut payloads = Vec::with_capacity(batch.len());
        // Checked before anything is sent: a batch is refused whole.
        if key.as_str().contains('\0') {
            return Err(BrokerError::Protocol("a batch key holds a NUL character".into()));
        }
        for Outgoing { stream, payload } in batch {
            if stream.contains('\0') {
                return Err(BrokerError::Protocol("a stream name holds a NUL character".into()));
            }
            let text = String::from_utf8(payload.to_vec())
                .map_err(|_| BrokerError::Protocol("a payload is not UTF-8 text".into()))?;
            if text.contains('\0') {
                return Err(BrokerError::Protocol("a payload holds a NUL character".into()));
            }
            streams.push(stream.to_string());
            payloads.push(text);
        }
        let seqs: Vec<i64> = sqlx::query_scalar("SELECT channels_binding_publish_keyed($1, $2, $3)")
            .bind(key.as_str())
            .bind(&streams)
            .bind(&payloads)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(unavailable)?;
        if seqs.is_empty() {
            tracing::info!(batch = %key, "batch published already (a retry after a lost reply); not published again");
            Ok(())
        } else if seqs.len() == streams.len() {
            Ok(())
        } else {
            Err(BrokerError::Protocol(format!(
                "{} changes published, {} sequence numbers returned",
                streams.len(),
                seqs.len()
            )))
        }
    }

    async fn current(&self, stream: &str) -> Result<StreamPosition, BrokerError> {
        let row = sqlx::query(
            "SELECT e.epoch, coalesce(s.seq, 0) AS seq FROM channels_binding_epoch e \
             LEFT JOIN channels_binding_streams s ON s.stream = $1",
        )
        .bind(stream)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| BrokerError::Protocol("channels_binding_epoch is empty".into()))?;
        position_of(&row)
    }

    async fn replay_after(&self, stream: &str, after: &StreamPosition) -> Result<Replay, BrokerError> {
        // One snapshot for the position and the history.
        let mut tx = self
            .inner
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(unavailable)?;
        let row = sqlx::query(
            "SELECT e.epoch, coalesce(s.seq, 0) AS seq FROM channels_binding_epoch e \
             LEFT JOIN channels_binding_streams s ON s.stream = $1",
        )
        .bind(stream)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| BrokerError::Protocol("channels_binding_epoch is empty".into()))?;
        let current = position_of(&row)?;
        if current.epoch != after.epoch || after.seq > current.seq {
            return Ok(Replay::Gone);
        }
        if after.seq == current.seq {
            return Ok(Replay::Changes(Vec::new()));
        }
        let Ok(from) = i64::try_from(after.seq) else {
            return Ok(Replay::Gone);
        };
        let rows = sqlx::query(
            "SELECT h.seq, h.payload, h.at < clock_timestamp() - \
                 coalesce((SELECT history_age FROM channels_binding_settings), interval '5 minutes') AS expired \
             FROM channels_binding_history h WHERE h.stream = $1 AND h.seq > $2 ORDER BY h.seq",
        )
        .bind(stream)
        .bind(from)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;

        let stream: Arc<str> = Arc::from(stream);
        let mut changes = Vec::with_capacity(rows.len());
        for (expected, row) in (after.seq + 1..=current.seq).zip(&rows) {
            let seq: i64 = row.try_get("seq").map_err(protocol)?;
            let expired: bool = row.try_get("expired").map_err(protocol)?;
            if u64::try_from(seq).ok() != Some(expected) || expired {
                return Ok(Replay::Gone);
            }
            let payload: String = row.try_get("payload").map_err(protocol)?;
            changes.push(Delivered {
                stream: stream.clone(),
                position: StreamPosition {
                    epoch: current.epoch.clone(),
                    seq: expected,
                },
                payload: Bytes::from(payload),
            });
        }
        if u64::try_from(changes.len()).ok() != Some(current.seq - after.seq) {
            return Ok(Replay::Gone);
        }
        Ok(Replay::Changes(changes))
    }
}

impl Broker for PgBroker {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn publish<'a>(&'a self, key: &'a BatchKey, batch: Vec<Outgoing>) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.publish_batch(key, batch))
    }

    fn listen(&self) -> BoxStream<'static, BrokerEvent> {
        listen::feed(self.inner.pool.clone(), self.inner.channel.clone(), FEED_CAPACITY)
    }

    fn position<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        Box::pin(self.current(stream))
    }

    fn replay<'a>(&'a self, stream: &'a str, after: &'a StreamPosition) -> BoxFuture<'a, Result<Replay, BrokerError>> {
        Box::pin(self.replay_after(stream, after))
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(&self.inner.pool)
                .await
                .map(drop)
                .map_err(unavailable)
        })
    }
}

fn position_of(row: &sqlx::postgres::PgRow) -> Result<StreamPosition, BrokerError> {
    let epoch: String = row.try_get("epoch").map_err(protocol)?;
    let seq: i64 = row.try_get("seq").map_err(protocol)?;
    Ok(StreamPosition {
        epoch: Arc::from(epoch),
        seq: u64::try_from(seq).map_err(|_| BrokerError::Protocol(format!("negative sequence number {seq}")))?,
    })
}

#[allow(clippy::needless_pass_by_value, reason = "called as `map_err(unavailable)`")]
fn unavailable(err: sqlx::Error) -> BrokerError {
    BrokerError::Unavailable(err.to_string())
}

#[allow(clippy::needless_pass_by_value, reason = "called as `map_err(protocol)`")]
fn protocol(err: sqlx::Error) -> BrokerError {
    BrokerError::Protocol(err.to_string())
}
