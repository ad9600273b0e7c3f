//! Declared fields: name, type and what clients may do with each.

use std::fmt;

/// The type of a declared field, which fixes how client JSON is checked, how
/// values are bound and how columns are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// A 64-bit signed integer (`i64`); a JSON integer.
    Integer,
    /// A 64-bit float (`f64`); any JSON number.
    Float,
    /// A string; a JSON string.
    Text,
    /// A boolean; JSON `true`/`false`. SQLite stores it as `0`/`1`.
    Boolean,
    /// An instant, exchanged as an RFC 3339 string, always read back in the
    /// canonical UTC form of [`canonical_timestamp`](crate::canonical_timestamp).
    /// SQLite stores it as TEXT in that form; PostgreSQL in a `timestamptz`
    /// column.
    Timestamp,
}

impl FieldType {
    /// A lowercase name for messages (`"integer"`, `"text"`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Float => "number",
            Self::Text => "string",
            Self::Boolean => "boolean",
            Self::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One declared column of a model and the operations clients may use on it.
///
/// A field starts with no capability at all; each flag opts in:
///
/// ```
/// use channels_binding_sqlx::Field;
///
/// let username = Field::text("username")
///     .read()
///     .write()
///     .search()
///     .order()
///     .required()
///     .max_length(150);
/// assert!(username.is_searchable());
/// ```
///
/// The name is checked when the field is added to a
/// [`ModelSchema`](crate::ModelSchema), not here, so that building reads
/// as one expression and all mistakes surface from
/// [`ModelSchemaBuilder::build`](crate::ModelSchemaBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    name: String,
    field_type: FieldType,
    readable: bool,
    writable: bool,
    searchable: bool,
    filterable: bool,
    orderable: bool,
    required: bool,
    allow_empty: bool,
    nullable: bool,
    max_length: Option<usize>,
}

impl Field {
    /// A field of type `field_type` with every capability off.
    #[must_use]
    pub fn new(name: impl Into<String>, field_type: FieldType) -> Self {
        Self {
            name: name.into(),
            field_type,
            readable: false,
            writable: false,
            searchable: false,
            filterable: false,
            orderable: false,
            required: false,
            allow_empty: false,
            nullable: false,
            max_length: None,
        }
    }

    /// An [`FieldType::Integer`] field.
    #[must_use]
    pub fn integer(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::Integer)
    }

    /// A [`FieldType::Float`] field.
    #[must_use]
    pub fn float(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::Float)
    }

    /// A [`FieldType::Text`] field.
    #[must_use]
    pub fn text(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::Text)
    }

    /// A [`FieldType::Boolean`] field.
    #[must_use]
    pub fn boolean(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::Boolean)
    }

    /// A [`FieldType::Timestamp`] field.
    #[must_use]
    pub fn timestamp(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::Timestamp)
    }

    /// Included in every object sent to clients.
    #[must_use]
    pub fn read(mut self) -> Self {
        self.readable = true;
        self
    }

    /// Accepted from clients on create and update.
    #[must_use]
    pub fn write(mut self) -> Self {
        self.writable = true;
        self
    }

    /// Matched by the `query` of a search (case-insensitive substring).
    /// Text fields only.
    #[must_use]
    pub fn search(mut self) -> Self {
        self.searchable = true;
        self
    }

    /// Usable in `filters` (equality, or membership for a list).
    #[must_use]
    pub fn filter(mut self) -> Self {
        self.filterable = true;
        self
    }

    /// Usable in `order`.
    #[must_use]
    pub fn order(mut self) -> Self {
        self.orderable = true;
        self
    }

    /// Must be present on create; a required text field also refuses `""`
    /// on create and on every update, unless [`allow_empty`](Self::allow_empty).
    ///
    /// ```
    /// use channels_binding_sqlx::Field;
    ///
    /// assert!(!Field::text("username").required().accepts_empty());
    /// assert!(Field::text("nickname").required().allow_empty().accepts_empty());
    /// assert!(Field::text("bio").accepts_empty());
    /// ```
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Accepts `""` although [`required`](Self::required): the field must be
    /// given, but may be blank.
    #[must_use]
    pub fn allow_empty(mut self) -> Self {
        self.allow_empty = true;
        self
    }

    /// Accepts JSON `null`. Also tells the PostgreSQL statements that the
    /// column holds `NULL`s, so that they sort them where SQLite does
    /// (first ascending, last descending); declare it on every column that
    /// may hold `NULL` and is orderable.
    #[must_use]
    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }

    /// Longest accepted text, counted in Unicode scalar values. Text fields
    /// only.
    #[must_use]
    pub fn max_length(mut self, max: usize) -> Self {
        self.max_length = Some(max);
        self
    }

    /// The column name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared type.
    #[must_use]
    pub fn field_type(&self) -> FieldType {
        self.field_type
    }

    /// See [`Field::read`].
    #[must_use]
    pub fn is_readable(&self) -> bool {
        self.readable
    }

    /// See [`Field::write`].
    #[must_use]
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// See [`Field::search`].
    #[must_use]
    pub fn is_searchable(&self) -> bool {
        self.searchable
    }

    /// See [`Field::filter`].
    #[must_use]
    pub fn is_filterable(&self) -> bool {
        self.filterable
    }

    /// See [`Field::order`].
    #[must_use]
    pub fn is_orderable(&self) -> bool {
        self.orderable
    }

    /// See [`Field::required`].
    #[must_use]
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Whether `""` is accepted: always for a field that is not required,
    /// else only with [`Field::allow_empty`].
    #[must_use]
    pub fn accepts_empty(&self) -> bool {
        !self.required || self.allow_empty
    }

    /// See [`Field::nullable`].
    #[must_use]
    pub fn is_nullable(&self) -> bool {
        self.nullable
    }

    /// See [`Field::max_length`].
    #[must_use]
    pub fn max_length_limit(&self) -> Option<usize> {
        self.max_length
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_no_capability() {
        let f = Field::integer("id");
        assert_eq!(f.name(), "id");
        assert_eq!(f.field_type(), FieldType::Integer);
        assert!(!f.is_readable() && !f.is_writable() && !f.is_searchable());
        assert!(!f.is_filterable() && !f.is_orderable() && !f.is_required());
        assert!(!f.is_nullable());
        assert_eq!(f.max_length_limit(), None);
    }

    #[test]
    fn flags_compose() {
        let f = Field::text("email")
            .read()
            .write()
            .search()
            .filter()
            .order()
            .required()
            .nullable()
            .max_length(254);
        assert!(f.is_readable() && f.is_writable() && f.is_searchable());
        assert!(f.is_filterable() && f.is_orderable() && f.is_required());
        assert!(f.is_nullable());
        assert_eq!(f.max_length_limit(), Some(254));
    }

    #[test]
    fn constructors_set_types() {
        assert_eq!(Field::float("x").field_type(), FieldType::Float);
        assert_eq!(Field::boolean("x").field_type(), FieldType::Boolean);
        assert_eq!(Field::timestamp("x").field_type(), FieldType::Timestamp);
        assert_eq!(FieldType::Timestamp.to_string(), "timestamp");
    }
}
