//! The demo's tables and rows: created on start-up when the tables are empty.
//!
//! `auth_user` holds 102 users: `user1`..`user101` (ids 1..=101) and Admin
//! (id 5763, staff). Users joined one day apart from 2024-01-01; Admin joined
//! between `user25` and `user26`, so ordering by `date_joined` (the binding's
//! default) puts Admin first on page 2, as in the original README's exchange.
//! `notes_note` holds one note of `user1` and one of Admin.

use sqlx::SqlitePool;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS auth_user (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL,
    is_staff      INTEGER NOT NULL DEFAULT 0 CHECK (is_staff IN (0, 1)),
    date_joined   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    password_hash TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS notes_note (
    id         INTEGER PRIMARY KEY,
    owner_id   INTEGER NOT NULL REFERENCES auth_user (id) ON DELETE CASCADE,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL DEFAULT '',
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"#;

/// Creates the tables and inserts the demo rows when `auth_user` is empty.
pub async fn install(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(SCHEMA).execute(pool).await?;
    let (users,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM auth_user").fetch_one(pool).await?;
    if users > 0 {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for n in 1..=101i64 {
        sqlx::query(
            "INSERT INTO auth_user (id, username, email, is_staff, date_joined, password_hash) \
             VALUES (?, ?, ?, 0, strftime('%Y-%m-%dT%H:%M:%fZ', '2024-01-01', ? || ' days'), ?)",
        )
        .bind(n)
        .bind(format!("user{n}"))
        .bind(format!("user{n}@example.com"))
        .bind(n - 1)
        // Not a real hash: the column exists to prove it never leaves the server.
        .bind(format!("demo-not-a-real-hash-{n}"))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO auth_user (id, username, email, is_staff, date_joined, password_hash) \
         VALUES (5763, 'Admin', 'admin@admin.com', 1, '2024-01-25T12:00:00.000Z', 'demo-not-a-real-hash-admin')",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO notes_note (owner_id, title, body, created_at) VALUES \
         (1, 'Welcome', 'A note only user1 and staff can see.', '2024-02-01T00:00:00.000Z'), \
         (5763, 'Staff only', 'A note of the Admin.', '2024-02-02T00:00:00.000Z')",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
