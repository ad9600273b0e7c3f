//! Issuing HS256 tokens, for tests, demos and examples.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use crate::claims::{MAX_SUBJECT_LEN, valid_subject};
use crate::error::{ConfigError, IssueError};

/// Signs HS256 tokens that a [`JwtStrategy`](crate::JwtStrategy) configured
/// with the same secret accepts.
///
/// **For tests, demos and examples.** A real deployment gets its tokens from
/// an identity provider (or its own login endpoint, with refresh, revocation
/// and key rotation), not from this helper.
///
/// Tokens carry `sub`, `exp`, `iat`, and `iss` / `aud` when set.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_jwt::{JwtConfig, JwtStrategy, TokenIssuer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let secret = b"0123456789abcdef0123456789abcdef";
/// let issuer = TokenIssuer::new(secret)?.with_audience("chat");
/// let token = issuer.issue("5763", Duration::from_secs(3600))?;
///
/// let strategy = JwtStrategy::new(JwtConfig::hs256(secret)?.with_audience("chat"));
/// assert_eq!(strategy.verify(&token)?.subject(), "5763");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: Option<String>,
    audience: Option<String>,
}

impl TokenIssuer {
    /// An issuer signing with `secret`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretTooShort`] when `secret` is shorter than 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < 32 {
            return Err(ConfigError::SecretTooShort { min: 32 });
        }
        Ok(Self {
            key: EncodingKey::from_secret(secret),
            issuer: None,
            audience: None,
        })
    }

    /// Sets the `iss` claim of every token.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Sets the `aud` claim of every token.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// A token for `subject`, valid for `ttl` from now.
    ///
    /// # Errors
    ///
    /// [`IssueError::InvalidSubject`] when the strategy would refuse the
    /// subject, [`IssueError::InvalidTtl`] when the expiry is out of range.
    pub fn issue(&self, subject: &str, ttl: Duration) -> Result<String, IssueError> {
        self.issue_with(subject, ttl, Map::new())
    }

    /// A token for `subject`, valid for `ttl` from now, with `extra` claims
    /// (e.g. `{"is_staff": true}`). `sub`, `exp`, `iat`, and `iss` / `aud`
    /// when set, override claims of the same name in `extra`.
    ///
    /// # Errors
    ///
    /// As [`issue`](Self::issue).
    pub fn issue_with(&self, subject: &str, ttl: Duration, extra: Map<String, Value>) -> Result<String, IssueError> {
        if !valid_subject(subject) {
            return Err(IssueError::InvalidSubject { max: MAX_SUBJECT_LEN });
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| IssueError::InvalidTtl)?
            .as_secs();
        let exp = now
            .checked_add(ttl.as_secs())
            .filter(|exp| i64::try_from(*exp).is_ok())
            .ok_or(IssueError::InvalidTtl)?;
        let mut claims = extra;
        claims.insert("sub".into(), subject.into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), exp.into());
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), issuer.as_str().into());
        }
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), audience.as_str().into());
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key).map_err(|_| IssueError::Signing)
    }
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn refuses_short_secrets_and_bad_subjects() {
        assert_eq!(
            TokenIssuer::new(&SECRET[..31]).unwrap_err(),
            ConfigError::SecretTooShort { min: 32 }
        );
        let issuer = TokenIssuer::new(SECRET).unwrap();
        assert_eq!(
            issuer.issue("", Duration::from_secs(1)).unwrap_err(),
            IssueError::InvalidSubject { max: MAX_SUBJECT_LEN }
        );
        assert_eq!(
            issuer.issue("1", Duration::from_secs(u64::MAX)).unwrap_err(),
            IssueError::InvalidTtl
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let debug = format!("{:?}", TokenIssuer::new(SECRET).unwrap());
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
    }
}
