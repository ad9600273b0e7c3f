//! What a token must look like to be accepted: the key, the algorithm
//! allowlist, the clock leeway and the claims that are checked.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;

use crate::error::ConfigError;

/// The default clock-skew leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// The largest leeway [`JwtConfig::with_leeway`] accepts: a bigger one would
/// keep expired tokens alive.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The default bound on a token's length in bytes; longer tokens are
/// rejected before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

const MIN_MAX_TOKEN_LEN: usize = 256;
const MAX_MAX_TOKEN_LEN: usize = 64 * 1024;

/// The kind of verification key, which decides the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// A shared secret of this many bytes.
    Hmac(usize),
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// Whether `algorithm` may be verified with this key. Families never mix:
    /// an HMAC secret verifies only HS*, an RSA key only RS*/PS*.
    fn permits(self, algorithm: Algorithm) -> bool {
        match (self, algorithm) {
            (KeyKind::Hmac(len), Algorithm::HS256) => len >= 32,
            (KeyKind::Hmac(len), Algorithm::HS384) => len >= 48,
            (KeyKind::Hmac(len), Algorithm::HS512) => len >= 64,
            (
                KeyKind::Rsa,
                Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512,
            ) => true,
            (KeyKind::P256, Algorithm::ES256) | (KeyKind::P384, Algorithm::ES384) => true,
            (KeyKind::Ed25519, Algorithm::EdDSA) => true,
            _ => false,
        }
    }
}

/// How tokens are verified: a key, the algorithms it may verify, and the
/// claims that must be present and right.
///
/// Always enforced, not configurable: a signature by the configured key with
/// an allowed algorithm (never `none`, never another key family), `exp`
/// present and not past, `nbf` not in the future when present, `sub` a
/// non-empty string of at most [`MAX_SUBJECT_LEN`](crate::MAX_SUBJECT_LEN)
/// bytes, and a token of at most [`DEFAULT_MAX_TOKEN_LEN`] bytes (see
/// [`with_max_token_len`](Self::with_max_token_len)).
///
/// Configured audiences and issuers are required: a token without `aud`
/// (`iss`) is rejected once one is set. A token that carries an `aud` is
/// rejected when no audience is configured (RFC 7519 §4.1.3).
///
/// ```
/// use std::time::Duration;
/// use channels_binding_jwt::{Algorithm, ConfigError, JwtConfig};
///
/// let config = JwtConfig::hs256(b"0123456789abcdef0123456789abcdef")?
///     .with_audience("chat")
///     .with_issuer("https://auth.example.com")
///     .with_leeway(Duration::from_secs(10))?
///     .with_staff_claim("is_staff");
///
/// // Families never mix: an HMAC secret cannot verify RSA signatures.
/// assert_eq!(
///     config.with_algorithms(&[Algorithm::RS256]).unwrap_err(),
///     ConfigError::AlgorithmMismatch(Algorithm::RS256),
/// );
/// // Secrets must be as long as the hash.
/// assert!(JwtConfig::hs256(b"short").is_err());
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct JwtConfig {
    key: DecodingKey,
    key_kind: KeyKind,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    audiences: BTreeSet<String>,
    issuers: BTreeSet<String>,
    staff_claim: Option<String>,
    attribute_claims: BTreeSet<String>,
    max_token_len: usize,
    query_token: bool,
}

impl JwtConfig {
    fn new(key: DecodingKey, key_kind: KeyKind, algorithm: Algorithm) -> Result<Self, ConfigError> {
        if !key_kind.permits(algorithm) {
            return Err(match key_kind {
                KeyKind::Hmac(_) => ConfigError::SecretTooShort {
                    min: min_hmac_len(algorithm),
                },
                _ => ConfigError::AlgorithmMismatch(algorithm),
            });
        }
        Ok(Self {
            key,
            key_kind,
            algorithms: vec![algorithm],
            leeway: DEFAULT_LEEWAY,
            audiences: BTreeSet::new(),
            issuers: BTreeSet::new(),
            staff_claim: None,
            attribute_claims: BTreeSet::new(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            query_token: true,
        })
    }

    fn hmac(secret: &[u8], algorithm: Algorithm) -> Result<Self, ConfigError> {
        Self::new(DecodingKey::from_secret(secret), KeyKind::Hmac(secret.len()), algorithm)
    }

    /// Accepts HS256 tokens signed with `secret`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretTooShort`] when `secret` is shorter than 32 bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self, ConfigError> {
        Self::hmac(secret, Algorithm::HS256)
    }

