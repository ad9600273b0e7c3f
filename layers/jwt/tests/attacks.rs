//! Every known way of getting a forged, stale or malformed JWT accepted.
//!
//! Each attack comes with a control: the same token, or the same strategy,
//! accepted when only the attacked property is fixed, so each test fails if
//! the rejection comes from somewhere else (or from nowhere).

mod common;

use std::time::Duration;

use channels_binding_jwt::{Algorithm, ConfigError, JwtConfig, JwtStrategy};
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

use common::keys::{
    EC_P256_PRIVATE_PEM, EC_P256_PUBLIC_PEM, ED25519_PRIVATE_PEM, ED25519_PUBLIC_PEM, RSA_PRIVATE_PEM, RSA_PUBLIC_PEM,
    RSA_PUBLIC_PKCS1_PEM,
};
use common::{SECRET, accepted, b64, claims, claims_with, hs256, now, rejected, sign, unb64};

const INVALID: &str = "invalid token";
const EXPIRED: &str = "token expired";
const NOT_YET_VALID: &str = "token not yet valid";

fn strategy() -> JwtStrategy {
    JwtStrategy::new(JwtConfig::hs256(SECRET).expect("a 32-byte secret"))
}

fn rsa_strategy() -> JwtStrategy {
    JwtStrategy::new(JwtConfig::rs256_pem(RSA_PUBLIC_PEM.as_bytes()).expect("a 2048-bit public key"))
}

/// A token with this header JSON and payload JSON, and this signature.
fn handmade(header: &str, payload: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.as_bytes()),
        b64(payload.to_string().as_bytes())
    )
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let strategy = strategy();
    accepted(&strategy, &hs256(&claims())).await;

    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        // The classic form: an empty signature.
        rejected(&strategy, &handmade(&header, &claims(), ""), INVALID).await;
        // With some signature, so the shape check alone cannot catch it.
        rejected(&strategy, &handmade(&header, &claims(), "c2lnbmF0dXJl"), INVALID).await;
    }
    // A real HS256 signature under an `alg: none` header.
    let genuine = hs256(&claims());
    let signature = genuine.rsplit('.').next().unwrap();
    rejected(&strategy, &handmade(r#"{"alg":"none"}"#, &claims(), signature), INVALID).await;
}

#[tokio::test]
async fn other_hmac_algorithms_than_allowed_are_rejected() {
    let secret = [42u8; 64];
    let hs512 = sign(Algorithm::HS512, &EncodingKey::from_secret(&secret), &claims());
    let hs384 = sign(Algorithm::HS384, &EncodingKey::from_secret(&secret), &claims());

    let only_hs256 = JwtStrategy::new(JwtConfig::hs256(&secret).unwrap());
    rejected(&only_hs256, &hs512, INVALID).await;
    rejected(&only_hs256, &hs384, INVALID).await;

    // Control: the tokens are good once their algorithm is allowed.
    let config = JwtConfig::hs256(&secret)
        .unwrap()
        .with_algorithms(&[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512])
        .unwrap();
    let all_hmac = JwtStrategy::new(config);
    accepted(&all_hmac, &hs512).await;
    accepted(&all_hmac, &hs384).await;
}

#[tokio::test]
async fn rsa_public_key_used_as_hmac_secret_is_rejected() {
    // Algorithm confusion: the attacker knows the public key and signs HS256
    // with its PEM bytes, hoping the verifier uses "the key" as an HMAC secret.
    for public_pem in [RSA_PUBLIC_PEM, RSA_PUBLIC_PKCS1_PEM] {
        for secret in [public_pem, public_pem.trim_end()] {
            for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let forged = sign(algorithm, &EncodingKey::from_secret(secret.as_bytes()), &claims());
                rejected(&rsa_strategy(), &forged, INVALID).await;
                let all_rsa = JwtConfig::rs256_pem(public_pem.as_bytes())
                    .unwrap()
                    .with_algorithms(&[
                        Algorithm::RS256,
                        Algorithm::RS384,
                        Algorithm::RS512,
                        Algorithm::PS256,
                        Algorithm::PS384,
                        Algorithm::PS512,
                    ])
                    .unwrap();
                rejected(&JwtStrategy::new(all_rsa), &forged, INVALID).await;
            }
        }
    }

    // And an RSA configuration can never be told to allow HMAC.
    assert_eq!(
        JwtConfig::rs256_pem(RSA_PUBLIC_PEM.as_bytes())
            .unwrap()
            .with_algorithms(&[Algorithm::RS256, Algorithm::HS256])
            .unwrap_err(),
        ConfigError::AlgorithmMismatch(Algorithm::HS256)
    );

    // Control: the forged token is well made; an HMAC configuration keyed by
    // the PEM bytes would take it. Only the family rule stops it.
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes()),
        &claims(),
    );
    let naive = JwtStrategy::new(JwtConfig::hs256(RSA_PUBLIC_PEM.as_bytes()).unwrap());
    accepted(&naive, &forged).await;
    // And a genuine RS256 token passes the RSA strategy.
    let genuine = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap(),
        &claims(),
    );
    accepted(&rsa_strategy(), &genuine).await;
    // ...but not an HMAC strategy, nor an RSA strategy allowing only PS256.
    rejected(&strategy(), &genuine, INVALID).await;
    let ps256 = JwtStrategy::new(JwtConfig::ps256_pem(RSA_PUBLIC_PEM.as_bytes()).unwrap());
    rejected(&ps256, &genuine, INVALID).await;
}

