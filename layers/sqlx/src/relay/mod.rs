//! [`Relay`]: publishes the changes capture triggers recorded in the outbox
//! table to the channel layer, one relay at a time per database schema.
//!
//! The hand-off is durable: a change is a row of `channels_binding_outbox`
//! written in the writer's own transaction, so a committed write's change
//! outlives the process that made it. Every process runs a relay; the one
//! holding the schema's advisory lock publishes, the others wait to take
//! over (see [`Relay`]).

mod batch;
mod leader;

use std::sync::Arc;
use std::time::Duration;

use channels_binding_core::hub::Broker;
use sqlx::postgres::PgPool;
use tokio::sync::watch;

pub use batch::RelayError;

/// Defaults of [`RelayConfig`].
const DEFAULT_POLL: Duration = Duration::from_millis(500);
const DEFAULT_TAKEOVER: Duration = Duration::from_secs(1);
const DEFAULT_BATCH: usize = 256;
const DEFAULT_STALE: Duration = Duration::from_secs(15);

/// How a [`Relay`] waits and batches.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_sqlx::RelayConfig;
///
/// let config = RelayConfig::default().poll(Duration::from_millis(200)).batch_size(100);
/// assert_eq!(config.poll_interval(), Duration::from_millis(200));
/// assert_eq!(config.max_batch(), 100);
/// assert_eq!(config.takeover_interval(), Duration::from_secs(1));
/// assert_eq!(config.stale_age(), Duration::from_secs(15));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RelayConfig {
    poll: Duration,
    takeover: Duration,
    batch: usize,
    stale: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            poll: DEFAULT_POLL,
            takeover: DEFAULT_TAKEOVER,
            batch: DEFAULT_BATCH,
            stale: DEFAULT_STALE,
        }
    }
}

impl RelayConfig {
    /// How often the leader looks at the outbox when no notification woke
    /// it (default 500 ms): the fallback should a notification be missed.
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    /// How often a relay that is not the leader tries to become it
    /// (default 1 s): the takeover delay after a leader dies.
    pub fn takeover(mut self, every: Duration) -> Self {
        self.takeover = every.max(Duration::from_millis(10));
        self
    }

    /// Changes published in one batch at most (default 256; at least 1).
    pub fn batch_size(mut self, changes: usize) -> Self {
        self.batch = changes.clamp(1, 10_000);
        self
    }

    /// How old the leader's heartbeat may grow before a follower ends the
    /// leader's database session to take over (default 15 s; at least
    /// 1 s). The leader beats after every batch and every wait, and a batch
    /// may take up to 10 s: keep this above that.
    pub fn stale_after(mut self, age: Duration) -> Self {
        self.stale = age.max(Duration::from_secs(1));
        self
    }

    /// See [`stale_after`](Self::stale_after).
    #[must_use]
    pub fn stale_age(&self) -> Duration {
        self.stale
    }

    /// See [`poll`](Self::poll).
    #[must_use]
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// See [`takeover`](Self::takeover).
    #[must_use]
    pub fn takeover_interval(&self) -> Duration {
        self.takeover
    }

    /// See [`batch_size`](Self::batch_size).
    #[must_use]
    pub fn max_batch(&self) -> usize {
        self.batch
    }
}

