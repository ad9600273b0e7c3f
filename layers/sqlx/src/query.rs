//! The SQL builder: statements made only of declared identifiers, fixed
//! keywords and placeholders.
//!
//! Client text never enters SQL text. Table and column names come from the
//! [`ModelSchema`] (validated identifiers, always double-quoted); every value,
//! including search text, `LIMIT` and `OFFSET`, is a bound [`SqlValue`].
//! Names in [`Criteria`] and [`WriteValues`] are only looked up, never
//! copied: a name that is not declared is a [`QueryError`].

use crate::dialect::Dialect;
use crate::field::{Field, FieldType};
use crate::filter::{Condition, Filter};
use crate::ident::push_quoted;
use crate::order::OrderTerm;
use crate::schema::ModelSchema;
use crate::value::SqlValue;
use crate::write_values::WriteValues;

/// One SQL statement and the values of its placeholders, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// The bound values, one per placeholder.
    pub params: Vec<SqlValue>,
}

impl Statement {
    /// `(sql, params)`.
    #[must_use]
    pub fn into_parts(self) -> (String, Vec<SqlValue>) {
        (self.sql, self.params)
    }
}

/// What selects and orders the rows of a search, count or list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Criteria {
    /// Conditions, all of which must hold.
    pub filters: Vec<Filter>,
    /// The requested order; empty means the schema's default order. The
    /// primary key is always added as the final tie-break.
    pub order: Vec<OrderTerm>,
    /// Case-insensitive substring to find in any searchable field; `None` or
    /// empty matches every row.
    pub query: Option<String>,
}

/// A statement that cannot be built from the given names or values. With
/// values from the `parse_*` functions (such as
/// [`parse_filters`](crate::parse_filters)) these indicate a bug in server
/// code, not a client mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A filter, order term or written value names no declared field.
    #[error("{field:?} is not a declared field")]
    UnknownField {
        /// The rejected name.
        field: String,
    },
    /// A value does not fit its field's type (or a key is `NULL`).
    #[error("value for field {field:?} is not a valid {expected}")]
    TypeMismatch {
        /// The field name.
        field: String,
        /// The field's type.
        expected: FieldType,
    },
    /// A search text was given but no field is searchable.
    #[error("the model declares no searchable field")]
    NoSearchFields,
    /// An update with no values.
    #[error("an update needs at least one value")]
    NothingToUpdate,
    /// `OFFSET` or `LIMIT` does not fit a 64-bit signed integer.
    #[error("offset or limit out of range")]
    OutOfRange,
}

/// The `LIKE` pattern matching `text` anywhere: `%`, `_` and `\` are escaped
/// with `\` (statements say `ESCAPE '\'`) and the result is wrapped in `%`.
///
/// ```
/// assert_eq!(channels_binding_sqlx::contains_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
/// ```
#[must_use]
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// Builds the statements of one model in one dialect.
///
/// ```
/// use channels_binding_sqlx::{Dialect, Field, ModelSchema, QueryBuilder, SqlValue};
///
/// let schema = ModelSchema::builder("auth_user")
///     .field(Field::integer("id").read())
///     .field(Field::text("username").read())
///     .build()?;
/// let stmt = QueryBuilder::new(&schema, Dialect::Sqlite).select_by_pk(&SqlValue::Int(5763))?;
/// assert_eq!(stmt.sql, r#"SELECT "id", "username" FROM "auth_user" WHERE "id" = ?"#);
/// assert_eq!(stmt.params, vec![SqlValue::Int(5763)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct QueryBuilder<'a> {
    schema: &'a ModelSchema,
    dialect: Dialect,
}

impl<'a> QueryBuilder<'a> {
    /// A builder for `schema` in `dialect`.
    #[must_use]
    pub fn new(schema: &'a ModelSchema, dialect: Dialect) -> Self {
        Self { schema, dialect }
    }

