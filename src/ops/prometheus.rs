//! The process-wide Prometheus recorder and its scrape endpoint.

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::Service;

use super::method;
use super::names;
use crate::body::{Body, empty, full};

/// The content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4";

/// How often histogram samples are folded into their buckets between scrapes,
/// so that a process nobody scrapes does not grow.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Buckets of `channels_binding_event_duration_seconds`, from half a
/// millisecond to ten seconds.
const EVENT_DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type ScrapeFn = Arc<dyn Fn() + Send + Sync>;

/// What `install` sets up once per process.
struct Installed {
    handle: PrometheusHandle,
    on_scrape: RwLock<Vec<ScrapeFn>>,
}

/// The recorder, once installed; an error is kept too, since a process has
/// one global recorder and a failed installation cannot succeed later.
static INSTALLED: OnceLock<Result<Arc<Installed>, MetricsError>> = OnceLock::new();

/// Why the Prometheus recorder could not be installed.
///
/// ```
/// use channels_binding::ops::MetricsError;
///
/// fn explain(error: &MetricsError) -> String {
///     format!("metrics are off: {error}")
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Another global recorder of the `metrics` facade is installed already.
    #[error("could not install the Prometheus recorder: {0}")]
    Install(String),
}

/// The process-wide Prometheus recorder of the `metrics` facade, and the
/// scrape endpoint that renders it.
///
/// Everything recorded with `metrics::counter!`, `gauge!` or `histogram!`
/// anywhere in the process (this crate, the hub, your handlers) appears on
/// [`service`](Self::service). See [the module docs](super) for the names
/// this crate records.
///
/// ```
/// use channels_binding::ops::Metrics;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let metrics = Metrics::install().unwrap();
/// metrics::counter!("doc_example_total").increment(1);
///
/// let response = metrics.service().oneshot(http::Request::get("/metrics").body(()).unwrap()).await.unwrap();
/// assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4");
/// assert!(metrics.render().contains("doc_example_total 1"));
/// # }
/// ```
#[derive(Clone)]
pub struct Metrics {
    installed: Arc<Installed>,
}

impl Metrics {
    /// Installs the Prometheus recorder as the process's global recorder, or
    /// returns a handle to it when it is installed already (calling this
    /// more than once, from tests say, is fine).
    ///
    /// The first installation also starts a small background thread that
    /// folds histogram samples into buckets every few seconds, so memory stays
    /// bounded when nobody scrapes.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Install`] when another recorder (not this one) is the
    /// global recorder already; every later call then fails the same way.
    ///
    /// ```
    /// use channels_binding::ops::Metrics;
    ///
    /// let first = Metrics::install().unwrap();
    /// let second = Metrics::install().unwrap();
    /// metrics::gauge!("doc_install_gauge").set(3.0);
    /// assert!(first.render().contains("doc_install_gauge 3"));
    /// assert!(second.render().contains("doc_install_gauge 3"));
    /// ```
    pub fn install() -> Result<Self, MetricsError> {
        INSTALLED
            .get_or_init(install_recorder)
            .clone()
            .map(|installed| Self { installed })
    }

