//! The SQL dialects the query builder writes.

use std::fmt::Write as _;

/// A SQL dialect. Only the differences the builder needs are modelled:
/// placeholders, case-insensitive `LIKE`, and how timestamps travel as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// SQLite: `?` placeholders, `lower(col) LIKE lower(?)`, timestamps as
    /// canonical RFC 3339 TEXT.
    Sqlite,
    /// PostgreSQL: `$n` placeholders, `ILIKE`, `timestamptz` columns cast
    /// from and formatted to canonical RFC 3339 text.
    Postgres,
}

impl Dialect {
    /// Appends the placeholder of the `n`th parameter (1-based).
    pub(crate) fn push_placeholder(self, sql: &mut String, n: usize) {
        match self {
            Self::Sqlite => sql.push('?'),
            Self::Postgres => {
                // Writing to a String cannot fail.
                let _ = write!(sql, "${n}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let mut s = String::new();
        Dialect::Sqlite.push_placeholder(&mut s, 3);
        Dialect::Postgres.push_placeholder(&mut s, 12);
        assert_eq!(s, "?$12");
    }
}
