//! The configuration: how fast, how bursty, and how many callers are tracked.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use governor::Quota;

/// How many events a caller may send: a steady rate per second plus a burst,
/// and a bound on how many callers are tracked at once.
///
/// Each caller (see [`RateKey`](crate::RateKey)) gets a bucket of `burst`
/// cells that refills at `per_second` cells per second; every HTTP request
/// or event takes one cell.
///
/// `max_keys` bounds the memory of the limiter: at most that many callers
/// are tracked. Callers idle for longer than a refill of their burst are
/// forgotten; when the map is still full, a caller the limiter does not know
/// yet is answered `rate_limited` (the limiter fails closed rather than
/// grow without bound, or forget callers who are over their limit).
///
/// IPv6 clients are keyed by their `/64` network by default (a single host
/// usually owns a whole `/64`, so keying by address would hand one client
/// 2⁶⁴ budgets and let it fill the key map).
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use channels_binding_governor::RateLimit;
///
/// let config = RateLimit::new(NonZeroU32::new(10).unwrap(), NonZeroU32::new(20).unwrap())
///     .with_max_keys(NonZeroUsize::new(50_000).unwrap())
///     .with_ipv6_prefix(56)
///     .unwrap();
/// assert_eq!(config.per_second().get(), 10);
/// assert_eq!(config.burst().get(), 20);
/// assert_eq!(config.max_keys().get(), 50_000);
/// assert_eq!(config.ipv6_prefix(), 56);
/// assert!(config.with_ipv6_prefix(129).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: NonZeroU32,
    burst: NonZeroU32,
    max_keys: NonZeroUsize,
    ipv6_prefix: u8,
}

/// A rate limit setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An IPv6 prefix longer than an address.
    #[error("an IPv6 prefix has at most 128 bits, not {0}")]
    Ipv6Prefix(u8),
}

impl RateLimit {
    /// The default bound on tracked callers.
    pub const DEFAULT_MAX_KEYS: NonZeroUsize = match NonZeroUsize::new(100_000) {
        Some(n) => n,
        None => panic!("100_000 is not zero"),
    };

    /// The default length of the IPv6 prefix callers are keyed by.
    pub const DEFAULT_IPV6_PREFIX: u8 = 64;

    /// `per_second` events per second per caller, with bursts of up to
    /// `burst` events.
    pub const fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            per_second,
            burst,
            max_keys: Self::DEFAULT_MAX_KEYS,
            ipv6_prefix: Self::DEFAULT_IPV6_PREFIX,
        }
    }

    /// Tracks at most `max_keys` callers at once (default
    /// [`DEFAULT_MAX_KEYS`](Self::DEFAULT_MAX_KEYS)).
    #[must_use]
    pub const fn with_max_keys(mut self, max_keys: NonZeroUsize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Keys IPv6 clients by their first `bits` bits (default 64; 128 keys
    /// each address on its own).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Ipv6Prefix`] when `bits` is over 128.
    pub const fn with_ipv6_prefix(mut self, bits: u8) -> Result<Self, ConfigError> {
        if bits > 128 {
            return Err(ConfigError::Ipv6Prefix(bits));
        }
        self.ipv6_prefix = bits;
        Ok(self)
    }

    /// The steady rate, in events per second.
    pub const fn per_second(&self) -> NonZeroU32 {
        self.per_second
    }

    /// The largest burst.
    pub const fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// The bound on tracked callers.
    pub const fn max_keys(&self) -> NonZeroUsize {
        self.max_keys
    }

    /// The IPv6 prefix length callers are keyed by.
    pub const fn ipv6_prefix(&self) -> u8 {
        self.ipv6_prefix
    }

    /// The governor quota.
    pub(crate) fn quota(&self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }

    /// How long after its last event a caller's bucket is full again, and
    /// its key may be forgotten: one burst plus one cell.
    pub(crate) fn idle_after(&self) -> Duration {
        let quota = self.quota();
        quota.burst_size_replenished_in() + quota.replenish_interval()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = RateLimit::new(NonZeroU32::MIN, NonZeroU32::MIN);
        assert_eq!(config.max_keys().get(), 100_000);
        assert_eq!(config.ipv6_prefix(), 64);
        assert_eq!(config.with_ipv6_prefix(200), Err(ConfigError::Ipv6Prefix(200)));
        assert_eq!(config.with_ipv6_prefix(128).unwrap().ipv6_prefix(), 128);
    }

    #[test]
    fn idle_after_covers_a_whole_burst() {
        let config = RateLimit::new(NonZeroU32::new(10).unwrap(), NonZeroU32::new(5).unwrap());
        assert_eq!(config.idle_after(), Duration::from_millis(600));
    }
}
