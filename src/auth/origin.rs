//! The origin allowlist: refuses cross-site WebSocket hijacking and
//! requests from pages not on the list.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use channels_binding_core::protocol::EventError;
use http::header::ORIGIN;
use http::{Request, Response};
use tower::{Layer, Service};

use super::rejection::RejectOrCall;
use crate::body::{Body, BoxError};

/// Refuses (`403`) any request whose `Origin` header is not exactly one of
/// the allowed origins — before a WebSocket upgrade happens.
///
/// Matching is exact on the serialized origin (`scheme://host[:port]`,
/// ASCII case-insensitive): `https://app.example.com.evil.com` and
/// `http://app.example.com` do not match `https://app.example.com`.
///
/// A request **without** `Origin` passes: browsers always send it on
/// WebSocket upgrades and cross-site requests, so its absence means a
/// non-browser client (curl, a server), which an origin check cannot protect
/// against anyway; authenticate those with credentials.
///
/// ```
/// use channels_binding::auth::AllowedOriginsLayer;
///
/// let layer = AllowedOriginsLayer::new(["https://app.example.com"]).unwrap();
/// assert!(AllowedOriginsLayer::new(["app.example.com"]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct AllowedOriginsLayer {
    allowed: Arc<HashSet<String>>,
}

/// An allowed origin that is not of the form `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin like https://app.example.com")]
pub struct InvalidOrigin(pub String);

impl AllowedOriginsLayer {
    /// Allows exactly these origins.
    ///
    /// # Errors
    ///
    /// [`InvalidOrigin`] for an entry that is not `http(s)://host[:port]`
    /// (no path, no trailing slash).
    pub fn new<I>(origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Ok(Self {
            allowed: Arc::new(parse_origins(origins)?),
        })
    }
}

/// Checks and lowercases a list of origins (`http(s)://host[:port]`).
pub(crate) fn parse_origins<I>(origins: I) -> Result<HashSet<String>, InvalidOrigin>
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    let mut allowed = HashSet::new();
    for origin in origins {
        let origin: String = origin.into();
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(|| InvalidOrigin(origin.clone()))?;
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(InvalidOrigin(origin));
        }
        allowed.insert(origin.to_ascii_lowercase());
    }
    Ok(allowed)
}

impl<S> Layer<S> for AllowedOriginsLayer {
    type Service = AllowedOrigins<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AllowedOrigins {
            inner,
            allowed: self.allowed.clone(),
        }
    }
}

/// The service of [`AllowedOriginsLayer`].
#[derive(Debug, Clone)]
pub struct AllowedOrigins<S> {
    inner: S,
    allowed: Arc<HashSet<String>>,
}

impl<S> AllowedOrigins<S> {
    fn allows(&self, origin: Option<&http::HeaderValue>) -> bool {
        match origin {
            None => true,
            Some(value) => value
                .to_str()
                .is_ok_and(|origin| self.allowed.contains(&origin.to_ascii_lowercase())),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for AllowedOrigins<S>
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
        if !self.allows(request.headers().get(ORIGIN)) {
            return RejectOrCall::reject(crate::response::error(&EventError::forbidden("origin not allowed")));
        }
        RejectOrCall::call(self.inner.call(request))
    }
}
