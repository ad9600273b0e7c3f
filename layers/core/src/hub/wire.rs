//! The form a change takes between server processes.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::change::{Change, ChangeCodec, ChangeKind, Visibility};
use super::connection::Origin;

/// A change as brokers carry it: JSON, readable by any node (and writable by
/// a database trigger, for writes made outside the API).
///
/// ```json
/// {"kind": "updated", "pk": 5763, "facts": {"id": 5763, "username": "x"}, "restricted": true,
///  "origin": {"node": "3f0c…", "connection": 12, "request": 4}}
/// ```
///
/// * `kind`: `created`, `updated`, `deleted`, or `gap` (changes of the stream
///   were lost; subscribers must resync).
/// * `object`: the object as pushed, when the change has no codec.
/// * `facts`: what the stream's [`ChangeCodec`] needs to render the object
///   and decide who may read it.
/// * `restricted`: `false` when everybody may read it.
/// * `previous`: for an update, the facts of the object before it (who
///   could read it then), when the codec decides visibility.
/// * `origin`: the request that made it, so that its sender gets the reply
///   first.
///
/// ```
/// use channels_binding_core::hub::WireChange;
///
/// let wire: WireChange = serde_json::from_str(r#"{"kind":"deleted","pk":7}"#).unwrap();
/// assert_eq!(wire.pk, serde_json::json!(7));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WireChange {
    /// What happened.
    pub kind: WireKind,
    /// The primary key.
    #[serde(default)]
    pub pk: Value,
    /// The object as pushed (absent when a codec renders it from `facts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// Facts for the stream's codec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Value>,
    /// Whether only some identities may read it.
    #[serde(default)]
    pub restricted: bool,
    /// For an update: the codec's facts about the object before it, so
    /// that a subscriber who could read it then and may not now is told it
    /// is gone (`<stream>.deleted#<pk>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Value>,
    /// The request that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<WireOrigin>,
    /// For a change whose visibility is a closure: the node that made it and
    /// its ticket there, so that node applies the closure it kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<KeptRule>,
}

/// Where a closure visibility waits: on node `node` under `ticket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptRule {
    /// The hub that kept it.
    pub node: String,
    /// Its number there.
    pub ticket: u64,
}

/// What a [`WireChange`] says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireKind {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Deleted.
    Deleted,
    /// Changes of the stream were lost; subscribers must resync.
    Gap,
}

/// The request a change came from: node, connection and request number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOrigin {
    /// The hub (server process) the request arrived at.
    pub node: String,
    /// The connection on that hub.
    pub connection: u64,
    /// The request number on that connection.
    pub request: u64,
}

impl WireChange {
    /// A gap marker: some changes of the stream were lost.
    pub(crate) fn gap() -> Self {
        Self {
            kind: WireKind::Gap,
            pk: Value::Null,
            object: None,
            facts: None,
            restricted: false,
            previous: None,
            origin: None,
            kept: None,
        }
    }

    /// The wire form of a change made on node `node`.
    /// Takes the change by value: its object or facts move into the wire
    /// form instead of being copied on every write.
    pub(crate) fn from_change(change: Change, node: &str, origin: Option<Origin>, ticket: Option<u64>) -> Self {
        let kind = match change.kind {
            ChangeKind::Created => WireKind::Created,
            ChangeKind::Updated => WireKind::Updated,
            ChangeKind::Deleted => WireKind::Deleted,
        };
        let (object, facts, restricted) = match change.visibility {
            Visibility::Everyone => (Some(change.object), None, false),
            Visibility::Scoped { facts, .. } => {
                let facts = Arc::try_unwrap(facts).unwrap_or_else(|shared| (*shared).clone());
                (None, Some(facts), true)
            }
            // A closure cannot travel: other nodes fall back on the codec
            // registered for the stream, and deliver to nobody without one.
            Visibility::Rule(_) | Visibility::Nobody => (Some(change.object), None, true),
        };
        // Only facts travel: a closure stays on this node, as above.
        let previous = match change.previous {
            Some(Visibility::Scoped { facts, .. }) => {
                Some(Arc::try_unwrap(facts).unwrap_or_else(|shared| (*shared).clone()))
            }
            _ => None,
        };
        Self {
            kind,
            pk: change.pk,
            object,
            facts,
            restricted,
            previous,
            origin: origin.map(|origin| WireOrigin {
                node: node.to_owned(),
                connection: origin.connection,
                request: origin.request,
            }),
            kept: ticket.map(|ticket| KeptRule {
                node: node.to_owned(),
                ticket,
            }),
        }
    }

    /// Encodes to JSON bytes.
    pub(crate) fn encode(&self) -> Bytes {
        // Plain data with string keys always serializes.
        serde_json::to_vec(self).map(Bytes::from).unwrap_or_default()
    }

    /// The change this describes, as this node delivers it, or `None` for a gap.
    ///
    /// `codec` is the stream's codec on this node, if one is registered.
    /// `kept` is the closure this node kept for it, if it made the change.
    pub(crate) fn into_change(
        self,
        stream: Arc<str>,
        codec: Option<Arc<dyn ChangeCodec>>,
        kept: Option<Visibility>,
    ) -> Option<Change> {
        let kind = match self.kind {
            WireKind::Created => ChangeKind::Created,
            WireKind::Updated => ChangeKind::Updated,
            WireKind::Deleted => ChangeKind::Deleted,
            WireKind::Gap => return None,
        };
        let facts = self.facts.unwrap_or(Value::Null);
        let object = match (self.object, &codec) {
            (Some(object), _) => object,
            (None, Some(codec)) if kind != ChangeKind::Deleted => codec.render(&facts),
            (None, _) => Value::Null,
        };
        let previous = match (self.previous, &codec) {
            (Some(facts), Some(codec)) if kind == ChangeKind::Updated => Some(Visibility::Scoped {
                facts: Arc::new(facts),
                codec: codec.clone(),
            }),
            _ => None,
        };
        let visibility = match (kept, self.restricted, codec) {
            (Some(kept), _, _) => kept,
            (None, false, _) => Visibility::Everyone,
            (None, true, Some(codec)) => Visibility::Scoped {
                facts: Arc::new(facts),
                codec,
            },
            (None, true, None) => Visibility::Nobody,
        };
        let change = Change::new(stream, kind, self.pk, object).visible_to(visibility);
        Some(match previous {
            Some(previous) => change.was_visible_to(previous),
            None => change,
        })
    }
}