    /// The schema statements are built from.
    #[must_use]
    pub fn schema(&self) -> &'a ModelSchema {
        self.schema
    }

    /// The dialect statements are written in.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `SELECT <readable> FROM t WHERE pk = ?`.
    ///
    /// # Errors
    ///
    /// [`QueryError::TypeMismatch`] when `pk` does not fit the key's type.
    pub fn select_by_pk(&self, pk: &SqlValue) -> Result<Statement, QueryError> {
        let mut w = self.writer();
        w.select_from();
        w.sql.push_str(" WHERE ");
        w.pk_equals(pk)?;
        Ok(w.finish())
    }

    /// `SELECT <readable> FROM t WHERE pk IN (?, ...)`; matches nothing for
    /// an empty list.
    ///
    /// # Errors
    ///
    /// [`QueryError::TypeMismatch`] when a key does not fit the key's type.
    pub fn select_by_pks(&self, pks: &[SqlValue]) -> Result<Statement, QueryError> {
        let mut w = self.writer();
        w.select_from();
        w.sql.push_str(" WHERE ");
        let pk = self.schema.primary_key();
        for value in pks {
            check_key(pk, value)?;
        }
        w.in_list(pk, pks);
        Ok(w.finish())
    }

    /// One page of a search: `SELECT <readable> FROM t WHERE ... ORDER BY
    /// ... LIMIT ? OFFSET ?`.
    ///
    /// # Errors
    ///
    /// A [`QueryError`] when the criteria name an undeclared field, a filter
    /// value does not fit its field, a search text is given with no
    /// searchable field, or `offset` exceeds `i64::MAX`.
    pub fn search_page(&self, criteria: &Criteria, limit: u32, offset: u64) -> Result<Statement, QueryError> {
        let offset = i64::try_from(offset).map_err(|_| QueryError::OutOfRange)?;
        let mut w = self.writer();
        w.select_from();
        w.where_clause(criteria)?;
        w.order_by(&criteria.order)?;
        w.sql.push_str(" LIMIT ");
        w.param(SqlValue::Int(i64::from(limit)), None);
        w.sql.push_str(" OFFSET ");
        w.param(SqlValue::Int(offset), None);
        Ok(w.finish())
    }

    /// `SELECT COUNT(*) FROM t WHERE ...`, with the same conditions as
    /// [`search_page`](Self::search_page).
    ///
    /// # Errors
    ///
    /// As [`search_page`](Self::search_page).
    pub fn count(&self, criteria: &Criteria) -> Result<Statement, QueryError> {
        let mut w = self.writer();
        w.sql.push_str("SELECT COUNT(*) FROM ");
        push_quoted(&mut w.sql, self.schema.table());
        w.where_clause(criteria)?;
        Ok(w.finish())
    }

    /// A whole list: as [`search_page`](Self::search_page) without `OFFSET`
    /// and with `LIMIT max + 1`, so that receiving more than `max` rows
    /// tells the caller the list is too long.
    ///
    /// # Errors
    ///
    /// As [`search_page`](Self::search_page); [`QueryError::OutOfRange`]
    /// when `max + 1` exceeds `i64::MAX`.
    pub fn list(&self, criteria: &Criteria, max: usize) -> Result<Statement, QueryError> {
        let limit = i64::try_from(max)
            .ok()
            .and_then(|m| m.checked_add(1))
            .ok_or(QueryError::OutOfRange)?;
        let mut w = self.writer();
        w.select_from();
        w.where_clause(criteria)?;
        w.order_by(&criteria.order)?;
        w.sql.push_str(" LIMIT ");
        w.param(SqlValue::Int(limit), None);
        Ok(w.finish())
    }

    /// `INSERT INTO t (...) VALUES (...) RETURNING <readable>` (`DEFAULT
    /// VALUES` when `values` is empty). The returned row includes the key.
    ///
    /// # Errors
    ///
    /// [`QueryError::UnknownField`] or [`QueryError::TypeMismatch`] for a
    /// value that names no declared field or does not fit it.
    pub fn insert(&self, values: &WriteValues) -> Result<Statement, QueryError> {
        let fields = self.resolve_values(values)?;
        let mut w = self.writer();
        w.sql.push_str("INSERT INTO ");
        push_quoted(&mut w.sql, self.schema.table());
        if fields.is_empty() {
            w.sql.push_str(" DEFAULT VALUES");
        } else {
            w.sql.push_str(" (");
            for (i, (field, _)) in fields.iter().enumerate() {
                if i > 0 {
                    w.sql.push_str(", ");
                }
                push_quoted(&mut w.sql, field.name());
            }
            w.sql.push_str(") VALUES (");
            for (i, (field, value)) in fields.iter().enumerate() {
                if i > 0 {
                    w.sql.push_str(", ");
                }
                w.value(field, value);
            }
            w.sql.push(')');
        }
        w.returning();
        Ok(w.finish())
    }

    /// `UPDATE t SET ... WHERE pk = ? RETURNING <readable>`: only the given
    /// fields change.
    ///
    /// # Errors
    ///
    /// [`QueryError::NothingToUpdate`] for empty `values`; otherwise as
    /// [`insert`](Self::insert), or a `pk` that does not fit the key.
    pub fn update(&self, pk: &SqlValue, values: &WriteValues) -> Result<Statement, QueryError> {
        let fields = self.resolve_values(values)?;
        if fields.is_empty() {
            return Err(QueryError::NothingToUpdate);
        }
        let mut w = self.writer();
        w.sql.push_str("UPDATE ");
        push_quoted(&mut w.sql, self.schema.table());
        w.sql.push_str(" SET ");
        for (i, (field, value)) in fields.iter().enumerate() {
            if i > 0 {
                w.sql.push_str(", ");
            }
            push_quoted(&mut w.sql, field.name());
            w.sql.push_str(" = ");
            w.value(field, value);
        }
        w.sql.push_str(" WHERE ");
        w.pk_equals(pk)?;
        w.returning();
        Ok(w.finish())
    }

    /// `DELETE FROM t WHERE pk = ? RETURNING <readable>`: the deleted row
    /// comes back from the same statement.
    ///
    /// # Errors
    ///
    /// [`QueryError::TypeMismatch`] when `pk` does not fit the key's type.
    pub fn delete(&self, pk: &SqlValue) -> Result<Statement, QueryError> {
        let mut w = self.writer();
        w.sql.push_str("DELETE FROM ");
        push_quoted(&mut w.sql, self.schema.table());
        w.sql.push_str(" WHERE ");
        w.pk_equals(pk)?;
        w.returning();
        Ok(w.finish())
    }

    fn writer(&self) -> Writer<'a> {
        Writer {
            schema: self.schema,
            dialect: self.dialect,
            sql: String::with_capacity(128),
            params: Vec::new(),
        }
    }

    /// Pairs each value with its declared field, checking the type.
    fn resolve_values<'v>(&self, values: &'v WriteValues) -> Result<Vec<(&'a Field, &'v SqlValue)>, QueryError> {
        values
            .iter()
            .map(|(name, value)| {
                let field = self.declared(name)?;
                if !value.fits(field.field_type()) {
                    return Err(mismatch(field));
                }
                Ok((field, value))
            })
            .collect()
    }

    fn declared(&self, name: &str) -> Result<&'a Field, QueryError> {
        self.schema
            .field(name)
            .ok_or_else(|| QueryError::UnknownField { field: name.to_owned() })
    }
}