#[tokio::test]
async fn ec_and_ed_public_keys_used_as_hmac_secrets_are_rejected() {
    let es256 = JwtStrategy::new(JwtConfig::es256_pem(EC_P256_PUBLIC_PEM.as_bytes()).unwrap());
    let eddsa = JwtStrategy::new(JwtConfig::eddsa_pem(ED25519_PUBLIC_PEM.as_bytes()).unwrap());
    for (strategy, public_pem) in [(&es256, EC_P256_PUBLIC_PEM), (&eddsa, ED25519_PUBLIC_PEM)] {
        let forged = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(public_pem.as_bytes()),
            &claims(),
        );
        rejected(strategy, &forged, INVALID).await;
    }
    // Controls: genuine tokens pass, and each strategy refuses the other's.
    let genuine_es256 = sign(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(EC_P256_PRIVATE_PEM.as_bytes()).unwrap(),
        &claims(),
    );
    let genuine_eddsa = sign(
        Algorithm::EdDSA,
        &EncodingKey::from_ed_pem(ED25519_PRIVATE_PEM.as_bytes()).unwrap(),
        &claims(),
    );
    accepted(&es256, &genuine_es256).await;
    accepted(&eddsa, &genuine_eddsa).await;
    rejected(&es256, &genuine_eddsa, INVALID).await;
    rejected(&eddsa, &genuine_es256, INVALID).await;
}

#[tokio::test]
async fn expired_tokens_are_rejected_beyond_the_leeway_only() {
    // Default leeway (5 s): a minute late is expired.
    rejected(&strategy(), &hs256(&claims_with("exp", json!(now() - 60))), EXPIRED).await;
    rejected(&strategy(), &hs256(&claims_with("exp", json!(now() - 30))), EXPIRED).await;
    // One second late is within the default leeway.
    accepted(&strategy(), &hs256(&claims_with("exp", json!(now() - 1)))).await;

    // Ten seconds late: accepted with a 30 s leeway, expired without one.
    let late = hs256(&claims_with("exp", json!(now() - 10)));
    let lenient = JwtConfig::hs256(SECRET)
        .unwrap()
        .with_leeway(Duration::from_secs(30))
        .unwrap();
    accepted(&JwtStrategy::new(lenient), &late).await;
    let strict = JwtConfig::hs256(SECRET).unwrap().with_leeway(Duration::ZERO).unwrap();
    rejected(&JwtStrategy::new(strict), &late, EXPIRED).await;
    rejected(&strategy(), &late, EXPIRED).await;
}

#[tokio::test]
async fn tokens_used_before_nbf_are_rejected() {
    rejected(
        &strategy(),
        &hs256(&claims_with("nbf", json!(now() + 120))),
        NOT_YET_VALID,
    )
    .await;
    rejected(&strategy(), &hs256(&claims_with("nbf", json!("yesterday"))), INVALID).await;
    // Controls: a past `nbf`, and one within the leeway, are fine.
    accepted(&strategy(), &hs256(&claims_with("nbf", json!(now() - 10)))).await;
    accepted(&strategy(), &hs256(&claims_with("nbf", json!(now() + 2)))).await;
}

