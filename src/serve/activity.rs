//! What one connection is doing, for its timeouts: waiting for a request,
//! reading a request's head, or serving requests.
//!
//! The connection's reads ([`Watched`](super::watched::Watched)) and its
//! requests ([`RequestGuard`]) move it between phases; [`Activity::expired`]
//! resolves when the phase's time is up. A busy connection (a request in
//! flight: a handler, a body being read, an SSE feed) has no deadline here:
//! the reader of the body bounds it ([`HttpConfig::body_timeout`](crate::http::HttpConfig::body_timeout)).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

/// The phase of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing in flight since `since`; `served` once a request was answered.
    Idle { since: Instant, served: bool },
    /// The first bytes of a request arrived at `since`; its head is not complete.
    Head { since: Instant },
    /// This many requests in flight (several on HTTP/2).
    Busy { requests: usize },
}

/// Why a connection was closed by its timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// No complete request head within the header timeout.
    Header,
    /// Idle between requests for longer than the keep-alive timeout.
    KeepAlive,
    /// Closed while not serving a request, to make room under the
    /// connection cap for a new client.
    Evicted,
}

/// One connection's phase, shared by its reads, its requests and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    phase: Mutex<Phase>,
    /// Set while idle: the next byte read starts a request's head. Read
    /// without the lock, so that reads inside a request cost one atomic load.
    awaiting_request: AtomicBool,
    evicted: AtomicBool,
    changed: Notify,
}

impl Activity {
    /// A connection just accepted: idle, no request yet.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Idle {
                since: Instant::now(),
                served: false,
            }),
            awaiting_request: AtomicBool::new(true),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        // A poisoned lock only means a panic elsewhere; the phase is a plain value.
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = change(*phase);
        drop(phase);
        // One waiter (the watchdog); a stored permit means no change is missed.
        self.changed.notify_one();
    }

    /// Bytes arrived from the client.
    pub(crate) fn bytes_read(&self) {
        if self.awaiting_request.swap(false, Ordering::AcqRel) {
            self.update(|phase| match phase {
                Phase::Idle { .. } => Phase::Head { since: Instant::now() },
                other => other,
            });
        }
    }

    /// A request's head is complete and the service was called; the guard
    /// ends it when dropped (with the response body, or the cancelled call).
    pub(crate) fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.awaiting_request.store(false, Ordering::Release);
        self.update(|phase| match phase {
            Phase::Busy { requests } => Phase::Busy { requests: requests + 1 },
            Phase::Idle { .. } | Phase::Head { .. } => Phase::Busy { requests: 1 },
        });
        RequestGuard(self.clone())
    }

    fn request_ended(&self) {
        self.update(|phase| match phase {
            Phase::Busy { requests } if requests > 1 => Phase::Busy { requests: requests - 1 },
            _ => {
                self.awaiting_request.store(true, Ordering::Release);
                Phase::Idle {
                    since: Instant::now(),
                    served: true,
                }
            }
        });
    }

    /// Since when the connection has served nothing (idle or reading a
    /// head), or `None` while a request is in flight.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        if self.evicted.load(Ordering::Acquire) {
            // Already on its way out: not a candidate for the next eviction.
            return None;
        }
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Idle { since, .. } | Phase::Head { since } => Some(since),
            Phase::Busy { .. } => None,
        }
    }

    /// Ends the connection through its watchdog ([`Expired::Evicted`]).
    pub(crate) fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    fn deadline(&self, header: Duration, keep_alive: Duration) -> Option<(Instant, Expired)> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Idle { since, served: false } | Phase::Head { since } => Some((since + header, Expired::Header)),
            Phase::Idle { since, served: true } => Some((since + keep_alive, Expired::KeepAlive)),
            Phase::Busy { .. } => None,
        }
    }

    /// Resolves when the current phase outlives its timeout.
    pub(crate) async fn expired(&self, header: Duration, keep_alive: Duration) -> Expired {
        loop {
            if self.evicted.load(Ordering::Acquire) {
                return Expired::Evicted;
            }
            match self.deadline(header, keep_alive) {
                None => self.changed.notified().await,
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = self.changed.notified() => {}
                        () = sleep_until(at) => {}
                    }
                }
            }
        }
    }
}

/// A request in flight; dropping it ends the request for the timeouts.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    async fn expires_after(activity: &Activity) -> (Duration, Expired) {
        let start = Instant::now();
        let why = activity.expired(HEADER, IDLE).await;
        (start.elapsed(), why)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_gets_the_header_timeout() {
        let activity = Activity::new();
        assert_eq!(expires_after(&activity).await, (HEADER, Expired::Header));
    }

    #[tokio::test(start_paused = true)]
    async fn half_sent_headers_get_the_header_timeout_from_their_first_byte() {
        let activity = Activity::new();
        let guard = activity.request_started();
        drop(guard);
        tokio::time::advance(Duration::from_secs(30)).await;
        // Idle for 30 s of the 60 allowed, then a partial head: 10 s from now.
        activity.bytes_read();
        activity.bytes_read();
        assert_eq!(expires_after(&activity).await, (HEADER, Expired::Header));
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_the_keep_alive_timeout_applies() {
        let activity = Activity::new();
        drop(activity.request_started());
        assert_eq!(expires_after(&activity).await, (IDLE, Expired::KeepAlive));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_does_not_expire_until_its_requests_end() {
        let start = Instant::now();
        let activity = Activity::new();
        let first = activity.request_started();
        let second = activity.request_started();
        let watchdog = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.expired(HEADER, IDLE).await })
        };
        tokio::time::advance(Duration::from_secs(600)).await;
        drop(first);
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(!watchdog.is_finished());
        drop(second);
        assert_eq!(watchdog.await.unwrap(), Expired::KeepAlive);
        assert_eq!(start.elapsed(), Duration::from_secs(1200) + IDLE);
    }
}
