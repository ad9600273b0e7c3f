//! Client JSON checked against a [`ModelSchema`].
//!
//! Every parser either returns values that only name declared fields with
//! the right capability (filterable, orderable, writable) and the right
//! type, or field-level messages in the protocol's `validation` shape:
//! `{"name": ["message", ...]}`. Messages never echo client values, and long
//! client keys are shortened, so an error reply stays small.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::field::{Field, FieldType};
use crate::filter::Filter;
use crate::order::OrderTerm;
use crate::query::Criteria;
use crate::schema::ModelSchema;
use crate::timestamp::canonical_timestamp;
use crate::value::SqlValue;
use crate::write_values::WriteValues;

/// Field-level validation messages: the `fields` object of a `validation`
/// error.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Most values accepted in one `IN` filter or one list of ids.
pub const MAX_IN_LIST: usize = 100;

/// Longest accepted search text, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// The protocol's `DEFAULT_PAGE_SIZE`.
pub const DEFAULT_PAGE_SIZE: u32 = 25;

/// The protocol's `MAX_PAGE_SIZE`.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Client keys longer than this are shortened in error keys.
/// The message for text with a NUL character, which neither database can
/// search or store alike.
const NUL_MESSAGE: &str = "may not contain a NUL character";

const MAX_SHOWN_KEY_CHARS: usize = 64;
/// At most this many distinct keys are reported.
const MAX_ERROR_KEYS: usize = 32;
/// At most this many messages are reported per key.
const MAX_MESSAGES_PER_KEY: usize = 8;

/// Whether a write creates an object or changes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// All required fields must be present.
    Create,
    /// Partial: any subset of writable fields.
    Update,
}

/// The page size rules of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// `limit` when the request gives none.
    pub default_limit: u32,
    /// The largest `limit`; larger requests are clamped to it.
    pub max_limit: u32,
}

impl PageLimits {
    /// The limits of a binding: its own page size when it declares one, else
    /// `default_limit`, never above `max_limit`.
    #[must_use]
    pub fn for_schema(schema: &ModelSchema, default_limit: u32, max_limit: u32) -> Self {
        Self {
            default_limit: schema.page_size().unwrap_or(default_limit),
            max_limit,
        }
    }
}

impl Default for PageLimits {
    /// [`DEFAULT_PAGE_SIZE`] and [`MAX_PAGE_SIZE`].
    fn default() -> Self {
        Self {
            default_limit: DEFAULT_PAGE_SIZE,
            max_limit: MAX_PAGE_SIZE,
        }
    }
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageParams {
    /// The page, from 1.
    pub page: u64,
    /// Rows per page, within `[1, max_limit]`.
    pub limit: u32,
}

impl PageParams {
    /// Rows skipped before this page. Fits an `i64` for every value
    /// [`parse_page_params`] returns; saturates for hand-made ones (the
    /// query builder then reports [`QueryError::OutOfRange`](crate::QueryError::OutOfRange)).
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.page.saturating_sub(1).saturating_mul(u64::from(self.limit))
    }
}

/// Collects messages with bounds on their number.
#[derive(Default)]
struct Errors(FieldErrors);

impl Errors {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        let key = shown(key);
        if !self.0.contains_key(&key) && self.0.len() >= MAX_ERROR_KEYS {
            return;
        }
        let messages = self.0.entry(key).or_default();
        if messages.len() < MAX_MESSAGES_PER_KEY {
            messages.push(message.into());
        }
    }

    fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.0.is_empty() { Ok(value) } else { Err(self.0) }
    }
}

/// `key`, shortened to [`MAX_SHOWN_KEY_CHARS`] characters.
fn shown(key: &str) -> String {
    match key.char_indices().nth(MAX_SHOWN_KEY_CHARS) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_owned(),
    }
}

fn single(key: &str, message: impl Into<String>) -> FieldErrors {
    let mut errors = Errors::default();
    errors.add(key, message);
    errors.0
}

/// Rejects keys an action does not take: one `unknown field` message per
/// key (as many keys as a validation reply shows, each shortened alike).
///
/// # Errors
///
/// Messages under each unknown key.
pub fn reject_unknown_keys(data: &Map<String, Value>, allowed: &[&str]) -> Result<(), FieldErrors> {
    let mut errors = Errors::default();
    for key in data.keys().filter(|key| !allowed.contains(&key.as_str())) {
        errors.add(key, "unknown field");
    }
    errors.into_result(())
}

/// Parses `order`: `null` (the default order), `"field"`, `"-field"`, or a
/// list of those. Only orderable fields, each at most once.
///
/// # Errors
///
/// Messages under `"order"`.
pub fn parse_order(schema: &ModelSchema, value: &Value) -> Result<Vec<OrderTerm>, FieldErrors> {
    const KEY: &str = "order";
    let items: Vec<&Value> = match value {
        Value::Null => return Ok(Vec::new()),
        Value::String(_) => vec![value],
        Value::Array(items) => items.iter().collect(),
        _ => return Err(single(KEY, "must be a field name or a list of field names")),
    };
    let mut errors = Errors::default();
    let mut terms: Vec<OrderTerm> = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = item.as_str() else {
            errors.add(KEY, "must be a field name or a list of field names");
            continue;
        };
        let term = OrderTerm::parse(text);
        match schema.field(term.field()) {
            Some(field) if field.is_orderable() => {
                if terms.iter().any(|t| t.field() == field.name()) {
                    errors.add(KEY, format!("field {:?} appears twice", field.name()));
                } else {
                    terms.push(term);
                }
            }
            _ => errors.add(KEY, format!("cannot order by {:?}", shown(term.field()))),
        }
    }
    errors.into_result(terms)
}