/// The outbox relay of one process: publishes the changes capture triggers
/// recorded (see [`install_capture`](crate::install_capture)) to a
/// [`Broker`], in outbox order, exactly once.
///
/// * **One leader per schema.** Every process starts a relay; the one that
///   holds the session advisory lock of the pool's current schema relays,
///   on a connection of its own. The others try again every
///   [`takeover`](RelayConfig::takeover) interval: when the leader's
///   process dies, PostgreSQL ends its session and releases the lock, and
///   another relay takes over within about that interval.
/// * **Wake-up.** The leader `LISTEN`s on the schema's outbox channel, which
///   capture triggers notify once per statement, and looks at the outbox
///   every [`poll`](RelayConfig::poll) interval as well.
/// * **Exactly once.** The leader claims up to
///   [`batch_size`](RelayConfig::batch_size) rows in id order (marking them
///   with the batch's first id, committed before anything is published),
///   publishes them under a [`BatchKey`](channels_binding_core::hub::BatchKey)
///   made of the schema's epoch and that id, then deletes them. A claimed
///   batch is published again, under the same key, before any new one: by
///   the same leader after a failure, or by its successor after it died
///   mid-publish. Brokers publish a key once within their history age, so
///   each change is sequenced once.
/// * **Order.** Changes are published in outbox id order, which for one
///   row is commit order (a writer waits for the row's previous writer to
///   commit before its trigger runs). Numbering happens here, after
///   commit: a long or bulk transaction holds no lock other writers wait
///   for, and delays only the changes recorded after it.
/// * **Nothing acknowledged is lost.** A change waits in the outbox until a
///   broker took it, whatever happens to the processes: a relay that stops
///   leaves its rows to the next leader (or to the next process that
///   starts).
///
/// Dropping the handle stops the relay as [`stop`](Relay::stop) does,
/// without waiting.
///
/// * **A frozen leader.** A leader whose process is frozen (SIGSTOP, a
///   paused VM) keeps its connection and its lock. The leader records a
///   heartbeat (table `channels_binding_relay`) on the lock's connection
///   after every batch and every wait; a follower that finds it older than
///   [`stale_after`](RelayConfig::stale_after) (15 s) ends that session
///   (`pg_terminate_backend`, allowed between sessions of one role) and
///   takes over. Changes wait in the outbox meanwhile.
///
/// ```no_run
/// use std::sync::Arc;
/// use channels_binding_core::hub::Broker;
/// use channels_binding_sqlx::{PgBroker, PgBrokerConfig, Relay, RelayConfig};
///
/// # async fn doc(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// let broker: Arc<dyn Broker> = Arc::new(PgBroker::connect(pool.clone(), PgBrokerConfig::default()).await?);
/// let relay = Relay::start(pool, broker, RelayConfig::default()).await?;
/// // ... serve; on the way out:
/// relay.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Relay {
    stop: watch::Sender<bool>,
    leading: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Installs the outbox (idempotently) and starts this process's relay
    /// on the current Tokio runtime.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # async fn doc(pool: sqlx::PgPool, broker: Arc<dyn channels_binding_core::hub::Broker>) -> Result<(), channels_binding_sqlx::RelayError> {
    /// let relay = channels_binding_sqlx::Relay::start(pool, broker, Default::default()).await?;
    /// # drop(relay); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`RelayError::Database`] when the outbox cannot be installed or the
    /// schema's epoch read.
    pub async fn start(pool: PgPool, broker: Arc<dyn Broker>, config: RelayConfig) -> Result<Self, RelayError> {
        let outbox = batch::Outbox::open(pool).await?;
        let (stop, stopped) = watch::channel(false);
        let (leading_tx, leading) = watch::channel(false);
        let task = tokio::spawn(leader::run(outbox, broker, config, stopped, leading_tx));
        Ok(Self { stop, leading, task })
    }

    /// Whether this relay is the leader now.
    ///
    /// ```no_run
    /// # fn doc(relay: &channels_binding_sqlx::Relay) {
    /// if relay.is_leader() { println!("relaying"); }
    /// # }
    /// ```
    #[must_use]
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Waits until this relay leads, or `within` passed; returns whether it
    /// leads.
    ///
    /// ```no_run
    /// # async fn doc(relay: &channels_binding_sqlx::Relay) {
    /// let leads = relay.wait_leader(std::time::Duration::from_secs(5)).await;
    /// # let _ = leads; }
    /// ```
    pub async fn wait_leader(&self, within: Duration) -> bool {
        let mut leading = self.leading.clone();
        tokio::time::timeout(within, leading.wait_for(|leads| *leads))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Stops relaying: the leader finishes the batch in hand (within about
    /// [`STOP_BOUND`]) and releases the lock, so another process takes over
    /// at once. Changes not yet published stay in the outbox for it.
    ///
    /// ```no_run
    /// # async fn doc(relay: channels_binding_sqlx::Relay) {
    /// relay.stop().await;
    /// # }
    /// ```
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(STOP_BOUND, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// How long [`Relay::stop`] waits for the batch in hand.
pub const STOP_BOUND: Duration = Duration::from_secs(3);
