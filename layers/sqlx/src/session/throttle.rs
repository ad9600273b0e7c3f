//! Sign-in throttling: a few free attempts per username and per client IP,
//! then delays that double with every further failure.
//!
//! A throttled attempt is answered at once with the time to wait: nothing
//! sleeps and nothing is held, so a guesser costs the server a map lookup.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How many attempts a key gets for free and how the delays grow after.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_sqlx::ThrottleRule;
///
/// let rule = ThrottleRule::new(5, Duration::from_secs(1), Duration::from_secs(900));
/// assert_eq!(rule.delay_after(4), Duration::ZERO);
/// assert_eq!(rule.delay_after(5), Duration::from_secs(1));
/// assert_eq!(rule.delay_after(7), Duration::from_secs(4));
/// assert_eq!(rule.delay_after(60), Duration::from_secs(900));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    free: u32,
    base: Duration,
    max: Duration,
}

impl ThrottleRule {
    /// `free` failed attempts without delay; the next failure locks the key
    /// for `base`, each one after for twice as long as the one before, never
    /// longer than `max`.
    pub const fn new(free: u32, base: Duration, max: Duration) -> Self {
        Self { free, base, max }
    }

    /// The lock that follows the `failures`-th failure in a row.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        // 2^20 × base is far past any sensible `max`: stop doubling there.
        let doublings = (failures - self.free).min(20);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }

    /// How long a key is remembered after its last failure: its longest
    /// lock plus as long again, so a slow guesser never starts from zero.
    fn memory(&self) -> Duration {
        self.max.saturating_mul(2)
    }
}

/// Counts failed sign-ins per username and per client IP and refuses
/// attempts while a key is locked. Clones share the counts.
///
/// Defaults: 5 free failures per username, 20 per IP (many people may sign
/// in from behind one address); then 1 s, 2 s, 4 s, … up to 15 min. Each
/// map holds at most 10,000 keys: when full, forgotten keys go first, then
/// the key idle the longest (an attacker who fills the map only frees
/// locks of keys that stopped failing long ago).
///
/// An attempt counts as a failure from the moment it starts, so a burst of
/// simultaneous guesses is throttled before any of them is hashed; a
/// success takes its own count back and clears the username's record.
/// IPv6 clients are counted per /64, the block one client usually holds.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use channels_binding_sqlx::LoginThrottle;
///
/// let throttle = LoginThrottle::new();
/// let ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
/// for _ in 0..5 {
///     let attempt = throttle.begin("alice", ip).expect("free attempts");
///     drop(attempt); // a failure: the count stays
/// }
/// let refused = throttle.begin("alice", ip).unwrap_err();
/// assert!(refused.retry_after().as_millis() > 0);
/// assert!(throttle.begin("bob", ip).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    usernames: Arc<Mutex<Counts<String>>>,
    ips: Arc<Mutex<Counts<IpAddr>>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new()
    }
}

/// Default number of keys each map holds.
const DEFAULT_CAPACITY: usize = 10_000;

impl LoginThrottle {
    /// The default rules (see the type's documentation).
    pub fn new() -> Self {
        let max = Duration::from_secs(15 * 60);
        Self {
            usernames: Arc::new(Mutex::new(Counts::new(
                ThrottleRule::new(5, Duration::from_secs(1), max),
                DEFAULT_CAPACITY,
            ))),
            ips: Arc::new(Mutex::new(Counts::new(
                ThrottleRule::new(20, Duration::from_secs(1), max),
                DEFAULT_CAPACITY,
            ))),
        }
    }

    /// Uses `rule` per username.
    #[must_use]
    pub fn per_username(self, rule: ThrottleRule) -> Self {
        lock(&self.usernames).rule = rule;
        self
    }

    /// Uses `rule` per client IP.
    #[must_use]
    pub fn per_ip(self, rule: ThrottleRule) -> Self {
        lock(&self.ips).rule = rule;
        self
    }

    /// Holds at most `keys` usernames and as many IPs (at least one).
    #[must_use]
    pub fn capacity(self, keys: usize) -> Self {
        lock(&self.usernames).capacity = keys.max(1);
        lock(&self.ips).capacity = keys.max(1);
        self
    }

    /// Starts a sign-in attempt for `username` from `ip`, counted as a
    /// failure until [`LoginAttempt::succeeded`] says otherwise.
    ///
    /// # Errors
    ///
    /// [`Throttled`] with the time to wait when the username or the IP is
    /// locked; the attempt is not counted then.
    pub fn begin(&self, username: &str, ip: Option<IpAddr>) -> Result<LoginAttempt, Throttled> {
        let now = Instant::now();
        let username = username.to_lowercase();
        let ip = ip.map(ip_key);
        let mut usernames = lock(&self.usernames);
        let mut ips = lock(&self.ips);
        let wait = usernames
            .locked_for(&username, now)
            .max(ip.map_or(Duration::ZERO, |ip| ips.locked_for(&ip, now)));
        if !wait.is_zero() {
            return Err(Throttled { retry_after: wait });
        }
        let before_username = usernames.fail(username.clone(), now);
        let ip = ip.map(|ip| (ip, ips.fail(ip, now)));
        Ok(LoginAttempt {
            throttle: self.clone(),
            username: (username, before_username),
            ip,
        })
    }
}

/// One sign-in attempt under way; dropping it leaves it counted as a failure.
#[derive(Debug)]
#[must_use = "an attempt counts as a failure unless `succeeded` is called"]
pub struct LoginAttempt {
    throttle: LoginThrottle,
    /// Each key with its record from before this attempt, to restore.
    username: (String, Option<Entry>),
    ip: Option<(IpAddr, Option<Entry>)>,
}

