//! The store of one model: the same statements, checks and error sorting on
//! every [`Backend`].

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use sqlx::Pool;

use crate::input::PageParams;
use crate::query::{Criteria, QueryBuilder, Statement};
use crate::schema::ModelSchema;
use crate::value::SqlValue;
use crate::write_values::WriteValues;

use super::backend::Backend;
use super::caller;
use super::error::StoreError;

/// A JSON object holding the readable fields of one row.
pub type Object = Map<String, Value>;

/// The transaction-local setting a tagged write sets, which capture
/// triggers copy into the change they announce as its `origin`.
#[cfg(feature = "postgres")]
pub(crate) const ORIGIN_SETTING: &str = "channels_binding.origin";

/// One page of a search and the number of matching rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// All rows matching the criteria, on every page.
    pub count: u64,
    /// The rows of the requested page (empty past the end).
    pub rows: Vec<Object>,
}

/// The rows of one model in a database: [`SqliteStore`](crate::SqliteStore)
/// or [`PgStore`](crate::PgStore).
///
/// Both answer with the same JSON for the same rows (timestamps in the
/// canonical form of [`canonical_timestamp`](crate::canonical_timestamp)) and
/// sort errors into the same [`StoreError`]s.
///
/// Cheap to clone: the pool and schema are shared.
pub struct SqlStore<DB: Backend> {
    pool: Pool<DB>,
    schema: Arc<ModelSchema>,
}

