//! A ready accept loop on hyper, for programs that do not bring their own server.

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use channels_binding_core::ClientAddr;

use crate::body::BoxError;
use crate::shutdown::Shutdown;

/// How long shutdown waits for requests and sockets in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `service` on `listener` (HTTP/1.1 with upgrades, and HTTP/2) until
/// `shutdown` is triggered; then stops accepting, closes WebSockets with
/// 1001, and waits up to ten seconds for what is in flight.
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
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.triggered() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Every request of this connection learns the peer's address.
        let service = service.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer));
            request
        });
        let connection =
            builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let (_, sockets_closed) = tokio::join!(tokio::time::timeout(DRAIN, graceful.shutdown()), shutdown.wait(DRAIN));
    if !sockets_closed {
        tracing::warn!("some sockets were still open after shutdown");
    }
    Ok(())
}
