//! Who may write what: a rule per write action and object, and a hook that
//! fills server-owned fields on create.

use std::sync::Arc;

use channels_binding_core::Identity;
use channels_binding_core::protocol::EventError;

use crate::store::Object;
use crate::write_values::WriteValues;

/// The write a permission rule is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteAction {
    /// `create`, or `save` without an id.
    Create,
    /// `update`, or `save` with an id.
    Update,
    /// `delete`.
    Delete,
}

/// Decides whether an identity may perform a write: `Ok(())`, or the error
/// reply (`forbidden`, `unauthenticated`). For updates and deletes it sees
/// the object as it is before the write.
pub type WriteRule = Arc<dyn Fn(WriteAction, &Identity, Option<&Object>) -> Result<(), EventError> + Send + Sync>;

/// Fills fields the server owns (an `owner_id` from the caller) before an
/// insert; may refuse with an error reply.
pub type CreateHook = Arc<dyn Fn(&Identity, &mut WriteValues) -> Result<(), EventError> + Send + Sync>;

/// A ready write rule: staff may do anything; an authenticated user may do
/// the `owner_actions` listed, updates and deletes only on objects whose
/// `field` holds their id; anonymous callers may do nothing.
///
/// ```
/// use channels_binding_sqlx::{owner_or_staff, WriteAction};
/// use channels_binding_core::{Identity, Principal};
/// use serde_json::json;
///
/// // Notes: users create, and change or delete their own.
/// let rule = owner_or_staff("owner_id", &[WriteAction::Create, WriteAction::Update, WriteAction::Delete]);
/// let alice = Identity::from(Principal::new("1"));
/// let bobs = json!({"id": 9, "owner_id": 2});
/// assert!(rule(WriteAction::Update, &alice, bobs.as_object()).is_err());
/// assert!(rule(WriteAction::Create, &alice, None).is_ok());
/// assert!(rule(WriteAction::Create, &Identity::anonymous(), None).is_err());
/// ```
pub fn owner_or_staff(
    field: &'static str,
    owner_actions: &[WriteAction],
) -> impl Fn(WriteAction, &Identity, Option<&Object>) -> Result<(), EventError> + Send + Sync + 'static {
    let owner_actions = owner_actions.to_vec();
    move |action: WriteAction, identity: &Identity, object: Option<&Object>| {
        let Some(id) = identity.id() else {
            return Err(EventError::unauthenticated("sign in to write"));
        };
        if identity.is_staff() {
            return Ok(());
        }
        if !owner_actions.contains(&action) {
            return Err(EventError::forbidden("only staff may do this"));
        }
        let owns = |object: &Object| match object.get(field) {
            Some(serde_json::Value::String(owner)) => owner == id,
            Some(serde_json::Value::Number(owner)) => owner.to_string() == id,
            _ => false,
        };
        match (action, object) {
            (WriteAction::Create, _) => Ok(()),
            (_, Some(object)) if owns(object) => Ok(()),
            _ => Err(EventError::forbidden("you may only change your own objects")),
        }
    }
}
