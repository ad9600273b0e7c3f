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

    /// Reads nothing from each of `tables`: whether the schema answers, not
    /// only the server (for readiness probes). A database that lost its
    /// tables (an in-memory one whose last connection closed, a dropped
    /// schema) fails here while [`ping`](Self::ping) still succeeds.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sqlx::Error> {
    /// use channels_binding_sqlx::Database;
    ///
    /// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// sqlx::query("CREATE TABLE auth_user (id INTEGER PRIMARY KEY)").execute(&pool).await?;
    /// let database = Database::from(pool);
    /// assert!(database.check_tables(["auth_user"]).await.is_ok());
    /// assert!(database.check_tables(["notes_note"]).await.is_err());
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    ///
    /// # Errors
    ///
    /// The driver's error when no connection can be had or a table cannot
    /// be read; [`sqlx::Error::Configuration`] for a name that is not an
    /// identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub async fn check_tables<'a>(&self, tables: impl IntoIterator<Item = &'a str>) -> Result<(), sqlx::Error> {
        for table in tables {
            if !crate::ident::is_valid_identifier(table) {
                return Err(sqlx::Error::Configuration(
                    format!("{table:?} is not a table name").into(),
                ));
            }
            let mut sql = String::from("SELECT 1 FROM ");
            crate::ident::push_quoted(&mut sql, table);
            sql.push_str(" LIMIT 1");
            match self {
                #[cfg(feature = "sqlite")]
                Self::Sqlite(pool) => sqlx::query(&sql).fetch_optional(pool).await.map(drop)?,
                #[cfg(feature = "postgres")]
                Self::Postgres(pool) => sqlx::query(&sql).fetch_optional(pool).await.map(drop)?,
            }
        }
        Ok(())
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
