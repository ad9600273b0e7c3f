//! Who is calling: an authenticated principal, or nobody.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::sync::Notify;

/// A signal that ends everything opened with some credentials, such as a
/// session that was signed out.
///
/// Cheap to clone: clones share one signal. The store that issued the
/// credentials keeps a [`WeakRevocation`] and calls [`revoke`](Self::revoke);
/// a socket or feed opened with a [`Principal`] carrying it waits on
/// [`revoked`](Self::revoked) and closes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use channels_binding_core::{Principal, Revocation};
///
/// let revocation = Revocation::new();
/// let principal = Principal::new("7").revocable(revocation.clone());
/// assert!(!principal.is_revoked());
/// revocation.revoke();
/// assert!(principal.is_revoked());
/// // Completes at once: the signal was already given.
/// principal.revocation().expect("revocable").revoked().await;
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Revocation(Arc<RevocationState>);

#[derive(Default)]
struct RevocationState {
    revoked: AtomicBool,
    notify: Notify,
}

impl Revocation {
    /// A signal not given yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the signal: every holder's [`revoked`](Self::revoked) completes.
    pub fn revoke(&self) {
        self.0.revoked.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }

    /// Whether the signal was given.
    pub fn is_revoked(&self) -> bool {
        self.0.revoked.load(Ordering::Acquire)
    }

    /// Completes once the signal is given (at once if it was).
    pub async fn revoked(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag: `notify_waiters` only wakes
            // futures already waiting.
            notified.as_mut().enable();
            if self.is_revoked() {
                return;
            }
            notified.await;
        }
    }

    /// A handle that does not keep the signal alive, for registries that
    /// must forget it once every holder is gone.
    pub fn downgrade(&self) -> WeakRevocation {
        WeakRevocation(Arc::downgrade(&self.0))
    }

    /// Whether two handles share one signal.
    pub fn same(&self, other: &Revocation) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocation")
            .field("revoked", &self.is_revoked())
            .finish()
    }
}

/// A [`Revocation`] that does not keep its signal alive.
///
/// ```
/// use channels_binding_core::Revocation;
///
/// let revocation = Revocation::new();
/// let weak = revocation.downgrade();
/// assert!(weak.upgrade().is_some());
/// drop(revocation);
/// assert!(weak.upgrade().is_none(), "nobody holds it any more");
/// ```
#[derive(Clone, Default)]
pub struct WeakRevocation(Weak<RevocationState>);

impl WeakRevocation {
    /// The signal, while someone holds it.
    pub fn upgrade(&self) -> Option<Revocation> {
        self.0.upgrade().map(Revocation)
    }

    /// Whether someone still holds the signal.
    pub fn is_held(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl fmt::Debug for WeakRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakRevocation").field("held", &self.is_held()).finish()
    }
}

/// Why credentials stopped being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialsEnd {
    /// Their expiry time passed.
    Expired,
    /// They were revoked (a session signed out).
    Revoked,
}

impl CredentialsEnd {
    /// A short reason for a close frame or a log line.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Expired => "credentials expired: reconnect with fresh credentials",
            Self::Revoked => "session ended: sign in again",
        }
    }
}

/// An authenticated principal: the user behind a connection or request.
///
/// `id` is the identity's stable key (it names the `user.<id>` group);
/// `attributes` holds whatever the authentication strategy learnt (claims,
/// roles) for permission rules to read. Credentials that end (an expiry, a
/// [`Revocation`]) end the sockets and feeds opened with them.
///
/// ```
/// use channels_binding_core::Principal;
///
/// let admin = Principal::new("5763").staff(true);
/// assert_eq!(admin.id(), "5763");
/// assert!(admin.is_staff());
/// ```
#[derive(Clone)]
pub struct Principal {
    id: Arc<str>,
    is_staff: bool,
    expires_at: Option<SystemTime>,
    attributes: Map<String, Value>,
    revocation: Option<Revocation>,
}

/// Who the principal is and what it may do; the revocation signal is how its
/// credentials end, not part of who it is.
impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.is_staff == other.is_staff
            && self.expires_at == other.expires_at
            && self.attributes == other.attributes
    }
}

