//! The strategy's contract: where tokens are found, what is "not mine",
//! how claims become an identity, and the resolver hook.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use channels_binding_core::auth::{AuthError, AuthErrorKind, AuthStrategies, AuthStrategy};
use channels_binding_core::{Identity, Principal};
use channels_binding_jwt::{Algorithm, Claims, ConfigError, JwtConfig, JwtStrategy, MIN_RSA_BITS, TokenIssuer};
use futures_util::future::BoxFuture;
use jsonwebtoken::EncodingKey;
use serde_json::json;

use common::keys::{RSA_1024_PUBLIC_PEM, RSA_PRIVATE_PEM, RSA_PUBLIC_PEM, RSA_PUBLIC_PKCS1_PEM};
use common::{SECRET, accepted, authenticate, bearer, claims, claims_with, hs256, now, query, rejected, with_headers};

fn strategy() -> JwtStrategy {
    JwtStrategy::new(JwtConfig::hs256(SECRET).expect("a 32-byte secret"))
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[tokio::test]
async fn bearer_header_is_read_with_any_scheme_case() {
    let token = hs256(&claims());
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let parts = with_headers(&[&format!("{scheme} {token}")]);
        let identity = authenticate(&strategy(), &parts).await.unwrap().unwrap();
        assert_eq!(identity.id(), Some("5763"));
    }
}

#[tokio::test]
async fn access_token_query_parameter_is_read_and_percent_decoded() {
    let token = hs256(&claims());
    let encoded = token.replace('.', "%2E").replace('-', "%2D");
    for q in [
        format!("access_token={token}"),
        format!("room=1&access_token={encoded}&x=%20"),
    ] {
        let identity = authenticate(&strategy(), &query(&q)).await.unwrap().unwrap();
        assert_eq!(identity.id(), Some("5763"));
    }
    // Another parameter name is not a token.
    assert_eq!(
        authenticate(&strategy(), &query(&format!("token={token}"))).await,
        Ok(None)
    );
    // The query source can be turned off.
    let header_only = JwtStrategy::new(JwtConfig::hs256(SECRET).unwrap().with_query_token(false));
    assert_eq!(
        authenticate(&header_only, &query(&format!("access_token={token}"))).await,
        Ok(None)
    );
    assert!(authenticate(&header_only, &bearer(&token)).await.unwrap().is_some());
}

#[tokio::test]
async fn no_token_or_another_scheme_is_not_mine() {
    assert_eq!(authenticate(&strategy(), &with_headers(&[])).await, Ok(None));
    assert_eq!(authenticate(&strategy(), &query("room=1")).await, Ok(None));
    for header in [
        "Basic dXNlcjpwYXNzd29yZA==",
        "Digest username=\"u\"",
        "Token abc",
        "Bearerabc",
    ] {
        assert_eq!(
            authenticate(&strategy(), &with_headers(&[header])).await,
            Ok(None),
            "{header}"
        );
    }
    // A Basic header next to a query token: the token counts.
    let mut parts = query(&format!("access_token={}", hs256(&claims())));
    parts
        .headers
        .insert(http::header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
    assert!(authenticate(&strategy(), &parts).await.unwrap().is_some());
}

#[tokio::test]
async fn an_empty_bearer_is_mine_and_invalid() {
    for header in ["Bearer", "Bearer ", "bearer    "] {
        let error = authenticate(&strategy(), &with_headers(&[header])).await.unwrap_err();
        assert_eq!(error.message(), "invalid token");
    }
    let error = authenticate(&strategy(), &query("access_token=")).await.unwrap_err();
    assert_eq!(error.message(), "invalid token");
}

#[tokio::test]
async fn an_invalid_token_stops_the_chain() {
    // A later strategy that would let anyone in must not be reached.
    struct Everyone;
    impl AuthStrategy for Everyone {
        fn authenticate<'a>(
            &'a self,
            _: &'a http::request::Parts,
        ) -> BoxFuture<'a, Result<Option<Identity>, AuthError>> {
            Box::pin(async { Ok(Some(Identity::from(Principal::new("everyone")))) })
        }
    }
    let chain = AuthStrategies::new().with(strategy()).with(Everyone);
    assert_eq!(chain.challenges(), vec!["Bearer"]);
    let error = chain.authenticate(&bearer("forged.token.here")).await.unwrap_err();
    assert_eq!(error.message(), "invalid token");
    // No token: the next strategy decides.
    let identity = chain.authenticate(&with_headers(&[])).await.unwrap();
    assert_eq!(identity.id(), Some("everyone"));
}

