//! Test databases: a fresh in-memory SQLite database or a fresh PostgreSQL
//! schema per test, so that tests stay independent and may run in parallel.
//!
//! Included by the unit tests (`src/test_support.rs`) and by the integration
//! tests (`tests/support/mod.rs`) with `#[path]`; `super::Database` is the
//! crate's `Database` in both.
//!
//! PostgreSQL is found at `CHANNELS_BINDING_TEST_POSTGRES_URL`, else
//! [`DEFAULT_POSTGRES_URL`]. When it cannot be reached, a PostgreSQL test
//! fails if `CI` is set, and otherwise says `SKIPPED: ...` on stderr and
//! passes: never a silent skip.

// Each test crate uses a different part of this file.
#![allow(dead_code)]

use serde_json::{Map, Value};

use super::Database;

/// The variable naming the PostgreSQL server of the tests.
pub(crate) const POSTGRES_URL_VAR: &str = "CHANNELS_BINDING_TEST_POSTGRES_URL";
/// The server used when [`POSTGRES_URL_VAR`] is not set.
pub(crate) const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Runs the test body `async fn $name(db: &TestDb)` on every enabled
/// backend, as two tests named `$name::sqlite` and `$name::postgres`, each
/// on a fresh database that is dropped when the test ends (also when it
/// panics). Written above the body, like an attribute, with the test
/// attribute to use:
///
/// ```ignore
/// each_backend!(#[tokio::test] creates_a_row);
/// async fn creates_a_row(db: &TestDb) { ... }
/// ```
macro_rules! each_backend {
    ($(#[$attr:meta])* $name:ident) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[cfg(feature = "sqlite")]
            $(#[$attr])*
            async fn sqlite() {
                let db = TestDb::sqlite().await;
                super::$name(&db).await;
                db.finish().await;
            }

            #[cfg(feature = "postgres")]
            $(#[$attr])*
            async fn postgres() {
                let Some(db) = TestDb::postgres().await else { return };
                super::$name(&db).await;
                db.finish().await;
            }
        }
    };
}
pub(crate) use each_backend;

/// One test's database.
pub(crate) struct TestDb {
    pool: Pool,
    #[cfg(feature = "postgres")]
    schema: Option<pg::TempSchema>,
}

/// The pool of a [`TestDb`]. Not the crate's `Database`: outside the crate
/// that one is `#[non_exhaustive]`.
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::sqlite::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::postgres::PgPool),
}

impl TestDb {
    /// A fresh in-memory SQLite database on one connection that is never
    /// recycled (the database lives exactly as long as its connection).
    #[cfg(feature = "sqlite")]
    pub(crate) async fn sqlite() -> Self {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await
            .unwrap_or_else(|e| panic!("cannot open sqlite::memory: {e}"));
        Self {
            pool: Pool::Sqlite(pool),
            #[cfg(feature = "postgres")]
            schema: None,
        }
    }

    /// A fresh schema `cb_test_<random>` in the test server, and a pool
    /// whose connections see only it (`search_path`). `None` after saying
    /// `SKIPPED` when the server cannot be reached and `CI` is not set.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached and `CI` is set, or the schema
    /// cannot be created.
    #[cfg(feature = "postgres")]
    pub(crate) async fn postgres() -> Option<Self> {
        let (schema, pool) = pg::TempSchema::create().await?;
        Some(Self {
            pool: Pool::Postgres(pool),
            schema: Some(schema),
        })
    }

    /// Another pool on this test's PostgreSQL schema, whose connections
    /// also set the given run-time parameters (`lock_timeout`, ...).
    #[cfg(feature = "postgres")]
    pub(crate) async fn pg_pool_with(&self, parameters: &[(&str, &str)]) -> sqlx::postgres::PgPool {
        let schema = self.schema.as_ref().expect("a PostgreSQL test database");
        schema.pool_with(parameters).await
    }

    pub(crate) fn backend(&self) -> Backend {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The pool, for a binding or a store.
    pub(crate) fn database(&self) -> Database {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => Database::from(pool.clone()),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => Database::from(pool.clone()),
        }
    }

    /// The PostgreSQL pool.
    ///
    /// # Panics
    ///
    /// On SQLite.
    #[cfg(feature = "postgres")]
    pub(crate) fn pg_pool(&self) -> sqlx::postgres::PgPool {
        match &self.pool {
            Pool::Postgres(pool) => pool.clone(),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => panic!("not a PostgreSQL test database"),
        }
    }

