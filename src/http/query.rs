//! A search's query string as the `data` of a `search` event:
//! `?page=2&limit=10&order=-id,username&query=adm&is_staff=true&id=1&id=2`.

use serde_json::{Map, Value};

/// Longest query string accepted, in bytes.
const MAX_QUERY_LEN: usize = 8 * 1024;

/// Parameters that are not filters.
const RESERVED: [&str; 4] = ["page", "limit", "order", "query"];

/// Builds `{page, limit, order, query, filters}` from a query string.
/// Numbers stay strings when they do not parse, so that validation names them.
///
/// # Errors
///
/// A message when the query string is too long.
pub(crate) fn search_data(query: Option<&str>) -> Result<Value, &'static str> {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY_LEN {
        return Err("query string too long");
    }
    let mut data = Map::new();
    let mut filters: Map<String, Value> = Map::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let (key, value) = (key.into_owned(), value.into_owned());
        match key.as_str() {
            "page" | "limit" => {
                let number = value.parse::<i64>().map_or(Value::String(value), Value::from);
                data.insert(key, number);
            }
            "order" => {
                let terms = data.entry("order").or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(terms) = terms {
                    terms.extend(
                        value
                            .split(',')
                            .filter(|t| !t.is_empty())
                            .map(|t| Value::String(t.to_owned())),
                    );
                }
            }
            "query" => {
                data.insert(key, Value::String(value));
            }
            _ => match filters.remove(&key) {
                // A repeated field is an `in` filter.
                Some(Value::Array(mut values)) => {
                    values.push(Value::String(value));
                    filters.insert(key, Value::Array(values));
                }
                Some(first) => {
                    filters.insert(key, Value::Array(vec![first, Value::String(value)]));
                }
                None => {
                    filters.insert(key, Value::String(value));
                }
            },
        }
    }
    debug_assert!(RESERVED.iter().all(|r| !filters.contains_key(*r)));
    if !filters.is_empty() {
        data.insert("filters".to_owned(), Value::Object(filters));
    }
    Ok(Value::Object(data))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builds_search_data() {
        let data = search_data(Some(
            "page=2&limit=10&order=-id,username&query=a%20b&is_staff=true&id=1&id=2",
        ))
        .unwrap();
        assert_eq!(
            data,
            json!({"page": 2, "limit": 10, "order": ["-id", "username"], "query": "a b",
                   "filters": {"is_staff": "true", "id": ["1", "2"]}})
        );
        assert_eq!(search_data(None).unwrap(), json!({}));
        assert_eq!(search_data(Some("page=two")).unwrap(), json!({"page": "two"}));
        assert!(search_data(Some(&"a=b&".repeat(5000))).is_err());
    }
}
