//! The demo's bindings: `auth.User` and `notes.Note`, with DEMO.md's rules.

use channels_binding::Identity;
use channels_binding::models::{
    Database, Field, Fields, Filter, ModelBinding, ModelSchema, ReadScope, SqlValue, WriteAction, owner_or_staff,
};
use channels_binding::protocol::EventError;

use super::BoxError;

/// `auth.User`: `password_hash` is not declared, so it can never be read,
/// written, searched or ordered through the API. Anyone may read users.
///
/// With `enforce_writes` (authentication is configured): a user may update
/// only themself; staff may update anyone; only staff may create or delete
/// users. Without it nobody can be identified, so no rule about users can
/// hold, and the demo runs open, as the original README's exchange (an
/// anonymous `save`) expects; start-up warns about it.
///
/// With `capture`, writes made outside the API (psql, other programs) are
/// announced too (PostgreSQL channel layer only).
pub fn users(pool: Database, enforce_writes: bool, capture: bool) -> Result<ModelBinding, BoxError> {
    let schema = ModelSchema::builder("auth_user")
        .field(Field::integer("id").read().order())
        .field(
            Field::text("username")
                .read()
                .write()
                .search()
                .order()
                .required()
                .max_length(150),
        )
        .field(
            Field::text("email")
                .read()
                .write()
                .search()
                .order()
                .required()
                .max_length(254),
        )
        .field(Field::boolean("is_staff").read().filter())
        .field(Field::timestamp("date_joined").read().order())
        .default_order(["date_joined"])
        .build()?;
    let binding =
        ModelBinding::builder("auth.User", pool, schema).list_serializer(Fields::new(["id", "username", "email"]));
    let binding = if enforce_writes {
        binding.write_permission(owner_or_staff("id", &[WriteAction::Update]))
    } else {
        binding
    };
    let binding = if capture {
        binding.capture_outside_writes()
    } else {
        binding
    };
    Ok(binding.build()?)
}

/// The caller's user id, when it is one of ours.
fn user_id(identity: &Identity) -> Option<i64> {
    identity.id().and_then(|id| id.parse().ok())
}

/// `notes.Note`: visible only to its owner and to staff; `owner_id` is set
/// from the caller and read-only. (Anonymous callers are refused with
/// `unauthenticated` by the event stack before they reach the binding.)
pub fn notes(pool: Database, capture: bool) -> Result<ModelBinding, BoxError> {
    let schema = ModelSchema::builder("notes_note")
        .field(Field::integer("id").read().order())
        .field(Field::integer("owner_id").read().filter())
        .field(
            Field::text("title")
                .read()
                .write()
                .search()
                .order()
                .required()
                .max_length(200),
        )
        .field(Field::text("body").read().write().search().max_length(10_000))
        .field(Field::timestamp("created_at").read().order())
        .default_order(["created_at"])
        .build()?;
    let binding = ModelBinding::builder("notes.Note", pool, schema)
        .read_scope(|identity| match user_id(identity) {
            _ if identity.is_staff() => ReadScope::All,
            Some(id) => ReadScope::Where(vec![Filter::eq("owner_id", id)]),
            None => ReadScope::Nothing,
        })
        .write_permission(owner_or_staff(
            "owner_id",
            &[WriteAction::Create, WriteAction::Update, WriteAction::Delete],
        ))
        .before_create(|identity, values| {
            let owner = user_id(identity).ok_or_else(|| EventError::unauthenticated("sign in to write notes"))?;
            values.set("owner_id", SqlValue::Int(owner));
            Ok(())
        });
    let binding = if capture {
        binding.capture_outside_writes()
    } else {
        binding
    };
    Ok(binding.build()?)
}