fn mismatch(field: &Field) -> QueryError {
    QueryError::TypeMismatch {
        field: field.name().to_owned(),
        expected: field.field_type(),
    }
}

/// A key value must fit the key's type and cannot be `NULL`.
fn check_key(pk: &Field, value: &SqlValue) -> Result<(), QueryError> {
    if matches!(value, SqlValue::Null) || !value.fits(pk.field_type()) {
        return Err(mismatch(pk));
    }
    Ok(())
}

/// The statement under construction.
struct Writer<'a> {
    schema: &'a ModelSchema,
    dialect: Dialect,
    sql: String,
    params: Vec<SqlValue>,
}

impl Writer<'_> {
    fn finish(self) -> Statement {
        Statement {
            sql: self.sql,
            params: self.params,
        }
    }

    /// Binds `value` and writes its placeholder. Timestamps bound on
    /// PostgreSQL are cast from their text form.
    fn param(&mut self, value: SqlValue, field_type: Option<FieldType>) {
        self.params.push(value);
        let n = self.params.len();
        let cast = self.dialect == Dialect::Postgres && field_type == Some(FieldType::Timestamp);
        if cast {
            self.sql.push_str("CAST(");
        }
        self.dialect.push_placeholder(&mut self.sql, n);
        if cast {
            self.sql.push_str(" AS timestamptz)");
        }
    }

    /// A written value: `NULL` is a keyword rather than a parameter, so that
    /// PostgreSQL never has to guess the type of an untyped null.
    fn value(&mut self, field: &Field, value: &SqlValue) {
        match value {
            SqlValue::Null => self.sql.push_str("NULL"),
            v => self.param(v.clone(), Some(field.field_type())),
        }
    }

    /// One readable column of a `SELECT` or `RETURNING` list.
    fn column(&mut self, field: &Field) {
        if self.dialect == Dialect::Postgres && field.field_type() == FieldType::Timestamp {
            self.sql.push_str("to_char(");
            push_quoted(&mut self.sql, field.name());
            self.sql
                .push_str(r#" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "#);
            push_quoted(&mut self.sql, field.name());
        } else {
            push_quoted(&mut self.sql, field.name());
        }
    }

    fn columns(&mut self) {
        for (i, field) in self.schema.readable_fields().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.column(field);
        }
    }

    /// `SELECT <readable> FROM "t"`.
    fn select_from(&mut self) {
        self.sql.push_str("SELECT ");
        self.columns();
        self.sql.push_str(" FROM ");
        push_quoted(&mut self.sql, self.schema.table());
    }

    fn returning(&mut self) {
        self.sql.push_str(" RETURNING ");
        self.columns();
    }

    fn pk_equals(&mut self, pk: &SqlValue) -> Result<(), QueryError> {
        let field = self.schema.primary_key();
        check_key(field, pk)?;
        push_quoted(&mut self.sql, field.name());
        self.sql.push_str(" = ");
        self.param(pk.clone(), Some(field.field_type()));
        Ok(())
    }

    /// `"col" IN (?, ...)`, or a false condition for an empty list (`IN ()`
    /// is not valid PostgreSQL).
    fn in_list(&mut self, field: &Field, values: &[SqlValue]) {
        if values.is_empty() {
            self.sql.push_str("1 = 0");
            return;
        }
        push_quoted(&mut self.sql, field.name());
        self.sql.push_str(" IN (");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.param(value.clone(), Some(field.field_type()));
        }
        self.sql.push(')');
    }

    /// ` WHERE <filters> AND (<search>)`, or nothing without conditions.
    fn where_clause(&mut self, criteria: &Criteria) -> Result<(), QueryError> {
        let mut first = true;
        let mut and = |sql: &mut String| {
            sql.push_str(if first { " WHERE " } else { " AND " });
            first = false;
        };
        for filter in &criteria.filters {
            let field = self
                .schema
                .field(filter.field())
                .ok_or_else(|| QueryError::UnknownField {
                    field: filter.field().to_owned(),
                })?;
            and(&mut self.sql);
            match filter.condition() {
                Condition::Eq(SqlValue::Null) => {
                    push_quoted(&mut self.sql, field.name());
                    self.sql.push_str(" IS NULL");
                }
                Condition::Eq(value) => {
                    if !value.fits(field.field_type()) {
                        return Err(mismatch(field));
                    }
                    push_quoted(&mut self.sql, field.name());
                    self.sql.push_str(" = ");
                    self.param(value.clone(), Some(field.field_type()));
                }
                Condition::In(values) => {
                    if values
                        .iter()
                        .any(|v| matches!(v, SqlValue::Null) || !v.fits(field.field_type()))
                    {
                        return Err(mismatch(field));
                    }
                    self.in_list(field, values);
                }
            }
        }
        if let Some(text) = criteria.query.as_deref().filter(|q| !q.is_empty()) {
            if !self.schema.has_search_fields() {
                return Err(QueryError::NoSearchFields);
            }
            and(&mut self.sql);
            let pattern = contains_pattern(text);
            self.sql.push('(');
            let schema = self.schema;
            for (i, field) in schema.fields().iter().filter(|f| f.is_searchable()).enumerate() {
                if i > 0 {
                    self.sql.push_str(" OR ");
                }
                match self.dialect {
                    Dialect::Sqlite => {
                        self.sql.push_str("lower(");
                        push_quoted(&mut self.sql, field.name());
                        self.sql.push_str(") LIKE lower(");
                        self.param(SqlValue::Text(pattern.clone()), None);
                        self.sql.push_str(r") ESCAPE '\'");
                    }
                    Dialect::Postgres => {
                        push_quoted(&mut self.sql, field.name());
                        self.sql.push_str(" ILIKE ");
                        self.param(SqlValue::Text(pattern.clone()), None);
                        // E'' so the backslash means itself whatever
                        // standard_conforming_strings says.
                        self.sql.push_str(r" ESCAPE E'\\'");
                    }
                }
            }
            self.sql.push(')');
        }
        Ok(())
    }

    /// ` ORDER BY ...` with the schema's default and the key tie-break.
    fn order_by(&mut self, requested: &[OrderTerm]) -> Result<(), QueryError> {
        let order = self.schema.effective_order(requested);
        self.sql.push_str(" ORDER BY ");
        for (i, term) in order.iter().enumerate() {
            let field = self
                .schema
                .field(term.field())
                .ok_or_else(|| QueryError::UnknownField {
                    field: term.field().to_owned(),
                })?;
            if i > 0 {
                self.sql.push_str(", ");
            }
            push_quoted(&mut self.sql, field.name());
            self.sql.push_str(if term.is_descending() { " DESC" } else { " ASC" });
            // SQLite sorts NULL before every value, PostgreSQL after: say
            // SQLite's order explicitly. Only for nullable fields, so that
            // an index on a NOT NULL column still serves the order.
            if self.dialect == Dialect::Postgres && field.is_nullable() {
                self.sql.push_str(if term.is_descending() {
                    " NULLS LAST"
                } else {
                    " NULLS FIRST"
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{POSTGRES_COLUMNS, SQLITE_COLUMNS, users};
    use proptest::prelude::*;

    fn build<T>(f: impl FnOnce(QueryBuilder<'_>) -> Result<T, QueryError>, dialect: Dialect) -> T {
        let schema = users();
        match f(QueryBuilder::new(&schema, dialect)) {
            Ok(v) => v,
            Err(e) => panic!("build failed: {e}"),
        }
    }

    fn sqlite(f: impl FnOnce(QueryBuilder<'_>) -> Result<Statement, QueryError>) -> Statement {
        build(f, Dialect::Sqlite)
    }

    fn postgres(f: impl FnOnce(QueryBuilder<'_>) -> Result<Statement, QueryError>) -> Statement {
        build(f, Dialect::Postgres)
    }

    fn searching(query: &str) -> Criteria {
        Criteria {
            query: Some(query.to_owned()),
            ..Criteria::default()
        }
    }

    #[test]
    fn pattern_escapes_like_metacharacters() {
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern("abc"), "%abc%");
        assert_eq!(contains_pattern("100%"), r"%100\%%");
        assert_eq!(contains_pattern("a_b"), r"%a\_b%");
        assert_eq!(contains_pattern(r"c:\x"), r"%c:\\x%");
        assert_eq!(contains_pattern("'; --"), "%'; --%");
    }

    #[test]
    fn select_by_pk() {
        let s = sqlite(|b| b.select_by_pk(&SqlValue::Int(5763)));
        assert_eq!(
            s.sql,
            format!(r#"SELECT {SQLITE_COLUMNS} FROM "auth_user" WHERE "id" = ?"#)
        );
        assert_eq!(s.params, vec![SqlValue::Int(5763)]);
        let p = postgres(|b| b.select_by_pk(&SqlValue::Int(5763)));
        assert_eq!(
            p.sql,
            format!(r#"SELECT {POSTGRES_COLUMNS} FROM "auth_user" WHERE "id" = $1"#)
        );
    }

    #[test]
    fn select_by_pks() {
        let pks = [SqlValue::Int(1), SqlValue::Int(2)];
        let s = sqlite(|b| b.select_by_pks(&pks));
        assert_eq!(
            s.sql,
            format!(r#"SELECT {SQLITE_COLUMNS} FROM "auth_user" WHERE "id" IN (?, ?)"#)
        );
        assert_eq!(s.params, pks.to_vec());
        let p = postgres(|b| b.select_by_pks(&pks));
        assert!(p.sql.ends_with(r#"WHERE "id" IN ($1, $2)"#), "{}", p.sql);
        let empty = sqlite(|b| b.select_by_pks(&[]));
        assert!(empty.sql.ends_with("WHERE 1 = 0"), "{}", empty.sql);
        assert!(empty.params.is_empty());
    }

    #[test]
    fn search_page_with_everything_sqlite() {
        let criteria = Criteria {
            filters: vec![
                Filter::eq("is_staff", true),
                Filter::any_of("id", vec![SqlValue::Int(1), SqlValue::Int(2)]),
                Filter::eq("karma", SqlValue::Null),
            ],
            order: vec![OrderTerm::desc("date_joined")],
            query: Some("50%".to_owned()),
        };
        let s = sqlite(|b| b.search_page(&criteria, 25, 50));
        assert_eq!(
            s.sql,
            format!(
                r#"SELECT {SQLITE_COLUMNS} FROM "auth_user" WHERE "is_staff" = ? AND "id" IN (?, ?) AND "karma" IS NULL AND (lower("username") LIKE lower(?) ESCAPE '\' OR lower("email") LIKE lower(?) ESCAPE '\') ORDER BY "date_joined" DESC, "id" ASC LIMIT ? OFFSET ?"#
            )
        );
        assert_eq!(
            s.params,
            vec![
                SqlValue::Bool(true),
                SqlValue::Int(1),
                SqlValue::Int(2),
                SqlValue::Text(r"%50\%%".into()),
                SqlValue::Text(r"%50\%%".into()),
                SqlValue::Int(25),
                SqlValue::Int(50),
            ]
        );
    }

    #[test]
    fn search_page_with_everything_postgres() {
        let criteria = Criteria {
            filters: vec![
                Filter::eq("is_staff", false),
                Filter::eq("date_joined", "2024-01-01T00:00:00.000Z"),
            ],
            order: vec![OrderTerm::asc("username")],
            query: Some("a_b".to_owned()),
        };
        let p = postgres(|b| b.search_page(&criteria, 10, 0));
        assert_eq!(
            p.sql,
            format!(
                r#"SELECT {POSTGRES_COLUMNS} FROM "auth_user" WHERE "is_staff" = $1 AND "date_joined" = CAST($2 AS timestamptz) AND ("username" ILIKE $3 ESCAPE E'\\' OR "email" ILIKE $4 ESCAPE E'\\') ORDER BY "username" ASC, "id" ASC LIMIT $5 OFFSET $6"#
            )
        );
        assert_eq!(p.params.len(), 6);
        assert_eq!(p.params[2], SqlValue::Text(r"%a\_b%".into()));
    }

    #[test]
    fn default_order_and_tie_break() {
        let s = sqlite(|b| b.search_page(&Criteria::default(), 25, 0));
        assert!(
            s.sql
                .ends_with(r#"FROM "auth_user" ORDER BY "username" ASC, "id" ASC LIMIT ? OFFSET ?"#),
            "{}",
            s.sql
        );
        let by_pk = Criteria {
            order: vec![OrderTerm::desc("id")],
            ..Criteria::default()
        };
        let s = sqlite(|b| b.search_page(&by_pk, 25, 0));
        assert!(s.sql.contains(r#"ORDER BY "id" DESC LIMIT"#), "{}", s.sql);
    }

    #[test]
    fn postgres_sorts_nulls_where_sqlite_does() {
        let criteria = Criteria {
            order: vec![
                OrderTerm::desc("karma"),
                OrderTerm::asc("email"),
                OrderTerm::asc("username"),
            ],
            ..Criteria::default()
        };
        let p = postgres(|b| b.list(&criteria, 10));
        assert!(
            p.sql.ends_with(
                r#"ORDER BY "karma" DESC NULLS LAST, "email" ASC NULLS FIRST, "username" ASC, "id" ASC LIMIT $1"#
            ),
            "{}",
            p.sql
        );
        let s = sqlite(|b| b.list(&criteria, 10));
        assert!(
            s.sql
                .ends_with(r#"ORDER BY "karma" DESC, "email" ASC, "username" ASC, "id" ASC LIMIT ?"#),
            "{}",
            s.sql
        );
    }

    #[test]
    fn empty_query_and_empty_in_list() {
        let s = sqlite(|b| b.count(&searching("")));
        assert_eq!(s.sql, r#"SELECT COUNT(*) FROM "auth_user""#);
        let none = Criteria {
            filters: vec![Filter::any_of("id", Vec::new())],
            ..Criteria::default()
        };
        let s = sqlite(|b| b.count(&none));
        assert_eq!(s.sql, r#"SELECT COUNT(*) FROM "auth_user" WHERE 1 = 0"#);
    }

    #[test]
    fn count_uses_the_same_where() {
        let criteria = Criteria {
            filters: vec![Filter::eq("is_staff", true)],
            order: vec![OrderTerm::desc("username")],
            query: Some("x".into()),
        };
        let s = sqlite(|b| b.count(&criteria));
        assert_eq!(
            s.sql,
            r#"SELECT COUNT(*) FROM "auth_user" WHERE "is_staff" = ? AND (lower("username") LIKE lower(?) ESCAPE '\' OR lower("email") LIKE lower(?) ESCAPE '\')"#
        );
        let p = postgres(|b| b.count(&criteria));
        assert_eq!(
            p.sql,
            r#"SELECT COUNT(*) FROM "auth_user" WHERE "is_staff" = $1 AND ("username" ILIKE $2 ESCAPE E'\\' OR "email" ILIKE $3 ESCAPE E'\\')"#
        );
    }

    #[test]
    fn list_asks_for_one_more_row() {
        let s = sqlite(|b| b.list(&Criteria::default(), 1000));
        assert_eq!(
            s.sql,
            format!(r#"SELECT {SQLITE_COLUMNS} FROM "auth_user" ORDER BY "username" ASC, "id" ASC LIMIT ?"#)
        );
        assert_eq!(s.params, vec![SqlValue::Int(1001)]);
        let p = postgres(|b| b.list(&Criteria::default(), 5));
        assert!(p.sql.ends_with("LIMIT $1"), "{}", p.sql);
        let schema = users();
        let err = QueryBuilder::new(&schema, Dialect::Sqlite).list(&Criteria::default(), usize::MAX);
        assert_eq!(err, Err(QueryError::OutOfRange));
        let err = QueryBuilder::new(&schema, Dialect::Sqlite).search_page(&Criteria::default(), 1, u64::MAX);
        assert_eq!(err, Err(QueryError::OutOfRange));
    }

    #[test]
    fn insert() {
        let values = WriteValues::new()
            .with("username", "bob")
            .with("email", SqlValue::Null)
            .with("date_joined", "2024-01-01T00:00:00.000Z");
        let s = sqlite(|b| b.insert(&values));
        assert_eq!(
            s.sql,
            format!(
                r#"INSERT INTO "auth_user" ("username", "email", "date_joined") VALUES (?, NULL, ?) RETURNING {SQLITE_COLUMNS}"#
            )
        );
        assert_eq!(
            s.params,
            vec![SqlValue::from("bob"), SqlValue::from("2024-01-01T00:00:00.000Z")]
        );
        let p = postgres(|b| b.insert(&values));
        assert_eq!(
            p.sql,
            format!(
                r#"INSERT INTO "auth_user" ("username", "email", "date_joined") VALUES ($1, NULL, CAST($2 AS timestamptz)) RETURNING {POSTGRES_COLUMNS}"#
            )
        );
        let d = sqlite(|b| b.insert(&WriteValues::new()));
        assert_eq!(
            d.sql,
            format!(r#"INSERT INTO "auth_user" DEFAULT VALUES RETURNING {SQLITE_COLUMNS}"#)
        );
    }

    #[test]
    fn update() {
        let values = WriteValues::new().with("username", "eve").with("karma", 1.5);
        let s = sqlite(|b| b.update(&SqlValue::Int(7), &values));
        assert_eq!(
            s.sql,
            format!(r#"UPDATE "auth_user" SET "username" = ?, "karma" = ? WHERE "id" = ? RETURNING {SQLITE_COLUMNS}"#)
        );
        assert_eq!(
            s.params,
            vec![SqlValue::from("eve"), SqlValue::Float(1.5), SqlValue::Int(7)]
        );
        let p = postgres(|b| b.update(&SqlValue::Int(7), &values));
        assert_eq!(
            p.sql,
            format!(
                r#"UPDATE "auth_user" SET "username" = $1, "karma" = $2 WHERE "id" = $3 RETURNING {POSTGRES_COLUMNS}"#
            )
        );
    }

    #[test]
    fn delete() {
        let s = sqlite(|b| b.delete(&SqlValue::Int(7)));
        assert_eq!(
            s.sql,
            format!(r#"DELETE FROM "auth_user" WHERE "id" = ? RETURNING {SQLITE_COLUMNS}"#)
        );
        let p = postgres(|b| b.delete(&SqlValue::Int(7)));
        assert_eq!(
            p.sql,
            format!(r#"DELETE FROM "auth_user" WHERE "id" = $1 RETURNING {POSTGRES_COLUMNS}"#)
        );
        assert_eq!(p.into_parts().1, vec![SqlValue::Int(7)]);
    }

    #[test]
    fn rejects_undeclared_names_and_bad_values() {
        let schema = users();
        let b = QueryBuilder::new(&schema, Dialect::Sqlite);
        let unknown = |field: &str| {
            Err(QueryError::UnknownField {
                field: field.to_owned(),
            })
        };
        let by = |f: Filter| Criteria {
            filters: vec![f],
            ..Criteria::default()
        };
        assert_eq!(b.count(&by(Filter::eq("password_hash", "x"))), unknown("password_hash"));
        let ordered = Criteria {
            order: vec![OrderTerm::asc("1; DROP TABLE x")],
            ..Criteria::default()
        };
        assert_eq!(b.list(&ordered, 10), unknown("1; DROP TABLE x"));
        assert_eq!(
            b.insert(&WriteValues::new().with("is_superuser", true)),
            unknown("is_superuser")
        );
        assert!(matches!(
            b.count(&by(Filter::eq("id", "1"))),
            Err(QueryError::TypeMismatch { .. })
        ));
        assert!(matches!(
            b.count(&by(Filter::any_of("id", vec![SqlValue::Null]))),
            Err(QueryError::TypeMismatch { .. })
        ));
        assert!(matches!(
            b.update(&SqlValue::Int(1), &WriteValues::new().with("karma", "x")),
            Err(QueryError::TypeMismatch { .. })
        ));
        assert!(matches!(
            b.select_by_pk(&SqlValue::Text("1".into())),
            Err(QueryError::TypeMismatch { .. })
        ));
        assert!(matches!(
            b.delete(&SqlValue::Null),
            Err(QueryError::TypeMismatch { .. })
        ));
        assert!(matches!(
            b.select_by_pks(&[SqlValue::Int(1), SqlValue::Bool(true)]),
            Err(QueryError::TypeMismatch { .. })
        ));
        assert_eq!(
            b.update(&SqlValue::Int(1), &WriteValues::new()),
            Err(QueryError::NothingToUpdate)
        );

        let plain = match ModelSchema::builder("t")
            .field(crate::Field::integer("id").read())
            .build()
        {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            QueryBuilder::new(&plain, Dialect::Sqlite).count(&searching("x")),
            Err(QueryError::NoSearchFields)
        );
    }

    #[test]
    fn server_side_filters_may_use_any_declared_field() {
        // `email` is not filterable by clients, but server code may scope by it.
        let criteria = Criteria {
            filters: vec![Filter::eq("email", "a@b.c")],
            ..Criteria::default()
        };
        let s = sqlite(|b| b.count(&criteria));
        assert!(s.sql.ends_with(r#"WHERE "email" = ?"#), "{}", s.sql);
    }

    /// Statements built from `text` in every client-controlled position.
    fn statements_with(text: &str, order_key: &str, dialect: Dialect) -> Vec<Statement> {
        let schema = users();
        let b = QueryBuilder::new(&schema, dialect);
        let order = crate::input::parse_order(&schema, &serde_json::Value::from(order_key)).unwrap_or_default();
        let criteria = Criteria {
            filters: vec![
                Filter::eq("username", text),
                Filter::any_of(
                    "email",
                    vec![SqlValue::from(text), SqlValue::from(format!("{text}{text}"))],
                ),
            ],
            order,
            query: Some(text.to_owned()),
        };
        let values = WriteValues::new().with("username", text).with("email", text);
        [
            b.search_page(&criteria, 25, 0),
            b.count(&criteria),
            b.list(&criteria, 1000),
            b.insert(&values),
            b.update(&SqlValue::Int(1), &values),
            b.select_by_pks(&[SqlValue::Int(1)]),
        ]
        .into_iter()
        .filter_map(Result::ok)
        .collect()
    }

    proptest! {
        /// Client text lands in parameters only: the SQL text built from any
        /// input is the SQL text built from a neutral input, and it never
        /// contains the input unless the neutral SQL already does (for
        /// inputs such as `"id"` or `" "`).
        #[test]
        fn client_text_never_reaches_sql(
            text in "\\PC{1,40}",
            order_key in prop_oneof![Just("username".to_owned()), Just("-email".to_owned()), "\\PC{0,20}"],
        ) {
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                let built = statements_with(&text, &order_key, dialect);
                let neutral_order = match crate::input::parse_order(&users(), &serde_json::Value::from(order_key.as_str())) {
                    Ok(_) => order_key.clone(),
                    Err(_) => String::new(),
                };
                let neutral = statements_with("n", &neutral_order, dialect);
                prop_assert_eq!(built.len(), neutral.len());
                for (got, reference) in built.iter().zip(&neutral) {
                    prop_assert_eq!(&got.sql, &reference.sql);
                    if !reference.sql.contains(text.as_str()) {
                        prop_assert!(!got.sql.contains(text.as_str()));
                    }
                    if !reference.sql.contains(order_key.as_str()) {
                        prop_assert!(!got.sql.contains(order_key.as_str()));
                    }
                }
            }
        }

        /// Any search text is escaped so that the pattern matches it literally.
        #[test]
        fn pattern_round_trips(text in "\\PC{0,40}") {
            let pattern = contains_pattern(&text);
            prop_assert!(pattern.starts_with('%') && pattern.ends_with('%'));
            let inner = &pattern[1..pattern.len() - 1];
            let mut unescaped = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        let next = chars.next();
                        prop_assert!(matches!(next, Some('%' | '_' | '\\')));
                        unescaped.extend(next);
                    }
                    '%' | '_' => prop_assert!(false, "unescaped metacharacter in {pattern:?}"),
                    c => unescaped.push(c),
                }
            }
            prop_assert_eq!(unescaped, text);
        }
    }
}
