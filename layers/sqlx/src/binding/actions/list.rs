//! `list`: every matching row, bounded; subscribes the connection to the
//! stream's change feed.

use channels_binding_core::hub::Target;
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::Value;

use crate::binding::model_binding::Inner;
use crate::binding::read_scope::ReadScope;
use crate::binding::request::{data_object, invalid, since, store_error};
use crate::binding::subscription::{prepare, subscribe_or_error};
use crate::input::parse_criteria;

pub(crate) async fn apply(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let mut data = data_object(&mut event, &["filters", "order", "query", "since"])?;
    let since = since(&mut data)?;
    let mut criteria = parse_criteria(&inner.schema, &data).map_err(invalid)?;

    let _read = inner.ordering.read().await;
    let since = prepare(inner, &event, since).await;
    let rows = match inner.scope(event.identity()) {
        ReadScope::Nothing => Vec::new(),
        scope => {
            if let ReadScope::Where(filters) = scope {
                criteria.filters.extend(filters);
            }
            inner
                .store
                .list(&criteria, inner.max_list_size)
                .await
                .map_err(|e| store_error(&inner.stream, e))?
        }
    };
    let subscribed = subscribe_or_error(inner, &event, Target::Feed, since.as_ref())?;
    let reply = Reply::ok(Value::Array(inner.rows(rows)?));
    Ok(match subscribed {
        Some(subscribed) => reply.with_resync(subscribed.resync).with_position(subscribed.position),
        None => reply,
    })
}