impl<DB: Backend> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            schema: self.schema.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &DB::DIALECT)
            .field("table", &self.schema.table())
            .field("pool", &self.pool)
            .finish()
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// A store of `schema`'s table in `pool`.
    #[must_use]
    pub fn new(pool: Pool<DB>, schema: impl Into<Arc<ModelSchema>>) -> Self {
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
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    fn builder(&self) -> QueryBuilder<'_> {
        QueryBuilder::new(&self.schema, DB::DIALECT)
    }

    /// The object with primary key `pk`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Internal`].
    pub async fn fetch_one(&self, pk: &SqlValue) -> Result<Option<Object>, StoreError> {
        let stmt = self.builder().select_by_pk(pk)?;
        self.fetch_optional(stmt).await
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
        let mut rows: Vec<Option<Object>> = self.fetch_all(stmt).await?.into_iter().map(Some).collect();
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
    /// one transaction so that both agree (on PostgreSQL a `REPEATABLE READ
    /// READ ONLY` one: under the default `READ COMMITTED` each statement
    /// would see its own snapshot).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Internal`] (also for
    /// criteria naming undeclared fields).
    pub async fn search(&self, criteria: &Criteria, page: PageParams) -> Result<SearchPage, StoreError> {
        let builder = self.builder();
        let (count_sql, count_params) = builder.count(criteria)?.into_parts();
        let (page_sql, page_params) = builder.search_page(criteria, page.limit, page.offset())?.into_parts();

        let begin = async {
            match DB::BEGIN_READ {
                Some(begin) => self.pool.begin_with(begin).await,
                None => self.pool.begin().await,
            }
        };
        let mut tx = caller::acquire(begin, |e| self.error(e)).await?;
        let count = DB::fetch_count(&mut tx, &count_sql, count_params)
            .await
            .map_err(|e| self.failed(&count_sql, e))?;
        let count = u64::try_from(count).unwrap_or(0);
        let rows = if count > page.offset() {
            DB::fetch_all(&mut tx, &self.schema, &page_sql, page_params)
                .await
                .map_err(|e| self.failed(&page_sql, e))?
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
        let rows = self.fetch_all(stmt).await?;
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
        self.fetch_optional(stmt)
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
        self.fetch_optional(stmt).await
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
        self.fetch_optional(stmt).await
    }

    async fn fetch_all(&self, stmt: Statement) -> Result<Vec<Object>, StoreError> {
        let (sql, params) = stmt.into_parts();
        let mut conn = caller::acquire(self.pool.acquire(), |e| self.error(e)).await?;
        DB::fetch_all(&mut conn, &self.schema, &sql, params)
            .await
            .map_err(|e| self.failed(&sql, e))
    }

    async fn fetch_optional(&self, stmt: Statement) -> Result<Option<Object>, StoreError> {
        let (sql, params) = stmt.into_parts();
        let mut conn = caller::acquire(self.pool.acquire(), |e| self.error(e)).await?;
        DB::fetch_optional(&mut conn, &self.schema, &sql, params)
            .await
            .map_err(|e| self.failed(&sql, e))
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

/// Tagged writes: the same writes, telling a capture trigger
/// ([`install_capture`](crate::install_capture)) which request made them.
#[cfg(feature = "postgres")]
impl SqlStore<sqlx::Postgres> {
    /// [`insert`](Self::insert), announced by a capture trigger with
    /// `origin` (JSON text, such as `{"node":"n1","connection":3,"request":9}`)
    /// as the change's origin. With `Some(origin)` the write runs in a
    /// transaction that first sets `channels_binding.origin` for that
    /// transaction only; with `None` it is exactly `insert`.
    ///
    /// ```no_run
    /// use channels_binding_sqlx::{Field, ModelSchema, PgStore, WriteValues};
    ///
    /// # async fn doc(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let schema = ModelSchema::builder("notes")
    ///     .field(Field::integer("id").read())
    ///     .field(Field::text("title").read().write())
    ///     .build()?;
    /// let store = PgStore::new(pool, schema);
    /// let origin = r#"{"node":"n1","connection":3,"request":9}"#;
    /// let row = store.insert_tagged(&WriteValues::new().with("title", "hi"), Some(origin)).await?;
    /// # drop(row); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    pub async fn insert_tagged(&self, values: &WriteValues, origin: Option<&str>) -> Result<Object, StoreError> {
        let Some(origin) = origin else {
            return self.insert(values).await;
        };
        let stmt = self.builder().insert(values)?;
        self.fetch_optional_tagged(stmt, origin)
            .await?
            .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))
    }

    /// [`update`](Self::update), tagged with `origin` as in
    /// [`insert_tagged`](Self::insert_tagged). Empty `values` write nothing
    /// (and announce nothing).
    ///
    /// ```no_run
    /// use channels_binding_sqlx::{PgStore, SqlValue, WriteValues};
    ///
    /// # async fn doc(store: PgStore) -> Result<(), channels_binding_sqlx::StoreError> {
    /// let origin = r#"{"node":"n1","connection":3,"request":10}"#;
    /// let row = store.update_tagged(&SqlValue::Int(1), &WriteValues::new().with("title", "x"), Some(origin)).await?;
    /// # drop(row); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update).
    pub async fn update_tagged(
        &self,
        pk: &SqlValue,
        values: &WriteValues,
        origin: Option<&str>,
    ) -> Result<Option<Object>, StoreError> {
        let Some(origin) = origin.filter(|_| !values.is_empty()) else {
            return self.update(pk, values).await;
        };
        let stmt = self.builder().update(pk, values)?;
        self.fetch_optional_tagged(stmt, origin).await
    }

    /// [`delete`](Self::delete), tagged with `origin` as in
    /// [`insert_tagged`](Self::insert_tagged).
    ///
    /// ```no_run
    /// use channels_binding_sqlx::{PgStore, SqlValue};
    ///
    /// # async fn doc(store: PgStore) -> Result<(), channels_binding_sqlx::StoreError> {
    /// let origin = r#"{"node":"n1","connection":3,"request":11}"#;
    /// let row = store.delete_tagged(&SqlValue::Int(1), Some(origin)).await?;
    /// # drop(row); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`delete`](Self::delete).
    pub async fn delete_tagged(&self, pk: &SqlValue, origin: Option<&str>) -> Result<Option<Object>, StoreError> {
        let Some(origin) = origin else {
            return self.delete(pk).await;
        };
        let stmt = self.builder().delete(pk)?;
        self.fetch_optional_tagged(stmt, origin).await
    }

    /// Runs `stmt` in a transaction that first sets [`ORIGIN_SETTING`] to
    /// `origin` for that transaction.
    async fn fetch_optional_tagged(&self, stmt: Statement, origin: &str) -> Result<Option<Object>, StoreError> {
        let (sql, params) = stmt.into_parts();
        let mut tx = caller::acquire(self.pool.begin(), |e| self.error(e)).await?;
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(ORIGIN_SETTING)
            .bind(origin)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        let row = <sqlx::Postgres as Backend>::fetch_optional(&mut tx, &self.schema, &sql, params)
            .await
            .map_err(|e| self.failed(&sql, e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use crate::input::{PageLimits, WriteMode, parse_page_params, parse_write};
    use crate::order::OrderTerm;
    use crate::store::Store;
    use crate::test_support::{Backend, TestDb, each_backend, users};
    use crate::timestamp::canonical_timestamp;
    use serde_json::json;

    const SQLITE_TABLE: &str = r#"
        CREATE TABLE auth_user (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            email TEXT,
            is_staff BOOLEAN NOT NULL DEFAULT 0,
            karma REAL CHECK (karma IS NULL OR karma >= 0),
            date_joined TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            password_hash TEXT NOT NULL DEFAULT ''
        )"#;

    /// The same table; the key is not `ALWAYS` generated, so that the
    /// fixture (and the conflict test) can insert explicit keys.
    const POSTGRES_TABLE: &str = r#"
        CREATE TABLE auth_user (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            username VARCHAR(150) NOT NULL UNIQUE,
            email TEXT,
            is_staff BOOLEAN NOT NULL DEFAULT false,
            karma DOUBLE PRECISION CHECK (karma IS NULL OR karma >= 0),
            date_joined TIMESTAMPTZ NOT NULL DEFAULT now(),
            password_hash TEXT NOT NULL DEFAULT ''
        )"#;

    /// 30 users `user01`..`user30` (ids 1..=30, karma = id % 3, user07
    /// staff), plus 3 users whose names hold LIKE metacharacters.
    async fn store(db: &TestDb) -> Store {
        db.exec(db.pick(SQLITE_TABLE, POSTGRES_TABLE)).await;
        let mut seed = String::new();
        for id in 1..=30 {
            let staff = db.pick(if id == 7 { "1" } else { "0" }, if id == 7 { "true" } else { "false" });
            seed.push_str(&format!(
                "INSERT INTO auth_user (id, username, email, is_staff, karma, date_joined) \
                 VALUES ({id}, 'user{id:02}', 'user{id}@example.com', {staff}, {}, \
                 '2024-01-{:02}T00:00:00.000Z');\n",
                id % 3,
                id % 28 + 1
            ));
        }
        for (id, name) in [(101, "100%_sure"), (102, "100x_sure"), (103, "100%xsure")] {
            seed.push_str(&format!(
                "INSERT INTO auth_user (id, username) VALUES ({id}, '{name}');\n"
            ));
        }
        // A sequence does not see explicit keys; SQLite takes the largest.
        seed.push_str(db.pick("", "SELECT setval(pg_get_serial_sequence('auth_user', 'id'), 103);"));
        db.exec(&seed).await;
        Store::new(db.database(), Arc::new(users()))
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

    each_backend!(
        #[tokio::test]
        fetch_one_decodes_every_type
    );
    async fn fetch_one_decodes_every_type(db: &TestDb) {
        let store = store(db).await;
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

    each_backend!(
        #[tokio::test]
        fetch_many_keeps_request_order
    );
    async fn fetch_many_keeps_request_order(db: &TestDb) {
        let store = store(db).await;
        let rows = ok(store
            .fetch_many(&[SqlValue::Int(3), SqlValue::Int(999), SqlValue::Int(1), SqlValue::Int(3)])
            .await);
        assert_eq!(names(&rows), ["user03", "user01"]);
        assert!(ok(store.fetch_many(&[]).await).is_empty());
    }

    each_backend!(
        #[tokio::test]
        search_pages_and_counts
    );
    async fn search_pages_and_counts(db: &TestDb) {
        let store = store(db).await;
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

    each_backend!(
        #[tokio::test]
        search_orders_with_pk_tie_break
    );
    async fn search_orders_with_pk_tie_break(db: &TestDb) {
        let store = store(db).await;
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

    each_backend!(
        #[tokio::test]
        nulls_sort_first_ascending_and_last_descending
    );
    async fn nulls_sort_first_ascending_and_last_descending(db: &TestDb) {
        let store = store(db).await;
        let ids = |rows: Vec<Object>| -> Vec<i64> { rows.iter().map(|r| r["id"].as_i64().unwrap_or(-1)).collect() };
        let karma = |order| Criteria {
            order: vec![order],
            ..Criteria::default()
        };
        let up = ok(store.list(&karma(OrderTerm::asc("karma")), 100).await);
        assert_eq!(ids(up)[..4], [101, 102, 103, 3], "NULL karma first, then 0");
        let down = ok(store.list(&karma(OrderTerm::desc("karma")), 100).await);
        assert_eq!(ids(down)[29..], [30, 101, 102, 103], "0 then NULL karma last");
    }

    each_backend!(
        #[tokio::test]
        search_filters
    );
    async fn search_filters(db: &TestDb) {
        let store = store(db).await;
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
        let karma = Criteria {
            filters: vec![Filter::eq("karma", 2)],
            ..Criteria::default()
        };
        assert_eq!(
            ok(store.search(&karma, page(1, 25)).await).count,
            10,
            "an integer filters a float"
        );

        let joined = Criteria {
            filters: vec![Filter::eq("date_joined", "2024-01-02T00:00:00.000Z")],
            ..Criteria::default()
        };
        // ids 1 and 29 (id % 28 + 1 == 2).
        assert_eq!(ok(store.search(&joined, page(1, 25)).await).count, 2);
    }

    each_backend!(
        #[tokio::test]
        search_text_is_literal_and_case_insensitive
    );
    async fn search_text_is_literal_and_case_insensitive(db: &TestDb) {
        let store = store(db).await;
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

    each_backend!(
        #[tokio::test]
        search_folds_case_of_ascii_everywhere_and_of_other_letters_on_postgres
    );
    async fn search_folds_case_of_ascii_everywhere_and_of_other_letters_on_postgres(db: &TestDb) {
        let store = store(db).await;
        ok(store
            .insert(&WriteValues::new().with("username", "ÉLODIE_Ünal"), None)
            .await);
        let count = |q: &str| {
            let criteria = Criteria {
                query: Some(q.to_owned()),
                ..Criteria::default()
            };
            let store = store.clone();
            async move { ok(store.search(&criteria, page(1, 25)).await).count }
        };
        // ASCII letters fold, and the escaped `_` is literal, on both.
        assert_eq!(count("lodie_").await, 1);
        assert_eq!(count("LODIE_ÜNAL").await, 1);
        assert_eq!(count("lodiex").await, 0);
        // Other letters fold only where the database knows them:
        // SQLite's lower() is ASCII-only, PostgreSQL's ILIKE follows the
        // database's LC_CTYPE (C.UTF-8 and the like fold É and Ü; plain
        // C does not).
        let folded = match db.backend() {
            Backend::Sqlite => 0,
            Backend::Postgres => {
                db.scalar("SELECT CAST('ÉLODIE_Ünal' ILIKE '%élodie_ünal%' AS INTEGER)")
                    .await
            }
        };
        assert_eq!(count("élodie_ünal").await, u64::try_from(folded).unwrap_or(u64::MAX));
        assert_eq!(count("ÉLODIE_Ünal").await, 1, "the exact text matches everywhere");
    }

    each_backend!(
        #[tokio::test]
        list_detects_too_many_rows
    );
    async fn list_detects_too_many_rows(db: &TestDb) {
        let store = store(db).await;
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

    each_backend!(
        #[tokio::test]
        insert_update_delete
    );
    async fn insert_update_delete(db: &TestDb) {
        let store = store(db).await;
        let schema = users();
        let values = ok(parse_write(
            &schema,
            match &json!({"username": "new", "email": "n@x.io", "karma": 2}) {
                Value::Object(m) => m,
                _ => unreachable!(),
            },
            WriteMode::Create,
        ));
        let created = ok(store.insert(&values, None).await);
        assert_eq!(created["id"], json!(104));
        assert_eq!(created["username"], json!("new"));
        assert_eq!(created["karma"], json!(2.0));
        assert_eq!(created["is_staff"], json!(false));
        let joined = created["date_joined"].as_str().unwrap_or_default();
        assert_eq!(canonical_timestamp(joined).as_deref(), Some(joined));

        let changed = ok(store
            .update(
                &SqlValue::Int(104),
                &WriteValues::new()
                    .with("email", SqlValue::Null)
                    .with("date_joined", "2024-02-29T23:30:00.123Z"),
                None,
            )
            .await)
        .expect("exists");
        assert_eq!(changed["email"], Value::Null);
        assert_eq!(changed["username"], json!("new"));
        assert_eq!(changed["date_joined"], json!("2024-02-29T23:30:00.123Z"));
        assert_eq!(ok(store.fetch_one(&SqlValue::Int(104)).await), Some(changed.clone()));

        let unchanged = ok(store.update(&SqlValue::Int(104), &WriteValues::new(), None).await);
        assert_eq!(unchanged, Some(changed.clone()));
        assert_eq!(
            ok(store
                .update(&SqlValue::Int(999), &WriteValues::new().with("email", "x"), None)
                .await),
            None
        );
        assert_eq!(
            ok(store.update(&SqlValue::Int(999), &WriteValues::new(), None).await),
            None
        );

        let deleted = ok(store.delete(&SqlValue::Int(104), None).await);
        assert_eq!(deleted, Some(changed));
        assert_eq!(ok(store.fetch_one(&SqlValue::Int(104)).await), None);
        assert_eq!(ok(store.delete(&SqlValue::Int(104), None).await), None);
    }

    each_backend!(
        #[tokio::test]
        tagged_writes_behave_like_plain_ones
    );
    async fn tagged_writes_behave_like_plain_ones(db: &TestDb) {
        let store = store(db).await;
        let origin = Some(r#"{"node":"n1","connection":1,"request":2}"#);
        let created = ok(store
            .insert(&WriteValues::new().with("username", "tagged"), origin)
            .await);
        assert_eq!(created["id"], json!(104));
        let changed = ok(store
            .update(&SqlValue::Int(104), &WriteValues::new().with("email", "t@x.io"), origin)
            .await)
        .expect("exists");
        assert_eq!(changed["email"], json!("t@x.io"));
        assert_eq!(ok(store.fetch_one(&SqlValue::Int(104)).await), Some(changed.clone()));
        let unchanged = ok(store.update(&SqlValue::Int(104), &WriteValues::new(), origin).await);
        assert_eq!(unchanged, Some(changed.clone()));
        assert_eq!(ok(store.delete(&SqlValue::Int(104), origin).await), Some(changed));
        assert_eq!(ok(store.delete(&SqlValue::Int(104), None).await), None);
        assert!(matches!(
            store.insert(&WriteValues::new().with("username", "user01"), origin).await,
            Err(StoreError::Conflict { field: Some(f) }) if f == "username"
        ));
        let plain = ok(store.insert(&WriteValues::new().with("username", "plain"), None).await);
        assert_eq!(plain["username"], json!("plain"));
    }

    each_backend!(
        #[tokio::test]
        unique_violations_are_conflicts
    );
    async fn unique_violations_are_conflicts(db: &TestDb) {
        let store = store(db).await;
        let dup = WriteValues::new().with("username", "user01");
        assert!(matches!(
            store.insert(&dup, None).await,
            Err(StoreError::Conflict { field: Some(f) }) if f == "username"
        ));
        assert!(matches!(
            store.update(&SqlValue::Int(2), &dup, None).await,
            Err(StoreError::Conflict { field: Some(f) }) if f == "username"
        ));
        // Server-set primary keys conflict too.
        let pk = WriteValues::new().with("id", 1_i64).with("username", "fresh");
        assert!(matches!(
            store.insert(&pk, None).await,
            Err(StoreError::Conflict { field: Some(f) }) if f == "id"
        ));
        // Nothing was written.
        assert_eq!(ok(store.search(&Criteria::default(), page(1, 1)).await).count, 33);
    }

    each_backend!(
        #[tokio::test]
        other_constraints_are_constraint_errors
    );
    async fn other_constraints_are_constraint_errors(db: &TestDb) {
        let store = store(db).await;
        let negative = WriteValues::new().with("username", "neg").with("karma", -1.0);
        assert!(matches!(
            store.insert(&negative, None).await,
            Err(StoreError::Constraint { field: None })
        ));
        // username is NOT NULL in the table.
        assert!(matches!(
            store.insert(&WriteValues::new(), None).await,
            Err(StoreError::Constraint { field: Some(f) }) if f == "username"
        ));
    }

    each_backend!(
        #[tokio::test]
        missing_table_is_internal
    );
    async fn missing_table_is_internal(db: &TestDb) {
        let store = Store::new(db.database(), Arc::new(users()));
        assert!(matches!(
            store.fetch_one(&SqlValue::Int(1)).await,
            Err(StoreError::Internal(_))
        ));
    }

    each_backend!(
        #[tokio::test]
        closed_pool_is_unavailable
    );
    async fn closed_pool_is_unavailable(db: &TestDb) {
        let store = store(db).await;
        db.close().await;
        let err = store.fetch_one(&SqlValue::Int(1)).await;
        assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
        let err = store.search(&Criteria::default(), page(1, 1)).await;
        assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    }

    each_backend!(
        #[tokio::test]
        builder_errors_are_internal
    );
    async fn builder_errors_are_internal(db: &TestDb) {
        let store = store(db).await;
        let bad = Criteria {
            filters: vec![Filter::eq("password_hash", "")],
            ..Criteria::default()
        };
        assert!(matches!(
            store.search(&bad, page(1, 1)).await,
            Err(StoreError::Internal(_))
        ));
    }
}
