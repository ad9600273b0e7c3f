//! The response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use channels_binding_core::Reply;
use pin_project_lite::pin_project;

use crate::limited::RateLimited;

pin_project! {
    /// The response future of [`EventRateLimit`](super::EventRateLimit):
    /// the inner service's, or a `rate_limited` reply ready at once.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Limited { limited: RateLimited },
        Inner { #[pin] future: F },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn limited(limited: RateLimited) -> Self {
        Self {
            kind: Kind::Limited { limited },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Reply, E>>,
{
    type Output = Result<Reply, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Limited { limited } => Poll::Ready(Ok(Reply::error(limited.to_event_error()))),
            KindProj::Inner { future } => future.poll(cx),
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
