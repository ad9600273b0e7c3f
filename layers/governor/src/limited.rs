//! The answer when a caller is over its limit.

use std::time::Duration;

use channels_binding_core::protocol::EventError;

/// A caller is over its limit: retry after [`retry_after`](Self::retry_after).
///
/// Both layers turn it into the protocol's `rate_limited` error (HTTP 429);
/// a custom transport can call [`RateLimiter::check`](crate::RateLimiter::check)
/// and do the same.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_governor::RateLimited;
///
/// let limited = RateLimited::new(Duration::from_micros(1_500_001));
/// assert_eq!(limited.retry_after_ms(), 1_501);
/// assert_eq!(limited.retry_after_secs(), 2);
/// let error = serde_json::to_value(limited.to_event_error()).unwrap();
/// assert_eq!(error["code"], "rate_limited");
/// assert_eq!(error["retry_after_ms"], 1_501);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    retry_after: Duration,
    key_capacity: bool,
}

impl RateLimited {
    /// Over the limit; the next event may pass after `retry_after`.
    pub const fn new(retry_after: Duration) -> Self {
        Self {
            retry_after,
            key_capacity: false,
        }
    }

    /// Refused because the limiter tracks as many callers as it may, and
    /// this one is new.
    pub(crate) const fn key_capacity(retry_after: Duration) -> Self {
        Self {
            retry_after,
            key_capacity: true,
        }
    }

    /// How long to wait before retrying.
    pub const fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The wait in whole milliseconds, rounded up and at least 1: the
    /// protocol's `retry_after_ms`.
    pub fn retry_after_ms(&self) -> u64 {
        let ms = self.retry_after.as_nanos().div_ceil(1_000_000);
        u64::try_from(ms).unwrap_or(u64::MAX).max(1)
    }

    /// The wait in whole seconds, rounded up and at least 1: HTTP's
    /// `Retry-After`.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_ms().div_ceil(1_000)
    }

    /// Whether the caller was refused because the key map is full, rather
    /// than for being over its own limit.
    pub const fn is_key_capacity(&self) -> bool {
        self.key_capacity
    }

    /// The protocol's `rate_limited` error with `retry_after_ms`.
    pub fn to_event_error(&self) -> EventError {
        EventError::rate_limited(self.retry_after_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_up_and_never_zero() {
        assert_eq!(RateLimited::new(Duration::ZERO).retry_after_ms(), 1);
        assert_eq!(RateLimited::new(Duration::ZERO).retry_after_secs(), 1);
        assert_eq!(RateLimited::new(Duration::from_nanos(1)).retry_after_ms(), 1);
        assert_eq!(RateLimited::new(Duration::from_millis(1000)).retry_after_secs(), 1);
        assert_eq!(RateLimited::new(Duration::from_millis(1001)).retry_after_secs(), 2);
        assert_eq!(RateLimited::new(Duration::MAX).retry_after_ms(), u64::MAX);
    }
}
