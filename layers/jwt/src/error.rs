//! The errors of building a configuration and of issuing a token.
//!
//! Rejections of a client's token are not here: they are
//! [`AuthError`](channels_binding_core::auth::AuthError)s with fixed,
//! client-safe messages.

use std::time::Duration;

use jsonwebtoken::Algorithm;

/// A JWT setting that cannot work or would be unsafe.
///
/// No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An HMAC secret shorter than the hash it keys (RFC 7518 §3.2).
    #[error("the HMAC secret must be at least {min} bytes long")]
    SecretTooShort {
        /// The minimum length in bytes.
        min: usize,
    },
    /// The key is not a PEM public key of the expected kind.
    #[error("the key is not a valid {expected} public key in PEM format")]
    InvalidKey {
        /// The kind of key that was expected (`RSA`, `P-256`, …).
        expected: &'static str,
    },
    /// An RSA key too small to be safe.
    #[error("the RSA key has {bits} bits; at least {min} are required")]
    RsaKeyTooSmall {
        /// The size of the given key.
        bits: usize,
        /// The minimum size.
        min: usize,
    },
    /// The algorithm allowlist is empty.
    #[error("at least one algorithm must be allowed")]
    NoAlgorithm,
    /// An algorithm that does not belong to the key's family (or, for HMAC,
    /// that needs a longer secret): allowing it would open the door to
    /// algorithm-confusion attacks.
    #[error("algorithm {0:?} cannot be used with this key")]
    AlgorithmMismatch(Algorithm),
    /// A clock-skew leeway above the cap.
    #[error("the leeway may be at most {max:?}")]
    LeewayTooLarge {
        /// The cap.
        max: Duration,
    },
    /// A token length bound outside the accepted range.
    #[error("the maximum token length must be between {min} and {max} bytes")]
    MaxTokenLen {
        /// The smallest accepted bound.
        min: usize,
        /// The largest accepted bound.
        max: usize,
    },
}

/// Why [`TokenIssuer`](crate::TokenIssuer) could not issue a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The subject is empty, too long or holds control characters: the
    /// strategy would reject the token.
    #[error("the subject must be 1 to {max} bytes without control characters")]
    InvalidSubject {
        /// The maximum length in bytes.
        max: usize,
    },
    /// The expiry does not fit a timestamp (or the clock is before 1970).
    #[error("the token lifetime is out of range")]
    InvalidTtl,
    /// The signing library failed.
    #[error("the token could not be signed")]
    Signing,
}
