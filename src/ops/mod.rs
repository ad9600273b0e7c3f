//! Operations endpoints: a readiness probe and, with the `metrics` feature
//! (on by default), Prometheus metrics.
//!
//! * [`Readiness`] answers `GET /ready` from named dependency checks run
//!   concurrently, each with a timeout: `200 {"status":"ready",…}` or
//!   `503 {"status":"unavailable",…}`, never an error text.
//! * [`Metrics`] installs the process-wide Prometheus recorder of the
//!   [`metrics`](https://docs.rs/metrics) facade; [`Metrics::service`]
//!   serves `GET /metrics` in the text exposition format.
//! * [`EventMetricsLayer`] counts and times every event of the event stack,
//!   so HTTP and WebSocket events are measured alike.
//!
//! Mount them next to the API; they are ordinary
//! `Service<http::Request<B>>`s (see `examples/ops.rs` for axum):
//!
//! ```
//! # #[cfg(feature = "metrics")] fn main() {
//! use std::time::Duration;
//!
//! use channels_binding::ops::{EventMetricsLayer, Metrics, Readiness};
//! use channels_binding::{EventRouter, Hub};
//! use tower::ServiceBuilder;
//!
//! let metrics = Metrics::install().unwrap();
//! let hub = Hub::new();
//! let counted = hub.clone();
//! metrics.on_scrape(move || metrics::gauge!("channels_binding_connections").set(counted.connection_count() as f64));
//!
//! let router = EventRouter::new().on("demo.ping", || async { serde_json::json!({"pong": true}) });
//! let events = ServiceBuilder::new().layer(EventMetricsLayer::new()).service(router);
//!
//! let ready = Readiness::new()
//!     .timeout(Duration::from_secs(1))
//!     .check("database", || async { Ok::<(), std::io::Error>(()) });
//! let scrape = metrics.service();
//! assert!(metrics.render().contains("channels_binding_connections 0"));
//! # }
//! # #[cfg(not(feature = "metrics"))] fn main() {}
//! ```
//!
//! # Metrics
//!
//! | Name | Kind | Labels | Recorded by |
//! |------|------|--------|-------------|
//! | `channels_binding_events_total` | counter | `event`, `outcome` | [`EventMetricsLayer`] |
//! | `channels_binding_event_duration_seconds` | histogram | `event` | [`EventMetricsLayer`] |
//! | `channels_binding_connections` | gauge | | the hub |
//! | `channels_binding_deliveries_total` | counter | | the hub |
//! | `channels_binding_drops_total` | counter | `reason` | the hub |
//! | `channels_binding_queued_frames` | gauge | | the hub |
//! | `channels_binding_max_queue_depth` | gauge | | the hub |
//! | `channels_binding_broker_connected` | gauge (0 or 1) | | the hub |
//! | `channels_binding_resyncs_total` | counter | | the hub |
//!
//! `event` is the route, `stream.action` (never the `#hash`, which holds
//! ids), or the literal `other` when the reply is `unknown_event`: clients
//! choose event names, so a name nothing answers gets no series of its own,
//! and the declared routes bound the rest. Layers that reject before
//! routing (authentication, rate limits) answer for any name; put the layer
//! inside them, or bound it with [`EventMetricsLayer::routes`]. `outcome` is
//! `ok` or the error code (`not_found`, `validation`, `rate_limited`, …).
//! Durations are in seconds, in buckets from 0.5 ms to 10 s.

mod method;
mod readiness;

#[cfg(feature = "metrics")]
mod event_metrics;
#[cfg(feature = "metrics")]
mod names;
#[cfg(feature = "metrics")]
mod prometheus;

pub use readiness::Readiness;

#[cfg(feature = "metrics")]
pub use event_metrics::{EventMetrics, EventMetricsFuture, EventMetricsLayer};
#[cfg(feature = "metrics")]
pub use prometheus::{Metrics, MetricsError, MetricsService};
