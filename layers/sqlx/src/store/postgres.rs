//! PostgreSQL: `$n` placeholders, typed parameters, searches in a
//! `REPEATABLE READ` snapshot, errors read from SQLSTATE codes and the
//! error's constraint, table and column fields.

use sqlx::Row as _;
use sqlx::postgres::{PgConnection, PgDatabaseError, Postgres};

use crate::dialect::Dialect;
use crate::row_pg::{bind_pg_params, decode_pg_row};
use crate::schema::ModelSchema;
use crate::value::SqlValue;

use super::backend::{Backend, sealed::Sealed};
use super::error::{Class, visible_field};
use super::sql_store::{Object, SqlStore};

/// The rows of one model in a PostgreSQL database.
pub type PgStore = SqlStore<Postgres>;

impl Sealed for Postgres {}

impl Backend for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    /// One snapshot for the count and the page. Read-only repeatable-read
    /// transactions never fail to serialize.
    const BEGIN_READ: Option<&'static str> = Some("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");

    async fn fetch_all<'c>(
        conn: &'c mut PgConnection,
        schema: &'c ModelSchema,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Object>, sqlx::Error> {
        let rows = bind_pg_params(sqlx::query(sql), params).fetch_all(conn).await?;
        rows.iter().map(|row| decode_pg_row(schema, row)).collect()
    }

    async fn fetch_optional<'c>(
        conn: &'c mut PgConnection,
        schema: &'c ModelSchema,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> Result<Option<Object>, sqlx::Error> {
        let row = bind_pg_params(sqlx::query(sql), params).fetch_optional(conn).await?;
        row.map(|row| decode_pg_row(schema, &row)).transpose()
    }

    async fn fetch_count<'c>(
        conn: &'c mut PgConnection,
        sql: &'c str,
        params: Vec<SqlValue>,
    ) -> Result<i64, sqlx::Error> {
        let row = bind_pg_params(sqlx::query(sql), params).fetch_one(conn).await?;
        row.try_get::<i64, _>(0)
    }
}

/// Sorts an error PostgreSQL reported, by SQLSTATE.
pub(super) fn classify(schema: &ModelSchema, err: &PgDatabaseError) -> Class {
    let code = err.code();
    let ours = err.table().is_none_or(|table| table == schema.table());
    match code {
        "23505" => Class::Conflict(ours.then(|| unique_field(schema, err)).flatten()),
        "23502" => Class::Constraint(
            err.column()
                .filter(|_| ours)
                .and_then(|column| visible_field(schema, column)),
        ),
        // Other integrity violations (check, foreign key, exclusion,
        // restrict) and data exceptions (a number or date out of range,
        // text too long for varchar(n)): the client's value, not a bug.
        _ if code.starts_with("23") || code.starts_with("22") => Class::Constraint(None),
        _ if is_transient_pg_code(code) => Class::Unavailable,
        _ => Class::Internal,
    }
}

/// Connection exceptions (`08`), insufficient resources (`53`), a server
/// shutting down or starting (`57P01`–`57P03`), a cancelled statement
/// (`57014`, such as `statement_timeout`), serialization failures and
/// deadlocks (`40001`, `40P01`), a lock not available (`55P03`), a read-only
/// standby (`25006`) and I/O errors (`58030`): retrying later may work.
fn is_transient_pg_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57014" | "40001" | "40P01" | "55P03" | "25006" | "58030"
        )
}

/// The first client-visible declared field of a unique violation: from the
/// detail `Key (a, b)=(...) already exists.`, else from the constraint's
/// default name (`<table>_pkey`, `<table>_<column>_key`,
/// `<table>_<column>_idx`). The detail is omitted when the role may not
/// read the key's columns, and worded otherwise under a translated
/// `lc_messages`; the values in it are never used.
fn unique_field(schema: &ModelSchema, err: &PgDatabaseError) -> Option<String> {
    err.detail()
        .and_then(|detail| key_columns(schema, detail))
        .or_else(|| err.constraint().and_then(|name| constraint_column(schema, name)))
}

fn key_columns(schema: &ModelSchema, detail: &str) -> Option<String> {
    let columns = detail.strip_prefix("Key (")?;
    let (columns, _) = columns.split_once(")=(")?;
    columns
        .split(", ")
        .find_map(|column| visible_field(schema, column.trim().trim_matches('"')))
}

