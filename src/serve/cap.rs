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
use std::time::Duration;

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

/// How many idle connections one new client may displace in turn when the
/// one displaced first does not free its permit in time (its task starved
/// on a loaded machine, for example), before the new client is closed.
const EVICTION_ATTEMPTS: usize = 3;

/// What to do with a connection just accepted.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Serve it: it holds a permit and is listed for eviction.
    Admitted(Slot),
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

    /// Room for the connection `activity`: a permit at once, or room made
    /// by evicting idle connections one after the other, each given `wait`
    /// to free its permit, at most [`EVICTION_ATTEMPTS`] of them. `None`
    /// when every connection is busy or none made room in time.
    ///
    /// Awaited in the accept loop: one eviction at a time, so that the next
    /// connection over the cap finds a live idle one to displace.
    pub(crate) async fn enter(self: &Arc<Self>, activity: &Arc<Activity>, wait: Duration) -> Option<Slot> {
        for _ in 0..EVICTION_ATTEMPTS {
            match self.admit(activity) {
                Admission::Admitted(slot) => return Some(slot),
                Admission::AfterEviction(permits) => {
                    if let Ok(Ok(permit)) = tokio::time::timeout(wait, permits.acquire_owned()).await {
                        return Some(self.slot(permit, activity));
                    }
                }
                Admission::Refused => return None,
            }
        }
        None
    }

    /// A permit, or room made by evicting the connection idle the longest.
    /// An admitted connection is listed at once, before its task runs: a
    /// permit held by an unlisted connection could be neither used nor
    /// freed by the next admission.
    pub(crate) fn admit(self: &Arc<Self>, activity: &Arc<Activity>) -> Admission {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Admission::Admitted(self.slot(permit, activity));
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

    fn slot(self: &Arc<Self>, permit: OwnedSemaphorePermit, activity: &Arc<Activity>) -> Slot {
        Slot {
            _permit: permit,
            _listed: self.register(activity.clone()),
        }
    }

    /// Lists a served connection, for eviction, until the registration drops.
    fn register(self: &Arc<Self>, activity: Arc<Activity>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, activity);
        Registration { cap: self.clone(), id }
    }
}

/// A connection's place under the cap: its permit and its listing, both
/// given back when dropped (the permit first: a permit is never held by a
/// connection that is not listed).
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    _listed: Registration,
}

/// A listed connection; unlisted when dropped.
#[derive(Debug)]
struct Registration {
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
        let older = Activity::new();
        let Admission::Admitted(_older_slot) = cap.admit(&older) else {
            panic!("room for the first")
        };
        tokio::time::advance(Duration::from_secs(1)).await;
        let newer = Activity::new();
        let Admission::Admitted(_newer_slot) = cap.admit(&newer) else {
            panic!("room for the second")
        };
        assert!(matches!(cap.admit(&Activity::new()), Admission::AfterEviction(_)));
        assert!(older.idle_since().is_none(), "the older one is on its way out");
        assert!(newer.idle_since().is_some());
    }

    #[test]
    fn a_connection_admitted_is_listed_before_its_task_runs() {
        // The accept loop admits the next connection before the task of the
        // one just admitted has run: that one must already be displaceable,
        // or the new client is refused although every connection is idle.
        let cap = ConnectionCap::new(1);
        let first = Activity::new();
        let Admission::Admitted(_slot) = cap.admit(&first) else {
            panic!("room for the first")
        };
        assert!(matches!(cap.admit(&Activity::new()), Admission::AfterEviction(_)));
        assert!(first.idle_since().is_none(), "the first one is on its way out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_displaced_connection_slow_to_end_does_not_cost_the_new_client_its_place() {
        const WAIT: Duration = Duration::from_secs(1);
        let cap = ConnectionCap::new(2);
        let (stuck, ending) = (Activity::new(), Activity::new());
        let Some(_stuck_slot) = cap.enter(&stuck, WAIT).await else {
            panic!("room for the first")
        };
        let Some(ending_slot) = cap.enter(&ending, WAIT).await else {
            panic!("room for the second")
        };
        // `stuck`, idle the longest, is evicted first but its task never
        // ends; `ending` ends as soon as it is evicted.
        let ends_when_evicted = async {
            while ending.idle_since().is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            drop(ending_slot);
        };
        let (start, newcomer) = (tokio::time::Instant::now(), Activity::new());
        let (entered, ()) = tokio::join!(cap.enter(&newcomer, WAIT), ends_when_evicted);
        assert!(entered.is_some(), "the new client is served");
        assert!(stuck.idle_since().is_none() && ending.idle_since().is_none());
        assert!(
            start.elapsed() >= WAIT && start.elapsed() < WAIT * 2,
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn over_the_cap_with_every_connection_busy_the_new_one_is_refused() {
        let cap = ConnectionCap::new(1);
        let busy = Activity::new();
        let Admission::Admitted(_slot) = cap.admit(&busy) else {
            panic!("room for the first")
        };
        let _request = busy.request_started();
        assert!(matches!(cap.admit(&Activity::new()), Admission::Refused));
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
