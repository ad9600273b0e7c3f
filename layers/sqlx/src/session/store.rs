//! Sessions in the database: a random token for the client, only its
//! SHA-256 digest in the table; and, in this process, a revocation signal
//! per live session so that signing out ends its open sockets and feeds.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use channels_binding_core::{Principal, Revocation, WeakRevocation};
use sha2::{Digest, Sha256};

use crate::dialect::Dialect;
use crate::store::Database;

/// The table sessions live in.
pub const SESSION_TABLE: &str = "channels_binding_session";

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The database failed; the cause is for logs.
    #[error("the session store is unavailable")]
    Database(#[from] sqlx::Error),
    /// The system's random source failed.
    #[error("no randomness for a session token")]
    Random,
}

/// A created session: the token to hand the client once, and its expiry.
#[derive(Debug, Clone)]
pub struct Session {
    /// The secret token (goes into the cookie; never stored).
    pub token: String,
    /// The token's digest (what the table keeps).
    pub digest: String,
    /// When it expires.
    pub expires_at: SystemTime,
    /// Given when the session is deleted (signed out).
    pub revocation: Revocation,
}

impl Session {
    /// `principal` as signed in with this session: it expires with the
    /// session, carries the digest as its `session` attribute (so that
    /// signing out can end it) and the session's revocation signal (so that
    /// a socket that signed in with it closes when the session ends).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use channels_binding_sqlx::SessionStore;
    /// use channels_binding_core::Principal;
    ///
    /// let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
    /// let store = SessionStore::new(pool, Duration::from_secs(3600));
    /// store.install().await?;
    /// let session = store.create(&Principal::new("7")).await?;
    /// let principal = session.principal(Principal::new("7"));
    /// assert_eq!(principal.expiry(), Some(session.expires_at));
    /// store.delete(&session.digest).await?;
    /// assert!(principal.is_revoked());
    /// # Ok(()) }
    /// ```
    pub fn principal(&self, principal: Principal) -> Principal {
        principal
            .expires_at(self.expires_at)
            .attribute("session", self.digest.clone())
            .revocable(self.revocation.clone())
    }
}

/// Fewest entries the revocation registry keeps before it sweeps.
const MIN_SWEEP: usize = 64;

/// The revocation signal of every session some principal in this process
/// still holds, by digest.
///
/// Bounded by what is alive: entries are weak, and the map is swept of dead
/// ones whenever it has doubled since the last sweep, so it never holds
/// more than twice the live sessions (plus a small constant).
#[derive(Default)]
struct Revocations {
    live: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    by_digest: HashMap<String, WeakRevocation>,
    /// The size at which the next insert sweeps.
    sweep_at: usize,
}

impl Revocations {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A poisoned lock only means a panic mid-insert of a weak pointer;
        // the map stays usable.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The signal of this session, shared by every principal of it.
    fn signal(&self, digest: &str) -> Revocation {
        let mut registry = self.registry();
        if let Some(live) = registry.by_digest.get(digest).and_then(WeakRevocation::upgrade) {
            return live;
        }
        if registry.by_digest.len() >= registry.sweep_at.max(MIN_SWEEP) {
            registry.by_digest.retain(|_, weak| weak.is_held());
            registry.sweep_at = registry.by_digest.len() * 2;
        }
        let revocation = Revocation::new();
        registry.by_digest.insert(digest.to_owned(), revocation.downgrade());
        revocation
    }

    /// Gives the signal of this session, if anyone holds it.
    fn revoke(&self, digest: &str) {
        let removed = self.registry().by_digest.remove(digest);
        if let Some(revocation) = removed.as_ref().and_then(WeakRevocation::upgrade) {
            revocation.revoke();
        }
    }

    fn len(&self) -> usize {
        self.registry().by_digest.len()
    }
}

/// Sessions backed by a sqlx pool (SQLite or PostgreSQL).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use channels_binding_sqlx::SessionStore;
/// use channels_binding_core::Principal;
///
/// let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
/// let store = SessionStore::new(pool, Duration::from_secs(3600));
/// store.install().await?;
/// let session = store.create(&Principal::new("7")).await?;
/// assert_eq!(store.lookup(&session.token).await?.unwrap().id(), "7");
/// store.delete(&session.digest).await?;
/// assert!(store.lookup(&session.token).await?.is_none());
/// # Ok(()) }
/// ```
///
/// Deleting a session (signing out) also ends, within this process, every
/// socket and feed opened with it: each principal [`lookup`](Self::lookup)
/// returns carries the session's [`Revocation`]. Another process sharing the
/// database learns of it on its next lookup, so its plain requests are
/// refused at once, while its open sockets last until the session's expiry.
#[derive(Clone)]
pub struct SessionStore {
    database: Database,
    ttl: Duration,
    revocations: Arc<Revocations>,
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("database", &self.database)
            .field("ttl", &self.ttl)
            .field("followed_sessions", &self.revocations.len())
            .finish()
    }
}

/// The digest under which a token is stored.
pub fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Runs the same statement text on whichever pool this is.
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            #[cfg(feature = "sqlite")]
            Database::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            Database::Postgres($pool) => $body,
        }
    };
}

