//! The connection cap: at most N plain HTTP connections at once, and room
//! for a new client by closing the connection idle the longest.
//!
//! A cap that only refuses would let a client that opens N silent
//! connections lock everyone out until its connections time out; closing
//! an idle connection costs its client one reconnect (HTTP clients retry a
//! kept-alive connection the server closed), while a new client is served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::activity::Activity;

/// Descriptors kept free of connections under the open-file limit, for the
/// database pool, the listener, log files and the like.
#[cfg(unix)]
const RESERVED_DESCRIPTORS: u64 = 64;

/// The cap `configured`, kept below the process's open-file limit where it
/// is known, so that the cap is reached before `accept` fails with `EMFILE`.
pub(crate) fn effective_cap(configured: usize) -> usize {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        if let Some(limit) = limit {
            let room = usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX);
            return configured.min(room).max(1);
        }
    }
    configured.max(1)
}

/// The live connections and their permits.
#[derive(Debug)]
pub(crate) struct ConnectionCap {
    permits: Arc<Semaphore>,
    live: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

/// What to do with a connection just accepted.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Serve it.
    Admitted(OwnedSemaphorePermit),
    /// Serve it once the evicted connection's permit is back.
    AfterEviction(Arc<Semaphore>),
    /// Every connection is busy: close it at once.
    Refused,
}

impl ConnectionCap {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max)),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// A permit, or room made by evicting the connection idle the longest.
    pub(crate) fn admit(&self) -> Admission {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Admission::Admitted(permit);
        }
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest_idle = live
            .values()
            .filter_map(|activity| activity.idle_since().map(|since| (since, activity)))
            .min_by_key(|(since, _)| *since);
        match oldest_idle {
            Some((_, activity)) => {
                activity.evict();
                Admission::AfterEviction(self.permits.clone())
            }
            None => Admission::Refused,
        }
    }

    /// Lists a served connection, for eviction, until the registration drops.
    pub(crate) fn register(self: &Arc<Self>, activity: Arc<Activity>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, activity);
        Registration { cap: self.clone(), id }
    }
}

/// A listed connection; unlisted when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    cap: Arc<ConnectionCap>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cap
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn over_the_cap_the_longest_idle_connection_makes_room() {
        let cap = ConnectionCap::new(2);
        let Admission::Admitted(_first_permit) = cap.admit() else {
            panic!("room for the first")
        };
        let (older, newer) = (Activity::new(), {
            tokio::time::advance(Duration::from_secs(1)).await;
            Activity::new()
        });
        let _listed = (cap.register(older.clone()), cap.register(newer.clone()));
        let Admission::Admitted(_second_permit) = cap.admit() else {
            panic!("room for the second")
        };
        assert!(matches!(cap.admit(), Admission::AfterEviction(_)));
        assert!(older.idle_since().is_none(), "the older one is on its way out");
        assert!(newer.idle_since().is_some());
    }

    #[test]
    fn over_the_cap_with_every_connection_busy_the_new_one_is_refused() {
        let cap = ConnectionCap::new(1);
        let Admission::Admitted(_permit) = cap.admit() else {
            panic!("room for the first")
        };
        let busy = Activity::new();
        let _listed = cap.register(busy.clone());
        let _request = busy.request_started();
        assert!(matches!(cap.admit(), Admission::Refused));
    }

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        #[cfg(unix)]
        if let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            assert!(effective_cap(usize::MAX) as u64 <= limit.saturating_sub(RESERVED_DESCRIPTORS).max(1));
        }
        assert_eq!(effective_cap(3), 3);
        assert_eq!(effective_cap(0), 1);
    }
}
