//! The response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use pin_project_lite::pin_project;

use super::response::too_many_requests;
use crate::body::{Body, BoxError};
use crate::limited::RateLimited;

pin_project! {
    /// The response future of [`HttpRateLimit`](super::HttpRateLimit): the
    /// inner service's response with its body boxed, or a `429` ready at once.
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

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Limited { limited } => Poll::Ready(Ok(too_many_requests(limited))),
            KindProj::Inner { future } => future
                .poll(cx)
                .map_ok(|response| response.map(|body| body.map_err(Into::into).boxed_unsync())),
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
