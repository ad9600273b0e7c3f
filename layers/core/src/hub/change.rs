//! A change to one object of a stream, as the hub fans it out.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::identity::Identity;

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The object was created.
    Created,
    /// The object was updated.
    Updated,
    /// The object was deleted.
    Deleted,
}

impl ChangeKind {
    /// The action name of the change-feed event (`created`, `updated`, `deleted`).
    pub const fn action(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// Who may learn of a change: decided per subscriber at delivery time.
///
/// The rule sees only the subscriber's identity, so it runs without a database
/// query per subscriber; a binding builds it from its read policy and the
/// object's state.
///
/// ```
/// use channels_binding_core::hub::Visibility;
/// use channels_binding_core::{Identity, Principal};
///
/// let owner_only = Visibility::rule(|who: &Identity| who.id() == Some("7"));
/// assert!(owner_only.allows(&Identity::from(Principal::new("7"))));
/// assert!(!owner_only.allows(&Identity::anonymous()));
/// assert!(Visibility::Everyone.allows(&Identity::anonymous()));
/// ```
#[derive(Clone, Default)]
pub enum Visibility {
    /// Anybody who subscribed may see it.
    #[default]
    Everyone,
    /// Only identities for which the rule answers `true`.
    Rule(Arc<dyn Fn(&Identity) -> bool + Send + Sync>),
}

impl Visibility {
    /// A visibility decided by a rule over the subscriber's identity.
    pub fn rule(rule: impl Fn(&Identity) -> bool + Send + Sync + 'static) -> Self {
        Visibility::Rule(Arc::new(rule))
    }

    /// Whether this identity may see the change.
    pub fn allows(&self, identity: &Identity) -> bool {
        match self {
            Visibility::Everyone => true,
            Visibility::Rule(rule) => rule(identity),
        }
    }
}

impl fmt::Debug for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Visibility::Everyone => f.write_str("Everyone"),
            Visibility::Rule(_) => f.write_str("Rule(..)"),
        }
    }
}

/// A change to one object, published to the hub by a binding after commit.
///
/// ```
/// use channels_binding_core::hub::{Change, ChangeKind};
/// use serde_json::json;
///
/// let change = Change::new("auth.User", ChangeKind::Updated, json!(5763), json!({"id": 5763, "username": "x"}));
/// assert_eq!(change.pk_key(), "5763");
/// ```
#[derive(Debug, Clone)]
pub struct Change {
    pub(crate) stream: Arc<str>,
    pub(crate) kind: ChangeKind,
    pub(crate) pk: Value,
    pub(crate) pk_key: Arc<str>,
    pub(crate) object: Value,
    pub(crate) visibility: Visibility,
}

impl Change {
    /// A change visible to every subscriber.
    ///
    /// `object` is the object's new state (for a delete: its last state, which
    /// is never sent; deletes carry only `{"id": pk}`).
    pub fn new(stream: impl Into<Arc<str>>, kind: ChangeKind, pk: Value, object: Value) -> Self {
        let pk_key = pk_key(&pk);
        Self {
            stream: stream.into(),
            kind,
            pk,
            pk_key,
            object,
            visibility: Visibility::Everyone,
        }
    }

    /// Restricts who may learn of this change.
    #[must_use]
    pub fn visible_to(mut self, visibility: Visibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// The stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// What happened.
    pub fn kind(&self) -> ChangeKind {
        self.kind
    }

    /// The primary key as JSON.
    pub fn pk(&self) -> &Value {
        &self.pk
    }

    /// The primary key as it appears in an event hash (`5763`, `abc`).
    pub fn pk_key(&self) -> &str {
        &self.pk_key
    }

    /// The object's state.
    pub fn object(&self) -> &Value {
        &self.object
    }
}

/// The text form of a primary key, as used in `#hash` and group keys.
pub fn pk_key(pk: &Value) -> Arc<str> {
    match pk {
        Value::String(s) => Arc::from(s.as_str()),
        other => Arc::from(other.to_string()),
    }
}
