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
