//! The limiter handle: one budget per caller, shared by every clone and by
//! both layers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use channels_binding_core::Event;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;

use crate::bound::{KeyBound, PRUNE_MIN_INTERVAL};
use crate::config::RateLimit;
use crate::event::EventRateLimitLayer;
use crate::http::HttpRateLimitLayer;
use crate::key::RateKey;
use crate::limited::RateLimited;
use crate::store::KeyStore;

/// A keyed rate limiter: the one budget per caller that its layers share.
///
/// Cloning the handle (or a layer, or a service built from it) shares the
/// budgets: ten clones of a service do not allow ten times the rate, and an
/// [`http_layer`](Self::http_layer) and an [`event_layer`](Self::event_layer)
/// from one limiter draw on one budget per caller, so a caller cannot double
/// its rate by switching between HTTP and WebSocket. (It also means an event
/// that passes both an HTTP layer and an event layer of one limiter costs two
/// cells; put each path under one of them.)
///
/// The clock is governor's: [`new`](Self::new) uses the real one,
/// [`with_clock`](Self::with_clock) takes any other, such as
/// [`FakeRelativeClock`](governor::clock::FakeRelativeClock) in tests. The
/// clock type does not appear in the handle or the layers.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use channels_binding_governor::governor::clock::FakeRelativeClock;
/// use channels_binding_governor::{RateKey, RateLimit, RateLimiter};
///
/// let clock = FakeRelativeClock::default();
/// // One event per second, bursts of two.
/// let config = RateLimit::new(NonZeroU32::MIN, NonZeroU32::new(2).unwrap());
/// let limiter = RateLimiter::with_clock(config, clock.clone());
/// let alice = RateKey::Identity("alice".into());
///
/// assert!(limiter.check(&alice).is_ok());
/// assert!(limiter.clone().check(&alice).is_ok());
/// let limited = limiter.check(&alice).unwrap_err();
/// assert_eq!(limited.retry_after_ms(), 1000);
///
/// clock.advance(Duration::from_secs(1));
/// assert!(limiter.check(&alice).is_ok());
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    config: RateLimit,
    keyed: Arc<dyn Keyed>,
}

/// The limiter with its clock type erased.
trait Keyed: Send + Sync {
    fn check(&self, key: &RateKey) -> Result<(), RateLimited>;
    fn key_count(&self) -> usize;
}

