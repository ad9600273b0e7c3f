//! The session cookie as an authentication strategy.

use channels_binding_core::Identity;
use channels_binding_core::auth::{AuthError, AuthStrategy, CredentialKind};
use futures_util::future::BoxFuture;
use http::request::Parts;

use super::cookie::SessionCookie;
use super::store::SessionStore;

/// Recognises callers by their session cookie: no cookie is `Ok(None)` (try
/// the next strategy); an unknown or expired session is an invalid
/// credential; a store that is down is `unavailable`.
#[derive(Debug, Clone)]
pub struct SessionStrategy {
    store: SessionStore,
    cookie: SessionCookie,
}

impl SessionStrategy {
    /// A strategy reading `cookie` and looking sessions up in `store`.
    pub fn new(store: SessionStore, cookie: SessionCookie) -> Self {
        Self { store, cookie }
    }
}

impl AuthStrategy for SessionStrategy {
    /// A cookie: the browser attaches it to any site's requests.
    fn credential_kind(&self) -> CredentialKind {
        CredentialKind::Ambient
    }

    fn authenticate<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Option<Identity>, AuthError>> {
        Box::pin(async move {
            let Some(token) = self.cookie.read(&parts.headers) else {
                return Ok(None);
            };
            match self.store.lookup(token).await {
                Ok(Some(principal)) => Ok(Some(Identity::from(principal))),
                Ok(None) => Err(AuthError::invalid("session expired or unknown: sign in again")),
                Err(err) => {
                    tracing::warn!(error = %err, "session store unavailable");
                    Err(AuthError::unavailable("the session store is unavailable"))
                }
            }
        })
    }
}
