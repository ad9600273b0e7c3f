//! Subscribing the event's connection, when there is one.

use channels_binding_core::Event;
use channels_binding_core::hub::{StreamPosition, Subscribed, Target};
use channels_binding_core::protocol::EventError;

use super::model_binding::Inner;

/// Subscribes the event's connection to `target` of the binding's stream,
/// replaying from `since` when given. Over HTTP (no connection) nothing is
/// subscribed and `None` is returned.
pub(crate) fn subscribe_or_error(
    inner: &Inner,
    event: &Event,
    target: Target,
    since: Option<&StreamPosition>,
) -> Result<Option<Subscribed>, EventError> {
    let Some(connection) = event.connection() else {
        return Ok(None);
    };
    event
        .hub()
        .subscribe(connection, &inner.stream, target, since)
        .map(Some)
        .map_err(|err| EventError::payload_too_large(err.to_string()))
}
