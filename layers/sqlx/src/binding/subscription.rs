//! Subscribing the event's connection, when there is one.

use channels_binding_core::Event;
use channels_binding_core::hub::{StreamPosition, Subscribed, Target};
use channels_binding_core::protocol::EventError;

use super::model_binding::Inner;

/// Gets the stream ready before a read that subscribes (see
/// [`Hub::prepare`](channels_binding_core::Hub::prepare)), and returns where
/// the subscription must start.
///
/// With a broker, changes reach this node asynchronously, so one committed
/// after the read could be applied before the subscription starts and be
/// missed. Starting from the position taken *before* the read closes that
/// window: such a change is replayed (at worst the client hears of a state
/// it already read; never does it miss one). Without a broker the binding's
/// ordering lock already keeps changes out of that window.
pub(crate) async fn prepare(inner: &Inner, event: &Event, since: Option<StreamPosition>) -> Option<StreamPosition> {
    let hub = event.hub();
    if hub.broker().is_none() || event.connection().is_none() {
        return since;
    }
    hub.prepare(&inner.stream, since.as_ref()).await;
    since.or_else(|| Some(hub.position(&inner.stream)))
}

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
