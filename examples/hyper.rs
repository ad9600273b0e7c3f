//! Serve the WebSocket API with plain hyper: no framework, one service per
//! connection, upgrades enabled.
//!
//! ```text
//! cargo run --example hyper
//! ```

use channels_binding::ws::WebSocket;
use channels_binding::{EventRouter, Hub};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let events = EventRouter::new().on("simple_reflexion.ping", || async {
        serde_json::json!({ "pong": true, "message": "Hi" })
    });
    let service = WebSocket::new(events, Hub::new());

    let bind = std::env::var("CHANNELS_BINDING_BIND").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            // `with_upgrades` hands the connection to the WebSocket after the 101.
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(err) = connection.await {
                eprintln!("connection error: {err}");
            }
        });
    }
}
