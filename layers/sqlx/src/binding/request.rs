//! What every model action needs from an event: its data as an object, the
//! target id, the resume position, and errors mapped to replies.

use channels_binding_core::Event;
use channels_binding_core::hub::StreamPosition;
use channels_binding_core::page_size::PageSize;
use channels_binding_core::protocol::{EventError, FieldErrors};
use serde_json::{Map, Value};

use crate::input::PageLimits;
use crate::schema::ModelSchema;
use crate::store::StoreError;
use crate::value::SqlValue;

/// The event's data as an object, after checking every key is one the action takes.
pub(crate) fn data_object(event: &mut Event, allowed: &[&str]) -> Result<Map<String, Value>, EventError> {
    let data = match event.take_data() {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => return Err(EventError::bad_request("`data` must be an object for model actions")),
    };
    reject_unknown(&data, allowed)?;
    Ok(data)
}

/// Rejects keys an action does not take, naming each.
pub(crate) fn reject_unknown(data: &Map<String, Value>, allowed: &[&str]) -> Result<(), EventError> {
    crate::input::reject_unknown_keys(data, allowed).map_err(invalid)
}

/// Field errors from input parsing as a `validation` reply.
pub(crate) fn invalid(errors: FieldErrors) -> EventError {
    EventError::validation(errors)
}

/// The target id: `data.id` when present, else the event's `#hash`.
pub(crate) fn target_id(event: &Event, data: &mut Map<String, Value>) -> Option<Value> {
    match data.remove("id") {
        Some(id) => Some(id),
        None => event.name().hash().map(|hash| Value::String(hash.to_owned())),
    }
}

/// The required target id, parsed to the primary key's type.
pub(crate) fn required_pk(
    schema: &ModelSchema,
    event: &Event,
    data: &mut Map<String, Value>,
) -> Result<SqlValue, EventError> {
    let id = target_id(event, data)
        .ok_or_else(|| EventError::validation_field("id", "this action needs an id (`data.id` or `#id`)"))?;
    crate::input::parse_pk(schema, &id).map_err(invalid)
}

/// `data.since`, when given.
pub(crate) fn since(data: &mut Map<String, Value>) -> Result<Option<StreamPosition>, EventError> {
    match data.remove("since") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|_| EventError::validation_field("since", "must be {\"epoch\": string, \"seq\": number}")),
    }
}

/// The page limits for this event: the binding's own page size, else the
/// stack's `PageSizeLayer`, else the protocol defaults.
pub(crate) fn page_limits(schema: &ModelSchema, event: &Event) -> PageLimits {
    let sizes = event.extensions().get::<PageSize>().copied().unwrap_or_default();
    let max = sizes.max_size();
    PageLimits::for_schema(schema, sizes.default_size().min(max), max)
}

/// Sorts a store failure into the reply a client may see; the cause goes to the log.
pub(crate) fn store_error(stream: &str, err: StoreError) -> EventError {
    match err {
        StoreError::Conflict { field } => EventError::validation_field(
            field.unwrap_or_else(|| "__all__".to_owned()),
            "a row with this value already exists",
        ),
        StoreError::Constraint { field } => EventError::validation_field(
            field.unwrap_or_else(|| "__all__".to_owned()),
            "the value violates a constraint",
        ),
        StoreError::TooManyRows { max } => {
            EventError::payload_too_large(format!("more than {max} rows match: narrow the filters or use search"))
                .with_detail("max", max)
        }
        StoreError::Unavailable(cause) => {
            tracing::warn!(stream, error = %cause, "database unavailable");
            EventError::unavailable("the database is unavailable; retry later")
        }
        StoreError::CallerGone => {
            // Nobody waits for this reply; nothing was done.
            tracing::debug!(stream, "request abandoned before it reached the database");
            EventError::unavailable("the request was abandoned")
        }
        other => {
            tracing::error!(stream, error = ?other, "database error");
            EventError::internal()
        }
    }
}
