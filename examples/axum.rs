//! Mount the WebSocket API in an axum application, next to ordinary routes.
//!
//! ```text
//! cargo run --example axum
//! ```
//!
//! Then open `ws://127.0.0.1:8000/` and send
//! `{"event": "simple_reflexion.ping"}`; `GET /health` is a plain axum route.

use channels_binding::ws::WebSocket;
use channels_binding::{EventRouter, Hub, Json};

#[derive(serde::Serialize)]
struct Pong {
    pong: bool,
    message: &'static str,
}

async fn ping() -> Json<Pong> {
    Json(Pong {
        pong: true,
        message: "Hi",
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let events = EventRouter::new().on("simple_reflexion.ping", ping);
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route_service("/", WebSocket::new(events, Hub::new()));

    let bind = std::env::var("CHANNELS_BINDING_BIND").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
