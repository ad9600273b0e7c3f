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
    /// at most `max` outbox rows (statements). Its changes are rendered,
    /// in order, and published in chunks of at most `max`, each under the
    /// key `outbox:<epoch>:<batch>:<chunk>`: rendering the same rows again
    /// gives the same chunks, so a successor's publish of a chunk that
    /// went out already is not published again. Returns how many outbox
    /// rows were relayed (0: the outbox is empty).
    pub(super) async fn relay_one(&self, broker: &dyn Broker, max: usize) -> Result<usize, RelayError> {
        let (batch, statements) = match self.claimed().await? {
            Some(claimed) => claimed,
            None => match self.claim(max).await? {
                Some(claimed) => claimed,
                None => return Ok(0),
            },
        };
        let changes = match self.render(batch).await {
            Ok(changes) => changes,
            // The rows no longer read as the table's rows (its columns
            // changed since they were recorded): their subscribers are told
            // to resync rather than left waiting behind them.
            Err(RelayError::Database(sqlx::Error::Database(err))) => {
                tracing::error!(batch, error = %err, "outbox rows cannot be rendered; their streams resync");
                self.gaps(batch).await?
            }
            Err(err) => return Err(err),
        };
        let sender = format!("outbox:{}:{batch}", self.epoch);
        for (chunk, part) in (1u64..).zip(changes.chunks(max.max(1))) {
            broker.publish(&BatchKey::new(&sender, chunk), part.to_vec()).await?;
        }
        sqlx::query("DELETE FROM channels_binding_outbox WHERE batch = $1")
            .bind(batch)
            .execute(&self.pool)
            .await?;
        Ok(statements)
    }

    /// The oldest claimed batch and its number of outbox rows.
    async fn claimed(&self) -> Result<Option<(i64, usize)>, RelayError> {
        let row = sqlx::query(
            "SELECT batch, count(*) AS statements FROM channels_binding_outbox \
             WHERE batch = (SELECT min(batch) FROM channels_binding_outbox WHERE batch IS NOT NULL) GROUP BY batch",
        )
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => {
                let batch: i64 = row.try_get("batch")?;
                let statements: i64 = row.try_get("statements")?;
                Ok(Some((batch, usize::try_from(statements).unwrap_or(0))))
            }
            None => Ok(None),
        }
    }

    /// Claims the oldest unclaimed rows as one batch named by its first id,
    /// committed before anything is published.
    async fn claim(&self, max: usize) -> Result<Option<(i64, usize)>, RelayError> {
        let batches: Vec<i64> = sqlx::query_scalar(
            "WITH picked AS ( \
                 SELECT id FROM channels_binding_outbox WHERE batch IS NULL ORDER BY id LIMIT $1 \
                 FOR UPDATE SKIP LOCKED), \
             first AS (SELECT min(id) AS id FROM picked) \
             UPDATE channels_binding_outbox o SET batch = first.id FROM picked, first \
             WHERE o.id = picked.id RETURNING o.batch",
        )
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(batches.first().map(|batch| (*batch, batches.len())))
    }

    /// A gap marker for each stream of a batch.
    async fn gaps(&self, batch: i64) -> Result<Vec<Outgoing>, RelayError> {
        let streams: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT stream FROM channels_binding_outbox WHERE batch = $1 ORDER BY stream")
                .bind(batch)
                .fetch_all(&self.pool)
                .await?;
        Ok(streams
            .into_iter()
            .map(|stream| Outgoing {
                stream: Arc::from(stream),
                payload: Bytes::from_static(br#"{"kind":"gap"}"#),
            })
            .collect())
    }

    /// The changes of a claimed batch, rendered in order.
    async fn render(&self, batch: i64) -> Result<Vec<Outgoing>, RelayError> {
        let rows = sqlx::query("SELECT stream, payload FROM channels_binding_outbox_changes($1)")
            .bind(batch)
            .fetch_all(&self.pool)
            .await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let stream: String = row.try_get("stream")?;
            let payload: String = row.try_get("payload")?;
            changes.push(Outgoing {
                stream: Arc::from(stream),
                payload: Bytes::from(payload),
            });
        }
        Ok(changes)
    }

    /// Changes waiting in the outbox (claimed or not).
    pub(super) async fn waiting(&self) -> Result<i64, RelayError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM channels_binding_outbox")
            .fetch_one(&self.pool)
            .await?)
    }
}
