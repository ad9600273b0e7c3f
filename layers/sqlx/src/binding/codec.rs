//! How a binding's changes are rendered and filtered on every node.

use std::sync::Arc;

use channels_binding_core::Identity;
use channels_binding_core::hub::ChangeCodec;
use serde_json::Value;

use super::model_binding::ReadScopeFn;
use super::serializer::Serializer;

/// A binding's [`ChangeCodec`]: the facts of a change are the row as stored
/// (its readable fields); the object is the detail serializer's view of it,
/// and who may see it is the read scope's verdict on it. Every node answers
/// as the node that made the change would.
pub(crate) struct BindingCodec {
    pub(crate) stream: Arc<str>,
    pub(crate) detail: Arc<dyn Serializer>,
    pub(crate) read_scope: Option<ReadScopeFn>,
}

impl ChangeCodec for BindingCodec {
    fn visible(&self, facts: &Value, identity: &Identity) -> bool {
        match (&self.read_scope, facts) {
            (None, _) => true,
            (Some(scope), Value::Object(row)) => scope(identity).matches(row),
            // Facts that are not a row cannot be judged: nobody sees them.
            (Some(_), _) => false,
        }
    }

    fn render(&self, facts: &Value) -> Value {
        let Value::Object(row) = facts else {
            return facts.clone();
        };
        match self.detail.serialize(row.clone()) {
            Ok(object) => object,
            Err(message) => {
                // As for local writes: the change is committed, so subscribers
                // hear of it with the stored (readable) fields.
                tracing::error!(stream = %self.stream, error = message, "serializer failed; pushing stored fields");
                facts.clone()
            }
        }
    }
}
