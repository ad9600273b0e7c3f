//! Reuse channels-binding's authentication around services that are not
//! ours: a plain axum route and a bare hyper service (a gRPC service built
//! with tonic takes the layer the same way: it is a tower service over
//! `http::Request`).
//!
//! ```text
//! cargo run --example reuse_auth
//! curl -H 'x-api-key: demo-key-for-alice' http://127.0.0.1:8000/me      # alice
//! curl http://127.0.0.1:8000/me                                          # anonymous
//! curl -H 'x-api-key: nope' http://127.0.0.1:8000/me                     # 401
//! curl -H 'x-api-key: demo-key-for-alice' http://127.0.0.1:8001/         # the hyper service
//! ```

use std::convert::Infallible;

use channels_binding::auth::{ApiKeyStrategy, AuthLayer, AuthStrategies, RequireIdentityHttpLayer};
use channels_binding::{Identity, Principal};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

fn auth() -> AuthLayer {
    let keys = ApiKeyStrategy::new().key("demo-key-for-alice", Principal::new("alice"));
    AuthLayer::new(AuthStrategies::new().with(keys))
}

/// A plain axum app: the route reads the identity from request extensions.
async fn axum_app(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|axum::Extension(identity): axum::Extension<Identity>| async move {
                format!("hello {}\n", identity.id().unwrap_or("anonymous"))
            }),
        )
        .layer(auth());
    axum::serve(listener, app).await
}

/// A bare hyper service that only authenticated callers reach.
async fn hyper_service(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let inner = tower::service_fn(|request: http::Request<hyper::body::Incoming>| async move {
        let who = request
            .extensions()
            .get::<Identity>()
            .and_then(Identity::id)
            .unwrap_or("?")
            .to_owned();
        Ok::<_, Infallible>(http::Response::new(Full::new(bytes::Bytes::from(format!(
            "secret for {who}\n"
        )))))
    });
    let service = ServiceBuilder::new()
        .layer(auth())
        .layer(RequireIdentityHttpLayer::new(["ApiKey"]))
        .service(inner);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let axum_listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    let hyper_listener = tokio::net::TcpListener::bind("127.0.0.1:8001").await?;
    println!(
        "listening on http://{} (axum) and http://{} (hyper)",
        axum_listener.local_addr()?,
        hyper_listener.local_addr()?
    );
    tokio::try_join!(axum_app(axum_listener), hyper_service(hyper_listener)).map(|_| ())
}
