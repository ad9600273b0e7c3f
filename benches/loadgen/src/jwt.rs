//! A minimal HS256 JWT signer for the fan-out writer, which acts as the
//! demo's staff user (id 5763) when the quickstart accepts bearer tokens
//! (DEMO.md: `CHANNELS_BINDING_JWT_SECRET`, claim `sub` as a string, `exp`
//! required). Signing only; the server does the verifying.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An HS256 token for `subject`, valid until `expires` (unix seconds).
pub(crate) fn hs256(secret: &[u8], subject: &str, expires: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({ "sub": subject, "exp": expires });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let signature = sign(secret, &signing_input);
    format!("{signing_input}.{signature}")
}

/// The base64url HMAC-SHA256 of `input`.
fn sign(secret: &[u8], input: &str) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_well_known_example() {
        // The HS256 example token of jwt.io.
        let input = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                     eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";
        assert_eq!(
            sign(b"your-256-bit-secret", input),
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
    }

    #[test]
    fn matches_the_rfc_7515_shape() {
        let token = hs256(b"secret", "5763", 2_000_000_000);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url claims");
        let claims: serde_json::Value = serde_json::from_slice(&claims).expect("JSON claims");
        assert_eq!(claims["sub"], "5763");
        assert_eq!(claims["exp"], 2_000_000_000u64);
        // Same input, same signature; another key, another one.
        assert_eq!(token, hs256(b"secret", "5763", 2_000_000_000));
        assert_ne!(token, hs256(b"other", "5763", 2_000_000_000));
    }
}
