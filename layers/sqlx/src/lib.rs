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
//! * [`SqliteStore`] (feature `sqlite`) runs those statements on a pool and
//!   returns rows as JSON objects, with errors sorted into conflicts,
//!   unavailability and internal failures.

#[cfg(feature = "sqlite")]
mod binding;
mod dialect;
mod error;
mod field;
mod filter;
mod ident;
mod input;
mod order;
mod query;
#[cfg(feature = "sqlite")]
mod row;
mod schema;
#[cfg(feature = "sqlite")]
mod store;
#[cfg(test)]
mod test_support;
mod timestamp;
mod value;
mod write_values;

#[cfg(feature = "sqlite")]
pub use binding::{
    ACTIONS, AllFields, CreateHook, Fields, MAX_LIST_SIZE, ModelBinding, ModelBindingBuilder, ReadScope, ReadScopeFn,
    Serializer, Typed, WriteAction, WriteRule, owner_or_staff,
};
pub use dialect::Dialect;
pub use error::ConfigError;
pub use field::{Field, FieldType};
pub use filter::{Condition, Filter};
pub use ident::{MAX_IDENTIFIER_LEN, is_valid_identifier};
pub use input::{
    DEFAULT_PAGE_SIZE, FieldErrors, MAX_IN_LIST, MAX_PAGE_SIZE, MAX_QUERY_CHARS, PageLimits, PageParams, WriteMode,
    parse_criteria, parse_filters, parse_order, parse_page_params, parse_pk, parse_pks, parse_query, parse_write,
};
pub use order::OrderTerm;
pub use query::{Criteria, QueryBuilder, QueryError, Statement, contains_pattern};
#[cfg(feature = "sqlite")]
pub use row::{bind_params, decode_row};
pub use schema::{ModelSchema, ModelSchemaBuilder};
#[cfg(feature = "sqlite")]
pub use store::{Object, SearchPage, SqliteStore, StoreError};
pub use timestamp::canonical_timestamp;
pub use value::SqlValue;
pub use write_values::WriteValues;
