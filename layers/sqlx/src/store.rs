//! Model storage on SQLite: the statements of [`QueryBuilder`] executed on a
//! pool, with rows decoded to JSON and errors sorted into what a client may
//! be told.

use std::error::Error as StdError;
use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::error::ErrorKind;
use sqlx::sqlite::{Sqlite, SqlitePool};
use sqlx::{Executor, Row as _};

use crate::dialect::Dialect;
use crate::input::PageParams;
use crate::query::{Criteria, QueryBuilder, QueryError, Statement};
use crate::row::{bind_params, decode_row};
use crate::schema::ModelSchema;
use crate::value::SqlValue;
use crate::write_values::WriteValues;

/// A JSON object holding the readable fields of one row.
pub type Object = Map<String, Value>;

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
    /// A `NOT NULL`, `CHECK` or foreign key constraint rejected the write.
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
    /// Anything else: a bug or a schema that does not match the table.
    #[error("internal database error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    /// Sorts a `sqlx` error for the model `schema` (whose declared fields
    /// are the only names a `Conflict` may carry).
    #[must_use]
    pub fn from_sqlx(schema: &ModelSchema, err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) => {
                let field = || constraint_field(schema, db.message());
                match db.kind() {
                    ErrorKind::UniqueViolation => Self::Conflict { field: field() },
                    ErrorKind::NotNullViolation => Self::Constraint { field: field() },
                    ErrorKind::ForeignKeyViolation | ErrorKind::CheckViolation => Self::Constraint { field: None },
                    _ if db.code().is_some_and(|c| is_transient_sqlite_code(&c)) => Self::Unavailable(err),
                    _ => Self::Internal(Box::new(err)),
                }
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
                Self::Unavailable(err)
            }
            _ => Self::Internal(Box::new(err)),
        }
    }
}

impl From<QueryError> for StoreError {
    /// A statement that cannot be built is a bug in the caller.
    fn from(err: QueryError) -> Self {
        Self::Internal(Box::new(err))
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
        .filter_map(|column| schema.field(column.trim()))
        .find(|f| f.is_readable() || f.is_writable())
        .map(|f| f.name().to_owned())
}

/// One page of a search and the number of matching rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// All rows matching the criteria, on every page.
    pub count: u64,
    /// The rows of the requested page (empty past the end).
    pub rows: Vec<Object>,
}

/// The rows of one model in a SQLite database.
///
/// Cheap to clone: the pool and schema are shared.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    schema: Arc<ModelSchema>,
}

impl SqliteStore {
    /// A store of `schema`'s table in `pool`.
    #[must_use]
    pub fn new(pool: SqlitePool, schema: impl Into<Arc<ModelSchema>>) -> Self {
        Self {
            pool,
            schema: schema.into(),
        }
    }

    /// The model's schema.
    #[must_use]
    pub fn schema(&self) -> &ModelSchema {
        &self.schema
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn builder(&self) -> QueryBuilder<'_> {
        QueryBuilder::new(&self.schema, Dialect::Sqlite)
    }

    /// The object with primary key `pk`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Internal`].
    pub async fn fetch_one(&self, pk: &SqlValue) -> Result<Option<Object>, StoreError> {
        let stmt = self.builder().select_by_pk(pk)?;
        self.fetch_optional(&self.pool, stmt).await
    }

    /// The objects with the given keys, in the order of `pks`; missing keys
    /// are skipped and repeated keys returned once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Internal`].
    pub async fn fetch_many(&self, pks: &[SqlValue]) -> Result<Vec<Object>, StoreError> {
        let mut unique: Vec<SqlValue> = Vec::with_capacity(pks.len());
        for pk in pks {
            if !unique.contains(pk) {
                unique.push(pk.clone());
            }
        }
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let stmt = self.builder().select_by_pks(&unique)?;
        let mut rows: Vec<Option<Object>> = self.fetch_all(&self.pool, stmt).await?.into_iter().map(Some).collect();
        let pk_name = self.schema.primary_key().name();
        let mut ordered = Vec::with_capacity(rows.len());
        for pk in &unique {
            let wanted = pk.to_json();
            let found = rows
                .iter_mut()
                .find(|row| row.as_ref().and_then(|r| r.get(pk_name)) == Some(&wanted));
            if let Some(row) = found.and_then(Option::take) {
                ordered.push(row);
            }
        }
        Ok(ordered)
    }

