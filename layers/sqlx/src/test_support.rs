//! Fixtures shared by the unit tests.

use crate::field::Field;
use crate::schema::ModelSchema;

/// A model like the demo's `auth.User`, with a float and a read-only field
/// to cover every type. The table also has an undeclared `password_hash`.
pub(crate) fn users() -> ModelSchema {
    let schema = ModelSchema::builder("auth_user")
        .field(Field::integer("id").read().filter().order())
        .field(
            Field::text("username")
                .read()
                .write()
                .search()
                .order()
                .required()
                .max_length(20),
        )
        .field(Field::text("email").read().write().search().order().nullable())
        .field(Field::boolean("is_staff").read().filter())
        .field(Field::float("karma").read().write().filter().order().nullable())
        .field(Field::timestamp("date_joined").read().write().filter().order())
        .default_order(["username"])
        .build();
    match schema {
        Ok(schema) => schema,
        Err(err) => panic!("fixture schema is invalid: {err}"),
    }
}

/// The select list of [`users`] on SQLite.
pub(crate) const SQLITE_COLUMNS: &str = r#""id", "username", "email", "is_staff", "karma", "date_joined""#;

/// The select list of [`users`] on PostgreSQL.
pub(crate) const POSTGRES_COLUMNS: &str = r#""id", "username", "email", "is_staff", "karma", to_char("date_joined" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "date_joined""#;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::Database;

/// The test databases of the integration tests, shared with them.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[path = "../tests/support/db.rs"]
mod db;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use db::{Backend, TestDb, each_backend};
