//! The [`AuthStrategy`] that recognises callers by a JWT.

use std::fmt;
use std::sync::Arc;

use channels_binding_core::auth::{AuthError, AuthStrategy};
use channels_binding_core::{Identity, Principal};
use futures_util::future::BoxFuture;
use http::request::Parts;
use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use crate::claims::Claims;
use crate::config::JwtConfig;
use crate::rejection::Rejection;
use crate::token_source;

/// The future a [`Resolver`] returns.
pub type ResolverFuture = BoxFuture<'static, Result<Option<Principal>, AuthError>>;

/// Turns verified claims into a principal, e.g. by loading the user from a
/// database: `Ok(None)` when the user no longer exists.
pub type Resolver = dyn Fn(Claims) -> ResolverFuture + Send + Sync;

/// Authenticates requests that carry a JWT, as an `Authorization: Bearer`
/// header or an `access_token` query parameter (see [`JwtConfig`] for what
/// is checked).
///
/// * No token: `Ok(None)`, the next strategy may try (so does an
///   `Authorization` header with another scheme).
/// * A valid token: the principal `sub`, expiring at `exp`, staff when the
///   configured staff claim is `true`; or whatever the resolver returns.
/// * Anything else: `Err` with a fixed message (`"invalid token"`,
///   `"token expired"`, `"token not yet valid"`, `"multiple tokens"`); the
///   token never appears in an error or a log.
///
/// Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_core::Principal;
/// use channels_binding_jwt::{JwtConfig, JwtStrategy, TokenIssuer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let secret = b"0123456789abcdef0123456789abcdef";
/// let strategy = JwtStrategy::new(JwtConfig::hs256(secret)?).with_resolver(|claims| {
///     Box::pin(async move {
///         // Look the user up; `Ok(None)` if it was deleted.
///         let staff = claims.subject() == "1";
///         Ok(Some(Principal::new(claims.subject()).staff(staff)))
///     })
/// });
/// let token = TokenIssuer::new(secret)?.issue("1", Duration::from_secs(60))?;
/// let identity = strategy.identify(&token).await?;
/// assert!(identity.is_staff());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct JwtStrategy {
    config: Arc<JwtConfig>,
    validation: Arc<Validation>,
    resolver: Option<Arc<Resolver>>,
}

impl JwtStrategy {
    /// A strategy verifying tokens as `config` says.
    pub fn new(config: JwtConfig) -> Self {
        Self {
            validation: Arc::new(config.validation()),
            config: Arc::new(config),
            resolver: None,
        }
    }

    /// Hands verified claims to `resolver`, which decides the principal
    /// (typically loading the user from a database). `Ok(None)` means the
    /// user no longer exists: the token is rejected as invalid. An `Err` is
    /// passed through (e.g. [`AuthError::unavailable`] when the database is
    /// down). The principal's expiry is capped at the token's `exp`.
    #[must_use]
    pub fn with_resolver<F>(mut self, resolver: F) -> Self
    where
        F: Fn(Claims) -> ResolverFuture + Send + Sync + 'static,
    {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Verifies `token` (signature, algorithm, claims) without resolving a
    /// principal.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] of kind `Invalid`, with a fixed message, when the
    /// token is not acceptable.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_inner(token).map_err(Rejection::into_auth_error)
    }

    fn verify_inner(&self, token: &str) -> Result<Claims, Rejection> {
        token_source::check_shape(token, self.config.max_token_len())?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, self.config.key(), &self.validation)
            .map_err(|error| Rejection::from_jwt(&error))?;
        Claims::from_map(data.claims)
    }

    /// The identity behind `token`: verification, then the resolver or the
    /// default mapping.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify); also an invalid-token error when the
    /// resolver finds no user, and the resolver's own errors.
    pub async fn identify(&self, token: &str) -> Result<Identity, AuthError> {
        let claims = self.verify(token)?;
        let expires_at = claims.expires_at();
        let principal = match &self.resolver {
            Some(resolver) => {
                let principal = resolver(claims)
                    .await?
                    .ok_or_else(|| Rejection::UnknownUser.into_auth_error())?;
                match principal.expiry() {
                    Some(at) if at <= expires_at => principal,
                    _ => principal.expires_at(expires_at),
                }
            }
            None => self.principal(&claims),
        };
        Ok(Identity::from(principal))
    }

    /// The default mapping: `sub`, `exp`, the staff claim, attribute claims.
    fn principal(&self, claims: &Claims) -> Principal {
        let staff = self
            .config
            .staff_claim()
            .is_some_and(|name| claims.get(name) == Some(&Value::Bool(true)));
        let mut principal = Principal::new(claims.subject())
            .expires_at(claims.expires_at())
            .staff(staff);
        for name in self.config.attribute_claims() {
            if let Some(value) = claims.get(name) {
                principal = principal.attribute(name, value.clone());
            }
        }
        principal
    }
}

impl AuthStrategy for JwtStrategy {
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Option<Identity>, AuthError>> {
        Box::pin(async move {
            let token = token_source::extract(parts, self.config.query_token()).map_err(Rejection::into_auth_error)?;
            match token {
                Some(token) => self.identify(&token).await.map(Some),
                None => Ok(None),
            }
        })
    }

    fn challenge(&self) -> Option<&'static str> {
        Some("Bearer")
    }
}

impl fmt::Debug for JwtStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtStrategy")
            .field("config", &self.config)
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}
