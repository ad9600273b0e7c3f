//! The outbox table's side of the relay: claim a batch, publish it under
//! its key, delete it.

use std::sync::Arc;

use bytes::Bytes;
use channels_binding_core::hub::{BatchKey, Broker, BrokerError, Outgoing};
use sqlx::Row as _;
use sqlx::postgres::PgPool;

use crate::broker::install_objects;

/// Why the relay could not start or relay a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The database refused or could not be reached.
    #[error("outbox: {0}")]
    Database(#[from] sqlx::Error),
    /// The broker did not take the batch; it is published again, under the
    /// same key, on the next attempt.
    #[error("channel layer: {0}")]
    Broker(#[from] BrokerError),
}

/// The outbox of one schema.
#[derive(Debug, Clone)]
pub(super) struct Outbox {
    pub(super) pool: PgPool,
    /// The schema's epoch: part of every batch key, so that ids of an
    /// outbox made again (and numbered from 1 again) never collide with
    /// keys the broker still holds.
    epoch: Arc<str>,
    /// The channel capture triggers notify.
    pub(super) channel: String,
}

impl Outbox {
    /// Installs the channel layer's objects (the outbox among them) and
    /// reads the epoch and channel.
    pub(super) async fn open(pool: PgPool) -> Result<Self, RelayError> {
        let mut tx = pool.begin().await?;
        install_objects(&mut tx).await?;
        let row = sqlx::query("SELECT epoch, channels_binding_outbox_channel() AS channel FROM channels_binding_epoch")
            .fetch_one(&mut *tx)
            .await?;
        let epoch: String = row.try_get("epoch")?;
        let channel: String = row.try_get("channel")?;
        tx.commit().await?;
        Ok(Self {
            pool,
            epoch: Arc::from(epoch),
            channel,
        })
    }

    /// Relays one batch: the oldest batch claimed already (by this relay
    /// or a predecessor that died before deleting it), else a new one of
    /// at most `max` rows. Returns how many changes were published (0: the
    /// outbox is empty).
    pub(super) async fn relay_one(&self, broker: &dyn Broker, max: usize) -> Result<usize, RelayError> {
        let (batch, rows) = match self.claimed().await? {
            Some(claimed) => claimed,
            None => match self.claim(max).await? {
                Some(claimed) => claimed,
                None => return Ok(0),
            },
        };
        let key = BatchKey::new(&format!("outbox:{}", self.epoch), batch.cast_unsigned());
        let count = rows.len();
        broker.publish(&key, rows).await?;
        sqlx::query("DELETE FROM channels_binding_outbox WHERE batch = $1")
            .bind(batch)
            .execute(&self.pool)
            .await?;
        Ok(count)
    }

    /// The oldest claimed batch, whole.
    async fn claimed(&self) -> Result<Option<(i64, Vec<Outgoing>)>, RelayError> {
        let rows = sqlx::query(
            "SELECT batch, stream, payload FROM channels_binding_outbox \
             WHERE batch = (SELECT min(batch) FROM channels_binding_outbox WHERE batch IS NOT NULL) ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        batch_of(&rows)
    }

    /// Claims the oldest unclaimed rows as one batch named by its first id,
    /// committed before anything is published.
    async fn claim(&self, max: usize) -> Result<Option<(i64, Vec<Outgoing>)>, RelayError> {
        let rows = sqlx::query(
            "WITH picked AS ( \
                 SELECT id FROM channels_binding_outbox WHERE batch IS NULL ORDER BY id LIMIT $1 \
                 FOR UPDATE SKIP LOCKED), \
             first AS (SELECT min(id) AS id FROM picked) \
             UPDATE channels_binding_outbox o SET batch = first.id FROM picked, first \
             WHERE o.id = picked.id RETURNING o.id, o.batch, o.stream, o.payload",
        )
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut rows = rows;
        rows.sort_by_key(|row| row.try_get::<i64, _>("id").unwrap_or(i64::MAX));
        batch_of(&rows)
    }

    /// Changes waiting in the outbox (claimed or not).
    pub(super) async fn waiting(&self) -> Result<i64, RelayError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM channels_binding_outbox")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// The batch id and changes of rows read in id order.
fn batch_of(rows: &[sqlx::postgres::PgRow]) -> Result<Option<(i64, Vec<Outgoing>)>, RelayError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let batch: i64 = first.try_get("batch")?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let stream: String = row.try_get("stream")?;
        let payload: String = row.try_get("payload")?;
        changes.push(Outgoing {
            stream: Arc::from(stream),
            payload: Bytes::from(payload),
        });
    }
    Ok(Some((batch, changes)))
}
