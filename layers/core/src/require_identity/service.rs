//! The service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::Service;

use crate::event::Event;
use crate::protocol::{EventError, EventName};
use crate::reply::Reply;

/// Answers `unauthenticated` for anonymous events its rule selects.
#[derive(Clone)]
pub struct RequireIdentity<S> {
    inner: S,
    applies: Arc<dyn Fn(&EventName) -> bool + Send + Sync>,
}

impl<S> RequireIdentity<S> {
    pub(crate) fn new(inner: S, applies: Arc<dyn Fn(&EventName) -> bool + Send + Sync>) -> Self {
        Self { inner, applies }
    }
}

impl<S: fmt::Debug> fmt::Debug for RequireIdentity<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireIdentity")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, E> Service<Event> for RequireIdentity<S>
where
    S: Service<Event, Response = Reply, Error = E>,
{
    type Response = Reply;
    type Error = E;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: Event) -> Self::Future {
        if event.identity().is_anonymous() && (self.applies)(event.name()) {
            let error = EventError::unauthenticated("this action needs an identity: sign in first");
            return ResponseFuture::rejected(Reply::error(error));
        }
        ResponseFuture::inner(self.inner.call(event))
    }
}

pin_project! {
    /// The response future of [`RequireIdentity`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Rejected { reply: Option<Reply> },
        Inner { #[pin] future: F },
    }
}

impl<F> ResponseFuture<F> {
    fn rejected(reply: Reply) -> Self {
        Self {
            kind: Kind::Rejected { reply: Some(reply) },
        }
    }

    fn inner(future: F) -> Self {
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
            KindProj::Rejected { reply } => {
                Poll::Ready(Ok(reply.take().unwrap_or_else(|| Reply::error(EventError::internal()))))
            }
            KindProj::Inner { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tower::{Layer, ServiceExt};

    use super::super::RequireIdentityLayer;
    use crate::hub::Hub;
    use crate::protocol::EventName;
    use crate::{Event, EventRouter, Identity, Principal};

    fn event(name: &str, identity: Identity) -> Event {
        Event::new(EventName::parse(name).unwrap(), json!({}), Hub::new()).with_identity(identity)
    }

    #[tokio::test]
    async fn anonymous_writes_are_refused_reads_pass() {
        let router = EventRouter::new()
            .on("a.B.retrieve", || async { json!({"ok": 1}) })
            .on("a.B.delete", || async { json!({"ok": 2}) });
        let stack = RequireIdentityLayer::for_actions(["delete"]).layer(router);

        let reply = stack
            .clone()
            .oneshot(event("a.B.retrieve", Identity::anonymous()))
            .await
            .unwrap();
        assert!(reply.is_ok());
        let reply = stack
            .clone()
            .oneshot(event("a.B.delete", Identity::anonymous()))
            .await
            .unwrap();
        assert_eq!(reply.error_ref().unwrap().code().as_str(), "unauthenticated");
        let user = Identity::from(Principal::new("1"));
        let reply = stack.oneshot(event("a.B.delete", user)).await.unwrap();
        assert!(reply.is_ok());
    }
}
