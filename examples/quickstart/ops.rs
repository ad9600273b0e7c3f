//! The demo's operations endpoints: `GET /ready` (the database's tables and the
//! channel layer answer) and `GET /metrics` (Prometheus), in front of the API.

use std::convert::Infallible;
use std::task::{Context, Poll};

use channels_binding::Hub;
use channels_binding::body::Body;
use channels_binding::models::Database;
use channels_binding::ops::{Metrics, MetricsService, Readiness};
use futures_util::future::{BoxFuture, FutureExt};
use http::{Request, Response};
use tower::{Service, ServiceExt};

use super::BoxError;

/// The tables every demo request reads (users, notes, sessions).
const DEMO_TABLES: [&str; 3] = ["auth_user", "notes_note", "channels_binding_session"];

/// `GET /ready` and `GET /metrics`; every other request goes to `inner`.
/// Mounted outside authentication: probes carry no credentials. (In
/// production, expose these to the orchestrator only.)
#[derive(Clone)]
pub struct OpsRoutes<S> {
    ready: Readiness,
    metrics: MetricsService,
    inner: S,
}

impl<S> OpsRoutes<S> {
    /// Routes for a demo on `database` and `hub`, in front of `inner`.
    pub fn new(database: Database, hub: &Hub, inner: S) -> Result<Self, BoxError> {
        let metrics = Metrics::install()?;
        metrics.watch_hub(hub);
        let layer = hub.clone();
        let ready = Readiness::new()
            .check("database", move || {
                let database = database.clone();
                // The demo's tables, not only a connection: a database that
                // lost its schema must not be called ready.
                async move { database.check_tables(DEMO_TABLES).await }
            })
            .check("channel_layer", move || {
                let hub = layer.clone();
                async move { hub.check_broker().await }
            });
        Ok(Self {
            ready,
            metrics: metrics.service(),
            inner,
        })
    }
}

impl<S, B> Service<Request<B>> for OpsRoutes<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each request takes a ready clone of the service it goes to.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match request.uri().path() {
            "/ready" => self.ready.clone().oneshot(request).boxed(),
            "/metrics" => self.metrics.clone().oneshot(request).boxed(),
            _ => self.inner.clone().oneshot(request).boxed(),
        }
    }
}
