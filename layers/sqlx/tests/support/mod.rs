//! Helpers shared by the integration tests.

use channels_binding_sqlx::Database;

mod db;

// Each test crate uses its own part of the helpers.
#[allow(unused_imports)]
pub(crate) use db::{Backend, TestDb, each_backend};
