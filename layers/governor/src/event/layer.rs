//! The layer.

use tower::Layer;

use super::service::EventRateLimit;
use crate::limiter::RateLimiter;

/// Limits events per caller with a [`RateLimiter`]'s budgets.
///
/// Build it with [`RateLimiter::event_layer`]; every service it makes shares
/// the limiter's budgets.
#[derive(Debug, Clone)]
pub struct EventRateLimitLayer {
    limiter: RateLimiter,
}

impl EventRateLimitLayer {
    /// A layer drawing on `limiter`'s budgets.
    pub fn new(limiter: RateLimiter) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for EventRateLimitLayer {
    type Service = EventRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EventRateLimit::new(inner, self.limiter.clone())
    }
}
