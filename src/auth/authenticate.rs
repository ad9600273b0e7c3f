//! The authenticate layer: runs the strategy chain on each request and puts
//! the caller's [`Identity`] into its extensions.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use channels_binding_core::Identity;
use channels_binding_core::auth::{AuthError, AuthErrorKind, AuthStrategies, CredentialKind};
use channels_binding_core::protocol::EventError;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{Layer, Service};

use super::cross_site::CrossSite;
use super::origin::InvalidOrigin;
use super::rejection::unauthenticated;
use crate::body::{Body, BoxError};

/// Authenticates every request with a chain of strategies.
///
/// The identity (anonymous when no strategy recognises the caller) goes into
/// the request's extensions, where the WebSocket transport picks it up for
/// every event of the socket, and where any other service can read it: the
/// same layer protects a plain axum route or a gRPC service.
///
/// Invalid credentials are answered `401` with a `WWW-Authenticate`
/// challenge, before the inner service runs (so a WebSocket upgrade never
/// happens); a credential store that is down is answered `503`.
///
/// Cross-site protection is on by default: a state-changing request (`POST`,
/// `PUT`, `PATCH`, `DELETE`, …) or an upgrade whose `Origin` is neither the
/// server's own (its `Host`) nor [trusted](Self::trust_origins) is answered
/// `403` when the only credential it carries is an
/// [ambient](channels_binding_core::auth::CredentialKind::Ambient) one (a
/// session cookie), which any site's page can make the browser send. Such a
/// request is still served when an explicit credential (a bearer token, an
/// API key) identifies the caller, or when it carries no credential at all.
///
/// ```
/// use channels_binding::auth::{AuthLayer, AuthStrategies, ApiKeyStrategy};
/// use channels_binding::Principal;
///
/// let keys = ApiKeyStrategy::new().key("s3cr3t-key-for-the-docs", Principal::new("robot"));
/// let layer = AuthLayer::new(AuthStrategies::new().with(keys));
/// let app: axum::Router = axum::Router::new()
///     .route("/me", axum::routing::get(|identity: axum::Extension<channels_binding::Identity>| async move {
///         format!("{:?}", identity.0.id())
///     }))
///     .layer(layer);
/// ```
#[derive(Debug, Clone)]
pub struct AuthLayer {
    strategies: AuthStrategies,
    cross_site: CrossSite,
}

impl AuthLayer {
    /// A layer running this chain.
    pub fn new(strategies: AuthStrategies) -> Self {
        Self {
            strategies,
            cross_site: CrossSite::default(),
        }
    }

    /// Also accepts cookie-authenticated state-changing requests and
    /// upgrades from pages on these origins (`http(s)://host[:port]`), for
    /// a front end served from another origin.
    ///
    /// ```
    /// use channels_binding::auth::{AuthLayer, AuthStrategies};
    ///
    /// let layer = AuthLayer::new(AuthStrategies::new()).trust_origins(["https://app.example.com"]);
    /// assert!(layer.is_ok());
    /// assert!(AuthLayer::new(AuthStrategies::new()).trust_origins(["app.example.com"]).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidOrigin`] for an entry that is not `http(s)://host[:port]`.
    pub fn trust_origins<I>(mut self, origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.cross_site = CrossSite::trusting(origins)?;
        Ok(self)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            strategies: self.strategies.clone(),
            cross_site: self.cross_site.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    strategies: AuthStrategies,
    cross_site: CrossSite,
}

impl<S, B, ResBody> Service<Request<B>> for Authenticate<S>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    // Authentication may wait on a store (sessions): the future is boxed.
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is the one made ready; keep it for this call (tower's
        // "clone and swap" idiom), leave a fresh clone for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let strategies = self.strategies.clone();
        let cross_site = self.cross_site.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let authenticated = if cross_site.refuses_ambient(&parts) {
                match authenticate_cross_site(&strategies, &parts).await {
                    Some(result) => result,
                    None => {
                        return Ok(crate::response::error(&EventError::forbidden(
                            "cross-site request with a session cookie: send it from this site, \
                             or authenticate with a token",
                        )));
                    }
                }
            } else {
                strategies.authenticate(&parts).await
            };
            match authenticated {
                Ok(identity) => {
                    parts.extensions.insert(identity);
                    let response = inner.call(Request::from_parts(parts, body)).await?;
                    Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()))
                }
                Err(error) if error.kind() == AuthErrorKind::Unavailable => {
                    tracing::warn!(error = %error, "credential store unavailable");
                    Ok(crate::response::error(&EventError::unavailable(
                        error.message().to_owned(),
                    )))
                }
                Err(error) => Ok(unauthenticated(error.message(), &strategies.challenges(), true)),
            }
        })
    }
}

/// Authenticates a cross-site state-changing request with explicit
/// credentials only. `None` (refuse it) when none identifies the caller but
/// an ambient one (a cookie) is present, valid or not; anonymous when there
/// is no credential at all.
async fn authenticate_cross_site(
    strategies: &AuthStrategies,
    parts: &http::request::Parts,
) -> Option<Result<Identity, AuthError>> {
    match strategies.authenticate_kind(parts, CredentialKind::Explicit).await {
        Ok(Some(identity)) => Some(Ok(identity)),
        Err(error) => Some(Err(error)),
        Ok(None) => match strategies.authenticate_kind(parts, CredentialKind::Ambient).await {
            Ok(None) => Some(Ok(Identity::anonymous())),
            Ok(Some(_)) | Err(_) => None,
        },
    }
}
