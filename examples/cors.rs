//! The HTTP API called from pages on another origin: tower-http's
//! `CorsLayer` in front of the same service.
//!
//! ```text
//! cargo run --example cors
//! curl -i -X OPTIONS http://127.0.0.1:8000/api/demo.Clock/now \
//!      -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: POST'
//! curl -i -X POST http://127.0.0.1:8000/api/demo.Clock/now -H 'Origin: https://app.example.com'
//! ```
//!
//! CORS only governs what browsers let pages read; it is not access control.
//! Authenticate with an `AuthLayer`, and refuse foreign WebSocket origins with
//! `AllowedOriginsLayer` (browsers do not apply CORS to WebSockets).

use std::time::{SystemTime, UNIX_EPOCH};

use channels_binding::http::HttpApi;
use channels_binding::ws::WebSocket;
use channels_binding::{EventRouter, Hub, Shutdown, serve};
use http::{HeaderValue, Method, header};
use tower::Layer;
use tower_http::cors::CorsLayer;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let router = EventRouter::new().on("demo.Clock.now", || async {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        serde_json::json!({ "now": now })
    });
    let hub = Hub::new();
    let shutdown = Shutdown::new();
    let api = WebSocket::new(router.clone(), hub.clone())
        .shutdown(shutdown.clone())
        .fallback(HttpApi::new(router.clone(), hub, &router).shutdown(shutdown.clone()));

    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_static("https://app.example.com"))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::RETRY_AFTER]);
    let service = cors.layer(api);

    let bind = std::env::var("CHANNELS_BINDING_BIND").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, service, shutdown).await
}
