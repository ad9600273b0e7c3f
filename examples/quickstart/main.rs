//! The quickstart server: `cargo run --release --example quickstart`.
//!
//! Listens on `127.0.0.1:8000` (`CHANNELS_BINDING_BIND` overrides), creates
//! its SQLite database in memory with 102 demo users, and answers the
//! original README's exchanges over `ws://127.0.0.1:8000/`. See `docs/DEMO.md`.

mod app;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    app::main().await
}