fn unix(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl SessionStore {
    /// Sessions on this pool, valid for `ttl` after sign-in.
    pub fn new(database: impl Into<Database>, ttl: Duration) -> Self {
        Self {
            database: database.into(),
            ttl,
            revocations: Arc::default(),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The statement in this database's placeholder style (`?` or `$n`).
    fn sql(&self, text: &str) -> String {
        if self.database.dialect() == Dialect::Postgres {
            let mut n = 0;
            text.chars()
                .map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        } else {
            text.to_owned()
        }
    }

    /// Creates the sessions table if it does not exist.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn install(&self) -> Result<(), SessionError> {
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {SESSION_TABLE} (digest TEXT PRIMARY KEY, user_id TEXT NOT NULL, \
             is_staff BOOLEAN NOT NULL, expires_at BIGINT NOT NULL)"
        );
        on_pool!(&self.database, pool => sqlx::query(&ddl).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Starts a session for `principal`.
    ///
    /// # Errors
    ///
    /// The database's error, or no randomness.
    pub async fn create(&self, principal: &Principal) -> Result<Session, SessionError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| SessionError::Random)?;
        let token = hex(&secret);
        let digest = token_digest(&token);
        let expires_at = SystemTime::now() + self.ttl;
        let sql = self.sql(&format!(
            "INSERT INTO {SESSION_TABLE} (digest, user_id, is_staff, expires_at) VALUES (?, ?, ?, ?)"
        ));
        on_pool!(&self.database, pool => sqlx::query(&sql)
            .bind(&digest)
            .bind(principal.id())
            .bind(principal.is_staff())
            .bind(unix(expires_at))
            .execute(pool)
            .await
            .map(drop))?;
        let revocation = self.revocations.signal(&digest);
        Ok(Session {
            token,
            digest,
            expires_at,
            revocation,
        })
    }

    /// The principal of a live session, `None` for an unknown or expired
    /// token. The principal carries the session's digest as its `session`
    /// attribute, so that signing out can end it, its expiry, and its
    /// revocation signal, given when the session is deleted.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn lookup(&self, token: &str) -> Result<Option<Principal>, SessionError> {
        let digest = token_digest(token);
        // Taken before the query, so that a delete racing with it revokes it.
        let revocation = self.revocations.signal(&digest);
        let sql = self.sql(&format!(
            "SELECT user_id, is_staff, expires_at FROM {SESSION_TABLE} WHERE digest = ? AND expires_at > ?"
        ));
        let now = unix(SystemTime::now());
        let row: Option<(String, bool, i64)> =
            on_pool!(&self.database, pool => sqlx::query_as(&sql).bind(&digest).bind(now).fetch_optional(pool).await)?;
        Ok(row.map(|(id, staff, expires)| {
            let expires_at = UNIX_EPOCH + Duration::from_secs(u64::try_from(expires).unwrap_or(0));
            Principal::new(id)
                .staff(staff)
                .expires_at(expires_at)
                .attribute("session", digest)
                .revocable(revocation)
        }))
    }

    /// Ends a session (by digest, as carried in the principal's `session`
    /// attribute): the row goes, and every principal of it in this process
    /// is revoked, which closes the sockets and feeds opened with it.
    ///
    /// # Errors
    ///
    /// The database's error. The principals are revoked even then: the
    /// caller asked to sign out, and nothing of the session should outlive
    /// that request here.
    pub async fn delete(&self, digest: &str) -> Result<(), SessionError> {
        let sql = self.sql(&format!("DELETE FROM {SESSION_TABLE} WHERE digest = ?"));
        let deleted = on_pool!(&self.database, pool => sqlx::query(&sql).bind(digest).execute(pool).await.map(drop));
        // After the delete: a lookup that still found the row took the signal
        // before its query, so it is revoked here too.
        self.revocations.revoke(digest);
        Ok(deleted?)
    }

    /// Removes expired sessions; returns how many.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn purge_expired(&self) -> Result<u64, SessionError> {
        let sql = self.sql(&format!("DELETE FROM {SESSION_TABLE} WHERE expires_at <= ?"));
        let now = unix(SystemTime::now());
        let done = on_pool!(&self.database, pool => sqlx::query(&sql).bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_of_one_session_share_its_signal_until_revoked() {
        let revocations = Revocations::default();
        let first = revocations.signal("a");
        let second = revocations.signal("a");
        assert!(first.same(&second));
        let other = revocations.signal("b");
        revocations.revoke("a");
        assert!(first.is_revoked() && second.is_revoked());
        assert!(!other.is_revoked(), "only the signed-out session ends");
        // A session looked up again after revocation (the row is gone, so
        // only a racing lookup could) gets a fresh signal, not a dead one.
        assert!(!revocations.signal("a").is_revoked());
    }

    #[test]
    fn the_registry_forgets_sessions_nobody_holds() {
        let revocations = Revocations::default();
        let held: Vec<Revocation> = (0..10).map(|n| revocations.signal(&format!("held{n}"))).collect();
        // Unknown tokens, lookups that ended: nothing keeps their signal.
        for n in 0..10_000 {
            drop(revocations.signal(&format!("gone{n}")));
        }
        assert!(
            revocations.len() <= 2 * held.len() + MIN_SWEEP,
            "{} entries for {} live sessions",
            revocations.len(),
            held.len()
        );
        revocations.revoke("held3");
        assert!(held[3].is_revoked(), "live entries survive the sweeps");
    }
}
