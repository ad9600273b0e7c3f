//! A PostgreSQL schema of its own for one test, and the URL that selects it.
//!
//! PostgreSQL is taken from `CHANNELS_BINDING_TEST_POSTGRES_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`. Without it the test fails under
//! CI and says SKIPPED loudly otherwise.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::Write as _;

use sqlx::postgres::PgPoolOptions;

/// The server's URL.
pub fn base_url() -> String {
    std::env::var("CHANNELS_BINDING_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema: an admin pool, its name, and the URL that makes it the
/// search path. `None` (after a loud SKIPPED line) without PostgreSQL outside CI.
pub async fn schema() -> Option<(sqlx::PgPool, String, String)> {
    let base = base_url();
    let admin = match PgPoolOptions::new().max_connections(1).connect(&base).await {
        Ok(pool) => pool,
        Err(err) if std::env::var_os("CI").is_some() => panic!("PostgreSQL is required in CI ({base}): {err}"),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED: PostgreSQL not reachable at {base} ({err})");
            return None;
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Schemas of runs that died before dropping theirs: gone after an hour.
    let stale: Vec<(String,)> = sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cb_qs_%'")
        .fetch_all(&admin)
        .await
        .unwrap();
    for (old,) in stale {
        let born = old.rsplit('_').next().and_then(|n| n.parse::<u128>().ok()).unwrap_or(0);
        if nanos.saturating_sub(born) > 3_600_000_000_000 {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {old} CASCADE"))
                .execute(&admin)
                .await;
        }
    }
    let name = format!("cb_qs_{}_{nanos}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
    Some((admin, name, url))
}
