//! The service.

use std::task::{Context, Poll};
use std::time::Instant;

use channels_binding_core::{Event, Reply};
use tower::Service;

use super::future::EventMetricsFuture;
use super::labels::EventLabels;

/// The service of [`EventMetricsLayer`](super::EventMetricsLayer): times
/// the inner call and records its outcome.
///
/// ```
/// use channels_binding::EventRouter;
/// use channels_binding::ops::{EventMetrics, EventMetricsLayer};
/// use tower::Layer;
///
/// let events: EventMetrics<EventRouter> = EventMetricsLayer::new().layer(EventRouter::new());
/// ```
#[derive(Debug, Clone)]
pub struct EventMetrics<S> {
    inner: S,
    labels: EventLabels,
}

impl<S> EventMetrics<S> {
    pub(super) fn new(inner: S, labels: EventLabels) -> Self {
        Self { inner, labels }
    }
}

impl<S> Service<Event> for EventMetrics<S>
where
    S: Service<Event, Response = Reply>,
{
    type Response = Reply;
    type Error = S::Error;
    type Future = EventMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: Event) -> Self::Future {
        let name = event.name().clone();
        let start = Instant::now();
        EventMetricsFuture::new(self.inner.call(event), name, self.labels.clone(), start)
    }
}
