//! The listening task behind [`PgBroker::listen`](super::PgBroker).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::{BrokerEvent, Delivered, StreamPosition};
use futures_util::stream::{self, BoxStream, StreamExt as _};
use serde::Deserialize;
use sqlx::postgres::{PgListener, PgNotification, PgPool, PgPoolOptions};
use tokio::sync::mpsc;

/// First wait before reconnecting; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long opening the listening connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `NOTIFY` payload: a change, or a reference to one in history.
#[derive(Debug, Deserialize)]
struct Envelope {
    stream: String,
    epoch: String,
    seq: u64,
    #[serde(default)]
    payload: Option<String>,
}

/// The feed: a task listening on `channel`, on a connection of its own
/// (opened with the options of `pool`, which serves the history look-ups),
/// until the stream is dropped.
pub(super) fn feed(pool: PgPool, channel: String, capacity: usize) -> BoxStream<'static, BrokerEvent> {
    let (tx, rx) = mpsc::channel(capacity);
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(run(pool, channel, tx));
        }
        Err(err) => {
            tracing::error!(error = %err, "PgBroker::listen called outside a Tokio runtime: the feed is empty");
            return stream::empty().boxed();
        }
    }
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|event| (event, rx)) }).boxed()
}

async fn run(pool: PgPool, channel: String, tx: mpsc::Sender<BrokerEvent>) {
    // One connection, not taken from the application's pool.
    let options = (*pool.connect_options()).clone();
    let own = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_lazy_with(options);
    tokio::select! {
        () = tx.closed() => {}
        () = listen_forever(&own, &pool, &channel, &tx) => {}
    }
    // Closing waits for the connection, which a hung network may hold.
    let _ = tokio::time::timeout(CONNECT_TIMEOUT, own.close()).await;
}

async fn listen_forever(own: &PgPool, pool: &PgPool, channel: &str, tx: &mpsc::Sender<BrokerEvent>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match subscribe(own, channel).await {
            Ok(mut listener) => {
                backoff = MIN_BACKOFF;
                if tx.send(BrokerEvent::Connected).await.is_err() {
                    return;
                }
                let why = receive(&mut listener, pool, tx).await;
                // Dropping the listener returns nothing useful to the
                // pool: its connection is gone or about to be.
                drop(listener);
                match why {
                    Stop::FeedDropped => return,
                    Stop::Disconnected(err) => {
                        tracing::warn!(channel, error = %err, "PgBroker lost its listening connection");
                        if tx.send(BrokerEvent::Disconnected).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(channel, error = %err, retry_in = ?backoff, "PgBroker cannot listen");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(own: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(own).await?;
    // A lost connection is reported (`Ok(None)`) without reconnecting:
    // this task reconnects, with backoff, and says so.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

enum Stop {
    FeedDropped,
    Disconnected(String),
}

async fn receive(listener: &mut PgListener, pool: &PgPool, tx: &mpsc::Sender<BrokerEvent>) -> Stop {
    loop {
        let notification = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            Ok(None) => return Stop::Disconnected("connection closed".into()),
            Err(err) => return Stop::Disconnected(err.to_string()),
        };
        if let Some(delivered) = resolve(&notification, pool).await
            && tx.send(BrokerEvent::Change(delivered)).await.is_err()
        {
            return Stop::FeedDropped;
        }
    }
}

/// The change a notification announces, its payload read from history
/// when it came by reference. `None` (logged) for a notification that is
/// not an envelope, or whose change is no longer in history: the hub sees
/// the gap in the sequence numbers.
async fn resolve(notification: &PgNotification, pool: &PgPool) -> Option<Delivered> {
    let envelope: Envelope = match serde_json::from_str(notification.payload()) {
        Ok(envelope) => envelope,
        Err(err) => {
            tracing::warn!(channel = notification.channel(), error = %err, "PgBroker ignored a notification");
            return None;
        }
    };
    let payload = match envelope.payload {
        Some(payload) => payload,
        None => fetch(pool, &envelope.stream, envelope.seq).await?,
    };
    Some(Delivered {
        stream: Arc::from(envelope.stream),
        position: StreamPosition {
            epoch: Arc::from(envelope.epoch),
            seq: envelope.seq,
        },
        payload: Bytes::from(payload),
    })
}

async fn fetch(pool: &PgPool, stream: &str, seq: u64) -> Option<String> {
    let found =
        sqlx::query_scalar::<_, String>("SELECT payload FROM channels_binding_history WHERE stream = $1 AND seq = $2")
            .bind(stream)
            .bind(i64::try_from(seq).ok()?)
            .fetch_optional(pool)
            .await;
    match found {
        Ok(Some(payload)) => Some(payload),
        Ok(None) => {
            tracing::warn!(
                stream,
                seq,
                "PgBroker: a change sent by reference is no longer in history"
            );
            None
        }
        Err(err) => {
            tracing::warn!(stream, seq, error = %err, "PgBroker cannot read a change sent by reference");
            None
        }
    }
}
