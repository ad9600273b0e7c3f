//! SQLite: `?` placeholders, values bound by storage class, errors read from
//! SQLite's messages and result codes.

use sqlx::Row as _;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::sqlite::{Sqlite, SqliteConnection};

use crate::dialect::Dialect;
use crate::row::{bind_params, decode_row};
use crate::schema::ModelSchema;
use crate::value::SqlValue;

use super::backend::{Backend, sealed::Sealed};
use super::error::{Class, visible_field};
use super::sql_store::{Object, SqlStore};

/// The rows of one model in a SQLite database.
pub type SqliteStore = SqlStore<Sqlite>;

impl Sealed for Sqlite {}

impl Backend for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    /// A deferred transaction: its first read takes the snapshot.
    const BEGIN_READ: Option<&'static str> = None;

    async fn fetch_all<'c>(
        conn: &'c mut SqliteConnection,
        schema: &'c ModelSchema,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Object>, sqlx::Error> {
        let rows = bind_params(sqlx::query(sql), params).fetch_all(conn).await?;
        rows.iter().map(|row| decode_row(schema, row)).collect()
    }

    async fn fetch_optional<'c>(
        conn: &'c mut SqliteConnection,
        schema: &'c ModelSchema,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> Result<Option<Object>, sqlx::Error> {
        let row = bind_params(sqlx::query(sql), params).fetch_optional(conn).await?;
        row.map(|row| decode_row(schema, &row)).transpose()
    }

    async fn fetch_count<'c>(
        conn: &'c mut SqliteConnection,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> Result<i64, sqlx::Error> {
        let row = bind_params(sqlx::query(sql), params).fetch_one(conn).await?;
        row.try_get::<i64, _>(0)
    }
}

/// Sorts an error SQLite reported.
pub(super) fn classify(schema: &ModelSchema, db: &dyn DatabaseError) -> Class {
    let field = || constraint_field(schema, db.message());
    match db.kind() {
        ErrorKind::UniqueViolation => Class::Conflict(field()),
        ErrorKind::NotNullViolation => Class::Constraint(field()),
        ErrorKind::ForeignKeyViolation | ErrorKind::CheckViolation => Class::Constraint(None),
        _ if db.code().is_some_and(|c| is_transient_sqlite_code(&c)) => Class::Unavailable,
        _ => Class::Internal,
    }
}

/// `SQLITE_BUSY`, `SQLITE_LOCKED`, `SQLITE_IOERR`, `SQLITE_FULL` and
/// `SQLITE_CANTOPEN`, in any extended form.
fn is_transient_sqlite_code(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14))
}

/// The first client-visible declared field named in SQLite's
/// `"UNIQUE constraint failed: table.a, table.b"` (or `NOT NULL ...`).
fn constraint_field(schema: &ModelSchema, message: &str) -> Option<String> {
    let (_, columns) = message.split_once("constraint failed: ")?;
    columns
        .split(", ")
        .filter_map(|qualified| qualified.rsplit('.').next())
        .find_map(|column| visible_field(schema, column.trim()))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::store::StoreError;
    use crate::test_support::users;

    fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }

    #[tokio::test]
    async fn mismatched_storage_is_internal_and_not_shown() {
        let pool = ok(sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await);
        let exec = |sql: &'static str| {
            let pool = pool.clone();
            async move { ok(sqlx::raw_sql(sql).execute(&pool).await) }
        };
        exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n, f); INSERT INTO t VALUES (1, 'not a number', 3)").await;
        let schema = ModelSchema::builder("t")
            .field(crate::Field::integer("id").read())
            .field(crate::Field::integer("n").read())
            .field(crate::Field::float("f").read())
            .build();
        let store = SqliteStore::new(pool.clone(), ok(schema));
        let err = store.fetch_one(&SqlValue::Int(1)).await;
        let Err(err @ StoreError::Internal(_)) = err else {
            panic!("expected Internal, got {err:?}")
        };
        assert_eq!(err.to_string(), "internal database error");
        assert!(std::error::Error::source(&err).is_some());

        // An integer in a column without REAL affinity still reads as a float.
        exec("UPDATE t SET n = 5").await;
        let row = ok(store.fetch_one(&SqlValue::Int(1)).await).expect("exists");
        assert_eq!(Value::Object(row), json!({"id": 1, "n": 5, "f": 3.0}));
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_unavailable() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .acquire_timeout(std::time::Duration::from_millis(500))
            .connect_lazy("sqlite:///nonexistent-dir/channels-binding/db.sqlite")
            .unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::new(pool, users());
        let err = store.fetch_one(&SqlValue::Int(1)).await;
        assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    }

    #[test]
    fn constraint_field_parsing() {
        let s = users();
        let field = |m: &str| constraint_field(&s, m);
        assert_eq!(
            field("UNIQUE constraint failed: auth_user.username").as_deref(),
            Some("username")
        );
        assert_eq!(
            field("UNIQUE constraint failed: auth_user.password_hash, auth_user.email").as_deref(),
            Some("email")
        );
        assert_eq!(field("UNIQUE constraint failed: auth_user.password_hash"), None);
        assert_eq!(
            field("NOT NULL constraint failed: auth_user.karma").as_deref(),
            Some("karma")
        );
        assert_eq!(field("something else"), None);
    }

    #[test]
    fn transient_codes() {
        for code in ["5", "6", "261", "517", "10", "266", "13", "14"] {
            assert!(is_transient_sqlite_code(code), "{code}");
        }
        for code in ["1", "19", "2067", "x", ""] {
            assert!(!is_transient_sqlite_code(code), "{code}");
        }
    }
}
