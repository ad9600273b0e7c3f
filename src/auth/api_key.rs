//! API keys: stored as SHA-256 digests, compared in constant time.

use std::fmt;

use channels_binding_core::auth::{AuthError, AuthStrategy};
use channels_binding_core::{Identity, Principal};
use futures_util::future::BoxFuture;
use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header that carries an API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Longest key accepted, in bytes.
const MAX_KEY_LEN: usize = 512;

/// Authenticates `X-Api-Key: <key>` against stored key digests.
///
/// Keys are kept only as SHA-256 digests (a leaked configuration does not
/// leak keys), and the presented key's digest is compared with every stored
/// one in constant time, without stopping at a match.
///
/// ```
/// use channels_binding::auth::ApiKeyStrategy;
/// use channels_binding::Principal;
///
/// // From configuration, store digests rather than keys:
/// let digest = ApiKeyStrategy::digest("k-123");
/// let keys = ApiKeyStrategy::new().digest_for(digest, Principal::new("robot"));
/// # let _ = keys;
/// ```
#[derive(Clone, Default)]
pub struct ApiKeyStrategy {
    keys: Vec<([u8; 32], Principal)>,
}

impl ApiKeyStrategy {
    /// No keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The SHA-256 digest of a key, to store instead of the key.
    pub fn digest(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }

    /// Accepts `key` for `principal` (only its digest is kept).
    #[must_use]
    pub fn key(self, key: &str, principal: Principal) -> Self {
        self.digest_for(Self::digest(key), principal)
    }

    /// Accepts the key whose digest this is, for `principal`.
    #[must_use]
    pub fn digest_for(mut self, digest: [u8; 32], principal: Principal) -> Self {
        self.keys.push((digest, principal));
        self
    }

    fn find(&self, presented: &[u8; 32]) -> Option<&Principal> {
        let mut found = None;
        for (digest, principal) in &self.keys {
            // No early exit: every stored digest is compared.
            if bool::from(digest.ct_eq(presented)) {
                found = Some(principal);
            }
        }
        found
    }
}

impl fmt::Debug for ApiKeyStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyStrategy")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl AuthStrategy for ApiKeyStrategy {
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Option<Identity>, AuthError>> {
        let outcome = match parts.headers.get(API_KEY_HEADER) {
            None => Ok(None),
            Some(value) if value.len() > MAX_KEY_LEN || value.is_empty() => Err(AuthError::invalid("invalid API key")),
            Some(value) => {
                let digest: [u8; 32] = Sha256::digest(value.as_bytes()).into();
                match self.find(&digest) {
                    Some(principal) => Ok(Some(Identity::from(principal.clone()))),
                    None => Err(AuthError::invalid("invalid API key")),
                }
            }
        };
        Box::pin(std::future::ready(outcome))
    }

    fn challenge(&self) -> Option<&'static str> {
        Some("ApiKey")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(key: Option<&str>) -> Parts {
        let mut request = http::Request::builder().uri("/");
        if let Some(key) = key {
            request = request.header(API_KEY_HEADER, key);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn recognises_keys_and_rejects_wrong_ones() {
        let strategy = ApiKeyStrategy::new()
            .key("alpha", Principal::new("a"))
            .key("beta", Principal::new("b"));
        let who = strategy.authenticate(&parts(Some("beta"))).await.unwrap();
        assert_eq!(who.unwrap().id(), Some("b"));
        assert!(strategy.authenticate(&parts(None)).await.unwrap().is_none());
        let err = strategy.authenticate(&parts(Some("gamma"))).await.unwrap_err();
        assert_eq!(err.message(), "invalid API key");
        assert!(strategy.authenticate(&parts(Some(&"x".repeat(600)))).await.is_err());
    }

    #[test]
    fn keeps_only_digests() {
        let strategy = ApiKeyStrategy::new().key("plain-text-key", Principal::new("a"));
        assert!(!format!("{strategy:?}").contains("plain-text-key"));
        assert_eq!(strategy.keys[0].0, ApiKeyStrategy::digest("plain-text-key"));
    }
}
