//! The quickstart server of `DEMO.md`, as a module so that tests and the
//! load generator run exactly what a newcomer runs.

// This file is compiled into several crates (the example, the tests, the
// load generator); each uses a different part of it.
#![allow(dead_code, unreachable_pub)]

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use channels_binding::models::{Field, Fields, ModelBinding, ModelSchema};
use channels_binding::page_size::{PageSizeLayer, PageSizeService};
use channels_binding::ws::WebSocket;
use channels_binding::{EventRouter, Hub, Json, Settings, Shutdown, serve};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tokio::net::TcpListener;
use tower::Layer;

#[path = "demo_data.rs"]
mod demo_data;

/// Errors of start-up, shown to the person running the demo.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// The demo's whole service: the WebSocket API over the event stack.
pub type DemoService = WebSocket<PageSizeService<EventRouter>>;

#[derive(serde::Serialize)]
struct Pong {
    pong: bool,
    time: u64,
    message: &'static str,
}

fn pong() -> Json<Pong> {
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Json(Pong {
        pong: true,
        time,
        message: "Hi",
    })
}

/// `simple_reflexion.ping`: an async handler.
async fn ping() -> Json<Pong> {
    pong()
}

/// `simple_reflexion.sync_ping`: the same as a blocking handler (it runs on
/// the blocking pool, like the original's sync consumers).
fn sync_ping() -> Json<Pong> {
    pong()
}

/// Settings this build cannot honour yet. Refusing to start is safer than
/// running without a security setting the operator asked for.
fn refuse_unsupported(settings: &Settings) -> Result<(), BoxError> {
    let unsupported = [
        ("CHANNELS_BINDING_JWT_SECRET", settings.jwt_secret.is_some()),
        (
            "CHANNELS_BINDING_ANONYMOUS_CONNECTION_ALLOWED",
            !settings.anonymous_connection_allowed,
        ),
        ("CHANNELS_BINDING_ALLOWED_ORIGINS", settings.allowed_origins.is_some()),
        (
            "CHANNELS_BINDING_RATE_LIMIT_PER_SECOND",
            settings.rate_limit_per_second.is_some(),
        ),
        ("CHANNELS_BINDING_CHANNEL_LAYER", settings.channel_layer != "memory"),
        (
            "CHANNELS_BINDING_DATABASE_URL",
            !settings.database_url.starts_with("sqlite:"),
        ),
    ];
    match unsupported.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(format!("setting {key}: not supported by this version of the demo yet").into()),
        None => Ok(()),
    }
}

/// Opens the database. An in-memory SQLite database lives as long as its
/// one connection, so that connection is never closed or recycled.
async fn connect(url: &str) -> Result<SqlitePool, BoxError> {
    let options: SqliteConnectOptions = url.parse()?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let pool = if in_memory {
        SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?
    } else {
        SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(
                options
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal),
            )
            .await?
    };
    Ok(pool)
}

/// The `auth.User` binding of `DEMO.md`: `password_hash` is not declared, so
/// it can never be read, written, searched or ordered through the API.
fn users(pool: SqlitePool) -> Result<ModelBinding, BoxError> {
    let schema = ModelSchema::builder("auth_user")
        .field(Field::integer("id").read().order())
        .field(
            Field::text("username")
                .read()
                .write()
                .search()
                .order()
                .required()
                .max_length(150),
        )
        .field(
            Field::text("email")
                .read()
                .write()
                .search()
                .order()
                .required()
                .max_length(254),
        )
        .field(Field::boolean("is_staff").read().filter())
        .field(Field::timestamp("date_joined").read().order())
        .default_order(["date_joined"])
        .build()?;
    Ok(ModelBinding::builder("auth.User", pool, schema)
        .list_serializer(Fields::new(["id", "username", "email"]))
        .build()?)
}

/// Builds the demo's service: database, demo data, bindings and handlers.
pub async fn build(settings: &Settings, hub: Hub, shutdown: Shutdown) -> Result<DemoService, BoxError> {
    refuse_unsupported(settings)?;
    let pool = connect(&settings.database_url).await?;
    demo_data::install(&pool).await?;
    let router = EventRouter::new()
        .binding(users(pool)?)
        .on("simple_reflexion.ping", ping)
        .on_blocking("simple_reflexion.sync_ping", sync_ping);
    let events = PageSizeLayer::new(settings.page_size).layer(router);
    Ok(WebSocket::new(events, hub).shutdown(shutdown))
}

/// Serves the demo on `listener` until `shutdown` is triggered.
pub async fn serve_on(listener: TcpListener, settings: Settings, shutdown: Shutdown) -> Result<(), BoxError> {
    let service = build(&settings, Hub::new(), shutdown.clone()).await?;
    serve(listener, service, shutdown).await?;
    Ok(())
}

/// Triggers `shutdown` on Ctrl-C or SIGTERM.
fn shut_down_on_signal(shutdown: Shutdown) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        shutdown.trigger();
    });
}

/// The quickstart's `main`: settings from the environment (and the file
/// named by `CHANNELS_BINDING_CONFIG`), the `listening on` line, then serve.
pub async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(settings.bind).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on {}: {err}", settings.bind);
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    let service = match build(&settings, Hub::new(), shutdown.clone()).await {
        Ok(service) => service,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on http://{addr}"),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    }
    shut_down_on_signal(shutdown.clone());
    match serve(listener, service, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
