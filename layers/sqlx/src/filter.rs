//! Filters: equality or membership on one field.

use crate::value::SqlValue;

/// What a [`Filter`] requires of its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `field = value`; `field IS NULL` when the value is [`SqlValue::Null`].
    Eq(SqlValue),
    /// `field IN (values...)`; an empty list matches nothing.
    In(Vec<SqlValue>),
}

/// A condition on one declared field.
///
/// Clients' filters come from [`parse_filters`](crate::parse_filters), which
/// admits only fields declared filterable. Server code may add its own (for
/// example `owner_id = <caller>`) on any declared field.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    field: String,
    condition: Condition,
}

impl Filter {
    /// `field = value` (or `IS NULL` for [`SqlValue::Null`]).
    #[must_use]
    pub fn eq(field: impl Into<String>, value: impl Into<SqlValue>) -> Self {
        Self {
            field: field.into(),
            condition: Condition::Eq(value.into()),
        }
    }

    /// `field IN (values...)`.
    #[must_use]
    pub fn any_of(field: impl Into<String>, values: Vec<SqlValue>) -> Self {
        Self {
            field: field.into(),
            condition: Condition::In(values),
        }
    }

    /// The field name.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The condition.
    #[must_use]
    pub fn condition(&self) -> &Condition {
        &self.condition
    }
}

impl Filter {
    /// Whether a row (its readable fields as JSON) satisfies the filter, as
    /// the database would decide: the same rule evaluated without a query,
    /// for example per subscriber when a change is pushed.
    #[must_use]
    pub fn matches(&self, row: &serde_json::Map<String, serde_json::Value>) -> bool {
        let actual = row.get(&self.field).unwrap_or(&serde_json::Value::Null);
        match &self.condition {
            Condition::Eq(expected) => json_equals(actual, expected),
            Condition::In(values) => values.iter().any(|expected| json_equals(actual, expected)),
        }
    }
}

fn json_equals(actual: &serde_json::Value, expected: &SqlValue) -> bool {
    match (actual, expected) {
        (serde_json::Value::Number(n), SqlValue::Int(i)) => n.as_i64() == Some(*i),
        (serde_json::Value::Number(n), SqlValue::Float(f)) => n.as_f64() == Some(*f),
        _ => *actual == expected.to_json(),
    }
}