    /// Registers `f` to run just before each rendering: set gauges there
    /// from state read on demand (connections, queue depths).
    ///
    /// Closures run on the scraping request, in registration order; keep
    /// them quick and non-blocking. A panicking closure is logged and
    /// skipped. The recorder is process-wide, so registrations last for the
    /// life of the process.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// use channels_binding::ops::Metrics;
    ///
    /// let metrics = Metrics::install().unwrap();
    /// let depth = Arc::new(AtomicUsize::new(7));
    /// let read = depth.clone();
    /// metrics.on_scrape(move || {
    ///     metrics::gauge!("doc_queue_depth").set(read.load(Ordering::Relaxed) as f64);
    /// });
    /// assert!(metrics.render().contains("doc_queue_depth 7"));
    /// depth.store(9, Ordering::Relaxed);
    /// assert!(metrics.render().contains("doc_queue_depth 9"));
    /// ```
    pub fn on_scrape(&self, f: impl Fn() + Send + Sync + 'static) {
        self.installed
            .on_scrape
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(f));
    }

    /// Reports a hub's load on every scrape: `channels_binding_connections`,
    /// `channels_binding_queued_frames` (frames waiting in all connection
    /// queues) and `channels_binding_max_queue_depth` (the deepest queue).
    /// The hub counts deliveries, drops and resyncs itself.
    ///
    /// ```
    /// use channels_binding::ops::Metrics;
    /// use channels_binding::{Hub, Identity};
    ///
    /// let metrics = Metrics::install().unwrap();
    /// let hub = Hub::new();
    /// let _outbox = hub.connect(Identity::anonymous());
    /// metrics.watch_hub(&hub);
    /// assert!(metrics.render().contains("channels_binding_queued_frames 0"));
    /// ```
    pub fn watch_hub(&self, hub: &channels_binding_core::Hub) {
        let hub = hub.clone();
        self.on_scrape(move || {
            let stats = hub.stats();
            metrics::gauge!("channels_binding_connections").set(stats.connections as f64);
            metrics::gauge!("channels_binding_queued_frames").set(stats.queued_frames as f64);
            metrics::gauge!("channels_binding_max_queue_depth").set(stats.max_queue_depth as f64);
        });
    }

    /// Runs the [`on_scrape`](Self::on_scrape) closures, then renders every
    /// metric in the text exposition format.
    ///
    /// ```
    /// use channels_binding::ops::Metrics;
    ///
    /// let metrics = Metrics::install().unwrap();
    /// metrics::counter!("doc_render_total", "kind" => "a").increment(2);
    /// assert!(metrics.render().contains(r#"doc_render_total{kind="a"} 2"#));
    /// ```
    pub fn render(&self) -> String {
        // Copied out, so that a closure may register another without deadlocking.
        let closures = self
            .installed
            .on_scrape
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for closure in closures {
            if std::panic::catch_unwind(AssertUnwindSafe(|| closure())).is_err() {
                tracing::warn!("a metrics on_scrape closure panicked");
            }
        }
        self.installed.handle.run_upkeep();
        self.installed.handle.render()
    }

    /// The scrape endpoint (`GET /metrics`): a service rendering the text
    /// exposition format with content type `text/plain; version=0.0.4`.
    /// Other methods than `GET` and `HEAD` get `405`.
    ///
    /// ```
    /// use channels_binding::ops::Metrics;
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let metrics = Metrics::install().unwrap();
    /// let post = http::Request::post("/metrics").body(()).unwrap();
    /// assert_eq!(metrics.service().oneshot(post).await.unwrap().status(), 405);
    /// # }
    /// ```
    pub fn service(&self) -> MetricsService {
        MetricsService { metrics: self.clone() }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn install_recorder() -> Result<Arc<Installed>, MetricsError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::EVENT_DURATION.to_owned()), EVENT_DURATION_BUCKETS)
        .map_err(|error| MetricsError::Install(error.to_string()))?
        .install_recorder()
        .map_err(|error| MetricsError::Install(error.to_string()))?;
    names::describe();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        // Scrapes still run upkeep; only unscraped processes grow.
        tracing::warn!(%error, "could not start the metrics upkeep thread");
    }
    Ok(Arc::new(Installed {
        handle,
        on_scrape: RwLock::new(Vec::new()),
    }))
}

/// The scrape endpoint of [`Metrics`], from [`Metrics::service`].
///
/// ```
/// use channels_binding::ops::{Metrics, MetricsService};
///
/// let service: MetricsService = Metrics::install().unwrap().service();
/// ```
#[derive(Debug, Clone)]
pub struct MetricsService {
    metrics: Metrics,
}

impl<B> Service<Request<B>> for MetricsService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !method::is_read(request.method()) {
            return ready(Ok(method::not_allowed()));
        }
        let text = self.metrics.render();
        let body = if request.method() == Method::HEAD {
            empty()
        } else {
            full(Bytes::from(text))
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        ready(Ok(response))
    }
}
