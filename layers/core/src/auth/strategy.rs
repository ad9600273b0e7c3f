//! Authentication strategies: who is behind an HTTP request (or WebSocket upgrade).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::request::Parts;

use crate::identity::Identity;

/// Why credentials were rejected. The message is safe to show a client: it
/// never contains the credential itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    kind: AuthErrorKind,
    message: Cow<'static, str>,
}

/// The kind of an [`AuthError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// Credentials are present but malformed, forged, expired or revoked.
    Invalid,
    /// The store that checks credentials cannot be reached.
    Unavailable,
}

impl AuthError {
    /// Credentials present but not acceptable.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: AuthErrorKind::Invalid,
            message: message.into(),
        }
    }

    /// The credential store is down; the client may retry.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: AuthErrorKind::Unavailable,
            message: message.into(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The client-safe message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// One way of recognising a caller from request headers, cookies or query.
///
/// * `Ok(Some(identity))`: authenticated.
/// * `Ok(None)`: not my kind of credential (none present): try the next strategy.
/// * `Err(_)`: my kind of credential, but invalid: reject the request, do not
///   fall through to weaker strategies.
///
/// ```
/// use channels_binding_core::auth::{AuthError, AuthStrategy};
/// use channels_binding_core::{Identity, Principal};
/// use futures_util::future::BoxFuture;
///
/// /// Trusts an `X-User` header (only behind a proxy that sets it!).
/// struct TrustedHeader;
///
/// impl AuthStrategy for TrustedHeader {
///     fn authenticate<'a>(&'a self, parts: &'a http::request::Parts) -> BoxFuture<'a, Result<Option<Identity>, AuthError>> {
///         Box::pin(async move {
///             Ok(parts
///                 .headers
///                 .get("x-user")
///                 .and_then(|v| v.to_str().ok())
///                 .map(|id| Identity::from(Principal::new(id))))
///         })
///     }
/// }
/// ```
pub trait AuthStrategy: Send + Sync + 'static {
    /// Recognises the caller of a request.
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Option<Identity>, AuthError>>;

    /// The `WWW-Authenticate` challenge scheme of this strategy (`Bearer`, …),
    /// if it has one.
    fn challenge(&self) -> Option<&'static str> {
        None
    }

    /// Where this strategy's credential comes from. A browser attaches an
    /// [`Ambient`](CredentialKind::Ambient) credential (a cookie) to
    /// requests that any other site's page makes, so the HTTP layer refuses
    /// such an identity on cross-site state-changing requests and upgrades.
    /// Defaults to [`Explicit`](CredentialKind::Explicit).
    fn credential_kind(&self) -> CredentialKind {
        CredentialKind::Explicit
    }
}

/// Who puts a credential on a request, which decides whether a request from
/// another site's page can carry it.
///
/// ```
/// use channels_binding_core::auth::CredentialKind;
///
/// assert_ne!(CredentialKind::Ambient, CredentialKind::Explicit);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialKind {
    /// Set by the client's code on each request (`Authorization`, an API
    /// key header, a query token): another site cannot make a browser send it.
    Explicit,
    /// Attached by the browser on its own (cookies): a page on any site can
    /// make a request that carries it.
    Ambient,
}

/// Strategies tried in order; the first identity wins, the first error rejects.
///
/// ```
/// use channels_binding_core::auth::AuthStrategies;
///
/// let strategies = AuthStrategies::new();
/// assert!(strategies.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct AuthStrategies {
    strategies: Vec<Arc<dyn AuthStrategy>>,
}

impl AuthStrategies {
    /// No strategy: everyone is anonymous.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a strategy (tried after the ones before it).
    #[must_use]
    pub fn with(mut self, strategy: impl AuthStrategy) -> Self {
        self.strategies.push(Arc::new(strategy));
        self
    }

    /// Whether there is no strategy.
    pub fn is_empty(&self) -> bool {
        self.strategies.is_empty()
    }

    /// The challenges of every strategy, for `WWW-Authenticate`.
    pub fn challenges(&self) -> Vec<&'static str> {
        let mut schemes: Vec<&'static str> = self.strategies.iter().filter_map(|s| s.challenge()).collect();
        schemes.dedup();
        schemes
    }

    /// Runs the chain: the identity of the first strategy that recognises
    /// the caller, anonymous when none does.
    ///
    /// # Errors
    ///
    /// The first strategy's error: invalid credentials are never ignored in
    /// favour of a later strategy.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Identity, AuthError> {
        for strategy in &self.strategies {
            if let Some(identity) = strategy.authenticate(parts).await? {
                return Ok(identity);
            }
        }
        Ok(Identity::anonymous())
    }

    /// Runs only the strategies whose credential is of `kind`, in order:
    /// the first identity, or `None` when none recognises the caller.
    ///
    /// ```
    /// use channels_binding_core::auth::{AuthStrategies, CredentialKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (parts, ()) = http::Request::get("/").body(()).unwrap().into_parts();
    /// let found = AuthStrategies::new().authenticate_kind(&parts, CredentialKind::Ambient).await;
    /// assert!(matches!(found, Ok(None)));
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The first error of those strategies.
    pub async fn authenticate_kind(&self, parts: &Parts, kind: CredentialKind) -> Result<Option<Identity>, AuthError> {
        for strategy in self.strategies.iter().filter(|s| s.credential_kind() == kind) {
            if let Some(identity) = strategy.authenticate(parts).await? {
                return Ok(Some(identity));
            }
        }
        Ok(None)
    }
}

impl fmt::Debug for AuthStrategies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthStrategies")
            .field("len", &self.strategies.len())
            .finish()
    }
}