#[tokio::test]
async fn claims_become_a_principal_expiring_with_the_token() {
    let exp = now() + 600;
    let identity = accepted(&strategy(), &hs256(&claims_with("exp", json!(exp)))).await;
    let principal = identity.principal().unwrap();
    assert_eq!(principal.id(), "5763");
    assert_eq!(principal.expiry(), Some(at(exp)));
    assert!(!principal.is_staff());
    assert!(principal.attributes().is_empty());
    assert_eq!(strategy().challenge(), Some("Bearer"));
}

#[tokio::test]
async fn staff_comes_only_from_the_configured_boolean_claim() {
    let staff_token = hs256(&claims_with("is_staff", json!(true)));
    // Off by default: the claim alone does nothing.
    assert!(!accepted(&strategy(), &staff_token).await.is_staff());

    let configured = JwtStrategy::new(JwtConfig::hs256(SECRET).unwrap().with_staff_claim("is_staff"));
    assert!(accepted(&configured, &staff_token).await.is_staff());
    for not_staff in [json!(false), json!("true"), json!(1), json!(null), json!([true])] {
        let token = hs256(&claims_with("is_staff", not_staff.clone()));
        assert!(!accepted(&configured, &token).await.is_staff(), "{not_staff}");
    }
    assert!(!accepted(&configured, &hs256(&claims())).await.is_staff());
}

#[tokio::test]
async fn attribute_claims_are_copied_when_present() {
    let config = JwtConfig::hs256(SECRET)
        .unwrap()
        .with_attribute_claim("roles")
        .with_attribute_claim("tenant");
    let strategy = JwtStrategy::new(config);
    let token = hs256(&claims_with("roles", json!(["editor"])));
    let identity = accepted(&strategy, &token).await;
    let attributes = identity.principal().unwrap().attributes();
    assert_eq!(attributes.get("roles"), Some(&json!(["editor"])));
    assert_eq!(attributes.get("tenant"), None);
    assert_eq!(attributes.len(), 1);
}

fn resolver_strategy(
    calls: &Arc<AtomicUsize>,
    resolve: fn(&Claims) -> Result<Option<Principal>, AuthError>,
) -> JwtStrategy {
    let calls = Arc::clone(calls);
    strategy().with_resolver(move |claims| {
        calls.fetch_add(1, Ordering::SeqCst);
        let result = resolve(&claims);
        Box::pin(async move { result })
    })
}

