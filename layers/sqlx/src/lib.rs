//! sqlx-backed model bindings for channels-binding.
//!
//! A model is declared once as a [`ModelSchema`] of [`Field`]s, each opting
//! in to being read, written, searched, filtered or ordered. From it:
//!
//! * the `parse_*` functions ([`parse_write`], [`parse_filters`],
//!   [`parse_order`], [`parse_page_params`], [`parse_pk`], ...) check client
//!   JSON and return either typed values or field-level `validation`
//!   messages ([`FieldErrors`]), rejecting every key a client may not write
//!   (mass assignment);
//! * [`QueryBuilder`] writes SQL for SQLite or PostgreSQL from declared
//!   identifiers and placeholders only; client text is always a bound
//!   [`SqlValue`];
//! * [`SqlStore`] runs those statements on a pool — [`SqliteStore`]
//!   (feature `sqlite`) or [`PgStore`] (feature `postgres`) — and returns
//!   rows as JSON objects, the same JSON on both, with errors sorted into
//!   conflicts, unavailability and internal failures;
//! * [`ModelBinding`] serves a model as a stream of the event API, on a
//!   [`Database`] of either kind.
//! * `PgBroker` (feature `postgres`) is a channel layer between server
//!   processes on PostgreSQL `LISTEN`/`NOTIFY`; `install_capture` records
//!   every write of a table (the API's and everyone else's) in an outbox
//!   table, in the writing transaction, and a `Relay` publishes them on any
//!   channel layer (Redis or PostgreSQL).
//!
//! # Durable hand-off, and where there is none
//!
//! On PostgreSQL with capture (`ModelBindingBuilder::capture_outside_writes`,
//! `install_capture`, a `Relay` in every process), a write's change is in
//! the outbox when the write commits, before its client hears of it: a
//! process that dies, stops or is killed with changes not yet published
//! loses none of them; the relay of another process (or of the next one to
//! start) publishes them, once each, in outbox order. Sequence numbers are
//! given after commit, so a long or bulk transaction blocks no other
//! writer, and a 5,000-row statement costs one outbox row.
//!
//! On SQLite (or PostgreSQL without capture) there is no durable log: a
//! binding hands its changes to the hub, whose queue to the channel layer
//! lives in the process's memory. Shutdown waits a bounded time for it
//! (`Hub::flush`); changes still queued when the process exits (killed, or
//! the broker unreachable past the bound) are lost, and their subscribers
//! on other processes are not told. Writes made outside the API are not
//! seen at all there.
//!
//! # SQLite and PostgreSQL
//!
//! Both features may be enabled at once. The same schema answers the same
//! events with the same JSON on either database, with these exceptions,
//! which come from the databases themselves:
//!
//! * **Text order** follows the column's collation on PostgreSQL and byte
//!   order on SQLite; declare ordered text columns `COLLATE "C"` (or use a
//!   `C` database) for the same order everywhere.
//! * **Case-insensitive search** folds ASCII letters only on SQLite
//!   (`lower()`), and every letter the collation knows on PostgreSQL
//!   (`ILIKE`): a search for `é` finds `É` on PostgreSQL only. `%`, `_` and
//!   `\` are always literal.
//! * **Keys** come from a sequence on PostgreSQL (an identity column or
//!   `bigserial`), which never reuses a key and knows nothing of keys
//!   inserted explicitly; SQLite takes the largest key plus one.
//! * **Column types** are enforced by PostgreSQL: a value the column cannot
//!   hold (past an `integer`'s range, longer than a `varchar(n)`, the year
//!   0000) is a `validation` error on `__all__`, where SQLite stores it.
//! * **Timestamps** are `timestamptz` on PostgreSQL and canonical TEXT on
//!   SQLite; both read back as `YYYY-MM-DDTHH:MM:SS.mmmZ`. A `timestamp`
//!   (without time zone) column is written in the session's `TimeZone`,
//!   so use one only with `TimeZone` UTC.
//! * **NULLs** sort first ascending and last descending on both: the
//!   PostgreSQL statements say `NULLS FIRST`/`NULLS LAST` for fields
//!   declared [`nullable`](Field::nullable).
//!
//! # Clients that go away
//!
//! A [`ModelBinding`] runs each action on a task of its own (when called
//! inside a Tokio runtime), so a caller that drops the future (a reset
//! connection, a cancelled HTTP/2 stream) never cuts a statement short:
//! pool connections are neither lost nor replaced, and a write either never
//! starts (the caller left while it waited for a connection; the store then
//! answers [`StoreError::CallerGone`]) or completes with its commit,
//! sequence number and pushes. The reply still reaches a connection before
//! the pushes its request caused.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod binding;
#[cfg(feature = "postgres")]
mod broker;
#[cfg(feature = "postgres")]
mod capture;
mod dialect;
mod error;
mod field;
mod filter;
mod ident;
mod input;
mod order;
mod query;
#[cfg(feature = "postgres")]
mod relay;
#[cfg(feature = "sqlite")]
mod row;
#[cfg(feature = "postgres")]
mod row_pg;
mod schema;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod session;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod store;
#[cfg(test)]
mod test_support;
mod timestamp;
mod value;
mod write_values;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use binding::{
    ACTIONS, AllFields, CreateHook, Fields, MAX_LIST_SIZE, ModelBinding, ModelBindingBuilder, ReadScope, ReadScopeFn,
    Serializer, Typed, WriteAction, WriteRule, owner_or_staff,
};
#[cfg(feature = "postgres")]
pub use broker::{DEFAULT_HISTORY_AGE, DEFAULT_HISTORY_LEN, PgBroker, PgBrokerConfig};
#[cfg(feature = "postgres")]
pub use capture::{CaptureError, install_capture};
pub use dialect::Dialect;
pub use error::ConfigError;
pub use field::{Field, FieldType};
pub use filter::{Condition, Filter};
pub use ident::{MAX_IDENTIFIER_LEN, is_valid_identifier};
pub use input::{
    DEFAULT_PAGE_SIZE, FieldErrors, MAX_IN_LIST, MAX_PAGE_SIZE, MAX_QUERY_CHARS, PageLimits, PageParams, WriteMode,
    parse_criteria, parse_filters, parse_order, parse_page_params, parse_pk, parse_pks, parse_query, parse_write,
    reject_unknown_keys,
};
pub use order::OrderTerm;
pub use query::{Criteria, QueryBuilder, QueryError, Statement, contains_pattern};
#[cfg(feature = "postgres")]
pub use relay::{Relay, RelayConfig, RelayError, STOP_BOUND};
#[cfg(feature = "sqlite")]
pub use row::{bind_params, decode_row};
#[cfg(feature = "postgres")]
pub use row_pg::{bind_pg_params, decode_pg_row};
pub use schema::{ModelSchema, ModelSchemaBuilder};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use session::{
    LoginAttempt, LoginThrottle, PasswordCheck, PasswordCheckError, SESSION_TABLE, Session, SessionAuth, SessionCookie,
    SessionError, SessionStore, SessionStrategy, ThrottleRule, Throttled, UserLookup, Verifier, token_digest,
};
#[cfg(feature = "postgres")]
pub use store::PgStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use store::{Backend, Database, Object, SearchPage, SqlStore, StoreError};
pub use timestamp::canonical_timestamp;
pub use value::SqlValue;
pub use write_values::WriteValues;
