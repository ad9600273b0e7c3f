//! Sessions in the database: a random token for the client, only its
//! SHA-256 digest in the table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use channels_binding_core::Principal;
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
#[derive(Debug, Clone)]
pub struct SessionStore {
    database: Database,
    ttl: Duration,
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
        Ok(Session {
            token,
            digest,
            expires_at,
        })
    }

    /// The principal of a live session, `None` for an unknown or expired
    /// token. The principal carries the session's digest as its `session`
    /// attribute, so that signing out can end it.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn lookup(&self, token: &str) -> Result<Option<Principal>, SessionError> {
        let digest = token_digest(token);
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
        }))
    }

    /// Ends a session (by digest, as carried in the principal's `session` attribute).
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn delete(&self, digest: &str) -> Result<(), SessionError> {
        let sql = self.sql(&format!("DELETE FROM {SESSION_TABLE} WHERE digest = ?"));
        on_pool!(&self.database, pool => sqlx::query(&sql).bind(digest).execute(pool).await.map(drop))?;
        Ok(())
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