    /// `sqlite` or `postgres`, by backend: DDL and other text that differs.
    pub(crate) fn pick<'a>(&self, sqlite: &'a str, postgres: &'a str) -> &'a str {
        match self.backend() {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        }
    }

    /// Runs `sql`, which may hold several statements and no parameters.
    pub(crate) async fn exec(&self, sql: &str) {
        let done = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        };
        if let Err(err) = done {
            panic!("{sql}: {err}");
        }
    }

    /// The integer in the first column of the first row.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        let value = self
            .rows(sql)
            .await
            .into_iter()
            .next()
            .and_then(|row| row.into_values().next());
        value
            .and_then(|v| v.as_i64())
            .unwrap_or_else(|| panic!("{sql}: no integer"))
    }

    /// Every row, as a JSON object of its columns, read without the crate's
    /// decoders: integers, floats, text, booleans and `NULL`.
    pub(crate) async fn rows(&self, sql: &str) -> Vec<Map<String, Value>> {
        let rows = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(sqlite_json).collect()),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(pg::json).collect()),
        };
        rows.unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// Closes the pool, as a database going away.
    pub(crate) async fn close(&self) {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    /// Closes the pool and drops the PostgreSQL schema.
    pub(crate) async fn finish(self) {
        self.close().await;
        #[cfg(feature = "postgres")]
        if let Some(schema) = self.schema {
            schema.drop_now().await;
        }
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_json(row: &sqlx::sqlite::SqliteRow) -> Map<String, Value> {
    use sqlx::{Column as _, Row as _, TypeInfo as _, ValueRef as _};
    row.columns()
        .iter()
        .map(|column| {
            let i = column.ordinal();
            let raw = row.try_get_raw(i).unwrap_or_else(|e| panic!("column {i}: {e}"));
            let kind = if raw.is_null() {
                "NULL".to_owned()
            } else {
                raw.type_info().name().to_owned()
            };
            let value = match kind.as_str() {
                "NULL" => Ok(Value::Null),
                "INTEGER" => row.try_get::<i64, _>(i).map(Value::from),
                "REAL" => row.try_get::<f64, _>(i).map(Value::from),
                "TEXT" => row.try_get::<String, _>(i).map(Value::from),
                other => panic!("column {}: no test decoder for {other}", column.name()),
            };
            let value = value.unwrap_or_else(|e| panic!("column {}: {e}", column.name()));
            (column.name().to_owned(), value)
        })
        .collect()
}

/// `url` with its password, if any, replaced by `***`.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use std::hash::BuildHasher as _;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde_json::{Map, Value};
    use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
    use sqlx::{
        Column as _, ConnectOptions as _, Connection as _, Executor as _, Row as _, TypeInfo as _, ValueRef as _,
    };

    use super::{DEFAULT_POSTGRES_URL, POSTGRES_URL_VAR, redacted};

    /// Schemas of this harness are named `cb_test_<unix seconds>_<random>`.
    const PREFIX: &str = "cb_test_";
    /// Schemas older than this were left by killed test runs.
    const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A schema that exists for one test.
    pub(super) struct TempSchema {
        name: String,
        options: PgConnectOptions,
        dropped: bool,
    }

    impl TempSchema {
        pub(super) async fn create() -> Option<(Self, PgPool)> {
            let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
            let shown = redacted(&url);
            let options: PgConnectOptions = url
                .parse()
                .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={shown} is not a PostgreSQL URL: {e}"));
            let options = options.disable_statement_logging();
            let mut admin = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(err)) => return unreachable(&shown, &err.to_string()),
                Err(_) => return unreachable(&shown, "timed out"),
            };
            sweep_stale(&mut admin).await;

            let name = unique_name();
            admin
                .execute(format!("CREATE SCHEMA {name}").as_str())
                .await
                .unwrap_or_else(|e| panic!("CREATE SCHEMA {name} at {shown}: {e}"));
            let schema = Self {
                name,
                options: options.clone(),
                dropped: false,
            };
            let _ = admin.close().await;
            let pool = schema.pool_with(&[]).await;
            Some((schema, pool))
        }

        /// A pool whose connections see only this schema.
        pub(super) async fn pool_with(&self, parameters: &[(&str, &str)]) -> PgPool {
            let options = self
                .options
                .clone()
                .options([("search_path", self.name.as_str())])
                .options(parameters.iter().copied());
            PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .unwrap_or_else(|e| panic!("pool on test schema {}: {e}", self.name))
        }

        /// Drops the schema and everything in it.
        pub(super) async fn drop_now(mut self) {
            self.dropped = true;
            drop_schema(&self.options, &self.name).await;
        }
    }

    impl Drop for TempSchema {
        /// A test panicked before `finish`: drop the schema anyway, from a
        /// thread of its own since `drop` cannot await.
        fn drop(&mut self) {
            if self.dropped {
                return;
            }
            let (options, name) = (self.options.clone(), self.name.clone());
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                match runtime {
                    Ok(runtime) => runtime.block_on(drop_schema(&options, &name)),
                    Err(err) => eprintln!("cannot drop test schema {name}: {err}"),
                }
            })
            .join();
            if dropped.is_err() {
                eprintln!("cannot drop test schema {}", self.name);
            }
        }
    }

    async fn drop_schema(options: &PgConnectOptions, name: &str) {
        let dropped = async {
            let mut conn = PgConnection::connect_with(options).await?;
            // A connection left in a transaction by a panicking test must not
            // block the drop for long.
            conn.execute("SET lock_timeout = '5s'").await?;
            conn.execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
                .await?;
            conn.close().await
        };
        if let Err(err) = dropped.await {
            eprintln!("cannot drop test schema {name}: {err}");
        }
    }

    /// Fails under CI, else says it is skipping.
    fn unreachable<T>(url: &str, err: &str) -> Option<T> {
        if std::env::var_os("CI").is_some() {
            panic!(
                "PostgreSQL not reachable at {url} ({err}), and CI is set: PostgreSQL tests must run. \
                 Start PostgreSQL or set {POSTGRES_URL_VAR}."
            );
        }
        // Straight to the process's stderr: the test harness captures
        // `eprintln!` of passing tests, and a skip must never be silent.
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let line = format!(
            "SKIPPED: PostgreSQL not reachable at {url} ({err}): {test} did not run; start PostgreSQL \
             or set {POSTGRES_URL_VAR} (with CI set, this is a failure)\n"
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        None
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    fn unique_name() -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let random = std::collections::hash_map::RandomState::new().hash_one((
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            SystemTime::now(),
        ));
        format!("{PREFIX}{}_{random:016x}", now())
    }

    /// Drops the schemas of runs that were killed before they could clean
    /// up, once per process. Best effort: another run may be doing the same.
    async fn sweep_stale(admin: &mut PgConnection) {
        static SWEPT: AtomicBool = AtomicBool::new(false);
        if SWEPT.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(names) = sqlx::query_scalar::<_, String>(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cb\\_test\\_%'",
        )
        .fetch_all(&mut *admin)
        .await
        else {
            return;
        };
        let cutoff = now().saturating_sub(STALE_AFTER.as_secs());
        for name in names {
            let created = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('_').next())
                .and_then(|secs| secs.parse::<u64>().ok());
            if created.is_some_and(|created| created < cutoff) {
                let _ = admin
                    .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
                    .await;
            }
        }
    }

    pub(super) fn json(row: &PgRow) -> Map<String, Value> {
        row.columns()
            .iter()
            .map(|column| {
                let i = column.ordinal();
                let raw = row.try_get_raw(i).unwrap_or_else(|e| panic!("column {i}: {e}"));
                let kind = if raw.is_null() {
                    "NULL".to_owned()
                } else {
                    raw.type_info().name().to_owned()
                };
                let value = match kind.as_str() {
                    "NULL" => Ok(Value::Null),
                    "INT2" => row.try_get::<i16, _>(i).map(Value::from),
                    "INT4" => row.try_get::<i32, _>(i).map(Value::from),
                    "INT8" => row.try_get::<i64, _>(i).map(Value::from),
                    "FLOAT8" => row.try_get::<f64, _>(i).map(Value::from),
                    "BOOL" => row.try_get::<bool, _>(i).map(Value::from),
                    "TEXT" | "VARCHAR" => row.try_get::<String, _>(i).map(Value::from),
                    other => panic!("column {}: no test decoder for {other}", column.name()),
                };
                let value = value.unwrap_or_else(|e| panic!("column {}: {e}", column.name()));
                (column.name().to_owned(), value)
            })
            .collect()
    }
}
