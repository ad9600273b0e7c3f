//! Capture of writes made outside the API: a trigger that announces every
//! row change of a model's table on the [`PgBroker`](crate::PgBroker)
//! channel layer, in the writer's transaction.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};
use sqlx::postgres::PgPool;

use crate::broker::install_objects;
use crate::field::{Field, FieldType};
use crate::ident::{MAX_IDENTIFIER_LEN, push_quoted};
use crate::schema::ModelSchema;

/// The name of the trigger on a captured table.
const TRIGGER: &str = "channels_binding_capture";
/// `json_build_object` takes at most 100 arguments: 50 key-value pairs.
const PAIRS_PER_OBJECT: usize = 50;

/// Why [`install_capture`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The stream name is empty or holds a NUL character.
    #[error("invalid stream name {0:?}")]
    InvalidStream(String),
    /// The database refused the objects or the trigger (no such table, no
    /// privilege), or cannot be reached.
    #[error("cannot install capture: {0}")]
    Database(#[from] sqlx::Error),
}

/// Announces every `INSERT`, `UPDATE` and `DELETE` on `schema`'s table as a
/// change of `stream`, whoever makes it (`psql`, a migration, another
/// application), through the channel layer of [`PgBroker`](crate::PgBroker).
///
/// Installs the broker's SQL objects (idempotently) and an `AFTER INSERT OR
/// UPDATE OR DELETE FOR EACH ROW` trigger, `channels_binding_capture`, on
/// the table, in the pool's current schema (where the table must be).
/// Installing again replaces the trigger and its function, so that it
/// follows a changed schema or stream.
///
/// The trigger calls `channels_binding_publish(stream, payload)` inside the
/// writer's transaction: a rolled-back write announces nothing, and the
/// change is numbered in commit order. The payload is a
/// [`WireChange`](channels_binding_core::hub::WireChange):
///
/// ```json
/// {"kind": "updated", "pk": 7, "facts": {"id": 7, "title": "x"}, "restricted": true, "origin": null}
/// ```
///
/// * `kind`: `created`, `updated` or `deleted`; an update that changes the
///   primary key is announced as `deleted` (old key) then `created`;
/// * `pk`: the primary key, as JSON;
/// * `previous` (updates only): the readable fields of the row before the
///   update, as `facts`, so that a subscriber who could read the row then
///   and may not now gets `<stream>.deleted#<pk>`;
/// * `facts`: the readable fields, as [`decode_pg_row`](crate::decode_pg_row)
///   and the store read them (same names and JSON types, timestamps as
///   `YYYY-MM-DDTHH:MM:SS.mmmZ`; a non-finite float is `null`);
/// * `origin`: the JSON of the transaction-local setting
///   `channels_binding.origin`, which the store's tagged writes set, or
///   `null`.
///
/// `TRUNCATE` is not announced. The SQL is written from the schema's
/// declared identifiers only.
///
/// ```no_run
/// use channels_binding_sqlx::{Field, ModelSchema, install_capture};
///
/// # async fn doc(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// let notes = ModelSchema::builder("notes")
///     .field(Field::integer("id").read())
///     .field(Field::text("title").read().write())
///     .build()?;
/// install_capture(&pool, "app.Note", &notes).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`CaptureError::InvalidStream`] for an empty stream name or one holding
/// NUL; [`CaptureError::Database`] when the database refuses (no such
/// table, no privilege) or cannot be reached.
pub async fn install_capture(pool: &PgPool, stream: &str, schema: &ModelSchema) -> Result<(), CaptureError> {
    if stream.is_empty() || stream.contains('\0') {
        return Err(CaptureError::InvalidStream(stream.to_owned()));
    }
    let function = function_name(schema.table());
    let mut tx = pool.begin().await?;
    install_objects(&mut tx).await?;
    // Quoted by the server, whatever `standard_conforming_strings` says.
    let stream_literal: String = sqlx::query_scalar("SELECT quote_literal($1)")
        .bind(stream)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::raw_sql(&function_sql(&function, schema))
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(&trigger_sql(&function, schema, &stream_literal))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `channels_binding_capture_<table>`, or with a digest of the table name
/// in place of the name when that would be too long.
fn function_name(table: &str) -> String {
    let plain = format!("{TRIGGER}_{table}");
    if plain.len() <= MAX_IDENTIFIER_LEN {
        return plain;
    }
    let digest = Sha256::digest(table.as_bytes());
    let mut name = format!("{TRIGGER}_");
    for byte in &digest[..8] {
        // Writing to a String cannot fail.
        let _ = write!(name, "{byte:02x}");
    }
    name
}

/// The trigger's function.
fn function_sql(function: &str, schema: &ModelSchema) -> String {
    let pk = schema.primary_key();
    // An update also carries the facts of the row before it, so that
    // subscribers who could read the row then and may not now are told it
    // is gone from their sight.
    let announce = |kind: &str, row: &str| {
        let previous = if kind == "updated" {
            format!("'previous', {}, ", facts_json(schema, "OLD"))
        } else {
            String::new()
        };
        format!(
            "PERFORM channels_binding_publish(TG_ARGV[0], json_build_object('kind', '{kind}', 'pk', {}, \
             'facts', {}, {previous}'restricted', true, 'origin', origin)::text);",
            field_json(pk, row),
            facts_json(schema, row)
        )
    };
    let mut pk_changed = String::new();
    push_column(&mut pk_changed, "OLD", pk);
    pk_changed.push_str(" IS DISTINCT FROM ");
    push_column(&mut pk_changed, "NEW", pk);

    let mut sql = String::from("CREATE OR REPLACE FUNCTION ");
    push_quoted(&mut sql, function);
    // `extra_float_digits = 1`: floats as their shortest exact decimal, as
    // the row decoder reads them.
    let _ = write!(
        sql,
        r"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT SET extra_float_digits = 1
AS $fn$
DECLARE
    origin_text text := nullif(current_setting('channels_binding.origin', true), '');
    origin json;
BEGIN
    IF origin_text IS NOT NULL THEN
        BEGIN
            origin := origin_text::json;
        EXCEPTION WHEN others THEN
            origin := NULL;
        END;
    END IF;
    IF TG_OP = 'INSERT' THEN
        {created}
    ELSIF TG_OP = 'DELETE' THEN
        {deleted}
    ELSIF {pk_changed} THEN
        {deleted}
        {created}
    ELSE
        {updated}
    END IF;
    RETURN NULL;
END
$fn$",
        created = announce("created", "NEW"),
        deleted = announce("deleted", "OLD"),
        updated = announce("updated", "NEW"),
    );
    sql
}

/// Drops and creates the trigger (`CREATE OR REPLACE TRIGGER` needs
/// PostgreSQL 14).
fn trigger_sql(function: &str, schema: &ModelSchema, stream_literal: &str) -> String {
    let mut table = String::new();
    push_quoted(&mut table, schema.table());
    let mut function_quoted = String::new();
    push_quoted(&mut function_quoted, function);
    format!(
        "DROP TRIGGER IF EXISTS {TRIGGER} ON {table};
CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION {function_quoted}({stream_literal});"
    )
}

/// The readable fields of `row` (`NEW` or `OLD`) as a JSON object.
fn facts_json(schema: &ModelSchema, row: &str) -> String {
    let fields: Vec<&Field> = schema.readable_fields().collect();
    let chunks: Vec<String> = fields
        .chunks(PAIRS_PER_OBJECT)
        .map(|chunk| {
            let pairs: Vec<String> = chunk
                .iter()
                .map(|field| format!("'{}', {}", field.name(), field_json(field, row)))
                .collect();
            pairs.join(", ")
        })
        .collect();
    match chunks.as_slice() {
        [] => "json_build_object()".to_owned(),
        [one] => format!("json_build_object({one})"),
        many => {
            let objects: Vec<String> = many.iter().map(|c| format!("jsonb_build_object({c})")).collect();
            format!("({})::json", objects.join(" || "))
        }
    }
}

/// One field of `row` as JSON, as the row decoder reads it.
fn field_json(field: &Field, row: &str) -> String {
    let mut column = String::new();
    push_column(&mut column, row, field);
    match field.field_type() {
        FieldType::Integer => format!("to_json(({column})::bigint)"),
        FieldType::Float => format!("channels_binding_number_json(({column})::text)"),
        FieldType::Boolean => format!("to_json(({column})::boolean)"),
        FieldType::Text => format!("to_json({column})"),
        FieldType::Timestamp => {
            format!(r#"to_json(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))"#)
        }
    }
}

/// `NEW."name"`.
fn push_column(sql: &mut String, row: &str, field: &Field) {
    sql.push_str(row);
    sql.push('.');
    push_quoted(sql, field.name());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_fit() {
        assert_eq!(function_name("notes"), "channels_binding_capture_notes");
        let long = "t".repeat(63);
        let name = function_name(&long);
        assert!(name.len() <= MAX_IDENTIFIER_LEN, "{name}");
        assert_ne!(name, function_name(&"u".repeat(63)));
    }

    #[test]
    fn sql_quotes_declared_identifiers() {
        let schema = ModelSchema::builder("notes")
            .field(Field::integer("id").read())
            .field(Field::text("Title").read())
            .field(Field::text("secret"))
            .build();
        let Ok(schema) = schema else { panic!("valid schema") };
        let sql = function_sql("f", &schema);
        assert!(sql.contains(r#"'Title', to_json(NEW."Title")"#), "{sql}");
        assert!(!sql.contains("secret"), "unreadable fields stay out: {sql}");
        let trigger = trigger_sql("f", &schema, "'app.Note'");
        assert!(trigger.contains(r#"ON "notes""#), "{trigger}");
        assert!(trigger.contains(r#""f"('app.Note')"#), "{trigger}");
    }

    #[test]
    fn many_fields_are_split() {
        let mut builder = ModelSchema::builder("wide").field(Field::integer("id").read());
        for i in 0..120 {
            builder = builder.field(Field::integer(format!("c{i}")).read());
        }
        let Ok(schema) = builder.build() else {
            panic!("valid schema")
        };
        let facts = facts_json(&schema, "NEW");
        assert_eq!(facts.matches("jsonb_build_object(").count(), 3, "{facts}");
    }
}