impl LoginAttempt {
    /// The credentials were right: the username starts afresh and the IP
    /// gets this attempt back.
    pub fn succeeded(self) {
        lock(&self.throttle.usernames).forget(&self.username.0);
        if let Some((ip, before)) = self.ip {
            lock(&self.throttle.ips).take_back(&ip, before);
        }
    }
}

impl LoginAttempt {
    /// Nothing was decided (the user store or the hashing was unavailable):
    /// the attempt is not counted against the username or the IP.
    pub fn undecided(self) {
        let (username, before) = self.username;
        lock(&self.throttle.usernames).take_back(&username, before);
        if let Some((ip, before)) = self.ip {
            lock(&self.throttle.ips).take_back(&ip, before);
        }
    }
}

/// A sign-in refused for now: too many recent failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed sign-ins: retry in {retry_after:?}")]
pub struct Throttled {
    retry_after: Duration,
}

impl Throttled {
    /// How long until the next attempt is accepted.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

/// The record of one key.
#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: Instant,
    last: Instant,
}

/// Failure counts per key, at most `capacity` of them.
#[derive(Debug)]
struct Counts<K> {
    rule: ThrottleRule,
    capacity: usize,
    entries: HashMap<K, Entry>,
}

impl<K: std::hash::Hash + Eq + Clone> Counts<K> {
    fn new(rule: ThrottleRule, capacity: usize) -> Self {
        Self {
            rule,
            capacity,
            entries: HashMap::new(),
        }
    }

    fn locked_for(&self, key: &K, now: Instant) -> Duration {
        self.entries.get(key).map_or(Duration::ZERO, |entry| {
            entry.locked_until.saturating_duration_since(now)
        })
    }

    /// Counts a failure; returns the record from before it.
    fn fail(&mut self, key: K, now: Instant) -> Option<Entry> {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let memory = self.rule.memory();
        let entry = self.entries.entry(key).or_insert(Entry {
            failures: 0,
            locked_until: now,
            last: now,
        });
        let before = (entry.failures > 0).then_some(*entry);
        if now.saturating_duration_since(entry.last) > memory {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        entry.locked_until = now + self.rule.delay_after(entry.failures);
        before
    }

    /// Undoes one counted failure: the lock and the time go back to what
    /// they were before it (other attempts meanwhile keep their counts).
    fn take_back(&mut self, key: &K, before: Option<Entry>) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        entry.failures = entry.failures.saturating_sub(1);
        match before {
            Some(before) => {
                entry.locked_until = before.locked_until;
                entry.last = before.last;
            }
            None if entry.failures == 0 => {
                self.entries.remove(key);
            }
            None => {}
        }
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drops the keys nobody needs to remember, else the one idle longest.
    fn make_room(&mut self, now: Instant) {
        let memory = self.rule.memory();
        self.entries
            .retain(|_, entry| now.saturating_duration_since(entry.last) <= memory);
        if self.entries.len() >= self.capacity
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last)
                .map(|(key, _)| key.clone())
        {
            self.entries.remove(&oldest);
        }
    }
}

/// The key of an address: IPv4 as is, IPv6 by its /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// The counts stay consistent under any panic (each update is one step),
/// so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_username_is_locked_with_growing_delays_then_freed() {
        let throttle = LoginThrottle::new();
        for n in 0..5 {
            drop(throttle.begin("Alice", ip(n)).expect("free"));
        }
        // Case does not make a new username.
        let first = throttle.begin("alice", ip(9)).unwrap_err().retry_after();
        assert_eq!(first, Duration::from_secs(1));
        tokio::time::advance(first).await;
        drop(throttle.begin("alice", ip(9)).expect("after the lock"));
        assert_eq!(
            throttle.begin("alice", ip(9)).unwrap_err().retry_after(),
            Duration::from_secs(2)
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        throttle.begin("alice", ip(9)).expect("after the lock").succeeded();
        assert!(throttle.begin("alice", ip(9)).is_ok(), "a success starts afresh");
    }

    #[tokio::test(start_paused = true)]
    async fn an_ip_is_locked_across_usernames_and_successes_do_not_count() {
        let throttle = LoginThrottle::new();
        for n in 0..30 {
            throttle.begin(&format!("ok{n}"), ip(1)).expect("successes").succeeded();
        }
        for n in 0..20 {
            drop(throttle.begin(&format!("user{n}"), ip(1)).expect("free"));
        }
        assert!(throttle.begin("someone", ip(1)).is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        // A success after the lock takes its own count back: no new lock.
        throttle.begin("ok", ip(1)).expect("lock over").succeeded();
        throttle.begin("ok", ip(1)).expect("still open").succeeded();
        assert!(
            throttle.begin("someone", ip(2)).is_ok(),
            "other addresses are not affected"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_neighbours_share_a_budget() {
        let throttle =
            LoginThrottle::new().per_ip(ThrottleRule::new(1, Duration::from_secs(1), Duration::from_secs(1)));
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        drop(throttle.begin("x", Some(a)).unwrap());
        assert!(throttle.begin("y", Some(b)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn key_memory_is_bounded() {
        let throttle = LoginThrottle::new().capacity(100);
        for n in 0..10_000 {
            drop(throttle.begin(&format!("user{n}"), None));
        }
        assert_eq!(lock(&throttle.usernames).entries.len(), 100);
        // The newest keys are the ones kept.
        for _ in 0..4 {
            drop(throttle.begin("user9999", None).expect("still free"));
        }
        assert!(throttle.begin("user9999", None).is_err());
    }
}
