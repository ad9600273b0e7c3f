//! Anonymous rejection at the HTTP level (`ANONYMOUS_CONNECTION_ALLOWED = false`).

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use channels_binding_core::Identity;
use http::{Request, Response};
use tower::{Layer, Service};

use super::rejection::{RejectOrCall, unauthenticated};
use crate::body::{Body, BoxError};

/// Refuses requests without an identity: `401` with `WWW-Authenticate`.
///
/// Put it inside an [`AuthLayer`](super::AuthLayer) and outside the
/// WebSocket service, and an anonymous upgrade is refused before it happens.
///
/// ```
/// use channels_binding::auth::{AuthLayer, AuthStrategies, RequireIdentityHttpLayer};
/// use channels_binding::ws::WebSocket;
/// use channels_binding::{EventRouter, Hub};
/// use tower::ServiceBuilder;
///
/// let service = ServiceBuilder::new()
///     .layer(AuthLayer::new(AuthStrategies::new()))
///     .layer(RequireIdentityHttpLayer::new(["Bearer"]))
///     .service(WebSocket::new(EventRouter::new(), Hub::new()));
/// ```
#[derive(Debug, Clone)]
pub struct RequireIdentityHttpLayer {
    schemes: Vec<&'static str>,
}

impl RequireIdentityHttpLayer {
    /// Challenges with these schemes (`Bearer`, `ApiKey`, …) when refusing.
    pub fn new(schemes: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            schemes: schemes.into_iter().collect(),
        }
    }
}

impl<S> Layer<S> for RequireIdentityHttpLayer {
    type Service = RequireIdentityHttp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireIdentityHttp {
            inner,
            schemes: self.schemes.clone(),
        }
    }
}

/// The service of [`RequireIdentityHttpLayer`].
#[derive(Debug, Clone)]
pub struct RequireIdentityHttp<S> {
    inner: S,
    schemes: Vec<&'static str>,
}

impl<S, B, ResBody> Service<Request<B>> for RequireIdentityHttp<S>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RejectOrCall<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let anonymous = request
            .extensions()
            .get::<Identity>()
            .is_none_or(Identity::is_anonymous);
        if anonymous {
            return RejectOrCall::reject(unauthenticated("authentication required", &self.schemes, false));
        }
        RejectOrCall::call(self.inner.call(request))
    }
}
