//! Mount a readiness probe and Prometheus metrics next to the event API.
//!
//! ```text
//! cargo run --example ops
//! curl -i http://127.0.0.1:8000/ready
//! curl -X POST http://127.0.0.1:8000/ -d '{"event": "simple_reflexion.ping"}'
//! curl http://127.0.0.1:8000/metrics
//! ```

use channels_binding::http::HttpApi;
use channels_binding::ops::{EventMetricsLayer, Metrics, Readiness};
use channels_binding::ws::WebSocket;
use channels_binding::{EventRouter, Hub};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metrics = Metrics::install()?;
    let hub = Hub::new();
    let counted = hub.clone();
    metrics.on_scrape(move || metrics::gauge!("channels_binding_connections").set(counted.connection_count() as f64));

    let router = EventRouter::new().on("simple_reflexion.ping", || async { serde_json::json!({"pong": true}) });
    // One stack for both transports, so both are measured.
    let events = ServiceBuilder::new()
        .layer(EventMetricsLayer::new())
        .service(router.clone());
    let api = WebSocket::new(events.clone(), hub.clone()).fallback(HttpApi::new(events, hub, &router));

    // A real check would ping the database pool and the channel layer.
    let ready = Readiness::new().check("database", || async { Ok::<(), std::io::Error>(()) });

    let app = axum::Router::new()
        .route_service("/ready", ready)
        .route_service("/metrics", metrics.service())
        .route_service("/", api);

    let bind = std::env::var("CHANNELS_BINDING_BIND").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
