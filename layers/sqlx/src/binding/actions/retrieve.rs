//! `retrieve`: one object by id (or `#id`), or several by a list of ids.
//! Subscribes the connection to each object under the exact event string used.

use channels_binding_core::hub::{PushForm, StreamPosition, Target, pk_key};
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::Value;

use crate::binding::model_binding::Inner;
use crate::binding::request::{data_object, invalid, since, store_error, target_id};
use crate::binding::subscription::{prepare, subscribe_or_error};
use crate::input::{parse_pk, parse_pks};
use crate::value::SqlValue;

pub(crate) async fn apply(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let mut data = data_object(&mut event, &["id", "since"])?;
    let since = since(&mut data)?;
    let id = target_id(&event, &mut data)
        .ok_or_else(|| EventError::validation_field("id", "this action needs an id (`data.id` or `#id`)"))?;

    let _read = inner.ordering.read().await;
    let since = prepare(inner, &event, since).await;
    if id.is_array() {
        return retrieve_many(inner, &event, &id, since.as_ref()).await;
    }

    let pk = parse_pk(&inner.schema, &id).map_err(invalid)?;
    let row = inner
        .store
        .fetch_one(&pk)
        .await
        .map_err(|e| store_error(&inner.stream, e))?
        .ok_or_else(|| EventError::not_found("no such object"))?;
    if !inner.may_read(event.identity(), &row) {
        // Indistinguishable from absence: nobody learns an object exists
        // that they may not read.
        return Err(EventError::not_found("no such object"));
    }
    let target = Target::Object {
        pk: pk_key(&pk.to_json()),
        form: PushForm::Echo(event.name().as_shared().clone()),
    };
    let subscribed = subscribe_or_error(inner, &event, target, since.as_ref())?;
    let reply = Reply::ok(inner.detail(row)?);
    Ok(match subscribed {
        Some(subscribed) => reply.with_resync(subscribed.resync).with_position(subscribed.position),
        None => reply,
    })
}

/// `retrieve` of a list of ids: every object or `not_found` naming the
/// missing ones (an unreadable object counts as missing, as for one id).
/// Subscribes to all of them or to none.
async fn retrieve_many(
    inner: &Inner,
    event: &Event,
    id: &Value,
    since: Option<&StreamPosition>,
) -> Result<Reply, EventError> {
    let pk_name = inner.schema.primary_key().name();
    let pks = parse_pks(&inner.schema, id).map_err(invalid)?;
    let rows: Vec<_> = inner
        .store
        .fetch_many(&pks)
        .await
        .map_err(|e| store_error(&inner.stream, e))?
        .into_iter()
        .filter(|row| inner.may_read(event.identity(), row))
        .collect();
    let missing: Vec<Value> = pks
        .iter()
        .map(SqlValue::to_json)
        .filter(|pk| !rows.iter().any(|row| row.get(pk_name) == Some(pk)))
        .collect();
    if !missing.is_empty() {
        return Err(EventError::not_found("some objects do not exist").with_detail("missing", missing));
    }
    if let Some(connection) = event.connection() {
        // Refuse before subscribing anything rather than half-way.
        let limit = event.hub().config().max_subscriptions;
        if connection.subscription_count() + rows.len() > limit {
            return Err(EventError::payload_too_large(format!(
                "subscription limit reached ({limit}); unsubscribe first"
            )));
        }
    }
    let mut position = None;
    let mut resync = false;
    let mut created: Vec<Target> = Vec::new();
    for row in &rows {
        let pk = row.get(pk_name).cloned().unwrap_or(Value::Null);
        let target = Target::Object {
            pk: pk_key(&pk),
            form: PushForm::Echo(event.name().as_shared().clone()),
        };
        match subscribe_or_error(inner, event, target.clone(), since) {
            Ok(Some(subscribed)) => {
                resync |= subscribed.resync;
                position = Some(subscribed.position);
                if subscribed.created {
                    created.push(target);
                }
            }
            Ok(None) => {}
            Err(error) => {
                // Another request of this socket took the last slots: undo ours.
                if let Some(connection) = event.connection() {
                    for target in &created {
                        event.hub().unsubscribe(connection, &inner.stream, target);
                    }
                }
                return Err(error);
            }
        }
    }
    let objects = rows
        .into_iter()
        .map(|row| inner.detail(row))
        .collect::<Result<Vec<_>, _>>()?;
    let reply = Reply::ok(Value::Array(objects)).with_resync(resync);
    Ok(match position {
        Some(position) => reply.with_position(position),
        None => reply,
    })
}
