//! A ready accept loop on hyper, for programs that do not bring their own
//! server: timeouts for silent, half-sent and idle connections, and a cap on
//! connections ([`ServeConfig`]).

mod activity;
mod cap;
mod config;
mod watched;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::server::graceful::Watcher;
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceExt};

use channels_binding_core::ClientAddr;

use self::activity::Activity;
use self::cap::{ConnectionCap, Slot};
use self::watched::{Tracked, Watched};
use crate::body::BoxError;
use crate::shutdown::Shutdown;
pub use config::ServeConfig;

/// How long a connection accepted over the cap waits for the permit of the
/// idle connection it displaced (that connection's task only has to end)
/// before it displaces another one.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Pause after a failed accept (for example too many open files), so that
/// the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `service` on `listener` (HTTP/1.1 with upgrades, and HTTP/2) until
/// `shutdown` is triggered, with the default [`ServeConfig`]; then stops
/// accepting, closes WebSockets with 1001, and waits up to ten seconds for
/// what is in flight.
///
/// ```no_run
/// use channels_binding::ws::WebSocket;
/// use channels_binding::{serve, EventRouter, Hub, Shutdown};
///
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let shutdown = Shutdown::new();
/// let service = WebSocket::new(EventRouter::new(), Hub::new()).shutdown(shutdown.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
/// serve(listener, service, shutdown).await
/// # }
/// ```
///
/// # Errors
///
/// Never fails on a client's error: a failed accept (for example too many
/// open files) is logged and retried after a short pause. The `Result` is
/// for callers' `?` convenience.
pub async fn serve<S, B>(listener: TcpListener, service: S, shutdown: Shutdown) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    serve_with_config(listener, service, shutdown, ServeConfig::default()).await
}

/// [`serve`] with these timeouts and caps.
///
/// ```no_run
/// use std::time::Duration;
/// use channels_binding::ws::WebSocket;
/// use channels_binding::{serve_with_config, EventRouter, Hub, ServeConfig, Shutdown};
///
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let shutdown = Shutdown::new();
/// let service = WebSocket::new(EventRouter::new(), Hub::new()).shutdown(shutdown.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
/// let config = ServeConfig::default().header_timeout(Duration::from_secs(5)).max_connections(1_000);
/// serve_with_config(listener, service, shutdown, config).await
/// # }
/// ```
///
/// # Errors
///
/// As [`serve`]: never on a client's error.
pub async fn serve_with_config<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: Shutdown,
    config: ServeConfig,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // HTTP/1 head and idle timeouts are the watchdog's (`Activity`): hyper's
    // own header timeout also runs between requests, so it would cut
    // kept-alive connections at the header timeout, not the keep-alive one.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(config.http2_ping_interval))
        .keep_alive_timeout(config.http2_ping_interval);
    let max_connections = cap::effective_cap(config.max_connections);
    if max_connections < config.max_connections {
        tracing::info!(max_connections, "connection cap lowered below the open-file limit");
    }
    let connections = Arc::new(Connections {
        builder,
        cap: ConnectionCap::new(max_connections),
        header_timeout: config.header_timeout,
        keep_alive_timeout: config.keep_alive_timeout,
    });
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.triggered() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Listed under the cap here, before its task runs, so that the next
        // connection over the cap can always displace it while it is idle.
        let activity = Activity::new();
        let Some(slot) = connections.cap.enter(&activity, EVICTION_WAIT).await else {
            tracing::debug!(%peer, "connection cap reached with no idle connection to displace: closed");
            drop(stream);
            continue;
        };
        let watcher = graceful.watcher();
        tokio::spawn(
            connections
                .clone()
                .serve(service.clone(), stream, peer, slot, activity, watcher),
        );
    }
    drop(listener);
    let (_, sockets_closed) = tokio::join!(
        tokio::time::timeout(config.drain_timeout, graceful.shutdown()),
        shutdown.wait(config.drain_timeout)
    );
    if !sockets_closed {
        tracing::warn!("some sockets were still open after shutdown");
    }
    Ok(())
}

/// What every connection of one `serve` shares (the service is cloned per
/// connection instead: it need not be `Sync`).
struct Connections {
    builder: auto::Builder<TokioExecutor>,
    cap: Arc<ConnectionCap>,
    header_timeout: Duration,
    keep_alive_timeout: Duration,
}

impl Connections {
    /// Serves one connection until it ends, is upgraded, or runs out of time.
    async fn serve<S, B>(
        self: Arc<Self>,
        service: S,
        stream: TcpStream,
        peer: SocketAddr,
        slot: Slot,
        activity: Arc<Activity>,
        watcher: Watcher,
    ) where
        S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // Held until this connection's HTTP life ends (an upgraded socket
        // lives on in its own task, outside the cap).
        let _slot = slot;
        let _ = stream.set_nodelay(true);
        let requests = activity.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            // Every request of this connection learns the peer's address.
            request.extensions_mut().insert(ClientAddr(peer));
            let guard = requests.request_started();
            let call = service.clone().oneshot(request);
            async move {
                let response = call.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked::new(body, guard)))
            }
        });
        let io = TokioIo::new(Watched::new(stream, activity.clone()));
        let connection = watcher.watch(self.builder.serve_connection_with_upgrades(io, service).into_owned());
        tokio::select! {
            ended = connection => {
                if let Err(err) = ended {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
            }
            why = activity.expired(self.header_timeout, self.keep_alive_timeout) => {
                tracing::debug!(%peer, ?why, "connection closed");
            }
        }
    }
}
