//! Store failures, sorted the same way whichever database reported them.

use std::error::Error as StdError;

use sqlx::error::{DatabaseError, ErrorKind};

use crate::query::QueryError;
use crate::schema::ModelSchema;

/// Why a store operation failed. `Display` never includes SQL, database
/// messages or values; the cause of `Unavailable` and `Internal` is kept as
/// the error's `source()` for logs only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint rejected the write. `field` is the declared,
    /// client-visible field it concerns, when known.
    #[error("a row with this value already exists")]
    Conflict {
        /// The field whose value is taken.
        field: Option<String>,
    },
    /// A `NOT NULL`, `CHECK` or foreign key constraint rejected the write,
    /// or (PostgreSQL) the database refused a value of the right type (an
    /// out-of-range number or date, text too long for a `varchar(n)`).
    #[error("the value violates a database constraint")]
    Constraint {
        /// The field concerned, when known and client-visible.
        field: Option<String>,
    },
    /// A list matched more than the allowed number of rows.
    #[error("more than {max} rows match")]
    TooManyRows {
        /// The allowed number of rows.
        max: usize,
    },
    /// The database cannot be reached or is busy; retrying later may work.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The request was abandoned by its caller (a client that went away)
    /// before the operation took a database connection: nothing was done.
    #[error("the request was abandoned before it started")]
    CallerGone,
    /// Anything else: a bug or a schema that does not match the table.
    #[error("internal database error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

/// What a database error means for the client, before it is wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Class {
    Conflict(Option<String>),
    Constraint(Option<String>),
    Unavailable,
    Internal,
}

impl StoreError {
    /// Sorts a `sqlx` error for the model `schema` (whose declared fields
    /// are the only names a `Conflict` or `Constraint` may carry). Errors of
    /// SQLite and PostgreSQL are both understood.
    #[must_use]
    pub fn from_sqlx(schema: &ModelSchema, err: sqlx::Error) -> Self {
        let class = match &err {
            sqlx::Error::Database(db) => classify(schema, &**db),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Class::Unavailable,
            _ => Class::Internal,
        };
        match class {
            Class::Conflict(field) => Self::Conflict { field },
            Class::Constraint(field) => Self::Constraint { field },
            Class::Unavailable => Self::Unavailable(err),
            Class::Internal => Self::Internal(Box::new(err)),
        }
    }
}

fn classify(schema: &ModelSchema, db: &dyn DatabaseError) -> Class {
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return super::postgres::classify(schema, pg);
    }
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return super::sqlite::classify(schema, db);
    }
    let _ = schema;
    match db.kind() {
        ErrorKind::UniqueViolation => Class::Conflict(None),
        ErrorKind::NotNullViolation | ErrorKind::ForeignKeyViolation | ErrorKind::CheckViolation => {
            Class::Constraint(None)
        }
        _ => Class::Internal,
    }
}

/// The declared field `name`, if clients can see it (read or write it).
pub(super) fn visible_field(schema: &ModelSchema, name: &str) -> Option<String> {
    schema
        .field(name)
        .filter(|f| f.is_readable() || f.is_writable())
        .map(|f| f.name().to_owned())
}

impl From<QueryError> for StoreError {
    /// A statement that cannot be built is a bug in the caller.
    fn from(err: QueryError) -> Self {
        Self::Internal(Box::new(err))
    }
}
