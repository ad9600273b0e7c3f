//! The quickstart server of `docs/DEMO.md`, as a module so that tests and the
//! load generator run exactly what a newcomer runs.

// This file is compiled into several crates (the example, the tests, the
// load generator); each uses a different part of it.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use channels_binding::auth::{AllowedOriginsLayer, AuthLayer, RequireIdentityHttpLayer};
use channels_binding::body::Body;
use channels_binding::http::HttpApi;
use channels_binding::models::{Database, Relay, RelayConfig};
use channels_binding::ops::EventMetricsLayer;
use channels_binding::page_size::PageSizeLayer;
use channels_binding::rate_limit::{RateLimit, RateLimiter};
use channels_binding::require_identity::RequireIdentityLayer;
use channels_binding::ws::WebSocket;
use channels_binding::{EventRouter, Hub, Json, Settings, Shutdown, serve_with_config};
use http::{Request, Response};
use hyper::body::Incoming;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

#[path = "auth.rs"]
mod auth;
#[path = "bindings.rs"]
mod bindings;
#[path = "channel_layer.rs"]
pub mod channel_layer;
#[path = "demo_data.rs"]
mod demo_data;
#[path = "ops.rs"]
mod ops;

/// Errors of start-up, shown to the person running the demo.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// The demo's whole service: HTTP layers around the WebSocket and HTTP APIs.
pub type DemoService = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

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

/// Settings this build cannot honour. Refusing to start is safer than
/// running without something the operator asked for.
fn refuse_unsupported(settings: &Settings) -> Result<(), BoxError> {
    let supported = ["sqlite:", "postgres:", "postgresql:"]
        .iter()
        .any(|scheme| settings.database_url.starts_with(scheme));
    if supported {
        Ok(())
    } else {
        Err("setting CHANNELS_BINDING_DATABASE_URL: expected sqlite:… or postgres://…".into())
    }
}

/// Opens the database: PostgreSQL for `postgres://` URLs, SQLite otherwise.
///
/// An in-memory SQLite database (`sqlite::memory:`, which sqlx opens as a
/// named shared-cache database unique to this process) lives as long as one
/// connection to it is open. A keeper connection, held for as long as the
/// runtime runs, is that connection: the pool may then close and replace its
/// own connections (after an error, or a query cut short) without the data
/// going with them.
async fn connect(url: &str) -> Result<Database, BoxError> {
    use sqlx::ConnectOptions as _;

    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        return Ok(Database::from(pool));
    }
    let options: SqliteConnectOptions = url.parse()?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let pool = if in_memory {
        let keeper = options.connect().await?;
        tokio::spawn(async move {
            // Never completes: the keeper closes when the runtime ends.
            std::future::pending::<()>().await;
            drop(keeper);
        });
        // One connection at a time, as before: shared-cache SQLite locks
        // whole tables, so more connections would only wait on each other.
        SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
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
    Ok(Database::from(pool))
}

