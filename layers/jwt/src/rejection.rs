//! Why a token was refused, and the fixed client-safe message for it.
//!
//! The reason is logged at `debug` (never the token, never a library error
//! that could quote it); the client gets one of a few fixed messages, so a
//! forger learns as little as possible.

use channels_binding_core::auth::AuthError;
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};

/// The message of most rejections.
pub(crate) const INVALID_TOKEN: &str = "invalid token";
/// The message for an expired token (the client should refresh it).
pub(crate) const TOKEN_EXPIRED: &str = "token expired";
/// The message for a token used before its `nbf`.
pub(crate) const TOKEN_NOT_YET_VALID: &str = "token not yet valid";
/// The message for a request carrying more than one token.
pub(crate) const MULTIPLE_TOKENS: &str = "multiple tokens";

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Not three base64url segments, bad base64, bad JSON, empty token.
    Malformed,
    /// Longer than the configured bound.
    TooLong,
    /// More than one token in the request.
    Multiple,
    /// An algorithm outside the allowlist (`none`, another family, …).
    Algorithm,
    /// The signature does not verify.
    Signature,
    /// `exp` is past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `aud` missing or not one of the configured audiences.
    Audience,
    /// `iss` missing or not one of the configured issuers.
    Issuer,
    /// `sub` missing, not a string, empty, too long.
    Subject,
    /// A required claim missing or of the wrong type.
    Claims,
    /// The resolver found no user for the subject.
    UnknownUser,
}

impl Rejection {
    /// Classifies a jsonwebtoken error.
    pub(crate) fn from_jwt(error: &JwtError) -> Self {
        match error.kind() {
            ErrorKind::ExpiredSignature => Rejection::Expired,
            ErrorKind::ImmatureSignature => Rejection::NotYetValid,
            ErrorKind::InvalidSignature => Rejection::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
                Rejection::Algorithm
            }
            ErrorKind::InvalidAudience => Rejection::Audience,
            ErrorKind::InvalidIssuer => Rejection::Issuer,
            ErrorKind::MissingRequiredClaim(claim) if claim == "sub" => Rejection::Subject,
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => Rejection::Audience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => Rejection::Issuer,
            ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) | ErrorKind::InvalidSubject => {
                Rejection::Claims
            }
            _ => Rejection::Malformed,
        }
    }

    /// A short reason for logs.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::TooLong => "too long",
            Rejection::Multiple => "multiple tokens",
            Rejection::Algorithm => "algorithm not allowed",
            Rejection::Signature => "bad signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not yet valid",
            Rejection::Audience => "wrong audience",
            Rejection::Issuer => "wrong issuer",
            Rejection::Subject => "bad subject",
            Rejection::Claims => "bad claims",
            Rejection::UnknownUser => "unknown user",
        }
    }

    /// The client-safe error: a fixed string, never the token.
    pub(crate) fn into_auth_error(self) -> AuthError {
        tracing::debug!(reason = self.reason(), "JWT rejected");
        AuthError::invalid(match self {
            Rejection::Expired => TOKEN_EXPIRED,
            Rejection::NotYetValid => TOKEN_NOT_YET_VALID,
            Rejection::Multiple => MULTIPLE_TOKENS,
            _ => INVALID_TOKEN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_fixed_strings() {
        assert_eq!(Rejection::Expired.into_auth_error().message(), "token expired");
        assert_eq!(
            Rejection::NotYetValid.into_auth_error().message(),
            "token not yet valid"
        );
        assert_eq!(Rejection::Multiple.into_auth_error().message(), "multiple tokens");
        for rejection in [Rejection::Signature, Rejection::Algorithm, Rejection::UnknownUser] {
            assert_eq!(rejection.into_auth_error().message(), "invalid token");
        }
    }

    #[test]
    fn library_errors_are_classified() {
        let rejection = |kind| Rejection::from_jwt(&JwtError::from(kind));
        assert_eq!(rejection(ErrorKind::ExpiredSignature), Rejection::Expired);
        assert_eq!(rejection(ErrorKind::ImmatureSignature), Rejection::NotYetValid);
        assert_eq!(
            rejection(ErrorKind::MissingRequiredClaim("sub".into())),
            Rejection::Subject
        );
        assert_eq!(
            rejection(ErrorKind::MissingRequiredClaim("exp".into())),
            Rejection::Claims
        );
        assert_eq!(rejection(ErrorKind::InvalidToken), Rejection::Malformed);
    }
}