impl RateLimiter {
    /// A limiter on the real clock (governor's
    /// [`DefaultClock`](governor::clock::DefaultClock)).
    pub fn new(config: RateLimit) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }

    /// A limiter on `clock`.
    pub fn with_clock<C>(config: RateLimit, clock: C) -> Self
    where
        C: Clock + Send + Sync + 'static,
    {
        Self {
            config,
            keyed: Arc::new(Limiter::new(config, clock)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RateLimit {
        &self.config
    }

    /// Takes one cell from `key`'s budget.
    ///
    /// Never waits: the answer is immediate.
    ///
    /// # Errors
    ///
    /// [`RateLimited`] when `key` is over its limit, or when `key` is new and
    /// the limiter already tracks [`max_keys`](RateLimit::max_keys) callers
    /// that are all active (the limiter fails closed rather than grow; this
    /// is logged at `warn`, at most once a minute).
    pub fn check(&self, key: &RateKey) -> Result<(), RateLimited> {
        self.keyed.check(key)
    }

    /// How many callers are tracked now. It stays at or below
    /// [`max_keys`](RateLimit::max_keys), give or take the number of calls
    /// checking new callers at the very same moment on other threads.
    pub fn key_count(&self) -> usize {
        self.keyed.key_count()
    }

    /// The key an event is limited by (see [`RateKey`]).
    pub fn key_for_event(&self, event: &Event) -> RateKey {
        RateKey::for_event(event, self.config.ipv6_prefix())
    }

    /// The key an HTTP request is limited by (see [`RateKey`]).
    pub fn key_for_request<B>(&self, request: &http::Request<B>) -> RateKey {
        RateKey::for_request(request, self.config.ipv6_prefix())
    }

    /// A layer limiting HTTP requests with this limiter's budgets.
    pub fn http_layer(&self) -> HttpRateLimitLayer {
        HttpRateLimitLayer::new(self.clone())
    }

    /// A layer limiting events with this limiter's budgets.
    pub fn event_layer(&self) -> EventRateLimitLayer {
        EventRateLimitLayer::new(self.clone())
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .field("key_count", &self.key_count())
            .finish()
    }
}

type Governor<C> = governor::RateLimiter<RateKey, KeyStore, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// governor's keyed limiter plus the key bound.
struct Limiter<C: Clock> {
    governor: Governor<C>,
    /// The same map as the one inside `governor`.
    keys: KeyStore,
    max_keys: usize,
    /// What to tell a new caller refused for a full map: by then the idle
    /// keys of now are prunable, and a prune is allowed.
    full_retry_after: Duration,
    start: C::Instant,
    bound: KeyBound,
}

impl<C: Clock> Limiter<C> {
    fn new(config: RateLimit, clock: C) -> Self {
        let keys = KeyStore::default();
        let start = clock.now();
        Self {
            governor: governor::RateLimiter::new(config.quota(), keys.clone(), clock),
            keys,
            max_keys: config.max_keys().get(),
            full_retry_after: config.idle_after().max(PRUNE_MIN_INTERVAL),
            start,
            bound: KeyBound::new(),
        }
    }

    /// Nanoseconds of the clock since the limiter was built.
    fn elapsed(&self) -> u64 {
        self.governor.clock().now().duration_since(self.start).as_u64()
    }

    /// Forgets idle callers and gives their memory back.
    fn prune(&self) {
        let before = self.keys.len();
        self.governor.retain_recent();
        self.governor.shrink_to_fit();
        tracing::debug!(before, after = self.keys.len(), "pruned idle rate limit keys");
    }
}

impl<C> Keyed for Limiter<C>
where
    C: Clock + Send + Sync,
{
    fn check(&self, key: &RateKey) -> Result<(), RateLimited> {
        let now = self.elapsed();
        if self.bound.periodic_prune(now) {
            self.prune();
        }
        // Known callers go straight to governor; `len` (which visits every
        // shard) is only read for new ones.
        if !self.keys.contains(key) && self.keys.len() >= self.max_keys {
            if self.bound.full_prune(now) {
                self.prune();
            }
            let len = self.keys.len();
            if len >= self.max_keys {
                if self.bound.warn(now) {
                    tracing::warn!(
                        keys = len,
                        max_keys = self.max_keys,
                        "rate limiter tracks max_keys active callers: new callers are refused \
                         until some go idle (raise max_keys if this is normal load)"
                    );
                }
                return Err(RateLimited::key_capacity(self.full_retry_after));
            }
        }
        self.governor.check_key(key).map_err(|not_until| {
            let now = self.governor.clock().now();
            RateLimited::new(not_until.wait_time_from(now))
        })
    }

    fn key_count(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU32, NonZeroUsize};
    use std::thread;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn ip(n: u32) -> RateKey {
        RateKey::Ip(std::net::Ipv4Addr::from(n).into())
    }

    #[test]
    fn handles_and_services_are_send_and_sync() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<RateLimiter>();
        send_sync::<crate::EventRateLimit<channels_binding_core::EventRouter>>();
        send_sync::<crate::HttpRateLimitLayer>();
    }

    #[test]
    fn burst_then_limited_then_recovers_with_the_clock() {
        let clock = FakeRelativeClock::default();
        // 2 per second, bursts of 3.
        let limiter = RateLimiter::with_clock(RateLimit::new(nz(2), nz(3)), clock.clone());
        let key = RateKey::Identity("a".into());
        for _ in 0..3 {
            assert!(limiter.check(&key).is_ok());
        }
        let limited = limiter.check(&key).unwrap_err();
        assert!(!limited.is_key_capacity());
        assert_eq!(limited.retry_after(), Duration::from_millis(500));
        assert_eq!(limited.retry_after_ms(), 500);

        clock.advance(Duration::from_millis(499));
        assert_eq!(limiter.check(&key).unwrap_err().retry_after_ms(), 1);
        clock.advance(Duration::from_millis(1));
        assert!(limiter.check(&key).is_ok());
        assert!(limiter.check(&key).is_err());

        // A whole burst refills after 1.5 s.
        clock.advance(Duration::from_millis(1500));
        for _ in 0..3 {
            assert!(limiter.check(&key).is_ok());
        }
        assert!(limiter.check(&key).is_err());
    }

    #[test]
    fn keys_have_separate_budgets_clones_share_them() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(RateLimit::new(nz(1), nz(1)), clock);
        let clone = limiter.clone();
        assert!(limiter.check(&RateKey::Identity("a".into())).is_ok());
        assert!(clone.check(&RateKey::Identity("a".into())).is_err());
        assert!(clone.check(&RateKey::Identity("b".into())).is_ok());
        assert!(clone.check(&ip(1)).is_ok());
        assert!(limiter.check(&ip(1)).is_err());
        assert!(limiter.check(&RateKey::Connection(1)).is_ok());
        assert!(limiter.check(&RateKey::Unknown).is_ok());
        assert!(clone.check(&RateKey::Unknown).is_err());
        assert_eq!(limiter.key_count(), 5);
    }

    #[test]
    fn key_count_never_exceeds_max_keys() {
        const MAX: u32 = 100;
        let clock = FakeRelativeClock::default();
        let config = RateLimit::new(nz(10), nz(5)).with_max_keys(NonZeroUsize::new(MAX as usize).unwrap());
        let limiter = RateLimiter::with_clock(config, clock.clone());

        // 10 × max_keys distinct callers, all at once: the first max_keys
        // are tracked, the others are refused, the map does not grow.
        let mut refused = 0;
        for n in 0..10 * MAX {
            match limiter.check(&ip(n)) {
                Ok(()) => {}
                Err(limited) => {
                    assert!(limited.is_key_capacity());
                    assert!(limited.retry_after_ms() >= 600);
                    refused += 1;
                }
            }
            assert!(limiter.key_count() <= MAX as usize);
        }
        assert_eq!(refused, 9 * MAX);
        // Known callers keep their budgets while the map is full.
        assert!(limiter.check(&ip(0)).is_ok());

        // Once the tracked callers are idle for a burst, new ones get in,
        // round after round, and the bound still holds.
        for round in 1..=5 {
            clock.advance(Duration::from_millis(600));
            for n in 0..10 * MAX {
                let key = ip(round * 10 * MAX + n);
                let result = limiter.check(&key);
                assert_eq!(result.is_ok(), n < MAX, "round {round}, caller {n}");
                assert!(limiter.key_count() <= MAX as usize);
            }
        }
    }

    #[test]
    fn key_bound_holds_under_concurrency() {
        const MAX: usize = 256;
        const THREADS: u32 = 8;
        let config = RateLimit::new(nz(10), nz(5)).with_max_keys(NonZeroUsize::new(MAX).unwrap());
        let limiter = RateLimiter::with_clock(config, FakeRelativeClock::default());
        thread::scope(|scope| {
            for t in 0..THREADS {
                let limiter = limiter.clone();
                scope.spawn(move || {
                    for n in 0..10 * MAX as u32 {
                        let _ = limiter.check(&ip(t << 24 | n));
                    }
                });
            }
        });
        // A new key may race another thread's insert: at most one each.
        let count = limiter.key_count();
        assert!(count <= MAX + THREADS as usize, "{count} keys");
        assert!(count >= MAX);
    }

    #[test]
    fn periodic_pruning_forgets_idle_callers() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(RateLimit::new(nz(10), nz(5)), clock.clone());
        for n in 0..500 {
            limiter.check(&ip(n)).unwrap();
        }
        assert_eq!(limiter.key_count(), 500);
        clock.advance(Duration::from_secs(1));
        // One known caller keeps calling; the periodic prune drops the others.
        for _ in 0..2 * crate::bound::PRUNE_EVERY_CALLS {
            let _ = limiter.check(&ip(0));
        }
        assert_eq!(limiter.key_count(), 1);
    }
}
