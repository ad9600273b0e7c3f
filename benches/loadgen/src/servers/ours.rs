//! The servers under test, built only from the library's public API, the way
//! a user writes them.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use channels_binding::ws::WebSocket;
use channels_binding::{EventRouter, Hub, Json, Settings, Shutdown, serve};
use tokio::net::TcpListener;

use super::{BoxError, announce, stop_requested};
use crate::quickstart;

/// The reply of `simple_reflexion.ping` (DEMO.md).
#[derive(serde::Serialize)]
struct Pong {
    pong: bool,
    time: u64,
    message: &'static str,
}

/// `simple_reflexion.ping`: `{"pong": true, "time": <unix secs>, "message": "Hi"}`.
async fn ping_handler() -> Json<Pong> {
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Json(Pong {
        pong: true,
        time,
        message: "Hi",
    })
}

/// Triggers `shutdown` when the driver asks the process to stop.
fn shut_down_on_request(shutdown: Shutdown) {
    tokio::spawn(async move {
        stop_requested().await;
        shutdown.trigger();
    });
}

/// `ours-ping`: the library's `WebSocket` service over an `EventRouter` with
/// one async handler, served by the library's own accept loop, all defaults.
pub(super) async fn ping(listener: TcpListener, addr: SocketAddr) -> Result<(), BoxError> {
    let shutdown = Shutdown::new();
    let events = EventRouter::new().on("simple_reflexion.ping", ping_handler);
    let service = WebSocket::new(events, Hub::new()).shutdown(shutdown.clone());
    announce(addr);
    shut_down_on_request(shutdown.clone());
    serve(listener, service, shutdown).await?;
    Ok(())
}

/// `ours-quickstart`: exactly the demo app of `examples/quickstart`, with its
/// settings from the environment (the driver sets them), including its
/// channel layer (`memory` unless `CHANNELS_BINDING_CHANNEL_LAYER` says
/// otherwise, as in the cross-node scenario).
pub(super) async fn quickstart(listener: TcpListener, addr: SocketAddr) -> Result<(), BoxError> {
    let settings = Settings::from_env()?;
    let shutdown = Shutdown::new();
    // `channel_layer::hub` + `build` + `serve` is what `serve_on` does; split
    // here so that the `listening on` line is printed only once the database
    // and the channel layer are ready.
    let hub = quickstart::channel_layer::hub(&settings).await?;
    let service = quickstart::build(&settings, hub, shutdown.clone()).await?;
    announce(addr);
    shut_down_on_request(shutdown.clone());
    serve(listener, service, shutdown).await?;
    Ok(())
}