#[tokio::test]
async fn the_resolver_decides_the_principal() {
    let calls = Arc::new(AtomicUsize::new(0));
    let strategy = resolver_strategy(&calls, |claims| {
        assert_eq!(claims.subject(), "5763");
        assert_eq!(claims.get("plan"), Some(&json!("gold")));
        Ok(Some(Principal::new(format!("user-{}", claims.subject())).staff(true)))
    });
    let exp = now() + 600;
    let token = hs256(&claims_with("plan", json!("gold")).tap_exp(exp));
    let identity = accepted(&strategy, &token).await;
    assert_eq!(identity.id(), Some("user-5763"));
    assert!(identity.is_staff());
    // Expiry capped at the token's.
    assert_eq!(identity.principal().unwrap().expiry(), Some(at(exp)));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_resolver_cannot_extend_the_token_but_may_shorten_it() {
    let calls = Arc::new(AtomicUsize::new(0));
    let later = resolver_strategy(&calls, |_| {
        Ok(Some(
            Principal::new("5763").expires_at(SystemTime::now() + Duration::from_secs(86_400)),
        ))
    });
    let exp = now() + 600;
    let token = hs256(&claims().tap_exp(exp));
    assert_eq!(
        accepted(&later, &token).await.principal().unwrap().expiry(),
        Some(at(exp))
    );

    let sooner = resolver_strategy(&calls, |_| Ok(Some(Principal::new("5763").expires_at(at(now() + 60)))));
    let expiry = accepted(&sooner, &token).await.principal().unwrap().expiry().unwrap();
    assert!(expiry < at(exp), "{expiry:?}");
}

#[tokio::test]
async fn a_user_the_resolver_does_not_find_is_an_invalid_token() {
    let calls = Arc::new(AtomicUsize::new(0));
    let strategy = resolver_strategy(&calls, |_| Ok(None));
    rejected(&strategy, &hs256(&claims()), "invalid token").await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn resolver_errors_pass_through() {
    let calls = Arc::new(AtomicUsize::new(0));
    let strategy = resolver_strategy(&calls, |_| Err(AuthError::unavailable("user store unavailable")));
    let error = authenticate(&strategy, &bearer(&hs256(&claims()))).await.unwrap_err();
    assert_eq!(error.kind(), AuthErrorKind::Unavailable);
    assert_eq!(error.message(), "user store unavailable");
}

#[tokio::test]
async fn the_resolver_never_sees_an_invalid_token() {
    let calls = Arc::new(AtomicUsize::new(0));
    let strategy = resolver_strategy(&calls, |_| Ok(Some(Principal::new("anyone"))));
    rejected(
        &strategy,
        &hs256(&claims_with("exp", json!(now() - 600))),
        "token expired",
    )
    .await;
    rejected(&strategy, "forged.token.here", "invalid token").await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn issued_tokens_round_trip() {
    let issuer = TokenIssuer::new(SECRET)
        .unwrap()
        .with_issuer("https://auth.example")
        .with_audience("chat");
    let config = JwtConfig::hs256(SECRET)
        .unwrap()
        .with_issuer("https://auth.example")
        .with_audience("chat")
        .with_staff_claim("is_staff");
    let strategy = JwtStrategy::new(config);

    let token = issuer.issue("5763", Duration::from_secs(120)).unwrap();
    let identity = strategy.identify(&token).await.unwrap();
    assert_eq!(identity.id(), Some("5763"));
    let expiry = identity.principal().unwrap().expiry().unwrap();
    assert!(expiry > SystemTime::now() + Duration::from_secs(100));
    assert!(expiry <= SystemTime::now() + Duration::from_secs(121));

    // Extra claims, which cannot override the reserved ones.
    let extra = json!({"is_staff": true, "sub": "1", "exp": 1, "aud": "elsewhere"});
    let token = issuer
        .issue_with("5763", Duration::from_secs(60), extra.as_object().unwrap().clone())
        .unwrap();
    let claims = strategy.verify(&token).unwrap();
    assert_eq!(claims.subject(), "5763");
    assert_eq!(claims.issuer(), Some("https://auth.example"));
    assert!(strategy.identify(&token).await.unwrap().is_staff());

    // Without the audience, the configured strategy refuses the token.
    let bare = TokenIssuer::new(SECRET)
        .unwrap()
        .issue("5763", Duration::from_secs(60))
        .unwrap();
    assert_eq!(strategy.verify(&bare).unwrap_err().message(), "invalid token");
}

#[tokio::test]
async fn rsa_keys_are_parsed_strictly() {
    let token = common::sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap(),
        &claims(),
    );
    // SPKI and PKCS#1 public keys both work.
    for pem in [RSA_PUBLIC_PEM, RSA_PUBLIC_PKCS1_PEM] {
        let strategy = JwtStrategy::new(JwtConfig::rs256_pem(pem.as_bytes()).unwrap());
        assert_eq!(strategy.verify(&token).unwrap().subject(), "5763");
    }
    // A private key is not a verification key; a small key is unsafe.
    assert_eq!(
        JwtConfig::rs256_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap_err(),
        ConfigError::InvalidKey { expected: "RSA" }
    );
    assert_eq!(
        JwtConfig::rs256_pem(RSA_1024_PUBLIC_PEM.as_bytes()).unwrap_err(),
        ConfigError::RsaKeyTooSmall {
            bits: 1024,
            min: MIN_RSA_BITS
        }
    );
    // PS256 with the same key.
    let ps256 = common::sign(
        Algorithm::PS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap(),
        &claims(),
    );
    let strategy = JwtStrategy::new(JwtConfig::ps256_pem(RSA_PUBLIC_PEM.as_bytes()).unwrap());
    assert_eq!(strategy.verify(&ps256).unwrap().subject(), "5763");
}

#[test]
fn debug_output_hides_keys() {
    let debug = format!("{:?}", strategy());
    assert!(!debug.contains("test secret"), "{debug}");
    assert!(debug.contains("JwtStrategy"));
}

/// Sets `exp` on test claims.
trait TapExp {
    fn tap_exp(self, exp: u64) -> Self;
}

impl TapExp for serde_json::Value {
    fn tap_exp(mut self, exp: u64) -> Self {
        self["exp"] = json!(exp);
        self
    }
}