#[tokio::test]
async fn exp_is_required_and_must_be_a_date() {
    rejected(&strategy(), &hs256(&claims_with("exp", Value::Null)), INVALID).await;
    rejected(&strategy(), &hs256(&claims_with("exp", json!("tomorrow"))), INVALID).await;
    rejected(&strategy(), &hs256(&claims_with("exp", json!(-1))), INVALID).await;
    rejected(&strategy(), &hs256(&claims_with("exp", json!(u64::MAX))), INVALID).await;
    accepted(&strategy(), &hs256(&claims())).await;
}

#[tokio::test]
async fn audience_is_checked_when_configured() {
    let config = JwtConfig::hs256(SECRET)
        .unwrap()
        .with_audience("chat")
        .with_audience("admin");
    let strategy = JwtStrategy::new(config);
    rejected(&strategy, &hs256(&claims()), INVALID).await;
    rejected(&strategy, &hs256(&claims_with("aud", json!("other"))), INVALID).await;
    rejected(
        &strategy,
        &hs256(&claims_with("aud", json!(["other", "third"]))),
        INVALID,
    )
    .await;
    rejected(&strategy, &hs256(&claims_with("aud", json!([]))), INVALID).await;
    rejected(&strategy, &hs256(&claims_with("aud", json!(7))), INVALID).await;
    accepted(&strategy, &hs256(&claims_with("aud", json!("chat")))).await;
    accepted(&strategy, &hs256(&claims_with("aud", json!(["other", "admin"])))).await;

    // Without a configured audience, a token meant for someone is refused
    // (RFC 7519 §4.1.3).
    rejected(&self::strategy(), &hs256(&claims_with("aud", json!("chat"))), INVALID).await;
}

#[tokio::test]
async fn issuer_is_checked_when_configured() {
    let strategy = JwtStrategy::new(JwtConfig::hs256(SECRET).unwrap().with_issuer("https://auth.example"));
    rejected(&strategy, &hs256(&claims()), INVALID).await;
    rejected(
        &strategy,
        &hs256(&claims_with("iss", json!("https://evil.example"))),
        INVALID,
    )
    .await;
    rejected(
        &strategy,
        &hs256(&claims_with("iss", json!("https://auth.example/"))),
        INVALID,
    )
    .await;
    accepted(&strategy, &hs256(&claims_with("iss", json!("https://auth.example")))).await;
}

#[tokio::test]
async fn sub_must_be_a_bounded_non_empty_string() {
    for sub in [
        Value::Null,
        json!(""),
        json!(5763),
        json!(["5763"]),
        json!({"id": "5763"}),
        json!("x".repeat(257)),
        json!("57\n63"),
    ] {
        rejected(&strategy(), &hs256(&claims_with("sub", sub)), INVALID).await;
    }
    accepted(&strategy(), &hs256(&claims_with("sub", json!("x".repeat(256))))).await;
}

#[tokio::test]
async fn garbage_is_rejected() {
    for garbage in [
        "garbage",
        "not a token",
        "a.b.c",
        "a.b.c.d",
        "...",
        "eyJ.eyJ.eyJ",
        "{\"alg\":\"HS256\"}.{}.x",
        "Basic",
        "null",
    ] {
        rejected(&strategy(), garbage, INVALID).await;
    }
    // Valid base64url JSON that is not a JWT header or claims.
    rejected(&strategy(), &format!("{}.{}.c2ln", b64(b"[]"), b64(b"{}")), INVALID).await;
    rejected(&strategy(), &format!("{}.{}.c2ln", b64(b"{}"), b64(b"[]")), INVALID).await;
}

#[tokio::test]
async fn truncated_tokens_are_rejected() {
    let token = hs256(&claims());
    accepted(&strategy(), &token).await;
    let (head, signature) = token.rsplit_once('.').unwrap();
    let header = head.split('.').next().unwrap();
    for truncated in [
        &token[..token.len() - 1],
        &token[..token.len() - 5],
        &token[..token.len() / 2],
        head,
        &token[..head.len() + 1],
        header,
        &signature[1..],
    ] {
        rejected(&strategy(), truncated, INVALID).await;
    }
}

