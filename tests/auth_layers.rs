//! The HTTP-level auth layers over real sockets: identities reach events,
//! invalid or missing credentials are refused before the upgrade, origins
//! match exactly, the same layer protects a plain axum route, and a socket
//! ends with its credentials.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use channels_binding::auth::{
    AllowedOriginsLayer, ApiKeyStrategy, AuthError, AuthLayer, AuthStrategies, AuthStrategy, RequireIdentityHttpLayer,
};
use channels_binding::require_identity::RequireIdentityLayer;
use channels_binding::ws::WebSocket;
use channels_binding::{EventRouter, Hub, Identity, Principal, Shutdown};
use common::{Client, spawn_server};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tower::{Layer, ServiceBuilder};

fn events() -> EventRouter {
    EventRouter::new()
        .on("demo.whoami", |identity: Identity| async move {
            json!({ "id": identity.id(), "staff": identity.is_staff() })
        })
        .on("demo.delete", || async { json!({ "deleted": true }) })
}

fn keys() -> ApiKeyStrategy {
    ApiKeyStrategy::new()
        .key("alice-key", Principal::new("alice"))
        .key("boss-key", Principal::new("boss").staff(true))
}

/// Connects with extra headers; returns the HTTP status when refused.
async fn connect(addr: SocketAddr, headers: &[(&str, &str)]) -> Result<Client, u16> {
    let mut request = format!("ws://{addr}/").into_client_request().expect("a request");
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            http::HeaderValue::from_str(value).expect("a header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            if response.status() == 401 {
                assert!(
                    response.headers().get("www-authenticate").is_some(),
                    "401 carries a challenge"
                );
            }
            Err(response.status().as_u16())
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[tokio::test]
async fn identities_from_the_upgrade_reach_every_event() {
    let shutdown = Shutdown::new();
    let service = AuthLayer::new(AuthStrategies::new().with(keys()))
        .layer(WebSocket::new(events(), Hub::new()).shutdown(shutdown.clone()));
    let addr = spawn_server(service, shutdown).await;

    let mut alice = connect(addr, &[("x-api-key", "alice-key")]).await.unwrap();
    let reply = alice.call(json!({"event": "demo.whoami"})).await;
    assert_eq!(reply["data"], json!({"id": "alice", "staff": false}));
    let mut boss = connect(addr, &[("x-api-key", "boss-key")]).await.unwrap();
    assert_eq!(boss.call(json!({"event": "demo.whoami"})).await["data"]["staff"], true);

    // No credentials: anonymous is allowed here.
    let mut anonymous = connect(addr, &[]).await.unwrap();
    assert_eq!(
        anonymous.call(json!({"event": "demo.whoami"})).await["data"]["id"],
        json!(null)
    );
    // Invalid credentials never fall back to anonymous.
    assert_eq!(connect(addr, &[("x-api-key", "forged")]).await.err(), Some(401));
}

#[tokio::test]
async fn anonymous_upgrades_are_refused_before_they_happen() {
    let shutdown = Shutdown::new();
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(AuthStrategies::new().with(keys())))
        .layer(RequireIdentityHttpLayer::new(["ApiKey"]))
        .service(WebSocket::new(events(), Hub::new()).shutdown(shutdown.clone()));
    let addr = spawn_server(service, shutdown).await;
    assert_eq!(connect(addr, &[]).await.err(), Some(401));
    assert!(connect(addr, &[("x-api-key", "alice-key")]).await.is_ok());
}

#[tokio::test]
async fn per_action_rejection_answers_unauthenticated_and_keeps_the_socket() {
    let shutdown = Shutdown::new();
    let stack = RequireIdentityLayer::for_actions(["delete"]).layer(events());
    let service = AuthLayer::new(AuthStrategies::new().with(keys()))
        .layer(WebSocket::new(stack, Hub::new()).shutdown(shutdown.clone()));
    let addr = spawn_server(service, shutdown).await;

    let mut anonymous = connect(addr, &[]).await.unwrap();
    assert_eq!(
        anonymous.call(json!({"event": "demo.delete"})).await["error"]["code"],
        "unauthenticated"
    );
    assert_eq!(
        anonymous.call(json!({"event": "demo.whoami"})).await["data"]["id"],
        json!(null)
    );
    let mut alice = connect(addr, &[("x-api-key", "alice-key")]).await.unwrap();
    assert_eq!(
        alice.call(json!({"event": "demo.delete"})).await["data"]["deleted"],
        true
    );
}

#[tokio::test]
async fn origins_match_exactly() {
    let shutdown = Shutdown::new();
    let service = AllowedOriginsLayer::new(["https://app.example.com"])
        .unwrap()
        .layer(WebSocket::new(events(), Hub::new()).shutdown(shutdown.clone()));
    let addr = spawn_server(service, shutdown).await;

    assert!(connect(addr, &[("origin", "https://app.example.com")]).await.is_ok());
    assert!(connect(addr, &[("origin", "HTTPS://APP.EXAMPLE.COM")]).await.is_ok());
    for foreign in [
        "https://app.example.com.evil.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://evil.com",
        "null",
    ] {
        assert_eq!(
            connect(addr, &[("origin", foreign)]).await.err(),
            Some(403),
            "{foreign}"
        );
    }
    // No Origin: a non-browser client; allowed (documented).
    assert!(connect(addr, &[]).await.is_ok());
}

#[tokio::test]
async fn the_same_auth_layer_protects_a_plain_axum_route() {
    let app: axum::Router = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|axum::Extension(identity): axum::Extension<Identity>| async move {
                identity.id().unwrap_or("anonymous").to_owned()
            }),
        )
        .layer(AuthLayer::new(AuthStrategies::new().with(keys())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    async fn get(addr: SocketAddr, key: Option<&str>) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let header = key.map(|k| format!("x-api-key: {k}\r\n")).unwrap_or_default();
        tcp.write_all(format!("GET /me HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{header}\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response))
            .await
            .unwrap()
            .unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (status, body)
    }
    assert_eq!(get(addr, Some("alice-key")).await, (200, "alice".to_owned()));
    assert_eq!(get(addr, None).await, (200, "anonymous".to_owned()));
    let (status, body) = get(addr, Some("nope")).await;
    assert_eq!(status, 401);
    assert!(body.contains(r#""code":"unauthenticated""#), "{body}");
}

/// Credentials that expire shortly after the upgrade.
struct ShortLived;

impl AuthStrategy for ShortLived {
    fn authenticate<'a>(&'a self, _: &'a http::request::Parts) -> BoxFuture<'a, Result<Option<Identity>, AuthError>> {
        let principal = Principal::new("brief").expires_at(SystemTime::now() + Duration::from_millis(300));
        Box::pin(async move { Ok(Some(Identity::from(principal))) })
    }
}

#[tokio::test]
async fn a_socket_is_closed_when_its_credentials_expire() {
    let shutdown = Shutdown::new();
    let service = AuthLayer::new(AuthStrategies::new().with(ShortLived))
        .layer(WebSocket::new(events(), Hub::new()).shutdown(shutdown.clone()));
    let addr = spawn_server(service, shutdown).await;
    let mut client = connect(addr, &[]).await.unwrap();
    assert_eq!(
        client.call(json!({"event": "demo.whoami"})).await["data"]["id"],
        "brief"
    );
    assert_eq!(client.close_code().await, Some(CloseCode::Policy));
}
