//! The WebSocket transport as a tower service over `http::Request`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use channels_binding_core::{ClientAddr, Event, Hub, Identity, Reply};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tower::Service;

use super::config::WebSocketConfig;
use super::socket::Socket;
use super::upgrade::{accept_key, is_upgrade_request, refuse, switching_protocols};
use crate::body::{Body, BoxError};
use crate::shutdown::Shutdown;

/// Upgrades WebSocket requests and runs each socket against an event stack;
/// every other request goes to the fallback service `F`.
///
/// `E` is the event stack: any `Service<Event, Response = Reply, Error =
/// Infallible>`, typically an [`EventRouter`](crate::EventRouter) wrapped in
/// layers. The identity of each socket is the [`Identity`] an authentication
/// layer put into the upgrade request's extensions (anonymous otherwise), and
/// it flows into every event of that socket.
///
/// Mount it in axum with `Router::route_service("/", ws)` or use it as the
/// whole service of a hyper connection (with upgrades enabled).
///
/// ```
/// use channels_binding::ws::WebSocket;
/// use channels_binding::{EventRouter, Hub};
///
/// let events = EventRouter::new().on("demo.ping", || async { serde_json::json!({"pong": true}) });
/// let service = WebSocket::new(events, Hub::new());
/// let app: axum::Router = axum::Router::new().route_service("/", service);
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct WebSocket<E, F = NotUpgrade> {
    events: E,
    hub: Hub,
    config: Arc<WebSocketConfig>,
    shutdown: Shutdown,
    open: Arc<AtomicUsize>,
    fallback: F,
}

impl<E> WebSocket<E, NotUpgrade> {
    /// A WebSocket service over this event stack and hub, with default
    /// limits; plain requests are answered `426 Upgrade Required`.
    pub fn new(events: E, hub: Hub) -> Self {
        Self {
            events,
            hub,
            config: Arc::new(WebSocketConfig::default()),
            shutdown: Shutdown::new(),
            open: Arc::new(AtomicUsize::new(0)),
            fallback: NotUpgrade,
        }
    }
}

impl<E, F> WebSocket<E, F> {
    /// Uses these limits.
    #[must_use]
    pub fn config(mut self, config: WebSocketConfig) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Closes sockets (1001) when this handle is triggered.
    #[must_use]
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Sends non-upgrade requests to `fallback`.
    #[must_use]
    pub fn fallback<G>(self, fallback: G) -> WebSocket<E, G> {
        WebSocket {
            events: self.events,
            hub: self.hub,
            config: self.config,
            shutdown: self.shutdown,
            open: self.open,
            fallback,
        }
    }

    /// The hub sockets register with.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Sockets currently open through this service (and its clones).
    pub fn open_sockets(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Decrements the open-socket count when a socket task ends, however it ends.
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<E, F, B, FB> Service<Request<B>> for WebSocket<E, F>
where
    E: Service<Event, Response = Reply, Error = Infallible> + Clone + Send + 'static,
    E::Future: Send,
    F: Service<Request<B>, Response = Response<FB>>,
    FB: http_body::Body<Data = Bytes> + Send + 'static,
    FB::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = F::Error;
    type Future = ResponseFuture<F::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.fallback.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !is_upgrade_request(request.headers()) {
            return ResponseFuture::fallback(self.fallback.call(request));
        }
        let response = self.upgrade(&mut request);
        ResponseFuture::ready(response)
    }
}

impl<E, F> WebSocket<E, F>
where
    E: Service<Event, Response = Reply, Error = Infallible> + Clone + Send + 'static,
    E::Future: Send,
{
    fn upgrade<B>(&self, request: &mut Request<B>) -> Response<Body> {
        let accept = match accept_key(request.method(), request.headers()) {
            Ok(accept) => accept,
            Err(reason) => return refuse(StatusCode::BAD_REQUEST, reason),
        };
        if self.shutdown.is_triggered() {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down");
        }
        if request.extensions().get::<OnUpgrade>().is_none() {
            tracing::error!("WebSocket request cannot be upgraded: serve it with hyper upgrades enabled");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "connection cannot be upgraded");
        }
        // Reserve a slot before answering 101, so the cap holds under a burst.
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.config.max_connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many open sockets");
        }
        let slot = OpenSlot(self.open.clone());
        let identity = request.extensions().get::<Identity>().cloned().unwrap_or_default();
        let client_addr = request.extensions().get::<ClientAddr>().copied();
        let on_upgrade = hyper::upgrade::on(request);
        let events = self.events.clone();
        let hub = self.hub.clone();
        let config = self.config.clone();
        let shutdown = self.shutdown.clone();
        self.shutdown.spawn(async move {
            let _slot = slot;
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(error = %err, "WebSocket upgrade failed");
                    return;
                }
            };
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config.tungstenite()))
                .await;
            let outbox = hub.connect(identity);
            Socket {
                ws,
                outbox,
                events,
                hub,
                config,
                shutdown,
                client_addr,
            }
            .run()
            .await;
        });
        switching_protocols(accept)
    }
}

/// The default fallback: answers plain requests `426 Upgrade Required`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotUpgrade;

impl<B> Service<Request<B>> for NotUpgrade {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut response = refuse(StatusCode::UPGRADE_REQUIRED, "this endpoint speaks WebSocket");
        response
            .headers_mut()
            .insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        std::future::ready(Ok(response))
    }
}

pin_project! {
    /// The response future of [`WebSocket`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Ready { response: Option<Response<Body>> },
        Fallback { #[pin] future: F },
    }
}

impl<F> ResponseFuture<F> {
    fn ready(response: Response<Body>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    fn fallback(future: F) -> Self {
        Self {
            kind: Kind::Fallback { future },
        }
    }
}

impl<F, FB, Err> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<FB>, Err>>,
    FB: http_body::Body<Data = Bytes> + Send + 'static,
    FB::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Ready(Ok(refuse(StatusCode::INTERNAL_SERVER_ERROR, "response already taken"))),
            },
            KindProj::Fallback { future } => future
                .poll(cx)
                .map_ok(|response| response.map(|body| body.map_err(Into::into).boxed_unsync())),
        }
    }
}
