//! Errors in a model declaration, reported when the schema is built.

use crate::field::FieldType;

/// A field or model declaration that cannot be served safely.
///
/// Returned by [`ModelSchemaBuilder::build`](crate::ModelSchemaBuilder::build);
/// these are programming errors, found once at start-up rather than per
/// request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A table or field name is not `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    #[error("invalid SQL identifier {name:?}: expected [A-Za-z_][A-Za-z0-9_]{{0,62}}")]
    InvalidIdentifier {
        /// The rejected name.
        name: String,
    },
    /// Two fields share a name.
    #[error("field {name:?} is declared twice")]
    DuplicateField {
        /// The repeated name.
        name: String,
    },
    /// The primary key names no declared field.
    #[error("primary key {name:?} is not a declared field")]
    MissingPrimaryKey {
        /// The primary key name.
        name: String,
    },
    /// The primary key has a type that cannot address objects.
    #[error("primary key {name:?} has type {field_type:?}; only integer and text keys are supported")]
    UnsupportedPrimaryKeyType {
        /// The primary key name.
        name: String,
        /// Its declared type.
        field_type: FieldType,
    },
    /// The primary key is not readable, so replies could not name objects.
    #[error("primary key {name:?} must be readable")]
    PrimaryKeyNotReadable {
        /// The primary key name.
        name: String,
    },
    /// The primary key is declared nullable.
    #[error("primary key {name:?} cannot be nullable")]
    NullablePrimaryKey {
        /// The primary key name.
        name: String,
    },
    /// A default order term is empty or names no declared field.
    #[error("default order term {term:?} names no declared field")]
    UnknownOrderField {
        /// The rejected term as written.
        term: String,
    },
    /// A default order term names a field not declared orderable.
    #[error("default order field {name:?} is not declared orderable")]
    NotOrderable {
        /// The field name.
        name: String,
    },
    /// A field appears twice in the default order.
    #[error("default order names field {name:?} twice")]
    DuplicateOrderField {
        /// The field name.
        name: String,
    },
    /// `max_length` was set on a field that is not text, or to zero.
    #[error("field {name:?}: max_length needs a text field and a limit of at least 1")]
    InvalidMaxLength {
        /// The field name.
        name: String,
    },
    /// `search` was set on a field that is not text.
    #[error("field {name:?}: only text fields can be searched")]
    SearchOnNonText {
        /// The field name.
        name: String,
    },
    /// `required` was set on a field that is not writable.
    #[error("field {name:?} is required but not writable")]
    RequiredNotWritable {
        /// The field name.
        name: String,
    },
    /// A field clients cannot read is searchable, filterable or orderable:
    /// its values could be inferred from which rows match or how they sort.
    #[error("field {name:?} is searchable, filterable or orderable but not readable")]
    UnreadableQueryField {
        /// The field name.
        name: String,
    },
    /// The default page size is zero.
    #[error("default page size must be at least 1")]
    InvalidPageSize,
    /// A binding's stream is not a valid `<stream>` of an event name (`app.Model`).
    #[error("invalid stream name {0:?}: expected something like `app.Model`")]
    InvalidStream(String),
    /// A serializer names a field that is not declared readable.
    #[error("serializer field {0:?} is not a readable field of the schema")]
    UnreadableSerializerField(String),
    /// Capture of outside writes was asked for on a database other than PostgreSQL.
    #[error("capturing outside writes needs PostgreSQL (triggers publish through LISTEN/NOTIFY)")]
    CaptureNeedsPostgres,
}
