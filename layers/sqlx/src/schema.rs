//! A model's declaration: table, primary key, fields, default order and
//! page size, validated once when built.

use crate::error::ConfigError;
use crate::field::{Field, FieldType};
use crate::ident::is_valid_identifier;
use crate::order::OrderTerm;

/// A validated model declaration. Every identifier the query builder writes
/// into SQL comes from here.
///
/// ```
/// use channels_binding_sqlx::{Field, ModelSchema};
///
/// let users = ModelSchema::builder("auth_user")
///     .field(Field::integer("id").read().order())
///     .field(Field::text("username").read().write().search().order().required().max_length(150))
///     .field(Field::boolean("is_staff").read().filter())
///     .default_order(["-id"])
///     .page_size(25)
///     .build()?;
/// assert_eq!(users.primary_key().name(), "id");
/// # Ok::<(), channels_binding_sqlx::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSchema {
    table: String,
    primary_key: usize,
    fields: Vec<Field>,
    default_order: Vec<OrderTerm>,
    page_size: Option<u32>,
}

impl ModelSchema {
    /// Starts a declaration for `table`, with primary key `id`.
    pub fn builder(table: impl Into<String>) -> ModelSchemaBuilder {
        ModelSchemaBuilder {
            table: table.into(),
            primary_key: "id".to_owned(),
            fields: Vec::new(),
            default_order: Vec::new(),
            page_size: None,
        }
    }

    /// The table name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The primary key field (readable, integer or text, not nullable).
    #[must_use]
    pub fn primary_key(&self) -> &Field {
        &self.fields[self.primary_key]
    }

    /// All declared fields, in declaration order.
    #[must_use]
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The declared field called `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name() == name)
    }

    /// The fields sent to clients, in declaration order.
    pub fn readable_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.is_readable())
    }

    /// Whether any field is declared searchable.
    #[must_use]
    pub fn has_search_fields(&self) -> bool {
        self.fields.iter().any(Field::is_searchable)
    }

    /// The order used when a request gives none (may be empty).
    #[must_use]
    pub fn default_order(&self) -> &[OrderTerm] {
        &self.default_order
    }

    /// The binding's page size, if it declares one.
    #[must_use]
    pub fn page_size(&self) -> Option<u32> {
        self.page_size
    }

    /// The order a query really uses: `requested`, or the default order when
    /// `requested` is empty, then the primary key ascending as a final
    /// tie-break unless it is already there, so that pages never overlap.
    #[must_use]
    pub fn effective_order(&self, requested: &[OrderTerm]) -> Vec<OrderTerm> {
        let base = if requested.is_empty() {
            &self.default_order
        } else {
            requested
        };
        let pk = self.primary_key().name();
        let mut order = base.to_vec();
        if !order.iter().any(|t| t.field() == pk) {
            order.push(OrderTerm::asc(pk));
        }
        order
    }
}

/// Builder of a [`ModelSchema`]; see [`ModelSchema::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ModelSchemaBuilder {
    table: String,
    primary_key: String,
    fields: Vec<Field>,
    default_order: Vec<String>,
    page_size: Option<u32>,
}

impl ModelSchemaBuilder {
    /// Names the primary key field (default `id`). It must be declared with
    /// [`field`](Self::field).
    pub fn primary_key(mut self, name: impl Into<String>) -> Self {
        self.primary_key = name.into();
        self
    }

    /// Declares a field.
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Declares several fields.
    pub fn fields(mut self, fields: impl IntoIterator<Item = Field>) -> Self {
        self.fields.extend(fields);
        self
    }

    /// The order used when a request gives none: field names, `-name` for
    /// descending. Each must be declared orderable.
    pub fn default_order<I>(mut self, terms: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.default_order = terms.into_iter().map(Into::into).collect();
        self
    }