#[tokio::test]
async fn bad_base64_is_rejected() {
    let token = hs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    for bad in [
        // Characters outside base64url.
        format!("{header}.{payload}!.{signature}"),
        format!("{header}.{payload}.{signature}="),
        format!("{header}.{}.{signature}", payload.replace('e', "+")),
        format!("{header}.{}.{signature}", payload.replace('J', "/")),
        format!("{header}=.{payload}.{signature}"),
        // Impossible lengths.
        format!("{header}A.{payload}.{signature}"),
        format!("{header}.{payload}A.{signature}"),
        format!("{header}.{payload}.{signature}A"),
        // Standard base64 of the same JSON, padded.
        format!("{header}==.{payload}.{signature}"),
    ] {
        rejected(&strategy(), &bad, INVALID).await;
    }
}

#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let token = hs256(&claims());
    accepted(&strategy(), &token).await;
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = unb64(signature);
    for position in [0, signature.len() / 2, signature.len() - 1] {
        for bit in [0x01, 0x80] {
            let mut flipped = signature.clone();
            flipped[position] ^= bit;
            rejected(&strategy(), &format!("{signed}.{}", b64(&flipped)), INVALID).await;
        }
    }
    // An extra signature byte.
    let mut longer = signature.clone();
    longer.push(0);
    rejected(&strategy(), &format!("{signed}.{}", b64(&longer)), INVALID).await;

    // Promoting oneself without re-signing.
    let header = signed.split('.').next().unwrap();
    let forged = claims_with("sub", json!("1"));
    let token_signature = token.rsplit('.').next().unwrap();
    let promoted = format!("{header}.{}.{token_signature}", b64(forged.to_string().as_bytes()));
    rejected(&strategy(), &promoted, INVALID).await;

    // Signed with another secret.
    let other = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another secret, 32 bytes or more"),
        &claims(),
    );
    rejected(&strategy(), &other, INVALID).await;

    // An RS256 signature flipped.
    let genuine = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap(),
        &claims(),
    );
    let (signed, signature) = genuine.rsplit_once('.').unwrap();
    let mut flipped = unb64(signature);
    flipped[10] ^= 0x01;
    rejected(&rsa_strategy(), &format!("{signed}.{}", b64(&flipped)), INVALID).await;
}

#[tokio::test]
async fn oversized_tokens_are_rejected_unread() {
    let big = hs256(&claims_with("padding", json!("x".repeat(9 * 1024))));
    assert!(big.len() > 8 * 1024);
    rejected(&strategy(), &big, INVALID).await;
    // Control: the token is valid; only its size was the problem.
    let roomy = JwtConfig::hs256(SECRET).unwrap().with_max_token_len(16 * 1024).unwrap();
    accepted(&JwtStrategy::new(roomy), &big).await;

    // Just under the default bound is fine: grow the padding until one more
    // byte would cross it.
    let padded = |len: usize| hs256(&claims_with("padding", json!("x".repeat(len))));
    let mut len = 5 * 1024;
    while padded(len + 1).len() <= 8 * 1024 {
        len += 1;
    }
    let fits = padded(len);
    assert!(fits.len() > 8 * 1024 - 4, "{}", fits.len());
    assert!(fits.len() <= 8 * 1024);
    accepted(&strategy(), &fits).await;
}

#[tokio::test]
async fn two_tokens_are_rejected_even_when_both_are_valid() {
    let token = hs256(&claims());
    let other = hs256(&claims_with("sub", json!("1")));
    let parts = common::with_headers(&[&format!("Bearer {token}"), &format!("Bearer {other}")]);
    let error = common::authenticate(&strategy(), &parts).await.unwrap_err();
    assert_eq!(error.message(), "multiple tokens");

    let mut parts = common::query(&format!("access_token={other}"));
    parts
        .headers
        .insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    let error = common::authenticate(&strategy(), &parts).await.unwrap_err();
    assert_eq!(error.message(), "multiple tokens");
}
