//! What differs between databases once a statement is built: how its values
//! are bound, how its rows are decoded and how a read snapshot begins.

use std::future::Future;

use crate::dialect::Dialect;
use crate::schema::ModelSchema;
use crate::value::SqlValue;

use super::sql_store::Object;

pub(crate) mod sealed {
    /// Keeps [`Backend`](super::Backend) implemented by this crate only.
    #[allow(unreachable_pub)] // public in a private module: the sealed-trait pattern
    pub trait Sealed {}
}

/// A database a [`SqlStore`](crate::SqlStore) runs on: [`sqlx::Sqlite`]
/// (feature `sqlite`) or [`sqlx::Postgres`] (feature `postgres`).
///
/// Sealed: the store's guarantees (one shape of JSON per declared type,
/// errors sorted the same way) are kept by this crate for each database, so
/// other crates cannot add one. Its only public item is the
/// [`DIALECT`](Self::DIALECT); the rest are hidden primitives of the store.
pub trait Backend: sqlx::Database + sealed::Sealed {
    /// The SQL dialect statements for this database are written in.
    const DIALECT: Dialect;

    /// The statement that opens the transaction of a search, so that its
    /// count and its page read one snapshot; `None` is sqlx's `BEGIN`.
    #[doc(hidden)]
    const BEGIN_READ: Option<&'static str>;

    /// Runs `sql` with `params` and decodes every row of `schema`.
    #[doc(hidden)]
    fn fetch_all<'c>(
        conn: &'c mut Self::Connection,
        schema: &'c ModelSchema,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> impl Future<Output = Result<Vec<Object>, sqlx::Error>> + Send + 'c;

    /// Runs `sql` with `params` and decodes the first row, if any.
    #[doc(hidden)]
    fn fetch_optional<'c>(
        conn: &'c mut Self::Connection,
        schema: &'c ModelSchema,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> impl Future<Output = Result<Option<Object>, sqlx::Error>> + Send + 'c;

    /// Runs a `SELECT COUNT(*)` and returns the count.
    #[doc(hidden)]
    fn fetch_count<'c>(
        conn: &'c mut Self::Connection,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> impl Future<Output = Result<i64, sqlx::Error>> + Send + 'c;
}
