//! `save`: updates the object when an id is given, creates one otherwise;
//! answers `{"success": true, "id": pk}` like the original.

use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::{Value, json};

use super::{create, update};
use crate::binding::model_binding::Inner;
use crate::binding::request::{invalid, target_id};
use crate::input::parse_pk;

pub(crate) async fn apply(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let mut data = match event.take_data() {
        Value::Object(map) => map,
        _ => return Err(EventError::bad_request("`data` must be an object for model actions")),
    };
    let pk_name = inner.schema.primary_key().name();
    let id = match target_id(&event, &mut data) {
        Some(id) => {
            let pk = parse_pk(&inner.schema, &id).map_err(invalid)?;
            update::update(inner, &event, &pk, &data).await?;
            pk.to_json()
        }
        None => {
            let row = create::insert(inner, &event, &data).await?;
            row.get(pk_name).cloned().unwrap_or(Value::Null)
        }
    };
    Ok(Reply::ok(json!({ "success": true, "id": id })))
}