/// Parses `filters`: `null` (none) or an object `{field: value}` (equality;
/// `null` tests `IS NULL` on a nullable field) or `{field: [values]}`
/// (membership, at most [`MAX_IN_LIST`] values). Only filterable fields.
///
/// Values must have the field's type; so that query-string values work,
/// integers, numbers and booleans are also accepted as strings (`"5"`,
/// `"2.5"`, `"true"`/`"false"`), and timestamps are canonicalized.
///
/// # Errors
///
/// Messages under each offending field name, or under `"filters"` when the
/// value is not an object.
pub fn parse_filters(schema: &ModelSchema, value: &Value) -> Result<Vec<Filter>, FieldErrors> {
    let object = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => object,
        _ => return Err(single("filters", "must be an object of field: value")),
    };
    let mut errors = Errors::default();
    let mut filters = Vec::with_capacity(object.len());
    for (name, value) in object {
        let Some(field) = schema.field(name).filter(|f| f.is_filterable()) else {
            errors.add(name, "not a filterable field");
            continue;
        };
        match value {
            Value::Array(items) => {
                if items.len() > MAX_IN_LIST {
                    errors.add(name, format!("at most {MAX_IN_LIST} values"));
                    continue;
                }
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    if item.is_null() {
                        errors.add(name, "a list of values cannot contain null");
                        continue;
                    }
                    match convert(field, item, Leniency::Lenient) {
                        Ok(v) => values.push(v),
                        Err(message) => errors.add(name, message),
                    }
                }
                filters.push(Filter::any_of(field.name(), values));
            }
            Value::Null if !field.is_nullable() => errors.add(name, "this field is never null"),
            Value::Null => filters.push(Filter::eq(field.name(), SqlValue::Null)),
            scalar => match convert(field, scalar, Leniency::Lenient) {
                Ok(v) => filters.push(Filter::eq(field.name(), v)),
                Err(message) => errors.add(name, message),
            },
        }
    }
    // The client's key order must not shape the SQL text: one statement per
    // set of filtered fields, whatever order they came in.
    filters.sort_by(|a, b| a.field().cmp(b.field()));
    errors.into_result(filters)
}

/// Parses the search text `query`: `null` or a string of at most
/// [`MAX_QUERY_CHARS`] characters. An empty string means no search.
///
/// # Errors
///
/// Messages under `"query"`: not a string, too long, or the model has no
/// searchable field.
pub fn parse_query(schema: &ModelSchema, value: &Value) -> Result<Option<String>, FieldErrors> {
    const KEY: &str = "query";
    match value {
        Value::Null => Ok(None),
        Value::String(text) if text.is_empty() => Ok(None),
        Value::String(text) => {
            if text.chars().count() > MAX_QUERY_CHARS {
                Err(single(KEY, format!("at most {MAX_QUERY_CHARS} characters")))
            } else if text.contains('\0') {
                Err(single(KEY, NUL_MESSAGE))
            } else if !schema.has_search_fields() {
                Err(single(KEY, "this model has no searchable fields"))
            } else {
                Ok(Some(text.clone()))
            }
        }
        _ => Err(single(KEY, "must be a string")),
    }
}

/// Parses `filters`, `order` and `query` of a search or list request, with
/// the messages of all three.
///
/// # Errors
///
/// The union of the errors of [`parse_filters`], [`parse_order`] and
/// [`parse_query`].
pub fn parse_criteria(schema: &ModelSchema, data: &Map<String, Value>) -> Result<Criteria, FieldErrors> {
    let get = |key: &str| data.get(key).unwrap_or(&Value::Null);
    let filters = parse_filters(schema, get("filters"));
    let order = parse_order(schema, get("order"));
    let query = parse_query(schema, get("query"));
    match (filters, order, query) {
        (Ok(filters), Ok(order), Ok(query)) => Ok(Criteria { filters, order, query }),
        (filters, order, query) => {
            let mut all = FieldErrors::new();
            for errors in [filters.err(), order.err(), query.err()].into_iter().flatten() {
                for (key, messages) in errors {
                    all.entry(key).or_default().extend(messages);
                }
            }
            Err(all)
        }
    }
}

