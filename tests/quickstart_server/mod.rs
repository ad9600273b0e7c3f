//! Starts the quickstart (exactly what `cargo run --example quickstart`
//! serves) in-process on an ephemeral port, for the end-to-end tests.
//! A test binary using it also declares `mod common;`.

#![allow(dead_code, unreachable_pub)]

#[path = "../../examples/quickstart/app.rs"]
mod app;

use std::net::SocketAddr;

use channels_binding::{Hub, Settings, Shutdown};

/// The quickstart with these settings; returns its address and shutdown handle.
pub async fn start_with(settings: &Settings) -> (SocketAddr, Shutdown) {
    let shutdown = Shutdown::new();
    let service = app::build(settings, Hub::new(), shutdown.clone())
        .await
        .expect("the quickstart builds");
    (crate::common::spawn_server(service, shutdown.clone()).await, shutdown)
}

/// The quickstart with default settings.
pub async fn start() -> SocketAddr {
    start_with(&Settings::default()).await.0
}