    /// One page of rows matching `criteria`, with the total count, read in
    /// one transaction so that both agree.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Internal`] (also for
    /// criteria naming undeclared fields).
    pub async fn search(&self, criteria: &Criteria, page: PageParams) -> Result<SearchPage, StoreError> {
        let builder = self.builder();
        let count_stmt = builder.count(criteria)?;
        let page_stmt = builder.search_page(criteria, page.limit, page.offset())?;

        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        let count_row = bind_params(sqlx::query(&count_stmt.sql), count_stmt.params)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.failed(&count_stmt.sql, e))?;
        let count = count_row
            .try_get::<i64, _>(0)
            .map_err(|e| self.failed(&count_stmt.sql, e))?;
        let count = u64::try_from(count).unwrap_or(0);
        let rows = if count > page.offset() {
            self.fetch_all(&mut *tx, page_stmt).await?
        } else {
            Vec::new()
        };
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(SearchPage { count, rows })
    }

    /// Every row matching `criteria`, in order.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooManyRows`] when more than `max` rows match;
    /// otherwise as [`search`](Self::search).
    pub async fn list(&self, criteria: &Criteria, max: usize) -> Result<Vec<Object>, StoreError> {
        let stmt = self.builder().list(criteria, max)?;
        let rows = self.fetch_all(&self.pool, stmt).await?;
        if rows.len() > max {
            return Err(StoreError::TooManyRows { max });
        }
        Ok(rows)
    }

    /// Inserts a row and returns it as stored (with its key and any column
    /// defaults).
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] for a duplicate unique value,
    /// [`StoreError::Constraint`] for other constraint failures, else
    /// [`StoreError::Unavailable`] or [`StoreError::Internal`].
    pub async fn insert(&self, values: &WriteValues) -> Result<Object, StoreError> {
        let stmt = self.builder().insert(values)?;
        self.fetch_optional(&self.pool, stmt)
            .await?
            .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))
    }

    /// Changes the given fields of the row with key `pk` and returns the row
    /// as stored, or `None` when there is no such row. Empty `values` change
    /// nothing and return the current row.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    pub async fn update(&self, pk: &SqlValue, values: &WriteValues) -> Result<Option<Object>, StoreError> {
        if values.is_empty() {
            return self.fetch_one(pk).await;
        }
        let stmt = self.builder().update(pk, values)?;
        self.fetch_optional(&self.pool, stmt).await
    }

    /// Deletes the row with key `pk` and returns it as it was (read by the
    /// same statement), or `None` when there is no such row.
    ///
    /// # Errors
    ///
    /// [`StoreError::Constraint`] when a foreign key still points at the row,
    /// else [`StoreError::Unavailable`] or [`StoreError::Internal`].
    pub async fn delete(&self, pk: &SqlValue) -> Result<Option<Object>, StoreError> {
        let stmt = self.builder().delete(pk)?;
        self.fetch_optional(&self.pool, stmt).await
    }

    async fn fetch_all<'e, E>(&self, executor: E, stmt: Statement) -> Result<Vec<Object>, StoreError>
    where
        E: Executor<'e, Database = Sqlite>,
    {
        let rows = bind_params(sqlx::query(&stmt.sql), stmt.params)
            .fetch_all(executor)
            .await
            .map_err(|e| self.failed(&stmt.sql, e))?;
        rows.iter()
            .map(|row| decode_row(&self.schema, row).map_err(|e| self.failed(&stmt.sql, e)))
            .collect()
    }

    async fn fetch_optional<'e, E>(&self, executor: E, stmt: Statement) -> Result<Option<Object>, StoreError>
    where
        E: Executor<'e, Database = Sqlite>,
    {
        let row = bind_params(sqlx::query(&stmt.sql), stmt.params)
            .fetch_optional(executor)
            .await
            .map_err(|e| self.failed(&stmt.sql, e))?;
        row.map(|row| decode_row(&self.schema, &row).map_err(|e| self.failed(&stmt.sql, e)))
            .transpose()
    }

    /// Logs a failed statement (its text holds no client data) and sorts the
    /// error.
    fn failed(&self, sql: &str, err: sqlx::Error) -> StoreError {
        tracing::debug!(table = self.schema.table(), sql, error = %err, "statement failed");
        self.error(err)
    }

    fn error(&self, err: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(&self.schema, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use crate::input::{PageLimits, WriteMode, parse_page_params, parse_write};
    use crate::order::OrderTerm;
    use crate::test_support::users;
    use crate::timestamp::canonical_timestamp;
    use serde_json::json;
    use sqlx::sqlite::SqlitePoolOptions;

    const CREATE: &str = r#"
        CREATE TABLE auth_user (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            email TEXT,
            is_staff BOOLEAN NOT NULL DEFAULT 0,
            karma REAL CHECK (karma IS NULL OR karma >= 0),
            date_joined TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            password_hash TEXT NOT NULL DEFAULT ''
        )"#;

    async fn pool() -> SqlitePool {
        match SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
        {
            Ok(pool) => pool,
            Err(e) => panic!("cannot open sqlite::memory: {e}"),
        }
    }

    async fn exec(pool: &SqlitePool, sql: &str) {
        if let Err(e) = sqlx::query(sql).execute(pool).await {
            panic!("{sql}: {e}");
        }
    }

    /// 30 users `user01`..`user30` (ids 1..=30, karma = id % 3, user07
    /// staff), plus 3 users whose names hold LIKE metacharacters.
    async fn store() -> SqliteStore {
        let pool = pool().await;
        exec(&pool, CREATE).await;
        for id in 1..=30 {
            let staff = i32::from(id == 7);
            exec(
                &pool,
                &format!(
                    "INSERT INTO auth_user (id, username, email, is_staff, karma, date_joined) \
                     VALUES ({id}, 'user{id:02}', 'user{id}@example.com', {staff}, {}, \
                     '2024-01-{:02}T00:00:00.000Z')",
                    id % 3,
                    id % 28 + 1
                ),
            )
            .await;
        }
        for (id, name) in [(101, "100%_sure"), (102, "100x_sure"), (103, "100%xsure")] {
            exec(
                &pool,
                &format!("INSERT INTO auth_user (id, username) VALUES ({id}, '{name}')"),
            )
            .await;
        }
        SqliteStore::new(pool, users())
    }

    fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }

    fn names(rows: &[Object]) -> Vec<&str> {
        rows.iter()
            .map(|r| r.get("username").and_then(Value::as_str).unwrap_or("?"))
            .collect()
    }

    fn page(page: u64, limit: u32) -> PageParams {
        ok(parse_page_params(&json!(page), &json!(limit), PageLimits::default()))
    }

    fn only_users() -> Criteria {
        Criteria {
            query: Some("user".into()),
            ..Criteria::default()
        }
    }

    #[tokio::test]
    async fn fetch_one_decodes_every_type() {
        let store = store().await;
        let row = ok(store.fetch_one(&SqlValue::Int(7)).await);
        let row = row.expect("user 7 exists");
        assert_eq!(
            Value::Object(row),
            json!({
                "id": 7,
                "username": "user07",
                "email": "user7@example.com",
                "is_staff": true,
                "karma": 1.0,
                "date_joined": "2024-01-08T00:00:00.000Z",
            })
        );
        let nulls = ok(store.fetch_one(&SqlValue::Int(101)).await).expect("exists");
        assert_eq!(nulls["email"], Value::Null);
        assert_eq!(nulls["karma"], Value::Null);
        assert_eq!(nulls["is_staff"], json!(false));
        assert!(!nulls.contains_key("password_hash"));
        assert_eq!(ok(store.fetch_one(&SqlValue::Int(999)).await), None);
    }

    #[tokio::test]
    async fn fetch_many_keeps_request_order() {
        let store = store().await;
        let rows = ok(store
            .fetch_many(&[SqlValue::Int(3), SqlValue::Int(999), SqlValue::Int(1), SqlValue::Int(3)])
            .await);
        assert_eq!(names(&rows), ["user03", "user01"]);
        assert!(ok(store.fetch_many(&[]).await).is_empty());
    }

    #[tokio::test]
    async fn search_pages_and_counts() {
        let store = store().await;
        let criteria = only_users();
        let first = ok(store.search(&criteria, page(1, 10)).await);
        assert_eq!(first.count, 30);
        assert_eq!(first.rows.len(), 10);
        assert_eq!(names(&first.rows)[0], "user01");
        let second = ok(store.search(&criteria, page(2, 10)).await);
        assert_eq!(names(&second.rows)[0], "user11");
        assert_eq!(second.count, 30);
        let last = ok(store.search(&criteria, page(3, 10)).await);
        assert_eq!(names(&last.rows).last(), Some(&"user30"));
        let past = ok(store.search(&criteria, page(4, 10)).await);
        assert_eq!(past.count, 30);
        assert!(past.rows.is_empty());
        let everyone = ok(store.search(&Criteria::default(), page(1, 100)).await);
        assert_eq!(everyone.count, 33);
        assert_eq!(everyone.rows.len(), 33);
    }

    #[tokio::test]
    async fn search_orders_with_pk_tie_break() {
        let store = store().await;
        let desc = Criteria {
            order: vec![OrderTerm::desc("username")],
            ..only_users()
        };
        let rows = ok(store.search(&desc, page(1, 3)).await).rows;
        assert_eq!(names(&rows), ["user30", "user29", "user28"]);

        // karma has many ties; the key breaks them, so pages never overlap.
        let by_karma = Criteria {
            order: vec![OrderTerm::desc("karma")],
            ..only_users()
        };
        let mut seen = Vec::new();
        for p in 1..=3 {
            let rows = ok(store.search(&by_karma, page(p, 10)).await).rows;
            seen.extend(rows.iter().map(|r| r["id"].as_i64().unwrap_or(-1)));
        }
        let mut expected: Vec<i64> = (1..=30).collect();
        expected.sort_by_key(|id| (std::cmp::Reverse(id % 3), *id));
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn search_filters() {
        let store = store().await;
        let staff = Criteria {
            filters: vec![Filter::eq("is_staff", true)],
            ..Criteria::default()
        };
        let r = ok(store.search(&staff, page(1, 25)).await);
        assert_eq!((r.count, names(&r.rows)), (1, vec!["user07"]));

        let some = Criteria {
            filters: vec![Filter::any_of(
                "id",
                vec![SqlValue::Int(2), SqlValue::Int(5), SqlValue::Int(999)],
            )],
            ..Criteria::default()
        };
        let r = ok(store.search(&some, page(1, 25)).await);
        assert_eq!((r.count, names(&r.rows)), (2, vec!["user02", "user05"]));

        let no_karma = Criteria {
            filters: vec![Filter::eq("karma", SqlValue::Null)],
            ..Criteria::default()
        };
        assert_eq!(ok(store.search(&no_karma, page(1, 25)).await).count, 3);

        let joined = Criteria {
            filters: vec![Filter::eq("date_joined", "2024-01-02T00:00:00.000Z")],
            ..Criteria::default()
        };
        // ids 1 and 29 (id % 28 + 1 == 2).
        assert_eq!(ok(store.search(&joined, page(1, 25)).await).count, 2);
    }

    #[tokio::test]
    async fn search_text_is_literal_and_case_insensitive() {
        let store = store().await;
        let find = |q: &str| Criteria {
            query: Some(q.to_owned()),
            ..Criteria::default()
        };
        let r = ok(store.search(&find("0%_"), page(1, 25)).await);
        assert_eq!(names(&r.rows), ["100%_sure"]);
        let r = ok(store.search(&find("%"), page(1, 25)).await);
        assert_eq!(names(&r.rows), ["100%_sure", "100%xsure"]);
        let r = ok(store.search(&find("_"), page(1, 25)).await);
        assert_eq!(names(&r.rows), ["100%_sure", "100x_sure"]);
        let r = ok(store.search(&find(r"\"), page(1, 25)).await);
        assert_eq!(r.count, 0);
        let r = ok(store.search(&find("USER2"), page(1, 25)).await);
        assert_eq!(r.count, 11); // user02, user20..user29
        let r = ok(store.search(&find("@EXAMPLE.com"), page(1, 25)).await);
        assert_eq!(r.count, 30);
        let r = ok(store.search(&find("'; DROP TABLE auth_user; --"), page(1, 25)).await);
        assert_eq!(r.count, 0);
        assert_eq!(ok(store.search(&Criteria::default(), page(1, 1)).await).count, 33);
    }

    #[tokio::test]
    async fn list_detects_too_many_rows() {
        let store = store().await;
        let rows = ok(store.list(&only_users(), 30).await);
        assert_eq!(rows.len(), 30);
        assert!(matches!(
            store.list(&only_users(), 29).await,
            Err(StoreError::TooManyRows { max: 29 })
        ));
        let staff = Criteria {
            filters: vec![Filter::eq("is_staff", true)],
            ..Criteria::default()
        };
        assert_eq!(names(&ok(store.list(&staff, 1).await)), ["user07"]);
    }

    #[tokio::test]
    async fn insert_update_delete() {
        let store = store().await;
        let schema = users();
        let values = ok(parse_write(
            &schema,
            match &json!({"username": "new", "email": "n@x.io", "karma": 2}) {
                Value::Object(m) => m,
                _ => unreachable!(),
            },
            WriteMode::Create,
        ));
        let created = ok(store.insert(&values).await);
        assert_eq!(created["id"], json!(104));
        assert_eq!(created["username"], json!("new"));
        assert_eq!(created["karma"], json!(2.0));
        assert_eq!(created["is_staff"], json!(false));
        let joined = created["date_joined"].as_str().unwrap_or_default();
        assert_eq!(canonical_timestamp(joined).as_deref(), Some(joined));

        let changed = ok(store
            .update(&SqlValue::Int(104), &WriteValues::new().with("email", SqlValue::Null))
            .await)
        .expect("exists");
        assert_eq!(changed["email"], Value::Null);
        assert_eq!(changed["username"], json!("new"));
        assert_eq!(ok(store.fetch_one(&SqlValue::Int(104)).await), Some(changed.clone()));

        let unchanged = ok(store.update(&SqlValue::Int(104), &WriteValues::new()).await);
        assert_eq!(unchanged, Some(changed.clone()));
        assert_eq!(
            ok(store
                .update(&SqlValue::Int(999), &WriteValues::new().with("email", "x"))
                .await),
            None
        );
        assert_eq!(ok(store.update(&SqlValue::Int(999), &WriteValues::new()).await), None);

        let deleted = ok(store.delete(&SqlValue::Int(104)).await);
        assert_eq!(deleted, Some(changed));
        assert_eq!(ok(store.fetch_one(&SqlValue::Int(104)).await), None);
        assert_eq!(ok(store.delete(&SqlValue::Int(104)).await), None);
    }

    #[tokio::test]
    async fn unique_violations_are_conflicts() {
        let store = store().await;
        let dup = WriteValues::new().with("username", "user01");
        assert!(matches!(
            store.insert(&dup).await,
            Err(StoreError::Conflict { field: Some(f) }) if f == "username"
        ));
        assert!(matches!(
            store.update(&SqlValue::Int(2), &dup).await,
            Err(StoreError::Conflict { field: Some(f) }) if f == "username"
        ));
        // Server-set primary keys conflict too.
        let pk = WriteValues::new().with("id", 1_i64).with("username", "fresh");
        assert!(matches!(
            store.insert(&pk).await,
            Err(StoreError::Conflict { field: Some(f) }) if f == "id"
        ));
        // Nothing was written.
        assert_eq!(ok(store.search(&Criteria::default(), page(1, 1)).await).count, 33);
    }

    #[tokio::test]
    async fn other_constraints_are_constraint_errors() {
        let store = store().await;
        let negative = WriteValues::new().with("username", "neg").with("karma", -1.0);
        assert!(matches!(
            store.insert(&negative).await,
            Err(StoreError::Constraint { field: None })
        ));
        // username is NOT NULL in the table.
        assert!(matches!(
            store.insert(&WriteValues::new()).await,
            Err(StoreError::Constraint { field: Some(f) }) if f == "username"
        ));
    }

    #[tokio::test]
    async fn mismatched_storage_is_internal_and_not_shown() {
        let pool = pool().await;
        exec(&pool, "CREATE TABLE t (id INTEGER PRIMARY KEY, n, f)").await;
        exec(&pool, "INSERT INTO t VALUES (1, 'not a number', 3)").await;
        let schema = ModelSchema::builder("t")
            .field(crate::Field::integer("id").read())
            .field(crate::Field::integer("n").read())
            .field(crate::Field::float("f").read())
            .build();
        let store = SqliteStore::new(pool, ok(schema));
        let err = store.fetch_one(&SqlValue::Int(1)).await;
        let Err(err @ StoreError::Internal(_)) = err else {
            panic!("expected Internal, got {err:?}")
        };
        assert_eq!(err.to_string(), "internal database error");
        assert!(std::error::Error::source(&err).is_some());

        // An integer in a column without REAL affinity still reads as a float.
        exec(store.pool(), "UPDATE t SET n = 5").await;
        let row = ok(store.fetch_one(&SqlValue::Int(1)).await).expect("exists");
        assert_eq!(Value::Object(row), json!({"id": 1, "n": 5, "f": 3.0}));
    }

    #[tokio::test]
    async fn missing_table_is_internal() {
        let store = SqliteStore::new(pool().await, users());
        assert!(matches!(
            store.fetch_one(&SqlValue::Int(1)).await,
            Err(StoreError::Internal(_))
        ));
    }

    #[tokio::test]
    async fn closed_pool_is_unavailable() {
        let store = store().await;
        store.pool().close().await;
        let err = store.fetch_one(&SqlValue::Int(1)).await;
        assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
        let err = store.search(&Criteria::default(), page(1, 1)).await;
        assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    }

    #[tokio::test]
    async fn builder_errors_are_internal() {
        let store = store().await;
        let bad = Criteria {
            filters: vec![Filter::eq("password_hash", "")],
            ..Criteria::default()
        };
        assert!(matches!(
            store.search(&bad, page(1, 1)).await,
            Err(StoreError::Internal(_))
        ));
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