/// Parses `page` and `limit` (`null` for the defaults). `page` must be an
/// integer of at least 1; `limit` an integer, clamped to
/// `[1, limits.max_limit]`. Decimal strings are accepted for both, for
/// query strings.
///
/// # Errors
///
/// Messages under `"page"` and `"limit"`; under `"page"` too when the page
/// starts beyond what a 64-bit offset can address.
pub fn parse_page_params(page: &Value, limit: &Value, limits: PageLimits) -> Result<PageParams, FieldErrors> {
    let mut errors = Errors::default();
    let max = limits.max_limit.max(1);
    let limit = match limit {
        Value::Null => limits.default_limit.clamp(1, max),
        other => match integer_of(other) {
            // Clamped into [1, max], so the cast cannot truncate.
            Some(n) => u32::try_from(n.clamp(1, i128::from(max))).unwrap_or(max),
            None => {
                errors.add("limit", "must be an integer");
                1
            }
        },
    };
    let page = match page {
        Value::Null => 1,
        other => match integer_of(other) {
            Some(n) if n >= 1 => u64::try_from(n).unwrap_or(u64::MAX),
            Some(_) => {
                errors.add("page", "must be at least 1");
                1
            }
            None => {
                errors.add("page", "must be an integer");
                1
            }
        },
    };
    let addressable = (page - 1)
        .checked_mul(u64::from(limit))
        .is_some_and(|offset| i64::try_from(offset).is_ok());
    if !addressable {
        errors.add("page", "is too large");
    }
    errors.into_result(PageParams { page, limit })
}

/// An integer from a JSON integer or a decimal string; `None` otherwise.
fn integer_of(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.parse::<i128>().ok(),
        _ => None,
    }
}

/// Parses the fields of a create or update.
///
/// Only writable fields are accepted. Any other key (unknown, read-only such
/// as `id`, or an undeclared column such as `password_hash`) is an error
/// naming that key, and then nothing is returned, so nothing is written.
/// Values must match the field's type exactly (no string coercion), text
/// must respect `max_length`, `null` is accepted only for nullable fields,
/// and on [`WriteMode::Create`] every required field must be present.
/// Timestamps are stored in canonical form.
///
/// In an update the target's `id` is not a field: take it out of the map
/// first.
///
/// # Errors
///
/// Messages under each offending key, and under each missing required
/// field.
pub fn parse_write(
    schema: &ModelSchema,
    data: &Map<String, Value>,
    mode: WriteMode,
) -> Result<WriteValues, FieldErrors> {
    let mut errors = Errors::default();
    for key in data.keys() {
        match schema.field(key) {
            Some(field) if field.is_writable() => {}
            Some(field) if field.is_readable() => errors.add(key, "read-only field"),
            _ => errors.add(key, "unknown field"),
        }
    }
    // Values are taken in declaration order, so that the generated SQL does
    // not depend on the client's key order.
    let mut values = WriteValues::new();
    for field in schema.fields().iter().filter(|f| f.is_writable()) {
        match data.get(field.name()) {
            Some(value) => match check_write(field, value) {
                Ok(v) => values.set(field.name(), v),
                Err(message) => errors.add(field.name(), message),
            },
            None if mode == WriteMode::Create && field.is_required() => {
                errors.add(field.name(), "this field is required");
            }
            None => {}
        }
    }
    errors.into_result(values)
}

/// Checks one written value.
fn check_write(field: &Field, value: &Value) -> Result<SqlValue, String> {
    if value.is_null() {
        return if field.is_nullable() {
            Ok(SqlValue::Null)
        } else {
            Err("may not be null".to_owned())
        };
    }
    let converted = convert(field, value, Leniency::Strict)?;
    if let SqlValue::Text(text) = &converted {
        if text.is_empty() && !field.accepts_empty() {
            return Err("may not be empty".to_owned());
        }
        if let Some(max) = field.max_length_limit()
            && text.chars().count() > max
        {
            return Err(format!("at most {max} characters"));
        }
    }
    Ok(converted)
}

/// Parses one object id: the primary key's type, with a decimal string
/// accepted for an integer key (`"5763"` from an event hash) and an integer
/// accepted for a text key.
///
/// # Errors
///
/// A message under `"id"`.
pub fn parse_pk(schema: &ModelSchema, value: &Value) -> Result<SqlValue, FieldErrors> {
    pk_of(schema.primary_key(), value).map_err(|message| single("id", message))
}

/// Parses a list of object ids (a `retrieve` of several objects): an array
/// of at most [`MAX_IN_LIST`] ids, each as for [`parse_pk`].
///
/// # Errors
///
/// Messages under `"id"`.
pub fn parse_pks(schema: &ModelSchema, value: &Value) -> Result<Vec<SqlValue>, FieldErrors> {
    let Value::Array(items) = value else {
        return Err(single("id", "must be a list of ids"));
    };
    if items.len() > MAX_IN_LIST {
        return Err(single("id", format!("at most {MAX_IN_LIST} ids")));
    }
    let mut errors = Errors::default();
    let mut pks = Vec::with_capacity(items.len());
    for item in items {
        match pk_of(schema.primary_key(), item) {
            Ok(pk) => pks.push(pk),
            Err(message) => errors.add("id", message),
        }
    }
    errors.into_result(pks)
}

