//! The column values of one insert or update.

use crate::value::SqlValue;

/// Column values to insert or update, in insertion order, one per field.
///
/// Client input becomes `WriteValues` only through
/// [`parse_write`](crate::parse_write), which admits writable fields alone.
/// Server code may then [`set`](Self::set) fields clients cannot write, such
/// as an `owner_id` taken from the caller's identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteValues {
    values: Vec<(String, SqlValue)>,
}

impl WriteValues {
    /// No values.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `field` to `value`, replacing an earlier value of that field.
    pub fn set(&mut self, field: impl Into<String>, value: impl Into<SqlValue>) {
        let field = field.into();
        let value = value.into();
        match self.values.iter_mut().find(|(name, _)| *name == field) {
            Some(slot) => slot.1 = value,
            None => self.values.push((field, value)),
        }
    }

    /// Builder form of [`set`](Self::set).
    #[must_use]
    pub fn with(mut self, field: impl Into<String>, value: impl Into<SqlValue>) -> Self {
        self.set(field, value);
        self
    }

    /// The value of `field`, if set.
    #[must_use]
    pub fn get(&self, field: &str) -> Option<&SqlValue> {
        self.values.iter().find(|(name, _)| name == field).map(|(_, v)| v)
    }

    /// Removes and returns the value of `field`.
    pub fn remove(&mut self, field: &str) -> Option<SqlValue> {
        let at = self.values.iter().position(|(name, _)| name == field)?;
        Some(self.values.remove(at).1)
    }

    /// `(field, value)` pairs in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &SqlValue)> {
        self.values.iter().map(|(name, v)| (name.as_str(), v))
    }

    /// The number of fields set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no field is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_and_keeps_order() {
        let mut v = WriteValues::new().with("a", 1_i64).with("b", "x");
        v.set("a", 2_i64);
        let pairs: Vec<_> = v.iter().collect();
        assert_eq!(pairs, vec![("a", &SqlValue::Int(2)), ("b", &SqlValue::from("x"))]);
        assert_eq!(v.len(), 2);
        assert_eq!(v.remove("a"), Some(SqlValue::Int(2)));
        assert_eq!(v.get("a"), None);
        assert_eq!(v.remove("a"), None);
        assert!(!v.is_empty());
    }
}
