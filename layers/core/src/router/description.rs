//! What a binding declares, for documentation generators (OpenAPI, AsyncAPI).

use serde::Serialize;

/// The JSON type of a declared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldKind {
    /// A whole number.
    Integer,
    /// A floating-point number.
    Number,
    /// A string.
    String,
    /// `true` or `false`.
    Boolean,
    /// An RFC 3339 timestamp string.
    Timestamp,
}

/// One declared field of a binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FieldDescription {
    /// The field name.
    pub name: String,
    /// Its JSON type.
    pub kind: FieldKind,
    /// Sent to clients.
    pub readable: bool,
    /// Accepted from clients on create and update.
    pub writable: bool,
    /// Must be given on create.
    pub required: bool,
    /// May be `null`.
    pub nullable: bool,
    /// Matched by `query`.
    pub searchable: bool,
    /// Usable in `filters`.
    pub filterable: bool,
    /// Usable in `order`.
    pub orderable: bool,
    /// Longest text accepted, in characters.
    pub max_length: Option<usize>,
}

impl FieldDescription {
    /// A field of this name and kind with every flag off.
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            kind,
            readable: false,
            writable: false,
            required: false,
            nullable: false,
            searchable: false,
            filterable: false,
            orderable: false,
            max_length: None,
        }
    }
}

/// What a model binding declares: its stream, actions and fields.
///
/// ```
/// use channels_binding_core::{BindingDescription, FieldDescription, FieldKind};
///
/// let mut id = FieldDescription::new("id", FieldKind::Integer);
/// id.readable = true;
/// let users = BindingDescription::new("auth.User", "id", vec!["retrieve".into()], vec![id]);
/// assert_eq!(users.stream, "auth.User");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BindingDescription {
    /// The stream (`auth.User`).
    pub stream: String,
    /// The primary key's field name.
    pub primary_key: String,
    /// The actions answered.
    pub actions: Vec<String>,
    /// The declared fields, in declaration order.
    pub fields: Vec<FieldDescription>,
}

impl BindingDescription {
    /// A description.
    pub fn new(
        stream: impl Into<String>,
        primary_key: impl Into<String>,
        actions: Vec<String>,
        fields: Vec<FieldDescription>,
    ) -> Self {
        Self {
            stream: stream.into(),
            primary_key: primary_key.into(),
            actions,
            fields,
        }
    }
}
