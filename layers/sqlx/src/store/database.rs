//! A pool of either database, for code that is not generic over it.

#[cfg(feature = "postgres")]
use sqlx::postgres::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqlitePool;

use crate::dialect::Dialect;

/// The pool a [`ModelBinding`](crate::ModelBinding) runs on.
///
/// Built from either pool with `From`, so that
/// [`ModelBinding::builder`](crate::ModelBinding::builder) takes a
/// `SqlitePool` or a `PgPool` as it is:
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # async fn doc() -> Result<(), sqlx::Error> {
/// use channels_binding_sqlx::{Database, Dialect};
///
/// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// let database = Database::from(pool);
/// assert_eq!(database.dialect(), Dialect::Sqlite);
/// # Ok(()) }
/// ```
///
/// A variant exists per enabled feature (`sqlite`, `postgres`), hence
/// `#[non_exhaustive]`: enabling a feature never breaks a `match`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Database {
    /// A SQLite pool (feature `sqlite`).
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    /// A PostgreSQL pool (feature `postgres`).
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

impl Database {
    /// The SQL dialect the database speaks.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs `SELECT 1`: whether the database answers now (for readiness probes).
    ///
    /// # Errors
    ///
    /// The driver's error when no connection can be had or the query fails.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// Closes the pool: every store on it answers
    /// [`StoreError::Unavailable`](crate::StoreError::Unavailable) from now on.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<SqlitePool> for Database {
    fn from(pool: SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

#[cfg(feature = "postgres")]
impl From<PgPool> for Database {
    fn from(pool: PgPool) -> Self {
        Self::Postgres(pool)
    }
}
