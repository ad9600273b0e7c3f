//! JWT bearer authentication for **channels-binding**, with strict
//! validation by [jsonwebtoken].
//!
//! * [`JwtConfig`]: the key, the algorithm allowlist, the leeway, and the
//!   claims that are checked.
//! * [`JwtStrategy`]: the [`AuthStrategy`] that finds the token
//!   (`Authorization: Bearer`, else the `access_token` query parameter of a
//!   browser's WebSocket upgrade), verifies it and maps its claims to an
//!   [`Identity`], optionally through an async resolver.
//! * [`Claims`]: the verified claims a resolver receives.
//! * [`TokenIssuer`]: signs HS256 tokens for tests and demos.
//!
//! What is always enforced: a signature by the configured key with an
//! allowed algorithm (never `none`; an HMAC configuration only ever allows
//! HS*, an RSA one only RS*/PS*, so a public key cannot be replayed as an
//! HMAC secret); `exp` required and not past; `nbf` honoured; `sub` a
//! bounded non-empty string; configured `aud` and `iss` required and
//! matched; tokens bounded in length; at most one token per request. Errors
//! are fixed strings (`"invalid token"`, `"token expired"`, …): a token is
//! never logged or echoed.
//!
//! ```
//! use std::time::Duration;
//! use channels_binding_core::auth::AuthStrategies;
//! use channels_binding_jwt::{JwtConfig, JwtStrategy, TokenIssuer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // From `CHANNELS_BINDING_JWT_SECRET` in a real application.
//! let secret = b"change me: at least thirty-two bytes of secret";
//! let strategies = AuthStrategies::new().with(JwtStrategy::new(JwtConfig::hs256(secret)?));
//!
//! let token = TokenIssuer::new(secret)?.issue("5763", Duration::from_secs(3600))?;
//! let (parts, ()) = http::Request::get("/ws")
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(())?
//!     .into_parts();
//! let identity = strategies.authenticate(&parts).await?;
//! assert_eq!(identity.id(), Some("5763"));
//!
//! // Browsers cannot set headers on a WebSocket upgrade: the query works too.
//! let (parts, ()) = http::Request::get(format!("/ws?access_token={token}")).body(())?.into_parts();
//! assert_eq!(strategies.authenticate(&parts).await?.id(), Some("5763"));
//!
//! // No token: anonymous (or the next strategy). A bad one: rejected.
//! let (parts, ()) = http::Request::get("/ws").body(())?.into_parts();
//! assert!(strategies.authenticate(&parts).await?.is_anonymous());
//! let (parts, ()) = http::Request::get("/ws?access_token=forged.to.ken").body(())?.into_parts();
//! assert_eq!(strategies.authenticate(&parts).await.unwrap_err().message(), "invalid token");
//! # Ok(())
//! # }
//! ```
//!
//! [`AuthStrategy`]: channels_binding_core::auth::AuthStrategy
//! [`Identity`]: channels_binding_core::Identity

mod claims;
mod config;
mod error;
mod issuer;
mod rejection;
mod strategy;
mod token_source;

pub use claims::{Claims, MAX_SUBJECT_LEN, canonical_id};
pub use config::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, JwtConfig, MAX_LEEWAY, MIN_RSA_BITS};
pub use error::{ConfigError, IssueError};
pub use issuer::TokenIssuer;
pub use strategy::{JwtStrategy, Resolver, ResolverFuture};

/// The JWT signing algorithms, for [`JwtConfig::with_algorithms`].
pub use jsonwebtoken::Algorithm;
