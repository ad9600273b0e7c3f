//! `retrieve`: one object by id (or `#id`), or several by a list of ids.
//! Subscribes the connection to each object under the exact event string used.

use channels_binding_core::hub::{PushForm, Target, pk_key};
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::Value;

use crate::binding::model_binding::Inner;
use crate::binding::request::{data_object, invalid, since, store_error, target_id};
use crate::binding::subscription::subscribe_or_error;
use crate::input::{parse_pk, parse_pks};

pub(crate) async fn apply(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let mut data = data_object(&mut event, &["id", "since"])?;
    let since = since(&mut data)?;
    let id = target_id(&event, &mut data)
        .ok_or_else(|| EventError::validation_field("id", "this action needs an id (`data.id` or `#id`)"))?;

    let _read = inner.ordering.read().await;
    if id.is_array() {
        let pks = parse_pks(&inner.schema, &id).map_err(invalid)?;
        let rows = inner
            .store
            .fetch_many(&pks)
            .await
            .map_err(|e| store_error(&inner.stream, e))?;
        let missing: Vec<Value> = pks
            .iter()
            .map(|pk| pk.to_json())
            .filter(|pk| {
                !rows
                    .iter()
                    .any(|row| row.get(inner.schema.primary_key().name()) == Some(pk))
            })
            .collect();
        if !missing.is_empty() {
            return Err(EventError::not_found("some objects do not exist").with_detail("missing", missing));
        }
        if rows.iter().any(|row| !inner.may_read(event.identity(), row)) {
            return Err(EventError::forbidden("you may not read some of these objects"));
        }
        let mut position = None;
        let mut resync = false;
        for row in &rows {
            let pk = row
                .get(inner.schema.primary_key().name())
                .cloned()
                .unwrap_or(Value::Null);
            let target = Target::Object {
                pk: pk_key(&pk),
                form: PushForm::Echo(event.name().as_shared().clone()),
            };
            if let Some(subscribed) = subscribe_or_error(inner, &event, target, since.as_ref())? {
                resync |= subscribed.resync;
                position = Some(subscribed.position);
            }
        }
        let objects = rows
            .into_iter()
            .map(|row| inner.detail(row))
            .collect::<Result<Vec<_>, _>>()?;
        let reply = Reply::ok(Value::Array(objects)).with_resync(resync);
        return Ok(match position {
            Some(position) => reply.with_position(position),
            None => reply,
        });
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
