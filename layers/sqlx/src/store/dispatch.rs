//! The store of a [`Database`]: one `match` per operation, so that the
//! binding holds one type whichever database it runs on.

use std::sync::Arc;

use crate::input::PageParams;
use crate::query::Criteria;
use crate::schema::ModelSchema;
use crate::value::SqlValue;
use crate::write_values::WriteValues;

use super::database::Database;
use super::error::StoreError;
#[cfg(feature = "postgres")]
use super::postgres::PgStore;
use super::sql_store::{Object, SearchPage, SqlStore};
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteStore;

/// A [`SqlStore`] on whichever database it was given.
///
/// An enum rather than a trait object: the set of backends is closed
/// (sealed), the call is a `match` instead of a boxed future, and no type
/// parameter leaks into [`ModelBinding`](crate::ModelBinding).
#[derive(Debug, Clone)]
pub(crate) enum Store {
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
}

/// Runs `$call` on the store inside `$store`, whichever it is.
macro_rules! dispatch {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            #[cfg(feature = "sqlite")]
            Store::Sqlite($s) => $call,
            #[cfg(feature = "postgres")]
            Store::Postgres($s) => $call,
        }
    };
}

impl Store {
    pub(crate) fn new(database: Database, schema: Arc<ModelSchema>) -> Self {
        match database {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(pool) => Self::Sqlite(SqlStore::new(pool, schema)),
            #[cfg(feature = "postgres")]
            Database::Postgres(pool) => Self::Postgres(SqlStore::new(pool, schema)),
        }
    }

    /// See [`SqlStore::fetch_one`].
    pub(crate) async fn fetch_one(&self, pk: &SqlValue) -> Result<Option<Object>, StoreError> {
        dispatch!(self, s => s.fetch_one(pk).await)
    }

    /// See [`SqlStore::fetch_many`].
    pub(crate) async fn fetch_many(&self, pks: &[SqlValue]) -> Result<Vec<Object>, StoreError> {
        dispatch!(self, s => s.fetch_many(pks).await)
    }

    /// See [`SqlStore::search`].
    pub(crate) async fn search(&self, criteria: &Criteria, page: PageParams) -> Result<SearchPage, StoreError> {
        dispatch!(self, s => s.search(criteria, page).await)
    }

    /// See [`SqlStore::list`].
    pub(crate) async fn list(&self, criteria: &Criteria, max: usize) -> Result<Vec<Object>, StoreError> {
        dispatch!(self, s => s.list(criteria, max).await)
    }

    /// See [`SqlStore::insert`]. With `origin` (JSON text) on PostgreSQL,
    /// a capture trigger announces the write as made by that request: see
    /// [`SqlStore::insert_tagged`]. SQLite has no capture triggers, so there
    /// `origin` changes nothing.
    pub(crate) async fn insert(&self, values: &WriteValues, origin: Option<&str>) -> Result<Object, StoreError> {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => {
                let _ = origin;
                s.insert(values).await
            }
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.insert_tagged(values, origin).await,
        }
    }

    /// See [`SqlStore::update`]; `origin` as for [`insert`](Self::insert).
    pub(crate) async fn update(
        &self,
        pk: &SqlValue,
        values: &WriteValues,
        origin: Option<&str>,
    ) -> Result<Option<Object>, StoreError> {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => {
                let _ = origin;
                s.update(pk, values).await
            }
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.update_tagged(pk, values, origin).await,
        }
    }

    /// See [`SqlStore::delete`]; `origin` as for [`insert`](Self::insert).
    pub(crate) async fn delete(&self, pk: &SqlValue, origin: Option<&str>) -> Result<Option<Object>, StoreError> {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => {
                let _ = origin;
                s.delete(pk).await
            }
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.delete_tagged(pk, origin).await,
        }
    }
}
