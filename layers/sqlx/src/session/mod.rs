//! Session cookies backed by the database: a store, the strategy that reads
//! the cookie, and `auth.login` / `auth.logout` events.

mod cookie;
mod login;
mod store;
mod strategy;

pub use cookie::SessionCookie;
pub use login::{SessionAuth, Verifier};
pub use store::{SESSION_TABLE, Session, SessionError, SessionStore, token_digest};
pub use strategy::SessionStrategy;
