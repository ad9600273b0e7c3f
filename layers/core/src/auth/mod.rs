//! Authentication: the [`AuthStrategy`] trait every credential kind
//! implements, and a chain of them. The HTTP layers that run the chain live
//! in the transport crate; strategies (JWT, API keys, sessions) live in
//! their own crates and depend only on this trait.

mod strategy;

pub use strategy::{AuthError, AuthErrorKind, AuthStrategies, AuthStrategy, CredentialKind};
