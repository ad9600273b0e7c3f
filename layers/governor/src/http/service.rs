//! The service.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower::Service;

use super::future::ResponseFuture;
use crate::body::{Body, BoxError};
use crate::limiter::RateLimiter;

/// Answers `429` for requests over their caller's limit; passes the others
/// to the inner service.
#[derive(Debug, Clone)]
pub struct HttpRateLimit<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S> HttpRateLimit<S> {
    /// Wraps `inner`, drawing on `limiter`'s budgets.
    pub fn new(inner: S, limiter: RateLimiter) -> Self {
        Self { inner, limiter }
    }

    /// The limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for HttpRateLimit<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    /// The inner service's readiness: the budget is checked in `call`, never
    /// waited for here.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let key = self.limiter.key_for_request(&request);
        match self.limiter.check(&key) {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(limited) => {
                tracing::debug!(key = %key, retry_after_ms = limited.retry_after_ms(), "request rate limited");
                ResponseFuture::limited(limited)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::num::NonZeroU32;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use bytes::Bytes;
    use channels_binding_core::{ClientAddr, Identity, Principal};
    use governor::clock::FakeRelativeClock;
    use http::{Request, Response, StatusCode, header};
    use http_body_util::{BodyExt, Full};
    use tower::{Layer, Service, ServiceExt, service_fn};

    use crate::{Body, RateLimit, RateLimiter};

    fn limiter(per_second: u32, burst: u32) -> (RateLimiter, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let config = RateLimit::new(NonZeroU32::new(per_second).unwrap(), NonZeroU32::new(burst).unwrap());
        (RateLimiter::with_clock(config, clock.clone()), clock)
    }

    fn counting() -> (
        impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone,
        Arc<AtomicUsize>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let service = service_fn(move |_request: Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner")))) }
        });
        (service, calls)
    }

    fn request(identity: Option<&str>, addr: &str) -> Request<()> {
        let mut request = Request::new(());
        if let Some(id) = identity {
            request.extensions_mut().insert(Identity::from(Principal::new(id)));
        }
        request.extensions_mut().insert(ClientAddr(addr.parse().unwrap()));
        request
    }

    async fn send(
        service: &(impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone),
        request: Request<()>,
    ) -> (StatusCode, http::HeaderMap, Bytes) {
        let response = service.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn burst_then_429_with_retry_after_and_json_then_recovers() {
        let (limiter, clock) = limiter(2, 2);
        let (inner, calls) = counting();
        let service = limiter.http_layer().layer(inner);

        for _ in 0..2 {
            let (status, _, body) = send(&service, request(None, "192.0.2.1:1")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, "inner");
        }
        let (status, headers, body) = send(&service, request(None, "192.0.2.1:1")).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            error,
            serde_json::json!({"code": "rate_limited", "message": "rate limit exceeded", "retry_after_ms": 500})
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        clock.advance(Duration::from_millis(500));
        let (status, _, _) = send(&service, request(None, "192.0.2.1:1")).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn retry_after_rounds_up_to_whole_seconds() {
        // One request per second: a whole second to wait.
        let config = RateLimit::new(NonZeroU32::MIN, NonZeroU32::MIN);
        let limiter = RateLimiter::with_clock(config, FakeRelativeClock::default());
        let (inner, _) = counting();
        let service = limiter.http_layer().layer(inner);
        send(&service, request(None, "192.0.2.1:1")).await;
        let (status, headers, _) = send(&service, request(None, "192.0.2.1:1")).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "1");

        let config = RateLimit::new(NonZeroU32::MIN, NonZeroU32::new(3).unwrap());
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(config, clock.clone());
        let service = limiter.http_layer().layer(counting().0);
        for _ in 0..3 {
            send(&service, request(None, "192.0.2.1:1")).await;
        }
        clock.advance(Duration::from_millis(100));
        let (_, headers, body) = send(&service, request(None, "192.0.2.1:1")).await;
        assert_eq!(headers[header::RETRY_AFTER], "1");
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["retry_after_ms"], 900);
    }

    #[tokio::test]
    async fn identities_on_one_ip_have_separate_budgets_anonymous_share_one() {
        let (limiter, _clock) = limiter(1, 1);
        let service = limiter.http_layer().layer(counting().0);
        let status = async |identity, addr| send(&service, request(identity, addr)).await.0;

        assert_eq!(status(Some("alice"), "192.0.2.1:1").await, StatusCode::OK);
        assert_eq!(status(Some("bob"), "192.0.2.1:1").await, StatusCode::OK);
        assert_eq!(
            status(Some("alice"), "192.0.2.99:1").await,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(status(None, "192.0.2.1:1").await, StatusCode::OK);
        assert_eq!(status(None, "192.0.2.1:2").await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(status(None, "[2001:db8::1]:1").await, StatusCode::OK);
        assert_eq!(
            status(None, "[2001:db8::2]:1").await,
            StatusCode::TOO_MANY_REQUESTS,
            "same /64"
        );
    }

    #[tokio::test]
    async fn clones_share_one_budget() {
        let (limiter, _clock) = limiter(1, 2);
        let (inner, calls) = counting();
        let a = limiter.http_layer().layer(inner.clone());
        let b = limiter.clone().http_layer().layer(inner);
        assert_eq!(send(&a, request(None, "192.0.2.1:1")).await.0, StatusCode::OK);
        assert_eq!(send(&b, request(None, "192.0.2.1:1")).await.0, StatusCode::OK);
        assert_eq!(
            send(&a.clone(), request(None, "192.0.2.1:1")).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn poll_ready_is_ready_even_over_the_limit() {
        let (limiter, _clock) = limiter(1, 1);
        let mut service = limiter.http_layer().layer(counting().0);
        let mut cx = Context::from_waker(Waker::noop());
        for n in 0..3 {
            assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
            let future = std::pin::pin!(service.call(request(None, "192.0.2.1:1")));
            let Poll::Ready(Ok(response)) = future.poll(&mut cx) else {
                panic!("answered at once");
            };
            let expected = if n == 0 {
                StatusCode::OK
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            assert_eq!(response.status(), expected);
        }
    }
}
