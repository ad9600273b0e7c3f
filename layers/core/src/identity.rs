//! Who is calling: an authenticated principal, or nobody.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

/// An authenticated principal: the user behind a connection or request.
///
/// `id` is the identity's stable key (it names the `user.<id>` group);
/// `attributes` holds whatever the authentication strategy learnt (claims,
/// roles) for permission rules to read.
///
/// ```
/// use channels_binding_core::Principal;
///
/// let admin = Principal::new("5763").staff(true);
/// assert_eq!(admin.id(), "5763");
/// assert!(admin.is_staff());
/// ```
#[derive(Clone, PartialEq)]
pub struct Principal {
    id: Arc<str>,
    is_staff: bool,
    expires_at: Option<SystemTime>,
    attributes: Map<String, Value>,
}

impl Principal {
    /// A principal with this id, not staff, without attributes.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self {
            id: id.into(),
            is_staff: false,
            expires_at: None,
            attributes: Map::new(),
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
