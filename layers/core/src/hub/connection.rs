//! One client connection as the hub sees it: an identity and a bounded outbound queue.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};

use super::hub::HubInner;
use crate::identity::Identity;

/// Identifies the request a push was caused by, so the transport can hold
/// the push back until that request's reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The connection that sent the request.
    pub connection: u64,
    /// The request's number on that connection.
    pub request: u64,
}

/// One frame waiting to be written to a connection.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The encoded JSON frame.
    pub frame: Bytes,
    /// When set, this frame must not be written before the reply to this
    /// request number of the same connection.
    pub after_reply: Option<u64>,
}

pub(crate) struct ConnectionInner {
    id: u64,
    /// Switchable in-band (sign-in and sign-out on an open socket); a watch,
    /// so that the transport can follow the new identity's expiry and
    /// revocation.
    identity: watch::Sender<Identity>,
    tx: mpsc::Sender<Outbound>,
    overflowed: AtomicBool,
    overflow: Notify,
    /// Streams and groups this connection is registered in, so that
    /// disconnecting costs what the connection joined, not a scan of the hub.
    pub(crate) memberships: Mutex<Memberships>,
}

/// Everything a connection joined. Lock order: a stream's lock may be held
/// while taking this one, never the other way round.
#[derive(Default)]
pub(crate) struct Memberships {
    /// Streams whose change feed the connection follows.
    pub(crate) feeds: HashSet<Arc<str>>,
    /// `(stream, pk)` of objects the connection follows.
    pub(crate) objects: HashSet<(Arc<str>, Arc<str>)>,
    /// Named groups.
    pub(crate) groups: HashSet<Arc<str>>,
}

impl Memberships {
    pub(crate) fn subscriptions(&self) -> usize {
        self.feeds.len() + self.objects.len()
    }
}

/// A handle on one client connection, registered with a [`Hub`](super::Hub).
///
/// Cheap to clone. The transport owns the matching [`Outbox`] and writes what
/// arrives there; everything else pushes through this handle.
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<ConnectionInner>,
}

impl Connection {
    pub(crate) fn new(id: u64, identity: Identity, capacity: usize) -> (Self, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let inner = ConnectionInner {
            id,
            identity: watch::Sender::new(identity),
            tx,
            overflowed: AtomicBool::new(false),
            overflow: Notify::new(),
            memberships: Mutex::new(Memberships::default()),
        };
        (Self { inner: Arc::new(inner) }, rx)
    }

    /// The connection's id, unique within its hub.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The connection's current identity (cheap: an `Arc` clone).
    pub fn identity(&self) -> Identity {
        self.inner.identity.borrow().clone()
    }

    /// Follows the connection's identity: the receiver sees each in-band
    /// change (sign-in or sign-out on an open socket), so that the
    /// transport can close the connection when the credentials it now
    /// carries expire or are revoked.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use channels_binding_core::{Hub, Identity, Principal};
    ///
    /// let hub = Hub::new();
    /// let outbox = hub.connect(Identity::anonymous());
    /// let mut identity = outbox.connection().watch_identity();
    /// hub.set_identity(outbox.connection(), Identity::from(Principal::new("7")));
    /// identity.changed().await.expect("the connection is alive");
    /// assert_eq!(identity.borrow_and_update().id(), Some("7"));
    /// # }
    /// ```
    pub fn watch_identity(&self) -> watch::Receiver<Identity> {
        self.inner.identity.subscribe()
    }

    pub(crate) fn replace_identity(&self, identity: Identity) -> Identity {
        self.inner.identity.send_replace(identity)
    }

    /// Queues a frame without waiting.
    ///
    /// Returns `false` when the frame was not queued: the connection is gone,
    /// or its queue is full. A full queue marks the connection as a slow
    /// consumer: the transport closes it (code 1013) and the client resumes
    /// with `since`. Nobody else waits for it.
    pub fn push(&self, frame: Outbound) -> bool {
        if self.inner.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        match self.inner.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.inner.overflowed.swap(true, Ordering::Relaxed) {
                    metrics::counter!("channels_binding_drops_total", "reason" => "slow_consumer").increment(1);
                }
                // Every waiter must learn of it; the flag covers waiters that arrive later.
                self.inner.overflow.notify_waiters();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether the connection fell behind and is being closed.
    pub fn is_overflowed(&self) -> bool {
        self.inner.overflowed.load(Ordering::Relaxed)
    }

    /// Completes when the connection has fallen behind (its queue overflowed).
    pub async fn overflowed(&self) {
        loop {
            let notified = self.inner.overflow.notified();
            tokio::pin!(notified);
            // Register before checking: `notify_waiters` only wakes futures
            // already waiting, so a flag set between the check and the first
            // poll would otherwise be missed.
            notified.as_mut().enable();
            if self.is_overflowed() {
                return;
            }
            notified.await;
        }
    }

    /// Whether the transport side is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed()
    }

    pub(crate) fn memberships(&self) -> std::sync::MutexGuard<'_, Memberships> {
        // A poisoned lock only means another thread panicked mid-update of a
        // set of names; the sets stay usable.
        self.inner
            .memberships
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscriptions (feeds and objects) the connection holds.
    pub fn subscription_count(&self) -> usize {
        self.memberships().subscriptions()
    }

    /// Frames waiting in the queue.
    pub fn queued(&self) -> usize {
        self.inner.tx.max_capacity() - self.inner.tx.capacity()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("identity", &self.identity())
            .finish_non_exhaustive()
    }
}

/// The receiving end of a connection's queue, owned by its transport.
///
/// Dropping it unregisters the connection from the hub: its subscriptions and
/// group memberships end.
pub struct Outbox {
    pub(crate) connection: Connection,
    pub(crate) rx: mpsc::Receiver<Outbound>,
    pub(crate) hub: Weak<HubInner>,
}

impl Outbox {
    /// The connection this outbox drains.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Waits for the next frame. `None` when the hub is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.rx.recv().await
    }

    /// Takes the next frame if one is ready.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.rx.try_recv().ok()
    }

    /// Completes when the connection has fallen behind (its queue overflowed).
    pub async fn overflowed(&self) {
        self.connection.overflowed().await;
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Closed before the memberships are taken: a request still running
        // on its own task sees the connection closed and subscribes nothing
        // (see `Hub::subscribe`), instead of adding a subscription after
        // they were removed.
        self.rx.close();
        if let Some(hub) = self.hub.upgrade() {
            hub.disconnect(&self.connection);
        }
    }
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}