impl Principal {
    /// A principal with this id, not staff, without attributes.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self {
            id: id.into(),
            is_staff: false,
            expires_at: None,
            attributes: Map::new(),
            revocation: None,
        }
    }

    /// Marks the principal as staff (allowed to manage other users' objects).
    #[must_use]
    pub fn staff(mut self, is_staff: bool) -> Self {
        self.is_staff = is_staff;
        self
    }

    /// When the credentials behind this principal expire; a socket opened
    /// with them is closed at that time.
    #[must_use]
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// When the credentials expire, if they do.
    pub fn expiry(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Ties the principal to a signal that ends its credentials early (a
    /// session signed out): sockets and feeds opened with it close when the
    /// signal is given.
    #[must_use]
    pub fn revocable(mut self, revocation: Revocation) -> Self {
        self.revocation = Some(revocation);
        self
    }

    /// The signal that ends the credentials early, if there is one.
    pub fn revocation(&self) -> Option<&Revocation> {
        self.revocation.as_ref()
    }

    /// Whether the credentials were revoked.
    pub fn is_revoked(&self) -> bool {
        self.revocation.as_ref().is_some_and(Revocation::is_revoked)
    }

    /// Completes when the credentials end: at their expiry (on the tokio
    /// clock) or when they are revoked, whichever comes first; never when
    /// neither can happen. Sockets and feeds select on it to close.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::{Duration, SystemTime};
    /// use channels_binding_core::{CredentialsEnd, Principal};
    ///
    /// let soon = Principal::new("7").expires_at(SystemTime::now() + Duration::from_millis(20));
    /// assert_eq!(soon.ended().await, CredentialsEnd::Expired);
    /// # }
    /// ```
    pub async fn ended(&self) -> CredentialsEnd {
        let expiry = async {
            match self.expires_at {
                Some(at) => {
                    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
                    tokio::time::sleep(left).await;
                }
                None => std::future::pending().await,
            }
        };
        let revoked = async {
            match &self.revocation {
                Some(revocation) => revocation.revoked().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = revoked => CredentialsEnd::Revoked,
            () = expiry => CredentialsEnd::Expired,
        }
    }

    /// Adds an attribute for permission rules to read.
    #[must_use]
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// The stable id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the principal is staff.
    pub fn is_staff(&self) -> bool {
        self.is_staff
    }

    /// Attributes learnt at authentication.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }
}

impl fmt::Debug for Principal {
    // Attributes may hold claims; keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("id", &self.id)
            .field("is_staff", &self.is_staff)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.is_revoked())
            .finish_non_exhaustive()
    }
}

/// The identity of a connection or request: a [`Principal`] or anonymous.
///
/// Cheap to clone. It is also a handler extractor: a handler taking an
/// `Identity` argument receives the caller's.
///
/// ```
/// use channels_binding_core::{Identity, Principal};
///
/// assert!(Identity::anonymous().is_anonymous());
/// let user = Identity::from(Principal::new("7"));
/// assert_eq!(user.principal().map(|p| p.id()), Some("7"));
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Identity(Option<Arc<Principal>>);

impl Identity {
    /// Nobody.
    pub const fn anonymous() -> Self {
        Identity(None)
    }

    /// Whether there is no principal.
    pub fn is_anonymous(&self) -> bool {
        self.0.is_none()
    }

    /// The principal, if authenticated.
    pub fn principal(&self) -> Option<&Principal> {
        self.0.as_deref()
    }

    /// The principal's id, if authenticated.
    pub fn id(&self) -> Option<&str> {
        self.principal().map(Principal::id)
    }

    /// Whether the principal is staff (`false` when anonymous).
    pub fn is_staff(&self) -> bool {
        self.principal().is_some_and(Principal::is_staff)
    }
}

impl From<Principal> for Identity {
    fn from(principal: Principal) -> Self {
        Identity(Some(Arc::new(principal)))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(principal) => fmt::Debug::fmt(principal, f),
            None => f.write_str("Anonymous"),
        }
    }
}
