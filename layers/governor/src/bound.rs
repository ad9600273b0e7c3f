//! Bounded key memory: when to prune the key map, and when to say it is full.
//!
//! Every caller the limiter sees becomes a key. Keys of callers idle for a
//! whole burst are indistinguishable from new ones, so governor's
//! `retain_recent` may drop them; this schedule decides when that runs:
//!
//! * every [`PRUNE_EVERY_CALLS`] calls, so that the map follows the set of
//!   active callers, and
//! * when a new caller arrives and the map is at `max_keys`,
//!
//! but never more often than once per [`PRUNE_MIN_INTERVAL`] of the
//! limiter's clock, so that a flood of new callers against a full map costs
//! a bounded amount of pruning work (each prune visits every key).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Prune after this many calls (when the interval allows).
pub(crate) const PRUNE_EVERY_CALLS: u32 = 1024;

/// At most one prune per this much time.
pub(crate) const PRUNE_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// At most one "key map full" warning per this much time.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// "Not yet" for the timestamps below.
const NEVER: u64 = u64::MAX;

/// The schedule of prunes and warnings. Times are nanoseconds of the
/// limiter's clock since the limiter was built.
#[derive(Debug)]
pub(crate) struct KeyBound {
    calls: AtomicU32,
    last_prune: AtomicU64,
    last_warn: AtomicU64,
}

impl KeyBound {
    pub(crate) fn new() -> Self {
        Self {
            calls: AtomicU32::new(0),
            last_prune: AtomicU64::new(NEVER),
            last_warn: AtomicU64::new(NEVER),
        }
    }

    /// Counts a call; true when a periodic prune is due and this caller
    /// should run it.
    pub(crate) fn periodic_prune(&self, now: u64) -> bool {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if calls < PRUNE_EVERY_CALLS || !self.claim(&self.last_prune, now, PRUNE_MIN_INTERVAL) {
            return false;
        }
        self.calls.store(0, Ordering::Relaxed);
        true
    }

    /// True when the full map may be pruned now and this caller should run it.
    pub(crate) fn full_prune(&self, now: u64) -> bool {
        self.claim(&self.last_prune, now, PRUNE_MIN_INTERVAL)
    }

    /// True when the "map full" warning may be logged now, by this caller.
    pub(crate) fn warn(&self, now: u64) -> bool {
        self.claim(&self.last_warn, now, WARN_INTERVAL)
    }

    /// Claims the slot `last` when `interval` has passed since it was last
    /// claimed; one caller wins among concurrent ones.
    fn claim(&self, last: &AtomicU64, now: u64, interval: Duration) -> bool {
        let previous = last.load(Ordering::Relaxed);
        let interval = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        if previous != NEVER && now.saturating_sub(previous) < interval {
            return false;
        }
        last.compare_exchange(previous, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn periodic_prune_every_n_calls_at_most_once_per_interval() {
        let bound = KeyBound::new();
        let due: Vec<u32> = (1..=3 * PRUNE_EVERY_CALLS)
            .filter(|_| bound.periodic_prune(0))
            .collect();
        // The first batch prunes; the clock has not moved, so later batches wait.
        assert_eq!(due, [PRUNE_EVERY_CALLS]);
        let later = 100 * MS;
        assert!(
            bound.periodic_prune(later),
            "overdue calls prune as soon as the interval allows"
        );
        assert!(!bound.periodic_prune(later));
    }

    #[test]
    fn full_prunes_and_warnings_are_throttled() {
        let bound = KeyBound::new();
        assert!(bound.full_prune(5 * MS));
        assert!(!bound.full_prune(50 * MS));
        assert!(bound.full_prune(105 * MS));

        assert!(bound.warn(0));
        assert!(!bound.warn(59_999 * MS));
        assert!(bound.warn(60_000 * MS));
    }
}
