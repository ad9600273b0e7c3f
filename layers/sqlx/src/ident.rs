//! SQL identifiers: validation of declared names and quoting.
//!
//! Every identifier that reaches SQL text comes from a
//! [`ModelSchema`](crate::ModelSchema) and was checked by [`is_valid_identifier`] when the
//! schema was built, so quoting never has to escape anything.

/// Longest identifier accepted (PostgreSQL's `NAMEDATALEN - 1`).
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Whether `name` matches `[A-Za-z_][A-Za-z0-9_]{0,62}`.
///
/// Such a name is valid unquoted and quoted in SQLite and PostgreSQL and needs
/// no escaping inside double quotes.
#[must_use]
pub fn is_valid_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= MAX_IDENTIFIER_LEN
                && (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

/// Appends `name` to `sql` as a double-quoted identifier.
///
/// Callers pass only names that passed [`is_valid_identifier`]; a stray `"`
/// is doubled anyway so that the output stays a single identifier.
pub(crate) fn push_quoted(sql: &mut String, name: &str) {
    debug_assert!(is_valid_identifier(name), "unvalidated identifier {name:?}");
    sql.push('"');
    for ch in name.chars() {
        if ch == '"' {
            sql.push('"');
        }
        sql.push(ch);
    }
    sql.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for name in ["id", "_x", "User_1", "a", &"a".repeat(63)] {
            assert!(is_valid_identifier(name), "{name}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for name in ["", "1a", "a-b", "a b", "a\"b", "a;drop", "é", "a.b", &"a".repeat(64)] {
            assert!(!is_valid_identifier(name), "{name}");
        }
    }

    #[test]
    fn quotes() {
        let mut sql = String::new();
        push_quoted(&mut sql, "user_name");
        assert_eq!(sql, "\"user_name\"");
    }
}
