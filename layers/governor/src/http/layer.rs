//! The layer.

use tower::Layer;

use super::service::HttpRateLimit;
use crate::limiter::RateLimiter;

/// Limits HTTP requests per caller with a [`RateLimiter`]'s budgets.
///
/// Build it with [`RateLimiter::http_layer`]; every service it makes shares
/// the limiter's budgets, and so does the limiter's event layer.
#[derive(Debug, Clone)]
pub struct HttpRateLimitLayer {
    limiter: RateLimiter,
}

impl HttpRateLimitLayer {
    /// A layer drawing on `limiter`'s budgets.
    pub fn new(limiter: RateLimiter) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for HttpRateLimitLayer {
    type Service = HttpRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpRateLimit::new(inner, self.limiter.clone())
    }
}
