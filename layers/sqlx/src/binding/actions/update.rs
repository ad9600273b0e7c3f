//! `update`: a partial update of writable fields, then publishes
//! `<stream>.updated#<pk>` and the object pushes.

use channels_binding_core::hub::ChangeKind;
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::{Map, Value};

use crate::binding::model_binding::Inner;
use crate::binding::permissions::WriteAction;
use crate::binding::request::{invalid, store_error};
use crate::input::{WriteMode, parse_write};
use crate::store::Object;
use crate::value::SqlValue;

/// Updates and publishes; returns the stored row. Shared with `save`.
pub(crate) async fn update(
    inner: &Inner,
    event: &Event,
    pk: &SqlValue,
    data: &Map<String, Value>,
) -> Result<Object, EventError> {
    let values = parse_write(&inner.schema, data, WriteMode::Update).map_err(invalid)?;
    if values.is_empty() {
        return Err(EventError::validation_field(
            "__all__",
            "nothing to update: give at least one writable field",
        ));
    }
    let _write = inner.ordering.write().await;
    let before = inner.guard(WriteAction::Update, event.identity(), pk).await?;
    let trigger = inner.trigger_announces(event);
    let origin = trigger.as_ref().and_then(Option::as_deref);
    let row = inner
        .store
        .update(pk, &values, origin)
        .await
        .map_err(|e| store_error(&inner.stream, e))?
        .ok_or_else(|| EventError::not_found("no such object"))?;
    inner.announce(event, trigger.is_some(), || {
        inner.change(ChangeKind::Updated, pk.to_json(), row.clone(), before)
    });
    Ok(row)
}

pub(crate) async fn apply(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let mut data = match event.take_data() {
        Value::Object(map) => map,
        _ => return Err(EventError::bad_request("`data` must be an object for model actions")),
    };
    let pk = crate::binding::request::required_pk(&inner.schema, &event, &mut data)?;
    let row = update(inner, &event, &pk, &data).await?;
    Ok(Reply::ok(inner.detail(row)?))
}
