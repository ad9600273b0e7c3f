//! `search`: one page of matching rows with the total count; subscribes the
//! connection to the stream's change feed.

use channels_binding_core::hub::Target;
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Event, Reply};
use serde_json::{Value, json};

use crate::binding::model_binding::Inner;
use crate::binding::read_scope::ReadScope;
use crate::binding::request::{data_object, invalid, page_limits, since, store_error};
use crate::binding::subscription::{prepare, subscribe_or_error};
use crate::input::{parse_criteria, parse_page_params};
use crate::store::SearchPage;

pub(crate) async fn apply(inner: &Inner, mut event: Event) -> Result<Reply, EventError> {
    let mut data = data_object(&mut event, &["page", "limit", "filters", "order", "query", "since"])?;
    let since = since(&mut data)?;
    let limits = page_limits(&inner.schema, &event);
    let null = Value::Null;
    let (mut criteria, page) = match (
        parse_criteria(&inner.schema, &data),
        parse_page_params(
            data.get("page").unwrap_or(&null),
            data.get("limit").unwrap_or(&null),
            limits,
        ),
    ) {
        (Ok(criteria), Ok(page)) => (criteria, page),
        (Err(mut a), Err(b)) => {
            a.extend(b);
            return Err(invalid(a));
        }
        (Err(errors), _) | (_, Err(errors)) => return Err(invalid(errors)),
    };
    let order: Vec<String> = inner
        .schema
        .effective_order(&criteria.order)
        .iter()
        .map(ToString::to_string)
        .collect();

    let _read = inner.ordering.read().await;
    let since = prepare(inner, &event, since).await;
    let found = match inner.scope(event.identity()) {
        // Nothing readable: no query, an honest empty page.
        ReadScope::Nothing => SearchPage {
            count: 0,
            rows: Vec::new(),
        },
        scope => {
            if let ReadScope::Where(filters) = scope {
                criteria.filters.extend(filters);
            }
            inner
                .store
                .search(&criteria, page)
                .await
                .map_err(|e| store_error(&inner.stream, e))?
        }
    };
    let subscribed = subscribe_or_error(inner, &event, Target::Feed, since.as_ref())?;
    let rows = inner.rows(found.rows)?;
    let reply = Reply::ok(json!({
        "page": page.page,
        "limit": page.limit,
        "count": found.count,
        "order": order,
        "rows": rows,
    }));
    Ok(match subscribed {
        Some(subscribed) => reply.with_resync(subscribed.resync).with_position(subscribed.position),
        None => reply,
    })
}