fn pk_of(pk: &Field, value: &Value) -> Result<SqlValue, String> {
    match (pk.field_type(), value) {
        (FieldType::Integer, Value::Number(n)) => n.as_i64().map(SqlValue::Int),
        (FieldType::Integer, Value::String(s)) => s.parse::<i64>().ok().map(SqlValue::Int),
        (FieldType::Text, Value::String(s)) if !s.contains('\0') => Some(SqlValue::Text(s.clone())),
        (FieldType::Text, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(SqlValue::Text(n.to_string())),
        _ => None,
    }
    .ok_or_else(|| match pk.field_type() {
        FieldType::Integer => "must be an integer id".to_owned(),
        _ => "must be a string id".to_owned(),
    })
}

/// Whether strings stand in for numbers and booleans.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leniency {
    /// Writes: JSON types must match.
    Strict,
    /// Filters: query-string values are strings.
    Lenient,
}

/// Converts a non-null JSON value to the field's type.
fn convert(field: &Field, value: &Value, leniency: Leniency) -> Result<SqlValue, String> {
    let lenient = leniency == Leniency::Lenient;
    let converted = match (field.field_type(), value) {
        (FieldType::Integer, Value::Number(n)) => n.as_i64().map(SqlValue::Int),
        (FieldType::Integer, Value::String(s)) if lenient => s.parse().ok().map(SqlValue::Int),
        (FieldType::Float, Value::Number(n)) => n.as_f64().map(SqlValue::Float),
        (FieldType::Float, Value::String(s)) if lenient => {
            s.parse::<f64>().ok().filter(|f| f.is_finite()).map(SqlValue::Float)
        }
        (FieldType::Boolean, Value::Bool(b)) => Some(SqlValue::Bool(*b)),
        (FieldType::Boolean, Value::String(s)) if lenient => match s.as_str() {
            "true" => Some(SqlValue::Bool(true)),
            "false" => Some(SqlValue::Bool(false)),
            _ => None,
        },
        // PostgreSQL refuses NUL in text and SQLite's LIKE stops at it:
        // refused alike on both, as input, before any statement.
        (FieldType::Text, Value::String(s)) if s.contains('\0') => return Err(NUL_MESSAGE.to_owned()),
        (FieldType::Text, Value::String(s)) => Some(SqlValue::Text(s.clone())),
        (FieldType::Timestamp, Value::String(s)) => canonical_timestamp(s).map(SqlValue::Text),
        _ => None,
    };
    converted.ok_or_else(|| match field.field_type() {
        FieldType::Integer => "must be an integer".to_owned(),
        FieldType::Float => "must be a number".to_owned(),
        FieldType::Text => "must be a string".to_owned(),
        FieldType::Boolean => "must be true or false".to_owned(),
        FieldType::Timestamp => "must be an RFC 3339 timestamp".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Condition;
    use crate::test_support::users;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn errs(pairs: &[(&str, &[&str])]) -> FieldErrors {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().map(|m| (*m).to_owned()).collect()))
            .collect()
    }

    // ---- order ----

    #[test]
    fn order_accepts_names_and_lists() {
        let s = users();
        assert_eq!(parse_order(&s, &json!(null)), Ok(vec![]));
        assert_eq!(parse_order(&s, &json!([])), Ok(vec![]));
        assert_eq!(
            parse_order(&s, &json!("username")),
            Ok(vec![OrderTerm::asc("username")])
        );
        assert_eq!(
            parse_order(&s, &json!(["-date_joined", "email"])),
            Ok(vec![OrderTerm::desc("date_joined"), OrderTerm::asc("email")])
        );
    }

    #[test]
    fn order_rejects_unknown_unorderable_repeated_and_malformed() {
        let s = users();
        assert_eq!(
            parse_order(&s, &json!("password_hash")),
            Err(errs(&[("order", &["cannot order by \"password_hash\""])]))
        );
        assert_eq!(
            parse_order(&s, &json!("-is_staff")),
            Err(errs(&[("order", &["cannot order by \"is_staff\""])]))
        );
        assert_eq!(
            parse_order(&s, &json!(["id", "-id"])),
            Err(errs(&[("order", &["field \"id\" appears twice"])]))
        );
        for bad in [json!(""), json!("-"), json!("+id"), json!("id desc")] {
            assert!(parse_order(&s, &bad).is_err(), "{bad}");
        }
        for bad in [json!(1), json!({"id": 1}), json!(true), json!([1]), json!([["id"]])] {
            assert_eq!(
                parse_order(&s, &bad),
                Err(errs(&[("order", &["must be a field name or a list of field names"])])),
                "{bad}"
            );
        }
    }

    #[test]
    fn order_messages_are_bounded() {
        let s = users();
        let long = "x".repeat(10_000);
        let many: Vec<Value> = (0..1000).map(|i| json!(format!("f{i}"))).collect();
        let Err(e) = parse_order(&s, &json!(long)) else {
            panic!("accepted")
        };
        assert!(e["order"][0].chars().count() < 100);
        let Err(e) = parse_order(&s, &Value::Array(many)) else {
            panic!("accepted")
        };
        assert_eq!(e["order"].len(), MAX_MESSAGES_PER_KEY);
    }

    // ---- filters ----

    #[test]
    fn filters_equality_and_membership() {
        let s = users();
        assert_eq!(parse_filters(&s, &json!(null)), Ok(vec![]));
        assert_eq!(parse_filters(&s, &json!({})), Ok(vec![]));
        let f = parse_filters(
            &s,
            &json!({"is_staff": true, "id": [1, 2], "karma": 2, "date_joined": "2024-01-01T01:00:00+01:00"}),
        );
        let f = f.expect("valid");
        // serde_json's map is ordered by key.
        assert_eq!(
            f,
            vec![
                Filter::eq("date_joined", "2024-01-01T00:00:00.000Z"),
                Filter::any_of("id", vec![SqlValue::Int(1), SqlValue::Int(2)]),
                Filter::eq("is_staff", true),
                Filter::eq("karma", SqlValue::Float(2.0)),
            ]
        );
    }

    #[test]
    fn filters_accept_query_string_forms() {
        let s = users();
        let f = parse_filters(&s, &json!({"is_staff": "false", "id": ["5763"], "karma": "-1.5"})).expect("valid");
        assert_eq!(f[0], Filter::any_of("id", vec![SqlValue::Int(5763)]));
        assert_eq!(f[1], Filter::eq("is_staff", false));
        assert_eq!(f[2], Filter::eq("karma", -1.5));
    }

    #[test]
    fn filters_null_only_on_nullable_fields() {
        let s = users();
        assert_eq!(
            parse_filters(&s, &json!({"karma": null})),
            Ok(vec![Filter::eq("karma", SqlValue::Null)])
        );
        assert_eq!(
            parse_filters(&s, &json!({"is_staff": null})),
            Err(errs(&[("is_staff", &["this field is never null"])]))
        );
        assert_eq!(
            parse_filters(&s, &json!({"karma": [1, null]})),
            Err(errs(&[("karma", &["a list of values cannot contain null"])]))
        );
    }

    #[test]
    fn filters_reject_undeclared_unfilterable_and_mistyped() {
        let s = users();
        let e = parse_filters(
            &s,
            &json!({
                "password_hash": "x",
                "username": "admin",
                "id": "abc",
                "is_staff": "yes",
                "karma": "NaN",
                "date_joined": "yesterday",
            }),
        );
        assert_eq!(
            e,
            Err(errs(&[
                ("date_joined", &["must be an RFC 3339 timestamp"]),
                ("id", &["must be an integer"]),
                ("is_staff", &["must be true or false"]),
                ("karma", &["must be a number"]),
                ("password_hash", &["not a filterable field"]),
                ("username", &["not a filterable field"]),
            ]))
        );
        assert_eq!(
            parse_filters(&s, &json!({"id": 1.5})),
            Err(errs(&[("id", &["must be an integer"])]))
        );
        assert_eq!(
            parse_filters(&s, &json!({"id": {"$gt": 1}})),
            Err(errs(&[("id", &["must be an integer"])]))
        );
        for bad in [json!([]), json!("is_staff=1"), json!(3)] {
            assert_eq!(
                parse_filters(&s, &bad),
                Err(errs(&[("filters", &["must be an object of field: value"])]))
            );
        }
    }

    #[test]
    fn filter_lists_are_bounded() {
        let s = users();
        let ok: Vec<i64> = (0..100).collect();
        let f = parse_filters(&s, &json!({ "id": ok })).expect("100 values");
        assert!(matches!(f[0].condition(), Condition::In(v) if v.len() == 100));
        let too_many: Vec<i64> = (0..101).collect();
        assert_eq!(
            parse_filters(&s, &json!({ "id": too_many })),
            Err(errs(&[("id", &["at most 100 values"])]))
        );
        assert_eq!(
            parse_filters(&s, &json!({ "id": [] })),
            Ok(vec![Filter::any_of("id", vec![])])
        );
    }

    #[test]
    fn filter_error_keys_are_shortened_and_capped() {
        let s = users();
        let long = "k".repeat(500);
        let Err(e) = parse_filters(&s, &json!({ long: 1 })) else {
            panic!("accepted")
        };
        let key = e.keys().next().expect("one key");
        assert_eq!(key.chars().count(), MAX_SHOWN_KEY_CHARS + 1);
        let many: Map<String, Value> = (0..500).map(|i| (format!("f{i}"), json!(1))).collect();
        let Err(e) = parse_filters(&s, &Value::Object(many)) else {
            panic!("accepted")
        };
        assert_eq!(e.len(), MAX_ERROR_KEYS);
    }

    // ---- query and criteria ----

    #[test]
    fn nul_characters_are_refused_in_every_text_input() {
        let s = users();
        let nul = errs(&[("query", &["may not contain a NUL character"])]);
        assert_eq!(parse_query(&s, &json!("a\u{0}b")), Err(nul));
        let notes = ModelSchema::builder("notes")
            .field(Field::integer("id").read())
            .field(Field::text("title").read().filter())
            .build()
            .unwrap();
        assert_eq!(
            parse_filters(&notes, &json!({"title": "\u{0}"})),
            Err(errs(&[("title", &["may not contain a NUL character"])]))
        );
        assert_eq!(
            parse_filters(&notes, &json!({"title": ["ok", "x\u{0}"]})),
            Err(errs(&[("title", &["may not contain a NUL character"])]))
        );
        assert_eq!(
            parse_write(&s, &obj(json!({"username": "\u{0}"})), WriteMode::Create).map(|_| ()),
            Err(errs(&[("username", &["may not contain a NUL character"])]))
        );
    }

    #[test]
    fn required_text_is_not_empty_unless_allowed() {
        let s = users();
        let empty = errs(&[("username", &["may not be empty"])]);
        assert_eq!(
            parse_write(&s, &obj(json!({"username": ""})), WriteMode::Create).map(|_| ()),
            Err(empty.clone())
        );
        assert_eq!(
            parse_write(&s, &obj(json!({"username": ""})), WriteMode::Update).map(|_| ()),
            Err(empty)
        );
        let blank_allowed = ModelSchema::builder("users")
            .field(Field::integer("id").read())
            .field(Field::text("username").read().write().required().allow_empty())
            .build()
            .unwrap();
        assert!(parse_write(&blank_allowed, &obj(json!({"username": ""})), WriteMode::Create).is_ok());
    }

    #[test]
    fn query_text() {
        let s = users();
        assert_eq!(parse_query(&s, &json!(null)), Ok(None));
        assert_eq!(parse_query(&s, &json!("")), Ok(None));
        assert_eq!(parse_query(&s, &json!("50%_")), Ok(Some("50%_".into())));
        assert_eq!(
            parse_query(&s, &json!("x".repeat(MAX_QUERY_CHARS))),
            Ok(Some("x".repeat(MAX_QUERY_CHARS)))
        );
        assert_eq!(
            parse_query(&s, &json!("x".repeat(MAX_QUERY_CHARS + 1))),
            Err(errs(&[("query", &["at most 200 characters"])]))
        );
        assert_eq!(
            parse_query(&s, &json!(["a"])),
            Err(errs(&[("query", &["must be a string"])]))
        );
        let plain = ModelSchema::builder("t")
            .field(Field::integer("id").read())
            .build()
            .expect("valid");
        assert_eq!(
            parse_query(&plain, &json!("a")),
            Err(errs(&[("query", &["this model has no searchable fields"])]))
        );
    }

    #[test]
    fn criteria_collects_all_errors() {
        let s = users();
        let ok = parse_criteria(
            &s,
            &obj(json!({"filters": {"is_staff": true}, "order": "-id", "query": "ad", "page": 2})),
        );
        assert_eq!(
            ok,
            Ok(Criteria {
                filters: vec![Filter::eq("is_staff", true)],
                order: vec![OrderTerm::desc("id")],
                query: Some("ad".into()),
            })
        );
        assert_eq!(parse_criteria(&s, &Map::new()), Ok(Criteria::default()));
        let e = parse_criteria(&s, &obj(json!({"filters": {"nope": 1}, "order": "nope", "query": 5})));
        assert_eq!(
            e,
            Err(errs(&[
                ("nope", &["not a filterable field"]),
                ("order", &["cannot order by \"nope\""]),
                ("query", &["must be a string"]),
            ]))
        );
    }

    // ---- paging ----

    #[test]
    fn page_defaults_and_clamping() {
        let l = PageLimits::default();
        let p = |page: Value, limit: Value| parse_page_params(&page, &limit, l);
        assert_eq!(p(json!(null), json!(null)), Ok(PageParams { page: 1, limit: 25 }));
        assert_eq!(p(json!(3), json!(10)), Ok(PageParams { page: 3, limit: 10 }));
        assert_eq!(p(json!("2"), json!("7")), Ok(PageParams { page: 2, limit: 7 }));
        assert_eq!(p(json!(1), json!(0)).map(|p| p.limit), Ok(1));
        assert_eq!(p(json!(1), json!(-5)).map(|p| p.limit), Ok(1));
        assert_eq!(p(json!(1), json!(1000)).map(|p| p.limit), Ok(100));
        assert_eq!(p(json!(1), json!(u64::MAX)).map(|p| p.limit), Ok(100));
        assert_eq!(p(json!(3), json!(10)).map(|p| p.offset()), Ok(20));
    }

    #[test]
    fn page_rejects_bad_values() {
        let l = PageLimits::default();
        let p = |page: Value, limit: Value| parse_page_params(&page, &limit, l);
        assert_eq!(
            p(json!(0), json!(null)),
            Err(errs(&[("page", &["must be at least 1"])]))
        );
        assert_eq!(
            p(json!(-1), json!(null)),
            Err(errs(&[("page", &["must be at least 1"])]))
        );
        assert_eq!(
            p(json!(1.5), json!("ten")),
            Err(errs(&[
                ("limit", &["must be an integer"]),
                ("page", &["must be an integer"])
            ]))
        );
        assert_eq!(
            p(json!(true), json!(null)),
            Err(errs(&[("page", &["must be an integer"])]))
        );
        assert_eq!(
            p(json!(u64::MAX), json!(100)),
            Err(errs(&[("page", &["is too large"])]))
        );
        let last = i64::MAX as u64 / 100;
        assert!(p(json!(last), json!(100)).is_ok());
    }

    #[test]
    fn page_limits_for_schema() {
        let s = users();
        assert_eq!(PageLimits::for_schema(&s, 25, 100).default_limit, 25);
        let sized = ModelSchema::builder("t")
            .field(Field::integer("id").read())
            .page_size(10)
            .build()
            .expect("valid");
        let l = PageLimits::for_schema(&sized, 25, 100);
        assert_eq!(
            l,
            PageLimits {
                default_limit: 10,
                max_limit: 100
            }
        );
        let huge = PageLimits {
            default_limit: 500,
            max_limit: 100,
        };
        assert_eq!(
            parse_page_params(&json!(null), &json!(null), huge).map(|p| p.limit),
            Ok(100)
        );
    }

    // ---- writes ----

    #[test]
    fn create_accepts_writable_fields_in_declaration_order() {
        let s = users();
        let v = parse_write(
            &s,
            &obj(json!({
                "date_joined": "2024-05-01T12:00:00Z",
                "email": null,
                "username": "bob",
                "karma": 3,
            })),
            WriteMode::Create,
        )
        .expect("valid");
        let pairs: Vec<_> = v.iter().collect();
        assert_eq!(
            pairs,
            vec![
                ("username", &SqlValue::from("bob")),
                ("email", &SqlValue::Null),
                ("karma", &SqlValue::Float(3.0)),
                ("date_joined", &SqlValue::from("2024-05-01T12:00:00.000Z")),
            ]
        );
    }

    #[test]
    fn mass_assignment_is_rejected_and_nothing_is_returned() {
        let s = users();
        let e = parse_write(
            &s,
            &obj(json!({
                "username": "bob",
                "id": 1,
                "is_staff": true,
                "is_superuser": true,
                "password_hash": "x",
                "usernme": "typo",
            })),
            WriteMode::Create,
        );
        assert_eq!(
            e,
            Err(errs(&[
                ("id", &["read-only field"]),
                ("is_staff", &["read-only field"]),
                ("is_superuser", &["unknown field"]),
                ("password_hash", &["unknown field"]),
                ("usernme", &["unknown field"]),
            ]))
        );
        // The same on update.
        assert_eq!(
            parse_write(&s, &obj(json!({"is_staff": true})), WriteMode::Update),
            Err(errs(&[("is_staff", &["read-only field"])]))
        );
    }

    #[test]
    fn declared_fields_that_are_neither_read_nor_written_look_unknown() {
        // A column only server code sets, such as an owner id.
        let s = ModelSchema::builder("t")
            .field(Field::integer("id").read())
            .field(Field::integer("owner_id"))
            .build()
            .expect("valid");
        assert_eq!(
            parse_write(&s, &obj(json!({"owner_id": 1})), WriteMode::Update),
            Err(errs(&[("owner_id", &["unknown field"])]))
        );
    }

    #[test]
    fn create_requires_required_fields_update_does_not() {
        let s = users();
        assert_eq!(
            parse_write(&s, &obj(json!({"email": "a@b.c"})), WriteMode::Create),
            Err(errs(&[("username", &["this field is required"])]))
        );
        let v = parse_write(&s, &obj(json!({"email": "a@b.c"})), WriteMode::Update).expect("partial update");
        assert_eq!(v.len(), 1);
        assert_eq!(parse_write(&s, &Map::new(), WriteMode::Update), Ok(WriteValues::new()));
    }

    #[test]
    fn write_types_are_strict() {
        let s = users();
        let e = parse_write(
            &s,
            &obj(json!({
                "username": 5,
                "karma": "1.5",
                "date_joined": "2024-02-30T00:00:00Z",
                "email": ["a"],
            })),
            WriteMode::Update,
        );
        assert_eq!(
            e,
            Err(errs(&[
                ("date_joined", &["must be an RFC 3339 timestamp"]),
                ("email", &["must be a string"]),
                ("karma", &["must be a number"]),
                ("username", &["must be a string"]),
            ]))
        );
    }

    #[test]
    fn write_nulls_and_max_length() {
        let s = users();
        assert_eq!(
            parse_write(&s, &obj(json!({"username": null})), WriteMode::Update),
            Err(errs(&[("username", &["may not be null"])]))
        );
        assert_eq!(
            parse_write(&s, &obj(json!({"karma": null})), WriteMode::Update),
            Ok(WriteValues::new().with("karma", SqlValue::Null))
        );
        // 20 characters, several bytes each: counted as characters.
        assert!(parse_write(&s, &obj(json!({"username": "é".repeat(20)})), WriteMode::Update).is_ok());
        assert_eq!(
            parse_write(&s, &obj(json!({"username": "a".repeat(21)})), WriteMode::Update),
            Err(errs(&[("username", &["at most 20 characters"])]))
        );
    }

    #[test]
    fn required_but_null_is_a_null_error() {
        let s = users();
        assert_eq!(
            parse_write(&s, &obj(json!({"username": null})), WriteMode::Create),
            Err(errs(&[("username", &["may not be null"])]))
        );
    }

    // ---- ids ----

    #[test]
    fn pk_conversion() {
        let s = users();
        assert_eq!(parse_pk(&s, &json!(5763)), Ok(SqlValue::Int(5763)));
        assert_eq!(parse_pk(&s, &json!("5763")), Ok(SqlValue::Int(5763)));
        assert_eq!(parse_pk(&s, &json!("-1")), Ok(SqlValue::Int(-1)));
        for bad in [
            json!("abc"),
            json!("5763 "),
            json!(""),
            json!(1.5),
            json!(null),
            json!(true),
            json!([1]),
            json!(u64::MAX),
            json!("99999999999999999999"),
        ] {
            assert_eq!(
                parse_pk(&s, &bad),
                Err(errs(&[("id", &["must be an integer id"])])),
                "{bad}"
            );
        }
        let slugs = ModelSchema::builder("t")
            .field(Field::text("slug").read())
            .primary_key("slug")
            .build()
            .expect("valid");
        assert_eq!(parse_pk(&slugs, &json!("a-b")), Ok(SqlValue::from("a-b")));
        assert_eq!(parse_pk(&slugs, &json!(12)), Ok(SqlValue::from("12")));
        assert_eq!(
            parse_pk(&slugs, &json!(null)),
            Err(errs(&[("id", &["must be a string id"])]))
        );
    }

    #[test]
    fn pk_lists() {
        let s = users();
        assert_eq!(
            parse_pks(&s, &json!([1, "2"])),
            Ok(vec![SqlValue::Int(1), SqlValue::Int(2)])
        );
        assert_eq!(parse_pks(&s, &json!([])), Ok(vec![]));
        assert_eq!(
            parse_pks(&s, &json!(1)),
            Err(errs(&[("id", &["must be a list of ids"])]))
        );
        let too_many: Vec<i64> = (0..101).collect();
        assert_eq!(
            parse_pks(&s, &json!(too_many)),
            Err(errs(&[("id", &["at most 100 ids"])]))
        );
        assert_eq!(
            parse_pks(&s, &json!([1, "x"])),
            Err(errs(&[("id", &["must be an integer id"])]))
        );
    }

    // ---- properties ----

    fn arb_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("id".to_owned()),
            Just("username".to_owned()),
            Just("email".to_owned()),
            Just("is_staff".to_owned()),
            Just("karma".to_owned()),
            Just("date_joined".to_owned()),
            Just("-username".to_owned()),
            Just("password_hash".to_owned()),
            ".{0,12}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,24}".prop_map(Value::String),
            key.clone().prop_map(Value::String),
            Just(Value::String("2024-01-01T00:00:00Z".into())),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_admit_only_capable_fields(value in arb_json()) {
            let s = users();
            if let Ok(order) = parse_order(&s, &value) {
                for t in &order {
                    prop_assert!(s.field(t.field()).is_some_and(Field::is_orderable));
                }
            }
            if let Ok(filters) = parse_filters(&s, &value) {
                for f in &filters {
                    let field = s.field(f.field());
                    prop_assert!(field.is_some_and(Field::is_filterable));
                }
            }
            let _ = parse_query(&s, &value);
            let _ = parse_pk(&s, &value);
            let _ = parse_pks(&s, &value);
            let _ = parse_page_params(&value, &value, PageLimits::default());
            if let Value::Object(map) = &value {
                let _ = parse_criteria(&s, map);
                for mode in [WriteMode::Create, WriteMode::Update] {
                    match parse_write(&s, map, mode) {
                        Ok(values) => {
                            for (name, v) in values.iter() {
                                let field = s.field(name);
                                prop_assert!(field.is_some_and(Field::is_writable));
                                prop_assert!(field.is_some_and(|f| v.fits(f.field_type())));
                            }
                            for key in map.keys() {
                                prop_assert!(s.field(key).is_some_and(Field::is_writable));
                            }
                        }
                        Err(errors) => {
                            prop_assert!(!errors.is_empty());
                            prop_assert!(errors.len() <= MAX_ERROR_KEYS);
                        }
                    }
                }
            }
        }

        #[test]
        fn page_params_are_always_in_range(page in any::<i64>(), limit in any::<i64>()) {
            let l = PageLimits::default();
            if let Ok(p) = parse_page_params(&json!(page), &json!(limit), l) {
                prop_assert!(p.page >= 1);
                prop_assert!((1..=l.max_limit).contains(&p.limit));
                prop_assert!(i64::try_from(p.offset()).is_ok());
            } else {
                let clamped = i128::from(limit.clamp(1, i64::from(l.max_limit)));
                let too_far = (i128::from(page) - 1) * clamped > i128::from(i64::MAX);
                prop_assert!(page < 1 || too_far);
            }
        }
    }

    #[test]
    fn unknown_keys_are_named_and_bounded_like_every_validation_error() {
        let data = json!({"page": 1, "pgae": 2, "x".repeat(100): 3});
        let errors = reject_unknown_keys(data.as_object().unwrap(), &["page"]).unwrap_err();
        assert_eq!(errors["pgae"], ["unknown field"]);
        assert!(
            errors
                .keys()
                .any(|k| k.ends_with('…') && k.chars().count() == MAX_SHOWN_KEY_CHARS + 1)
        );
        let many: Map<String, Value> = (0..100).map(|n| (format!("k{n}"), Value::Null)).collect();
        assert_eq!(reject_unknown_keys(&many, &[]).unwrap_err().len(), MAX_ERROR_KEYS);
        assert!(reject_unknown_keys(json!({"page": 1}).as_object().unwrap(), &["page"]).is_ok());
    }
}
