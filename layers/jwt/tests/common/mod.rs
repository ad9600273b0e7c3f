//! Helpers shared by the integration tests: keys, token signing, requests.

#![allow(dead_code, unreachable_pub)]

pub mod keys;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use channels_binding_core::Identity;
use channels_binding_core::auth::{AuthError, AuthErrorKind, AuthStrategy};
use channels_binding_jwt::{Algorithm, JwtStrategy};
use http::request::Parts;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

/// A 32-byte HMAC secret.
pub const SECRET: &[u8] = b"test secret: 32 bytes or longer!";

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Valid claims for user `5763`, expiring in an hour.
pub fn claims() -> Value {
    json!({ "sub": "5763", "exp": now() + 3600, "iat": now() })
}

/// `claims()` with `key` set to `value` (or removed when `value` is null).
pub fn claims_with(key: &str, value: Value) -> Value {
    let mut claims = claims();
    let map = claims.as_object_mut().expect("an object");
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), value);
    }
    claims
}

/// Signs `claims` with `algorithm` and `key`.
pub fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("signing works")
}

/// Signs `claims` with HS256 and [`SECRET`].
pub fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), claims)
}

/// base64url without padding, as in a JWT.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// A request with these `Authorization` headers.
pub fn with_headers(authorization: &[&str]) -> Parts {
    let mut request = http::Request::get("/ws");
    for value in authorization {
        request = request.header(http::header::AUTHORIZATION, *value);
    }
    request.body(()).expect("a request").into_parts().0
}

/// A request with `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> Parts {
    with_headers(&[&format!("Bearer {token}")])
}

/// A request to `/ws?<query>`.
pub fn query(query: &str) -> Parts {
    http::Request::get(format!("/ws?{query}"))
        .body(())
        .expect("a request")
        .into_parts()
        .0
}

/// `access_token=<token>`, percent-encoded.
pub fn access_token(token: &str) -> String {
    format!(
        "access_token={}",
        form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    )
}

/// Runs the strategy on a request.
pub async fn authenticate(strategy: &JwtStrategy, parts: &Parts) -> Result<Option<Identity>, AuthError> {
    strategy.authenticate(parts).await
}

/// The token is accepted from the header and from the query parameter;
/// returns the identity.
pub async fn accepted(strategy: &JwtStrategy, token: &str) -> Identity {
    let from_header = authenticate(strategy, &bearer(token))
        .await
        .unwrap_or_else(|e| panic!("header token rejected: {e}"))
        .expect("header token recognised");
    let from_query = authenticate(strategy, &query(&access_token(token)))
        .await
        .unwrap_or_else(|e| panic!("query token rejected: {e}"))
        .expect("query token recognised");
    assert_eq!(from_header, from_query);
    from_header
}

/// The token is rejected, from the header and from the query parameter,
/// as invalid with exactly `message`, which never quotes the token.
pub async fn rejected(strategy: &JwtStrategy, token: &str, message: &str) {
    let requests = [bearer(token), query(&access_token(token))];
    for parts in &requests {
        let error = authenticate(strategy, parts)
            .await
            .expect_err("the token must be rejected");
        assert_eq!(error.kind(), AuthErrorKind::Invalid);
        assert_eq!(error.message(), message);
        assert!(token.is_empty() || !error.to_string().contains(token));
    }
}
