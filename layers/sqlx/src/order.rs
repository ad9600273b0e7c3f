//! Order terms: `field` ascending, `-field` descending.

use std::fmt;

/// One `ORDER BY` term, written by clients as `"field"` or `"-field"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderTerm {
    field: String,
    descending: bool,
}

impl OrderTerm {
    /// Ascending on `field`.
    #[must_use]
    pub fn asc(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            descending: false,
        }
    }

    /// Descending on `field`.
    #[must_use]
    pub fn desc(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            descending: true,
        }
    }

    /// Splits the wire form: `"-name"` is descending on `name`, anything else
    /// ascending on the whole string. The field name is not checked here.
    #[must_use]
    pub fn parse(term: &str) -> Self {
        match term.strip_prefix('-') {
            Some(field) => Self::desc(field),
            None => Self::asc(term),
        }
    }

    /// The field name.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Whether the order is descending.
    #[must_use]
    pub fn is_descending(&self) -> bool {
        self.descending
    }
}

/// The wire form: `name` or `-name`.
impl fmt::Display for OrderTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        f.write_str(&self.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        let d = OrderTerm::parse("-username");
        assert_eq!(d, OrderTerm::desc("username"));
        assert_eq!(d.to_string(), "-username");
        let a = OrderTerm::parse("id");
        assert_eq!(a, OrderTerm::asc("id"));
        assert!(!a.is_descending());
        assert_eq!(a.to_string(), "id");
        assert_eq!(OrderTerm::parse("--x").field(), "-x");
    }
}
