//! The relay's task: wait for leadership, then relay until it is lost or
//! the relay stops.

use std::sync::Arc;
use std::time::Duration;

use channels_binding_core::hub::Broker;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, PgListener};
use tokio::sync::watch;

use super::RelayConfig;
use super::batch::Outbox;

/// The first key of the relay's advisory lock (`"cbrl"` in ASCII); the
/// second is the hash of the schema's name, so each schema has its leader.
const RELAY_LOCK_CLASS: i32 = 0x6362_726c;

/// How long a statement on the lock's connection may take before the
/// connection is taken for dead (and leadership given up).
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one publish may take before it is tried again.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Pauses between failed attempts.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(2);

pub(super) async fn run(
    outbox: Outbox,
    broker: Arc<dyn Broker>,
    config: RelayConfig,
    mut stop: watch::Receiver<bool>,
    leading: watch::Sender<bool>,
) {
    while !stopping(&stop) {
        let Some(lock) = become_leader(&outbox, &config, &mut stop).await else {
            return;
        };
        let _ = leading.send(true);
        tracing::info!(
            broker = broker.name(),
            "outbox relay leads: publishing recorded changes"
        );
        lead(&outbox, &*broker, &config, lock, &mut stop).await;
        let _ = leading.send(false);
    }
}

/// Waits until this relay holds the schema's lock, on a connection of its
/// own; `None` when told to stop first.
async fn become_leader(
    outbox: &Outbox,
    config: &RelayConfig,
    stop: &mut watch::Receiver<bool>,
) -> Option<PgConnection> {
    let mut connection: Option<PgConnection> = None;
    loop {
        if stopping(stop) {
            return None;
        }
        if connection.is_none() {
            let options = outbox.pool.connect_options();
            match tokio::time::timeout(LOCK_TIMEOUT, PgConnection::connect_with(&options)).await {
                Ok(Ok(opened)) => connection = Some(opened),
                Ok(Err(err)) => tracing::warn!(error = %err, "outbox relay cannot connect; trying again"),
                Err(_) => tracing::warn!("outbox relay: connecting timed out; trying again"),
            }
        }
        if let Some(conn) = connection.as_mut() {
            let attempt =
                sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, hashtext(current_schema()::text))")
                    .bind(RELAY_LOCK_CLASS)
                    .fetch_one(&mut *conn);
            match tokio::time::timeout(LOCK_TIMEOUT, attempt).await {
                Ok(Ok(true)) => {
                    if beat(conn, true).await {
                        return connection;
                    }
                    connection = None;
                }
                Ok(Ok(false)) => end_stale_leader(conn, config).await,
                Ok(Err(_)) | Err(_) => connection = None,
            }
        }
        tokio::select! {
            () = tokio::time::sleep(config.takeover) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Relays while `lock` (the connection holding the lock) is alive.
async fn lead(
    outbox: &Outbox,
    broker: &dyn Broker,
    config: &RelayConfig,
    mut lock: PgConnection,
    stop: &mut watch::Receiver<bool>,
) {
    let mut listener = listen(outbox).await;
    let mut pause = FIRST_RETRY;
    loop {
        if stopping(stop) {
            // The batch in hand is finished (we are between batches); the
            // rest waits in the outbox for the next leader.
            if let Ok(left) = outbox.waiting().await {
                tracing::info!(left, "outbox relay stops; changes left wait for the next leader");
            }
            let _ = tokio::time::timeout(LOCK_TIMEOUT, lock.close()).await;
            return;
        }
        let relayed = tokio::time::timeout(PUBLISH_TIMEOUT, outbox.relay_one(broker, config.batch)).await;
        let wait = match relayed {
            Ok(Ok(count)) if count >= config.batch => {
                pause = FIRST_RETRY;
                None
            }
            Ok(Ok(_)) => {
                pause = FIRST_RETRY;
                Some(config.poll)
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, broker = broker.name(), "outbox relay: batch not published; retrying under its key");
                Some(next_pause(&mut pause))
            }
            Err(_) => {
                tracing::warn!(
                    broker = broker.name(),
                    "outbox relay: publishing timed out; retrying under the batch's key"
                );
                Some(next_pause(&mut pause))
            }
        };
        // Still the leader? A connection that died released the lock, and
        // another relay may hold it now: stop relaying at once. The beat
        // also tells followers this leader is alive.
        if !beat(&mut lock, false).await {
            tracing::warn!("outbox relay lost its lock's connection; no longer leading");
            return;
        }
        if let Some(wait) = wait {
            wake_or_wait(listener.as_mut(), wait, stop).await;
            if listener.is_none() {
                listener = listen(outbox).await;
            }
        }
    }
}

/// Records (`first`) or renews this leader's heartbeat on the lock's
/// connection; `false` when the connection is gone or another leader's
/// beat replaced this one.
async fn beat(lock: &mut PgConnection, first: bool) -> bool {
    let sql = if first {
        "INSERT INTO channels_binding_relay (id, pid, beat) VALUES (true, pg_backend_pid(), clock_timestamp()) \
         ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, beat = excluded.beat"
    } else {
        "UPDATE channels_binding_relay SET beat = clock_timestamp() WHERE pid = pg_backend_pid()"
    };
    let done = tokio::time::timeout(LOCK_TIMEOUT, sqlx::query(sql).execute(&mut *lock)).await;
    matches!(done, Ok(Ok(result)) if result.rows_affected() == 1)
}

/// Ends the session of a leader whose heartbeat is older than
/// [`RelayConfig::stale_after`], and that holds the lock (a pid of a
/// session that ended may be another session's now): a process that is frozen (SIGSTOP, a
/// paused VM) keeps its connection and its lock, and would hold up every
/// change. Its session ending releases the lock; should it wake up, it
/// finds its connection gone and stops leading.
async fn end_stale_leader(conn: &mut PgConnection, config: &RelayConfig) {
    let micros = i64::try_from(config.stale.as_micros()).unwrap_or(i64::MAX);
    let ended = sqlx::query_scalar::<_, bool>(
        "SELECT pg_terminate_backend(r.pid) FROM channels_binding_relay r \
         WHERE r.beat < clock_timestamp() - $1 * interval '1 microsecond' AND r.pid <> pg_backend_pid() \
           AND EXISTS (SELECT FROM pg_locks l WHERE l.pid = r.pid AND l.granted AND l.locktype = 'advisory' \
               AND l.classid = $2::oid AND l.objid = hashtext(current_schema()::text)::oid AND l.objsubid = 2)",
    )
    .bind(micros)
    .bind(RELAY_LOCK_CLASS)
    .fetch_optional(&mut *conn);
    if let Ok(Ok(Some(true))) = tokio::time::timeout(LOCK_TIMEOUT, ended).await {
        tracing::warn!(
            stale_after = ?config.stale,
            "outbox relay: the leader's heartbeat is stale (a frozen process?); its session was ended to take over"
        );
    }
}

/// Told to stop, or the [`Relay`](super::Relay) handle is gone.
fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

fn next_pause(pause: &mut Duration) -> Duration {
    let current = *pause;
    *pause = (*pause * 2).min(LAST_RETRY);
    current
}

/// A listener on the outbox channel, or `None` (the relay then polls).
async fn listen(outbox: &Outbox) -> Option<PgListener> {
    let attempt = async {
        let mut listener = PgListener::connect_with(&outbox.pool).await?;
        listener.listen(&outbox.channel).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match tokio::time::timeout(LOCK_TIMEOUT, attempt).await {
        Ok(Ok(listener)) => Some(listener),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "outbox relay cannot listen; polling");
            None
        }
        Err(_) => None,
    }
}

/// Returns on a notification, after `wait`, or when told to stop.
async fn wake_or_wait(listener: Option<&mut PgListener>, wait: Duration, stop: &mut watch::Receiver<bool>) {
    let notified = async {
        match listener {
            // An error ends the wait early; the listener reconnects on its own.
            Some(listener) => {
                let _ = listener.try_recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = notified => {}
        () = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
}
