//! `create`: inserts an object from writable fields only, then publishes
//! `<stream>.created`.

use channels_binding_core::hub::ChangeKind;
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::{Map, Value};

use crate::binding::model_binding::Inner;
use crate::binding::permissions::WriteAction;
use crate::binding::request::{invalid, store_error};
use crate::input::{WriteMode, parse_write};
use crate::store::Object;

/// Inserts and publishes; returns the stored row. Shared with `save`.
pub(crate) async fn insert(inner: &Inner, event: &Event, data: &Map<String, Value>) -> Result<Object, EventError> {
    let mut values = parse_write(&inner.schema, data, WriteMode::Create).map_err(invalid)?;
    inner.permit(WriteAction::Create, event.identity(), None)?;
    if let Some(hook) = &inner.before_create {
        hook(event.identity(), &mut values)?;
    }
    let _write = inner.ordering.write().await;
    let trigger = inner.trigger_announces(event);
    let origin = trigger.as_ref().and_then(Option::as_deref);
    let row = inner
        .store
        .insert(&values, origin)
        .await
        .map_err(|e| store_error(&inner.stream, e))?;
    inner.announce(event, trigger.is_some(), || {
        let pk = row
            .get(inner.schema.primary_key().name())
            .cloned()
            .unwrap_or(Value::Null);
        inner.change(ChangeKind::Created, pk, row.clone(), None)
    });
    Ok(row)
}

pub(crate) async fn apply(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let data = match event.take_data() {
        Value::Object(map) => map,
        _ => return Err(EventError::bad_request("`data` must be an object for model actions")),
    };
    let row = insert(inner, &event, &data).await?;
    Ok(Reply::ok(inner.detail(row)?))
}
