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

/// How a stream turns the facts of a change into pushes, on any node.
///
/// A closure cannot travel between server processes; facts (JSON) can. A
/// binding registers its codec with the hub (see [`Hub::register_codec`]),
/// and every node, given the facts of a change made anywhere, renders the
/// object and decides per subscriber who may read it, exactly as the node
/// that made the change would.
///
/// [`Hub::register_codec`]: super::Hub::register_codec
///
/// ```
/// use channels_binding_core::hub::ChangeCodec;
/// use channels_binding_core::Identity;
/// use serde_json::{Value, json};
///
/// /// Notes: readable by their owner; the push shows everything but the owner.
/// struct Notes;
/// impl ChangeCodec for Notes {
///     fn visible(&self, facts: &Value, identity: &Identity) -> bool {
///         identity.id().is_some_and(|id| facts["owner_id"].to_string() == id)
///     }
///     fn render(&self, facts: &Value) -> Value {
///         json!({"id": facts["id"], "title": facts["title"]})
///     }
/// }
/// let facts = json!({"id": 1, "owner_id": 7, "title": "hi"});
/// assert!(Notes.visible(&facts, &Identity::from(channels_binding_core::Principal::new("7"))));
/// assert_eq!(Notes.render(&facts), json!({"id": 1, "title": "hi"}));
/// ```
pub trait ChangeCodec: Send + Sync + 'static {
    /// Whether `identity` may read the object these facts describe.
    fn visible(&self, facts: &Value, identity: &Identity) -> bool;

    /// The object as pushed to subscribers, from its facts.
    fn render(&self, facts: &Value) -> Value;
}

/// Who may learn of a change: decided per subscriber at delivery time.
///
/// The rule sees only the subscriber's identity, so it runs without a database
/// query per subscriber; a binding builds it from its read policy and the
/// object's state. Only [`Everyone`](Visibility::Everyone) and
/// [`Scoped`](Visibility::Scoped) travel to other server processes; a
/// [`Rule`](Visibility::Rule) is a closure, so other nodes deliver such a
/// change only through the codec registered for its stream, and to nobody
/// when there is none.
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
    /// Decided by a stream's [`ChangeCodec`] over facts about the object:
    /// the same answer on every node.
    Scoped {
        /// What the codec needs to know about the object.
        facts: Arc<Value>,
        /// The stream's codec.
        codec: Arc<dyn ChangeCodec>,
    },
    /// Nobody: a change from another node whose stream has no codec here.
    Nobody,
}

impl Visibility {
    /// A visibility decided by a rule over the subscriber's identity.
    pub fn rule(rule: impl Fn(&Identity) -> bool + Send + Sync + 'static) -> Self {
        Visibility::Rule(Arc::new(rule))
    }

    /// A visibility decided by `codec` over `facts`, on this node and every other.
    pub fn scoped(facts: Value, codec: Arc<dyn ChangeCodec>) -> Self {
        Visibility::Scoped {
            facts: Arc::new(facts),
            codec,
        }
    }

    /// Whether this identity may see the change.
    pub fn allows(&self, identity: &Identity) -> bool {
        match self {
            Visibility::Everyone => true,
            Visibility::Rule(rule) => rule(identity),
            Visibility::Scoped { facts, codec } => codec.visible(facts, identity),
            Visibility::Nobody => false,
        }
    }
}

impl fmt::Debug for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Visibility::Everyone => f.write_str("Everyone"),
            Visibility::Rule(_) => f.write_str("Rule(..)"),
            Visibility::Scoped { facts, .. } => f.debug_struct("Scoped").field("facts", facts).finish_non_exhaustive(),
            Visibility::Nobody => f.write_str("Nobody"),
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
    /// For an update: who could read the object before it.
    pub(crate) previous: Option<Visibility>,
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
            previous: None,
        }
    }

    /// Restricts who may learn of this change.
    #[must_use]
    pub fn visible_to(mut self, visibility: Visibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// For an update: who could read the object before it. A subscriber
    /// that could, and may not read the new state, is told
    /// `<stream>.deleted#<pk>` with `{"id": pk}` (the object left its read
    /// scope; it learns nothing it did not know). Without it, such a
    /// subscriber hears nothing more of the object.
    ///
    /// Only a [`Scoped`](Visibility::Scoped) (or
    /// [`Everyone`](Visibility::Everyone)) previous visibility reaches other
    /// server processes.
    ///
    /// ```
    /// use channels_binding_core::hub::{Change, ChangeKind, Visibility};
    /// use channels_binding_core::{Identity, Principal};
    /// use serde_json::json;
    ///
    /// // Note 3 moved from user 1 to user 2.
    /// let change = Change::new("notes.Note", ChangeKind::Updated, json!(3), json!({"id": 3}))
    ///     .visible_to(Visibility::rule(|who: &Identity| who.id() == Some("2")))
    ///     .was_visible_to(Visibility::rule(|who: &Identity| who.id() == Some("1")));
    /// assert!(change.moves_out_of_sight_of(&Identity::from(Principal::new("1"))));
    /// assert!(!change.moves_out_of_sight_of(&Identity::from(Principal::new("2"))));
    /// assert!(!change.moves_out_of_sight_of(&Identity::from(Principal::new("3"))));
    /// ```
    #[must_use]
    pub fn was_visible_to(mut self, previous: Visibility) -> Self {
        self.previous = Some(previous);
        self
    }

    /// Whether this update takes the object out of `identity`'s sight: it
    /// could read the previous state and may not read the new one.
    pub fn moves_out_of_sight_of(&self, identity: &Identity) -> bool {
        self.kind == ChangeKind::Updated
            && self.previous.as_ref().is_some_and(|previous| previous.allows(identity))
            && !self.visibility.allows(identity)
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
