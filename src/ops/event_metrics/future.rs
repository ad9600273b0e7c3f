//! The response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use channels_binding_core::Reply;
use channels_binding_core::protocol::EventName;
use pin_project_lite::pin_project;

use super::labels::EventLabels;
use crate::ops::names;

pin_project! {
    /// The response future of [`EventMetrics`](super::EventMetrics): the
    /// inner future, recording the reply when it is ready. An event whose
    /// future is dropped before it is answered is not recorded.
    pub struct EventMetricsFuture<F> {
        #[pin]
        inner: F,
        name: EventName,
        labels: EventLabels,
        start: Instant,
    }
}

impl<F> EventMetricsFuture<F> {
    pub(super) fn new(inner: F, name: EventName, labels: EventLabels, start: Instant) -> Self {
        Self {
            inner,
            name,
            labels,
            start,
        }
    }
}

impl<F, E> Future for EventMetricsFuture<F>
where
    F: Future<Output = Result<Reply, E>>,
{
    type Output = Result<Reply, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Ok(reply) = &output {
            let event = this.labels.event(this.name, reply);
            let outcome = EventLabels::outcome(reply);
            metrics::histogram!(names::EVENT_DURATION, "event" => event.clone())
                .record(this.start.elapsed().as_secs_f64());
            metrics::counter!(names::EVENTS, "event" => event, "outcome" => outcome).increment(1);
        }
        Poll::Ready(output)
    }
}
