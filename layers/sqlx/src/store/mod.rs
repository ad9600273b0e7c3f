//! Model storage: the statements of [`QueryBuilder`](crate::QueryBuilder)
//! executed on a pool, with rows decoded to JSON and errors sorted into what
//! a client may be told.
//!
//! [`SqlStore`] holds the logic once; a [`Backend`] (SQLite or PostgreSQL)
//! supplies only what differs between databases. [`Database`] is either
//! pool, for code that is not generic (such as
//! [`ModelBinding`](crate::ModelBinding)), and the crate's `Store` enum
//! dispatches to the store of whichever pool it was given.

mod backend;
pub(crate) mod caller;
mod database;
mod dispatch;
mod error;
#[cfg(feature = "postgres")]
mod postgres;
mod sql_store;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use backend::Backend;
pub use database::Database;
pub(crate) use dispatch::Store;
pub use error::StoreError;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use sql_store::{Object, SearchPage, SqlStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