/// Builds the demo's service: database, demo data, bindings, handlers, and
/// the layers the settings ask for.
pub async fn build(settings: &Settings, hub: Hub, shutdown: Shutdown) -> Result<DemoService, BoxError> {
    refuse_unsupported(settings)?;
    let pool = connect(&settings.database_url).await?;
    // Held to the end of start-up: every DDL and the demo rows below, once at a time.
    let _installing = demo_data::install(&pool).await?;
    let sessions = auth::sessions(&pool, settings).await?;
    let strategies = auth::strategies(settings, &pool, &sessions)?;
    // The original README's exchange saves a user anonymously; DEMO.md's
    // user rules (yourself or staff) apply once bearer tokens are configured.
    let enforce_writes = settings.jwt_secret.is_some();
    if !enforce_writes {
        tracing::warn!(
            "CHANNELS_BINDING_JWT_SECRET is not set: demo mode, auth.User is open for writes to anyone; \
             sign in with auth.login (password `demo`) for notes.Note"
        );
    }
    let capture = channel_layer::captures_outside_writes(settings);
    let users = bindings::users(pool.clone(), enforce_writes, capture)?;
    let notes = bindings::notes(pool.clone(), capture)?;
    if capture {
        // psql, other programs and bulk updates are announced like API
        // writes, and every change is in the outbox before its write is
        // acknowledged.
        users.install_capture().await?;
        notes.install_capture().await?;
        start_relay(&pool, &hub, shutdown.clone()).await?;
    }
    let router = sessions
        .routes(EventRouter::new())
        .binding(users)
        .binding(notes)
        .on("simple_reflexion.ping", ping)
        .on_blocking("simple_reflexion.sync_ping", sync_ping);
    // Every stream's codec before the first change arrives from another process.
    router.register_codecs(&hub);

    // One budget per identity (else per IP) for HTTP requests and events alike.
    let limiter = settings
        .rate_limit_per_second
        .map(|rate| RateLimiter::new(RateLimit::new(rate, settings.rate_limit_burst.unwrap_or(rate))));
    // One event stack for WebSocket frames and HTTP requests alike.
    let events = BoxCloneSyncService::new(
        ServiceBuilder::new()
            // Counted per declared route (anything else is `other`).
            .layer(EventMetricsLayer::new().routes(router.routes()))
            .option_layer(limiter.as_ref().map(RateLimiter::event_layer))
            .layer(PageSizeLayer::new(settings.page_size))
            .layer(RequireIdentityLayer::when(|name| name.stream() == "notes.Note"))
            .service(router.clone()),
    );
    let http =
        HttpApi::with_config(events.clone(), hub.clone(), &router, settings.http_config()).shutdown(shutdown.clone());
    let websocket = WebSocket::new(events, hub.clone()).shutdown(shutdown).fallback(http);

    let origins = match &settings.allowed_origins {
        Some(origins) => Some(AllowedOriginsLayer::new(origins.iter().cloned())?),
        None => None,
    };
    let anonymous_refused = (!settings.anonymous_connection_allowed).then(|| RequireIdentityHttpLayer::new(["Bearer"]));
    // Cookie sessions are refused on cross-site writes and upgrades; pages on
    // the allowed origins count as this site.
    let authenticate = AuthLayer::new(strategies).trust_origins(settings.allowed_origins.iter().flatten().cloned())?;
    let service = ServiceBuilder::new()
        .option_layer(origins)
        .layer(authenticate)
        .option_layer(limiter.as_ref().map(RateLimiter::http_layer))
        .option_layer(anonymous_refused)
        .service(websocket);
    Ok(BoxCloneSyncService::new(ops::OpsRoutes::new(pool, &hub, service)?))
}

/// Starts this process's outbox relay (one process leads at a time) and
/// stops it on shutdown, so that another process takes over at once; what
/// it has not published stays in the outbox for that one.
async fn start_relay(pool: &Database, hub: &Hub, shutdown: Shutdown) -> Result<(), BoxError> {
    let (Database::Postgres(pool), Some(broker)) = (pool, hub.broker()) else {
        return Ok(());
    };
    let relay = Relay::start(pool.clone(), broker.clone(), RelayConfig::default()).await?;
    tokio::spawn(async move {
        shutdown.triggered().await;
        relay.stop().await;
    });
    Ok(())
}

/// How long shutdown waits for changes queued for the channel layer.
const FLUSH_BOUND: Duration = Duration::from_secs(5);

/// Hands the channel layer what this process still queues for it, within
/// [`FLUSH_BOUND`]. Changes of captured tables are in the outbox already
/// (another process relays them); what is left here (SQLite, custom
/// events) and does not go out in time is lost, and said so in the log.
async fn flush_channel_layer(hub: &Hub) {
    let waiting = hub.flush(FLUSH_BOUND).await;
    if waiting > 0 {
        tracing::error!(
            waiting,
            "shutdown: changes not taken by the channel layer in time are lost; \
             their subscribers on other processes are not told"
        );
    }
}

/// Serves the demo on `listener` until `shutdown` is triggered.
pub async fn serve_on(listener: TcpListener, settings: Settings, shutdown: Shutdown) -> Result<(), BoxError> {
    let hub = channel_layer::hub(&settings).await?;
    let service = build(&settings, hub.clone(), shutdown.clone()).await?;
    let served = serve_with_config(listener, service, shutdown, settings.serve_config()).await;
    flush_channel_layer(&hub).await;
    served?;
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
    let hub = match channel_layer::hub(&settings).await {
        Ok(hub) => hub,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let service = match build(&settings, hub.clone(), shutdown.clone()).await {
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
    let served = serve_with_config(listener, service, shutdown, settings.serve_config()).await;
    flush_channel_layer(&hub).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
