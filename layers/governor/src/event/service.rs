//! The service.

use std::task::{Context, Poll};

use channels_binding_core::{Event, Reply};
use tower::Service;

use super::future::ResponseFuture;
use crate::limiter::RateLimiter;

/// Answers `rate_limited` for events over their caller's limit; passes the
/// others to the inner service.
#[derive(Debug, Clone)]
pub struct EventRateLimit<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S> EventRateLimit<S> {
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

impl<S> Service<Event> for EventRateLimit<S>
where
    S: Service<Event, Response = Reply>,
{
    type Response = Reply;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    /// The inner service's readiness: the budget is checked in `call`, never
    /// waited for here.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: Event) -> Self::Future {
        let key = self.limiter.key_for_event(&event);
        match self.limiter.check(&key) {
            Ok(()) => ResponseFuture::inner(self.inner.call(event)),
            Err(limited) => {
                tracing::debug!(key = %key, retry_after_ms = limited.retry_after_ms(), event = %event.name(), "event rate limited");
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

    use channels_binding_core::hub::Hub;
    use channels_binding_core::protocol::{ErrorCode, EventName};
    use channels_binding_core::{ClientAddr, Event, Identity, Principal, Reply};
    use governor::clock::FakeRelativeClock;
    use serde_json::json;
    use tower::{Layer, Service, ServiceExt, service_fn};

    use crate::{RateLimit, RateLimiter};

    fn limiter(per_second: u32, burst: u32) -> (RateLimiter, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let config = RateLimit::new(NonZeroU32::new(per_second).unwrap(), NonZeroU32::new(burst).unwrap());
        (RateLimiter::with_clock(config, clock.clone()), clock)
    }

    /// An inner service counting its calls.
    fn counting() -> (
        impl Service<Event, Response = Reply, Error = Infallible, Future: Send> + Clone,
        Arc<AtomicUsize>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let service = service_fn(move |_event: Event| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Reply::ok(json!({"ok": true}))) }
        });
        (service, calls)
    }

    fn event(identity: Option<&str>, addr: &str) -> Event {
        let mut event = Event::new(EventName::parse("chat.send#1").unwrap(), json!({}), Hub::new());
        if let Some(id) = identity {
            event = event.with_identity(Identity::from(Principal::new(id)));
        }
        event.extensions_mut().insert(ClientAddr(addr.parse().unwrap()));
        event
    }

    async fn send(
        service: &mut (impl Service<Event, Response = Reply, Error = Infallible> + Clone),
        event: Event,
    ) -> Reply {
        service.clone().oneshot(event).await.unwrap()
    }

    fn retry_after_ms(reply: &Reply) -> Option<u64> {
        let error = reply.error_ref()?;
        assert_eq!(error.code(), ErrorCode::RateLimited);
        error.details()["retry_after_ms"].as_u64()
    }

    #[tokio::test]
    async fn burst_then_rate_limited_without_calling_inner_then_recovers() {
        let (limiter, clock) = limiter(1, 3);
        let (inner, calls) = counting();
        let mut service = limiter.event_layer().layer(inner);

        for _ in 0..3 {
            assert!(send(&mut service, event(Some("u"), "10.0.0.1:1")).await.is_ok());
        }
        let reply = send(&mut service, event(Some("u"), "10.0.0.1:1")).await;
        assert_eq!(retry_after_ms(&reply), Some(1000));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the inner service is not called when limited"
        );

        clock.advance(Duration::from_millis(400));
        let reply = send(&mut service, event(Some("u"), "10.0.0.1:1")).await;
        assert_eq!(retry_after_ms(&reply), Some(600));

        clock.advance(Duration::from_millis(600));
        assert!(send(&mut service, event(Some("u"), "10.0.0.1:1")).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn identities_on_one_ip_have_separate_budgets_anonymous_share_one() {
        let (limiter, _clock) = limiter(1, 1);
        let (inner, _) = counting();
        let mut service = limiter.event_layer().layer(inner);

        assert!(send(&mut service, event(Some("alice"), "10.0.0.1:1")).await.is_ok());
        assert!(send(&mut service, event(Some("bob"), "10.0.0.1:2")).await.is_ok());
        assert!(!send(&mut service, event(Some("alice"), "10.9.9.9:3")).await.is_ok());

        assert!(send(&mut service, event(None, "10.0.0.1:1")).await.is_ok());
        assert!(
            !send(&mut service, event(None, "10.0.0.1:2")).await.is_ok(),
            "same IP, other port"
        );
        assert!(send(&mut service, event(None, "10.0.0.2:1")).await.is_ok());
    }

    #[tokio::test]
    async fn anonymous_events_without_an_address_are_keyed_by_connection() {
        let (limiter, _clock) = limiter(1, 1);
        let (inner, _) = counting();
        let mut service = limiter.event_layer().layer(inner);
        let hub = Hub::new();
        let (one, two) = (hub.connect(Identity::anonymous()), hub.connect(Identity::anonymous()));
        let on = |outbox: &channels_binding_core::hub::Outbox, request| {
            Event::new(EventName::parse("chat.send").unwrap(), json!({}), hub.clone())
                .with_connection(outbox.connection().clone(), request)
        };

        assert!(send(&mut service, on(&one, 1)).await.is_ok());
        assert!(send(&mut service, on(&two, 1)).await.is_ok());
        assert!(!send(&mut service, on(&one, 2)).await.is_ok());
    }

    #[tokio::test]
    async fn clones_share_one_budget() {
        let (limiter, _clock) = limiter(1, 2);
        let (inner, calls) = counting();
        let layer = limiter.event_layer();
        let mut a = layer.layer(inner.clone());
        let mut b = layer.clone().layer(inner.clone());
        let mut c = a.clone();

        assert!(send(&mut a, event(Some("u"), "10.0.0.1:1")).await.is_ok());
        assert!(send(&mut b, event(Some("u"), "10.0.0.1:1")).await.is_ok());
        assert!(!send(&mut c, event(Some("u"), "10.0.0.1:1")).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn poll_ready_is_ready_even_over_the_limit() {
        let (limiter, _clock) = limiter(1, 1);
        let (inner, _) = counting();
        let mut service = limiter.event_layer().layer(inner);
        let mut cx = Context::from_waker(Waker::noop());

        assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
        let first = std::pin::pin!(service.call(event(Some("u"), "10.0.0.1:1")));
        assert!(matches!(first.poll(&mut cx), Poll::Ready(Ok(reply)) if reply.is_ok()));

        for _ in 0..3 {
            assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
            let limited = std::pin::pin!(service.call(event(Some("u"), "10.0.0.1:1")));
            match limited.poll(&mut cx) {
                Poll::Ready(Ok(reply)) => assert_eq!(retry_after_ms(&reply), Some(1000)),
                other => panic!("limited events are answered at once, got {other:?}"),
            }
        }
    }
}
