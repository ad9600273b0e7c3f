//! Values bound to SQL parameters.

use serde_json::Value;

use crate::field::FieldType;

/// A value bound to a statement parameter. Client data reaches the database
/// only in this form, never as SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text (also timestamps, in canonical form).
    Text(String),
    /// A boolean (`0`/`1` in SQLite).
    Bool(bool),
}

impl SqlValue {
    /// The value as JSON, as it would appear in a reply (`Int(5)` -> `5`).
    /// A non-finite float, which JSON cannot carry, becomes `null`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Int(i) => Value::from(*i),
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Text(s) => Value::String(s.clone()),
            Self::Bool(b) => Value::Bool(*b),
        }
    }

    /// Whether this value may be stored in a column of type `field_type`.
    /// `Null` fits every type (nullability is checked elsewhere); an integer
    /// fits a float column.
    #[must_use]
    pub fn fits(&self, field_type: FieldType) -> bool {
        matches!(
            (self, field_type),
            (Self::Null, _)
                | (Self::Int(_), FieldType::Integer | FieldType::Float)
                | (Self::Float(_), FieldType::Float)
                | (Self::Text(_), FieldType::Text | FieldType::Timestamp)
                | (Self::Bool(_), FieldType::Boolean)
        )
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<f64> for SqlValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl From<bool> for SqlValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn to_json() {
        assert_eq!(SqlValue::Null.to_json(), json!(null));
        assert_eq!(SqlValue::Int(5763).to_json(), json!(5763));
        assert_eq!(SqlValue::Float(1.5).to_json(), json!(1.5));
        assert_eq!(SqlValue::Float(f64::NAN).to_json(), json!(null));
        assert_eq!(SqlValue::from("a").to_json(), json!("a"));
        assert_eq!(SqlValue::Bool(true).to_json(), json!(true));
        assert_eq!(SqlValue::from(None::<i64>), SqlValue::Null);
        assert_eq!(SqlValue::from(Some(2_i64)), SqlValue::Int(2));
    }

    #[test]
    fn fits() {
        assert!(SqlValue::Int(1).fits(FieldType::Float));
        assert!(!SqlValue::Float(1.0).fits(FieldType::Integer));
        assert!(SqlValue::Text(String::new()).fits(FieldType::Timestamp));
        assert!(!SqlValue::Text(String::new()).fits(FieldType::Integer));
        assert!(!SqlValue::Bool(true).fits(FieldType::Integer));
        assert!(SqlValue::Null.fits(FieldType::Boolean));
    }
}
