//! Session cookies backed by the database: a store, the strategy that reads
//! the cookie, `auth.login` / `auth.logout` events, and the bounded password
//! checks and throttle that guard sign-in.

mod cookie;
mod login;
mod password;
mod store;
mod strategy;
mod throttle;

pub use cookie::SessionCookie;
pub use login::{SessionAuth, UserLookup, Verifier};
pub use password::{PasswordCheck, PasswordCheckError};
pub use store::{SESSION_TABLE, Session, SessionError, SessionStore, token_digest};
pub use strategy::SessionStrategy;
pub use throttle::{LoginAttempt, LoginThrottle, ThrottleRule, Throttled};
