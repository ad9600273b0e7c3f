//! `subscribe` / `unsubscribe`: the stream's change feed, or one object with `#id`.

use channels_binding_core::hub::{PushForm, Target, pk_key};
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::json;

use crate::binding::model_binding::Inner;
use crate::binding::request::{data_object, invalid, since, target_id};
use crate::input::parse_pk;

/// The target and its name (`auth.User` or `auth.User#5`).
fn target(
    inner: &Inner,
    event: &mut Event,
) -> Result<(Target, String, Option<channels_binding_core::hub::StreamPosition>), EventError> {
    let mut data = data_object(event, &["id", "since"])?;
    let since = since(&mut data)?;
    Ok(match target_id(event, &mut data) {
        None => (Target::Feed, inner.stream.to_string(), since),
        Some(id) => {
            let pk = parse_pk(&inner.schema, &id).map_err(invalid)?;
            let key = pk_key(&pk.to_json());
            let name = format!("{}#{}", inner.stream, key);
            (
                Target::Object {
                    pk: key,
                    form: PushForm::Feed,
                },
                name,
                since,
            )
        }
    })
}

fn needs_socket() -> EventError {
    EventError::bad_request("subscriptions need a WebSocket; over HTTP use the SSE change feed")
}

pub(crate) async fn subscribe(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let (target, name, since) = target(inner, &mut event)?;
    let connection = event.connection().ok_or_else(needs_socket)?;
    event.hub().prepare(&inner.stream, since.as_ref()).await;
    let subscribed = event
        .hub()
        .subscribe(connection, &inner.stream, target, since.as_ref())
        .map_err(|err| EventError::payload_too_large(err.to_string()))?;
    Ok(Reply::ok(json!({ "subscribed": name }))
        .with_resync(subscribed.resync)
        .with_position(subscribed.position))
}

pub(crate) fn unsubscribe(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let (target, name, _) = target(inner, &mut event)?;
    let connection = event.connection().ok_or_else(needs_socket)?;
    event.hub().unsubscribe(connection, &inner.stream, &target);
    Ok(Reply::ok(json!({ "unsubscribed": name })))
}
