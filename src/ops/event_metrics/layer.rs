//! The layer.

use std::collections::HashSet;

use tower::Layer;

use super::labels::EventLabels;
use super::service::EventMetrics;

/// Records `channels_binding_events_total{event, outcome}` and
/// `channels_binding_event_duration_seconds{event}` for every event through
/// the stack below it (see [the module docs](crate::ops) for the labels).
///
/// The `event` label is the route (`auth.User.retrieve`, never the `#hash`),
/// or `other` when the reply is `unknown_event`. So directly around the
/// router, labels are bounded by the declared routes. A layer that rejects
/// before routing (authentication, rate limits) answers for names the client
/// made up: outside such layers, also give the declared routes with
/// [`routes`](Self::routes), and every other name is `other` too.
///
/// ```
/// use channels_binding::ops::EventMetricsLayer;
/// use channels_binding::{EventRouter, require_identity::RequireIdentityLayer};
/// use tower::ServiceBuilder;
///
/// let router = EventRouter::new().on("demo.ping", || async { serde_json::json!({"pong": true}) });
/// let stack = ServiceBuilder::new()
///     .layer(EventMetricsLayer::new().routes(router.routes()))
///     .layer(RequireIdentityLayer::all())
///     .service(router);
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventMetricsLayer {
    labels: EventLabels,
}

impl EventMetricsLayer {
    /// A layer labelling events by route, `unknown_event` replies as `other`.
    ///
    /// ```
    /// use channels_binding::EventRouter;
    /// use channels_binding::ops::EventMetricsLayer;
    /// use tower::Layer;
    ///
    /// let events = EventMetricsLayer::new().layer(EventRouter::new());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Labels only these routes (`stream.action`, as from
    /// [`EventRouter::routes`](crate::EventRouter::routes)) by name; any other
    /// event is `other`, whoever answered it.
    ///
    /// ```
    /// use channels_binding::EventRouter;
    /// use channels_binding::ops::EventMetricsLayer;
    ///
    /// let router = EventRouter::new().on("demo.ping", || async { serde_json::json!({}) });
    /// let layer = EventMetricsLayer::new().routes(router.routes());
    /// ```
    #[must_use]
    pub fn routes<I>(mut self, routes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let routes: HashSet<String> = routes.into_iter().map(Into::into).collect();
        self.labels = EventLabels::declared(routes);
        self
    }
}

impl<S> Layer<S> for EventMetricsLayer {
    type Service = EventMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EventMetrics::new(inner, self.labels.clone())
    }
}
