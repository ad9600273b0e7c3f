//! `delete`: removes an object, then publishes `<stream>.deleted#<pk>` to
//! those who could read it.

use channels_binding_core::hub::ChangeKind;
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::json;

use crate::binding::model_binding::Inner;
use crate::binding::permissions::WriteAction;
use crate::binding::request::{data_object, required_pk, store_error};

pub(crate) async fn apply(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let mut data = data_object(&mut event, &["id"])?;
    let pk = required_pk(&inner.schema, &event, &mut data)?;
    let _write = inner.ordering.write().await;
    inner.guard(WriteAction::Delete, event.identity(), &pk).await?;
    let trigger = inner.trigger_announces(&event);
    let origin = trigger.as_ref().and_then(Option::as_deref);
    let row = inner
        .store
        .delete(&pk, origin)
        .await
        .map_err(|e| store_error(&inner.stream, e))?
        .ok_or_else(|| EventError::not_found("no such object"))?;
    inner.announce(&event, trigger.is_some(), || {
        inner.change(ChangeKind::Deleted, pk.to_json(), row, None)
    });
    Ok(Reply::ok(json!({ "success": true, "id": pk.to_json() })))
}