    /// Accepts HS384 tokens signed with `secret`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretTooShort`] when `secret` is shorter than 48 bytes.
    pub fn hs384(secret: &[u8]) -> Result<Self, ConfigError> {
        Self::hmac(secret, Algorithm::HS384)
    }

    /// Accepts HS512 tokens signed with `secret`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretTooShort`] when `secret` is shorter than 64 bytes.
    pub fn hs512(secret: &[u8]) -> Result<Self, ConfigError> {
        Self::hmac(secret, Algorithm::HS512)
    }

    fn rsa(public_pem: &[u8], algorithm: Algorithm) -> Result<Self, ConfigError> {
        const INVALID: ConfigError = ConfigError::InvalidKey { expected: "RSA" };
        let pem = std::str::from_utf8(public_pem).map_err(|_| INVALID)?;
        // SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`); a
        // private key, a certificate or anything else is refused here rather
        // than failing every verification later.
        let key = RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|_| INVALID)?;
        let bits = key.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(ConfigError::RsaKeyTooSmall {
                bits,
                min: MIN_RSA_BITS,
            });
        }
        let decoding = DecodingKey::from_rsa_raw_components(&key.n().to_bytes_be(), &key.e().to_bytes_be());
        Self::new(decoding, KeyKind::Rsa, algorithm)
    }

    /// Accepts RS256 tokens verified with an RSA public key in PEM format
    /// (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`) of at least
    /// [`MIN_RSA_BITS`] bits. Other RSA algorithms can be allowed with
    /// [`with_algorithms`](Self::with_algorithms); HMAC ones never.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when the PEM is not an RSA public key,
    /// [`ConfigError::RsaKeyTooSmall`] when the key is too small.
    pub fn rs256_pem(public_pem: &[u8]) -> Result<Self, ConfigError> {
        Self::rsa(public_pem, Algorithm::RS256)
    }

    /// Accepts PS256 (RSASSA-PSS) tokens verified with an RSA public key in
    /// PEM format; see [`rs256_pem`](Self::rs256_pem).
    ///
    /// # Errors
    ///
    /// As [`rs256_pem`](Self::rs256_pem).
    pub fn ps256_pem(public_pem: &[u8]) -> Result<Self, ConfigError> {
        Self::rsa(public_pem, Algorithm::PS256)
    }

    /// Accepts ES256 tokens verified with a P-256 public key in PEM format
    /// (`BEGIN PUBLIC KEY`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when the PEM is not an EC public key.
    pub fn es256_pem(public_pem: &[u8]) -> Result<Self, ConfigError> {
        let key = DecodingKey::from_ec_pem(public_pem).map_err(|_| ConfigError::InvalidKey { expected: "P-256" })?;
        Self::new(key, KeyKind::P256, Algorithm::ES256)
    }

    /// Accepts ES384 tokens verified with a P-384 public key in PEM format
    /// (`BEGIN PUBLIC KEY`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when the PEM is not an EC public key.
    pub fn es384_pem(public_pem: &[u8]) -> Result<Self, ConfigError> {
        let key = DecodingKey::from_ec_pem(public_pem).map_err(|_| ConfigError::InvalidKey { expected: "P-384" })?;
        Self::new(key, KeyKind::P384, Algorithm::ES384)
    }

    /// Accepts EdDSA tokens verified with an Ed25519 public key in PEM format
    /// (`BEGIN PUBLIC KEY`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when the PEM is not an Ed25519 public key.
    pub fn eddsa_pem(public_pem: &[u8]) -> Result<Self, ConfigError> {
        let key = DecodingKey::from_ed_pem(public_pem).map_err(|_| ConfigError::InvalidKey { expected: "Ed25519" })?;
        Self::new(key, KeyKind::Ed25519, Algorithm::EdDSA)
    }

    /// Replaces the algorithm allowlist (by default the one algorithm the
    /// constructor names).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoAlgorithm`] for an empty list,
    /// [`ConfigError::AlgorithmMismatch`] for an algorithm of another family
    /// than the key's (or an HMAC algorithm whose hash is longer than the
    /// secret).
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        if algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithm);
        }
        if let Some(&refused) = algorithms.iter().find(|&&a| !self.key_kind.permits(a)) {
            return Err(ConfigError::AlgorithmMismatch(refused));
        }
        let mut allowed = algorithms.to_vec();
        allowed.dedup();
        self.algorithms = allowed;
        Ok(self)
    }

    /// The clock-skew leeway for `exp` and `nbf`, in whole seconds (a
    /// fraction of a second is dropped). Default [`DEFAULT_LEEWAY`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::LeewayTooLarge`] above [`MAX_LEEWAY`].
    pub fn with_leeway(mut self, leeway: Duration) -> Result<Self, ConfigError> {
        if leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge { max: MAX_LEEWAY });
        }
        self.leeway = Duration::from_secs(leeway.as_secs());
        Ok(self)
    }

    /// Accepts tokens meant for `audience`; once any audience is set, `aud`
    /// is required and must name one of them. Call again to accept several.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.insert(audience.into());
        self
    }

    /// Accepts tokens issued by `issuer`; once any issuer is set, `iss` is
    /// required and must be one of them. Call again to accept several.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.insert(issuer.into());
        self
    }

    /// Marks the principal as staff when the claim `name` is the JSON
    /// boolean `true` (anything else, `"true"` included, is not staff). Off
    /// by default: no claim makes anyone staff. Ignored when a resolver is
    /// set ([`JwtStrategy::with_resolver`](crate::JwtStrategy::with_resolver)),
    /// which decides alone.
    pub fn with_staff_claim(mut self, name: impl Into<String>) -> Self {
        self.staff_claim = Some(name.into());
        self
    }

    /// Copies the claim `name`, when present, into the principal's
    /// attributes for permission rules to read (`roles`, `tenant`, …).
    /// Ignored when a resolver is set.
    pub fn with_attribute_claim(mut self, name: impl Into<String>) -> Self {
        self.attribute_claims.insert(name.into());
        self
    }

    /// The bound on a token's length in bytes (default
    /// [`DEFAULT_MAX_TOKEN_LEN`]); longer tokens are rejected unread.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MaxTokenLen`] outside 256 B ..= 64 KiB.
    pub fn with_max_token_len(mut self, max: usize) -> Result<Self, ConfigError> {
        if !(MIN_MAX_TOKEN_LEN..=MAX_MAX_TOKEN_LEN).contains(&max) {
            return Err(ConfigError::MaxTokenLen {
                min: MIN_MAX_TOKEN_LEN,
                max: MAX_MAX_TOKEN_LEN,
            });
        }
        self.max_token_len = max;
        Ok(self)
    }

    /// Whether the `access_token` query parameter is read when there is no
    /// `Authorization: Bearer` header (default `true`: browsers cannot set
    /// headers on a WebSocket upgrade). Turn it off when URLs end up in
    /// logs you do not control and every client can send the header.
    pub fn with_query_token(mut self, enabled: bool) -> Self {
        self.query_token = enabled;
        self
    }

    /// The allowed algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The clock-skew leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The bound on a token's length in bytes.
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }

    /// Whether the `access_token` query parameter is read.
    pub fn query_token(&self) -> bool {
        self.query_token
    }

    pub(crate) fn key(&self) -> &DecodingKey {
        &self.key
    }

    pub(crate) fn staff_claim(&self) -> Option<&str> {
        self.staff_claim.as_deref()
    }

    pub(crate) fn attribute_claims(&self) -> impl Iterator<Item = &str> {
        self.attribute_claims.iter().map(String::as_str)
    }

    /// The jsonwebtoken validation these settings stand for.
    pub(crate) fn validation(&self) -> Validation {
        let mut validation = Validation::new(self.algorithms[0]);
        validation.algorithms.clone_from(&self.algorithms);
        validation.leeway = self.leeway.as_secs();
        validation.reject_tokens_expiring_in_less_than = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        let mut required = vec!["exp", "sub"];
        if !self.audiences.is_empty() {
            validation.aud = Some(self.audiences.iter().cloned().collect());
            required.push("aud");
        }
        if !self.issuers.is_empty() {
            validation.iss = Some(self.issuers.iter().cloned().collect());
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

fn min_hmac_len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

impl fmt::Debug for JwtConfig {
    // The key stays out of logs (jsonwebtoken redacts it too; be explicit).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("key", &"[redacted]")
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("audiences", &self.audiences)
            .field("issuers", &self.issuers)
            .field("staff_claim", &self.staff_claim)
            .field("attribute_claims", &self.attribute_claims)
            .field("max_token_len", &self.max_token_len)
            .field("query_token", &self.query_token)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn hmac_secrets_must_be_as_long_as_the_hash() {
        assert_eq!(
            JwtConfig::hs256(&SECRET[..31]).unwrap_err(),
            ConfigError::SecretTooShort { min: 32 }
        );
        assert!(JwtConfig::hs256(SECRET).is_ok());
        assert_eq!(
            JwtConfig::hs384(SECRET).unwrap_err(),
            ConfigError::SecretTooShort { min: 48 }
        );
        assert_eq!(
            JwtConfig::hs512(SECRET).unwrap_err(),
            ConfigError::SecretTooShort { min: 64 }
        );
        assert!(JwtConfig::hs512(&[7; 64]).is_ok());
    }

    #[test]
    fn hmac_allowlist_never_takes_another_family_nor_a_longer_hash() {
        let config = JwtConfig::hs256(SECRET).unwrap();
        for algorithm in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA] {
            assert_eq!(
                config
                    .clone()
                    .with_algorithms(&[Algorithm::HS256, algorithm])
                    .unwrap_err(),
                ConfigError::AlgorithmMismatch(algorithm)
            );
        }
        // A 32-byte secret is too short for HS512.
        assert_eq!(
            config.clone().with_algorithms(&[Algorithm::HS512]).unwrap_err(),
            ConfigError::AlgorithmMismatch(Algorithm::HS512)
        );
        assert_eq!(config.with_algorithms(&[]).unwrap_err(), ConfigError::NoAlgorithm);
    }

    #[test]
    fn leeway_is_capped() {
        let config = JwtConfig::hs256(SECRET).unwrap();
        assert_eq!(config.leeway(), DEFAULT_LEEWAY);
        assert_eq!(
            config.clone().with_leeway(Duration::from_secs(301)).unwrap_err(),
            ConfigError::LeewayTooLarge { max: MAX_LEEWAY }
        );
        let config = config.with_leeway(Duration::from_millis(300_500)).unwrap_err();
        assert_eq!(config, ConfigError::LeewayTooLarge { max: MAX_LEEWAY });
        let config = JwtConfig::hs256(SECRET)
            .unwrap()
            .with_leeway(Duration::from_millis(1_500))
            .unwrap();
        assert_eq!(config.leeway(), Duration::from_secs(1));
        assert_eq!(config.validation().leeway, 1);
    }

    #[test]
    fn max_token_len_is_bounded() {
        let config = JwtConfig::hs256(SECRET).unwrap();
        assert!(config.clone().with_max_token_len(255).is_err());
        assert!(config.clone().with_max_token_len(64 * 1024 + 1).is_err());
        assert_eq!(config.with_max_token_len(16 * 1024).unwrap().max_token_len(), 16 * 1024);
    }

    #[test]
    fn validation_requires_exp_and_sub_and_configured_aud_and_iss() {
        let validation = JwtConfig::hs256(SECRET).unwrap().validation();
        let required: BTreeSet<&str> = validation.required_spec_claims.iter().map(String::as_str).collect();
        assert_eq!(required, BTreeSet::from(["exp", "sub"]));
        assert!(validation.validate_exp && validation.validate_nbf && validation.validate_aud);
        assert_eq!(validation.leeway, 5);

        let validation = JwtConfig::hs256(SECRET)
            .unwrap()
            .with_audience("chat")
            .with_issuer("auth")
            .validation();
        let required: BTreeSet<&str> = validation.required_spec_claims.iter().map(String::as_str).collect();
        assert_eq!(required, BTreeSet::from(["aud", "exp", "iss", "sub"]));
        assert_eq!(validation.algorithms, vec![Algorithm::HS256]);
    }

    #[test]
    fn asymmetric_constructors_refuse_garbage_and_private_keys() {
        assert_eq!(
            JwtConfig::rs256_pem(b"not a pem").unwrap_err(),
            ConfigError::InvalidKey { expected: "RSA" }
        );
        assert!(JwtConfig::es256_pem(b"not a pem").is_err());
        assert!(JwtConfig::eddsa_pem(b"not a pem").is_err());
        assert!(JwtConfig::rs256_pem(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config = JwtConfig::hs256(SECRET).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        assert!(debug.contains("[redacted]"));
    }
}