    /// The binding's page size, used when a search gives no `limit`.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Validates the declaration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the table or a field name is not a plain
    /// identifier, a field is declared twice, the primary key is missing,
    /// unreadable, nullable or neither integer nor text, a field's flags
    /// contradict its type or each other (`search` or `max_length` on
    /// non-text, `required` without `write`, `search`, `filter` or `order`
    /// without `read`), a default order term is unknown, not orderable or
    /// repeated, or the page size is zero.
    pub fn build(self) -> Result<ModelSchema, ConfigError> {
        if !is_valid_identifier(&self.table) {
            return Err(ConfigError::InvalidIdentifier { name: self.table });
        }
        for (i, field) in self.fields.iter().enumerate() {
            check_field(field)?;
            if self.fields[..i].iter().any(|f| f.name() == field.name()) {
                return Err(ConfigError::DuplicateField {
                    name: field.name().to_owned(),
                });
            }
        }

        let primary_key = self
            .fields
            .iter()
            .position(|f| f.name() == self.primary_key)
            .ok_or_else(|| ConfigError::MissingPrimaryKey {
                name: self.primary_key.clone(),
            })?;
        let pk = &self.fields[primary_key];
        if !matches!(pk.field_type(), FieldType::Integer | FieldType::Text) {
            return Err(ConfigError::UnsupportedPrimaryKeyType {
                name: self.primary_key,
                field_type: pk.field_type(),
            });
        }
        if !pk.is_readable() {
            return Err(ConfigError::PrimaryKeyNotReadable { name: self.primary_key });
        }
        if pk.is_nullable() {
            return Err(ConfigError::NullablePrimaryKey { name: self.primary_key });
        }

        let mut default_order: Vec<OrderTerm> = Vec::with_capacity(self.default_order.len());
        for term in &self.default_order {
            let parsed = OrderTerm::parse(term);
            let field = self
                .fields
                .iter()
                .find(|f| f.name() == parsed.field())
                .ok_or_else(|| ConfigError::UnknownOrderField { term: term.clone() })?;
            if !field.is_orderable() {
                return Err(ConfigError::NotOrderable {
                    name: field.name().to_owned(),
                });
            }
            if default_order.iter().any(|t| t.field() == parsed.field()) {
                return Err(ConfigError::DuplicateOrderField {
                    name: field.name().to_owned(),
                });
            }
            default_order.push(parsed);
        }

        if self.page_size == Some(0) {
            return Err(ConfigError::InvalidPageSize);
        }

        Ok(ModelSchema {
            table: self.table,
            primary_key,
            fields: self.fields,
            default_order,
            page_size: self.page_size,
        })
    }
}

/// The checks that concern one field alone.
fn check_field(field: &Field) -> Result<(), ConfigError> {
    let name = || field.name().to_owned();
    if !is_valid_identifier(field.name()) {
        return Err(ConfigError::InvalidIdentifier { name: name() });
    }
    let is_text = field.field_type() == FieldType::Text;
    if field.max_length_limit().is_some_and(|max| !is_text || max == 0) {
        return Err(ConfigError::InvalidMaxLength { name: name() });
    }
    if field.is_searchable() && !is_text {
        return Err(ConfigError::SearchOnNonText { name: name() });
    }
    if field.is_required() && !field.is_writable() {
        return Err(ConfigError::RequiredNotWritable { name: name() });
    }
    if (field.is_searchable() || field.is_filterable() || field.is_orderable()) && !field.is_readable() {
        return Err(ConfigError::UnreadableQueryField { name: name() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> ModelSchemaBuilder {
        ModelSchema::builder("auth_user")
            .field(Field::integer("id").read().order())
            .field(Field::text("username").read().write().search().order().required())
            .field(Field::boolean("is_staff").read().filter())
    }

    #[test]
    fn builds_a_valid_schema() {
        let schema = users().default_order(["-username"]).page_size(10).build();
        let schema = schema.expect("valid");
        assert_eq!(schema.table(), "auth_user");
        assert_eq!(schema.primary_key().name(), "id");
        assert_eq!(schema.fields().len(), 3);
        assert_eq!(schema.field("is_staff").map(Field::name), Some("is_staff"));
        assert!(schema.field("password_hash").is_none());
        assert_eq!(schema.default_order(), &[OrderTerm::desc("username")]);
        assert_eq!(schema.page_size(), Some(10));
        assert!(schema.has_search_fields());
        assert_eq!(schema.readable_fields().count(), 3);
    }

    #[test]
    fn effective_order_appends_pk_once() {
        let schema = users().default_order(["-username"]).build().expect("valid");
        assert_eq!(
            schema.effective_order(&[]),
            vec![OrderTerm::desc("username"), OrderTerm::asc("id")]
        );
        assert_eq!(
            schema.effective_order(&[OrderTerm::desc("id")]),
            vec![OrderTerm::desc("id")]
        );
        let plain = users().build().expect("valid");
        assert_eq!(plain.effective_order(&[]), vec![OrderTerm::asc("id")]);
    }

    #[test]
    fn rejects_invalid_table_and_field_names() {
        assert_eq!(
            ModelSchema::builder("auth user").build(),
            Err(ConfigError::InvalidIdentifier {
                name: "auth user".into()
            })
        );
        assert_eq!(
            users().field(Field::text("x\"; drop")).build(),
            Err(ConfigError::InvalidIdentifier {
                name: "x\"; drop".into()
            })
        );
    }

    #[test]
    fn rejects_duplicates() {
        assert_eq!(
            users().field(Field::text("username")).build(),
            Err(ConfigError::DuplicateField {
                name: "username".into()
            })
        );
    }

    #[test]
    fn rejects_bad_primary_keys() {
        assert_eq!(
            users().primary_key("uuid").build(),
            Err(ConfigError::MissingPrimaryKey { name: "uuid".into() })
        );
        assert!(matches!(
            users().field(Field::float("score").read()).primary_key("score").build(),
            Err(ConfigError::UnsupportedPrimaryKeyType { .. })
        ));
        assert!(matches!(
            ModelSchema::builder("t").field(Field::integer("id")).build(),
            Err(ConfigError::PrimaryKeyNotReadable { .. })
        ));
        assert!(matches!(
            ModelSchema::builder("t")
                .field(Field::integer("id").read().nullable())
                .build(),
            Err(ConfigError::NullablePrimaryKey { .. })
        ));
        let text_pk = ModelSchema::builder("t")
            .field(Field::text("slug").read())
            .primary_key("slug")
            .build();
        assert!(text_pk.is_ok());
    }

    #[test]
    fn rejects_bad_default_order() {
        assert_eq!(
            users().default_order(["-nope"]).build(),
            Err(ConfigError::UnknownOrderField { term: "-nope".into() })
        );
        assert_eq!(
            users().default_order([""]).build(),
            Err(ConfigError::UnknownOrderField { term: String::new() })
        );
        assert_eq!(
            users().default_order(["is_staff"]).build(),
            Err(ConfigError::NotOrderable {
                name: "is_staff".into()
            })
        );
        assert_eq!(
            users().default_order(["id", "-id"]).build(),
            Err(ConfigError::DuplicateOrderField { name: "id".into() })
        );
    }

    #[test]
    fn rejects_contradictory_flags() {
        assert!(matches!(
            users().field(Field::integer("n").max_length(3)).build(),
            Err(ConfigError::InvalidMaxLength { .. })
        ));
        assert!(matches!(
            users().field(Field::text("n").max_length(0)).build(),
            Err(ConfigError::InvalidMaxLength { .. })
        ));
        assert!(matches!(
            users().field(Field::integer("n").search()).build(),
            Err(ConfigError::SearchOnNonText { .. })
        ));
        assert!(matches!(
            users().field(Field::text("n").read().required()).build(),
            Err(ConfigError::RequiredNotWritable { .. })
        ));
        for hidden in [
            Field::text("password_hash").search(),
            Field::text("password_hash").filter(),
            Field::text("password_hash").order(),
            Field::text("password_hash").write().filter(),
        ] {
            assert_eq!(
                users().field(hidden).build(),
                Err(ConfigError::UnreadableQueryField {
                    name: "password_hash".into()
                })
            );
        }
        assert!(users().field(Field::integer("owner_id")).build().is_ok());
        assert_eq!(users().page_size(0).build(), Err(ConfigError::InvalidPageSize));
    }
}