fn constraint_column(schema: &ModelSchema, name: &str) -> Option<String> {
    let rest = name.strip_prefix(schema.table())?.strip_prefix('_')?;
    if rest == "pkey" {
        return visible_field(schema, schema.primary_key().name());
    }
    let column = rest.strip_suffix("_key").or_else(|| rest.strip_suffix("_idx"))?;
    visible_field(schema, column)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use sqlx::postgres::PgPoolOptions;

    use super::*;
    use crate::field::Field;
    use crate::row_pg::decode_pg_row;
    use crate::store::StoreError;
    use crate::test_support::{TestDb, users};
    use crate::write_values::WriteValues;

    fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }

    fn schema(build: crate::schema::ModelSchemaBuilder) -> ModelSchema {
        ok(build.build())
    }

    fn pool(db: &TestDb) -> sqlx::PgPool {
        db.pg_pool()
    }

    /// Every column type a declared type may read from.
    fn types() -> ModelSchema {
        schema(
            ModelSchema::builder("types")
                .field(Field::integer("id").read())
                .field(Field::integer("i2").read())
                .field(Field::integer("i4").read())
                .field(Field::float("r").read())
                .field(Field::float("d").read())
                .field(Field::float("n").read())
                .field(Field::float("f_from_int").read())
                .field(Field::text("vc").read())
                .field(Field::text("ch").read())
                .field(Field::boolean("b").read())
                .field(Field::timestamp("tz").read())
                .field(Field::timestamp("plain").read()),
        )
    }

    const TYPES: &str = "
        CREATE TABLE types (
            id BIGINT PRIMARY KEY, i2 SMALLINT, i4 INTEGER, r REAL, d DOUBLE PRECISION, n NUMERIC(20, 6),
            f_from_int INTEGER, vc VARCHAR(10), ch CHAR(3), b BOOLEAN, tz TIMESTAMPTZ, plain TIMESTAMP
        );
        INSERT INTO types VALUES
            (1, -32768, 2147483647, 0.1, 0.1, -1234.5678, 7, 'vc', 'ab', true,
             '2024-03-01T01:30:00.123456+02:00', '2024-02-29 23:30:00.123999'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);";

    fn expected_types() -> Value {
        json!({
            "id": 1, "i2": -32768, "i4": 2_147_483_647, "r": 0.1, "d": 0.1, "n": -1234.5678,
            "f_from_int": 7.0, "vc": "vc", "ch": "ab ", "b": true,
            "tz": "2024-02-29T23:30:00.123Z", "plain": "2024-02-29T23:30:00.123Z",
        })
    }

    #[tokio::test]
    async fn every_column_type_decodes_to_the_json_sqlite_gives() {
        let Some(db) = TestDb::postgres().await else { return };
        db.exec(TYPES).await;
        let store = PgStore::new(pool(&db), types());
        let row = ok(store.fetch_one(&SqlValue::Int(1)).await).expect("row 1");
        assert_eq!(Value::Object(row), expected_types());
        let nulls = ok(store.fetch_one(&SqlValue::Int(2)).await).expect("row 2");
        assert!(nulls.iter().all(|(k, v)| k == "id" || v.is_null()), "{nulls:?}");

        // Columns read directly (not through the builder's to_char), in
        // binary and, from a simple query, in text format.
        let select = "SELECT * FROM types WHERE id = 1";
        let binary = ok(sqlx::query(select).fetch_one(&pool(&db)).await);
        assert_eq!(Value::Object(ok(decode_pg_row(&types(), &binary))), expected_types());
        let text = ok(sqlx::raw_sql(select).fetch_one(&pool(&db)).await);
        assert_eq!(Value::Object(ok(decode_pg_row(&types(), &text))), expected_types());
        db.finish().await;
    }

    #[tokio::test]
    async fn values_json_cannot_carry_and_mismatched_columns_are_internal() {
        let Some(db) = TestDb::postgres().await else { return };
        db.exec(
            "CREATE TABLE odd (id BIGINT PRIMARY KEY, n NUMERIC, t TEXT, tz TIMESTAMPTZ);
             INSERT INTO odd VALUES (1, 'NaN', 'x', 'infinity'), (2, 1, 'not a number', NULL)",
        )
        .await;
        let read = |field: Field| {
            let schema = schema(
                ModelSchema::builder("odd")
                    .field(Field::integer("id").read())
                    .field(field),
            );
            PgStore::new(pool(&db), schema)
        };
        for (field, id) in [
            (Field::float("n").read(), 1),
            (Field::integer("t").read(), 2),
            (Field::boolean("n").read(), 2),
        ] {
            let err = read(field.clone()).fetch_one(&SqlValue::Int(id)).await;
            let Err(err @ StoreError::Internal(_)) = err else {
                panic!("{field:?}: expected Internal, got {err:?}")
            };
            assert_eq!(err.to_string(), "internal database error");
        }
        // Infinity read directly (the builder's to_char renders it as text).
        let row = ok(sqlx::query("SELECT id, tz FROM odd WHERE id = 1")
            .fetch_one(&pool(&db))
            .await);
        let tz = schema(
            ModelSchema::builder("odd")
                .field(Field::integer("id").read())
                .field(Field::timestamp("tz").read()),
        );
        assert!(decode_pg_row(&tz, &row).is_err());
        db.finish().await;
    }

    #[tokio::test]
    async fn database_refusals_are_sorted_like_sqlites() {
        let Some(db) = TestDb::postgres().await else { return };
        db.exec(
            "CREATE TABLE owners (id BIGINT PRIMARY KEY);
             CREATE TABLE things (
                 id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 owner_id BIGINT REFERENCES owners (id),
                 code VARCHAR(4) NOT NULL,
                 small INTEGER,
                 at TIMESTAMPTZ
             );
             CREATE UNIQUE INDEX things_lower_code ON things (lower(code));",
        )
        .await;
        let store = PgStore::new(
            pool(&db),
            schema(
                ModelSchema::builder("things")
                    .field(Field::integer("id").read())
                    .field(Field::integer("owner_id").read().write().nullable())
                    .field(Field::text("code").read().write())
                    .field(Field::integer("small").read().write().nullable())
                    .field(Field::timestamp("at").read().write().nullable()),
            ),
        );
        ok(store.insert(&WriteValues::new().with("code", "abc")).await);
        let refused = |values: WriteValues| {
            let store = store.clone();
            async move {
                match store.insert(&values).await {
                    Ok(row) => panic!("{values:?} was written: {row:?}"),
                    Err(err) => err,
                }
            }
        };
        // A unique expression index names no column: a conflict on no field.
        assert!(matches!(
            refused(WriteValues::new().with("code", "ABC")).await,
            StoreError::Conflict { field: None }
        ));
        assert!(matches!(
            refused(WriteValues::new().with("code", "x").with("owner_id", 9)).await,
            StoreError::Constraint { field: None }
        ));
        assert!(matches!(
            refused(WriteValues::new()).await,
            StoreError::Constraint { field: Some(f) } if f == "code"
        ));
        // Values of the right type that the column cannot hold.
        for values in [
            WriteValues::new().with("code", "too long"),
            WriteValues::new().with("code", "x").with("small", 1_i64 << 40),
            WriteValues::new()
                .with("code", "x")
                .with("at", "0000-01-01T00:00:00.000Z"),
        ] {
            assert!(
                matches!(refused(values.clone()).await, StoreError::Constraint { field: None }),
                "{values:?}"
            );
        }
        db.finish().await;
    }

    #[tokio::test]
    async fn a_locked_table_is_unavailable() {
        let Some(db) = TestDb::postgres().await else { return };
        db.exec("CREATE TABLE auth_user (id BIGINT PRIMARY KEY, username TEXT, email TEXT, is_staff BOOLEAN, karma FLOAT8, date_joined TIMESTAMPTZ)")
            .await;
        let mut locker = ok(pool(&db).begin().await);
        ok(sqlx::query("LOCK TABLE auth_user IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *locker)
            .await);
        let impatient = db.pg_pool_with(&[("lock_timeout", "100ms")]).await;
        let store = PgStore::new(impatient.clone(), users());
        let err = store.fetch_one(&SqlValue::Int(1)).await;
        assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
        ok(locker.rollback().await);
        assert_eq!(ok(store.fetch_one(&SqlValue::Int(1)).await), None);
        impatient.close().await;
        db.finish().await;
    }

    /// Needs no server: nothing listens on port 1.
    #[tokio::test]
    async fn a_server_that_cannot_be_reached_is_unavailable() {
        let pool = ok(PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(500))
            .connect_lazy("postgres://postgres@127.0.0.1:1/test"));
        let store = PgStore::new(pool, users());
        let err = store.fetch_one(&SqlValue::Int(1)).await;
        assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
        let err = store.insert(&WriteValues::new().with("username", "x")).await;
        assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    }

    #[test]
    fn unique_field_from_detail_or_constraint_name() {
        let s = users();
        assert_eq!(
            key_columns(&s, "Key (username)=(bob) already exists.").as_deref(),
            Some("username")
        );
        assert_eq!(
            key_columns(&s, r#"Key (password_hash, "email")=(x, y) already exists."#).as_deref(),
            Some("email")
        );
        assert_eq!(key_columns(&s, "Key (password_hash)=(x) already exists."), None);
        assert_eq!(
            key_columns(&s, "Key (lower(username::text))=(bob) already exists."),
            None
        );
        assert_eq!(key_columns(&s, "something else"), None);

        assert_eq!(constraint_column(&s, "auth_user_pkey").as_deref(), Some("id"));
        assert_eq!(
            constraint_column(&s, "auth_user_username_key").as_deref(),
            Some("username")
        );
        assert_eq!(constraint_column(&s, "auth_user_email_idx").as_deref(), Some("email"));
        assert_eq!(constraint_column(&s, "auth_user_password_hash_key"), None);
        assert_eq!(constraint_column(&s, "other_username_key"), None);
        assert_eq!(constraint_column(&s, "auth_username_key"), None);
    }

    #[test]
    fn transient_codes() {
        for code in [
            "08006", "08001", "53300", "53100", "57P01", "57P03", "57014", "40001", "40P01", "55P03",
        ] {
            assert!(is_transient_pg_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22001", "XX000", ""] {
            assert!(!is_transient_pg_code(code), "{code}");
        }
    }
}
