//! Capture of writes, the API's and everyone else's: statement-level
//! triggers that record every row change of a model's table in the outbox
//! table, in the writer's transaction, for the [`Relay`](crate::Relay) to
//! publish on the channel layer.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};
use sqlx::postgres::PgPool;

use crate::broker::install_objects;
use crate::field::{Field, FieldType};
use crate::ident::{MAX_IDENTIFIER_LEN, push_quoted};
use crate::schema::ModelSchema;

/// The name of the triggers on a captured table (`_insert`, `_update`,
/// `_delete` appended), and the prefix of their function's.
const TRIGGER: &str = "channels_binding_capture";
/// The prefix of the name of a captured table's render function.
const RENDER: &str = "channels_binding_render";
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

/// Records every `INSERT`, `UPDATE` and `DELETE` on `schema`'s table as a
/// change of `stream`, whoever makes it (the API, `psql`, a migration,
/// another application), in the outbox table `channels_binding_outbox`,
/// for the [`Relay`](crate::Relay) to publish on the channel layer (any
/// [`Broker`](channels_binding_core::hub::Broker): Redis, PostgreSQL).
///
/// Installs the channel layer's SQL objects (idempotently) and three
/// statement-level triggers, `channels_binding_capture_insert`, `_update`
/// and `_delete` (`AFTER … FOR EACH STATEMENT`, with transition tables), on
/// the table, in the pool's current schema (where the table must be).
/// Installing again replaces the triggers and their function (and drops
/// the row-level trigger of earlier versions), so that they follow a
/// changed schema or stream.
///
/// Each statement costs one `INSERT … SELECT` into the outbox, in the
/// writer's transaction, and one `NOTIFY` waking the relay: a rolled-back
/// write records nothing, a committed one is recorded durably before the
/// writer hears of its commit. No counter row is locked: sequence numbers
/// are given by the relay after commit, so a long or bulk transaction
/// never holds up other writers. An update is paired with the row before
/// it by primary key: a key only the old rows hold is announced as
/// `deleted`, one only the new rows hold as `created`. The payload is a
/// [`WireChange`](channels_binding_core::hub::WireChange):
///
/// ```json
/// {"kind": "updated", "pk": 7, "facts": {"id": 7, "title": "x"}, "restricted": true, "origin": null}
/// ```
///
/// * `kind`: `created`, `updated` or `deleted`; an update that changes the
///   primary key is announced as `deleted` (old key) then `created`;
///   within a statement, deletions come first, then the rest in key order;
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
    let function = prefixed_name(TRIGGER, schema.table());
    let mut tx = pool.begin().await?;
    install_objects(&mut tx).await?;
    // Quoted by the server, whatever `standard_conforming_strings` says.
    let stream_literal: String = sqlx::query_scalar("SELECT quote_literal($1)")
        .bind(stream)
        .fetch_one(&mut *tx)
        .await?;
    let render = prefixed_name(RENDER, schema.table());
    sqlx::raw_sql(&render_sql(&render, schema)).execute(&mut *tx).await?;
    sqlx::raw_sql(&function_sql(&function, &render))
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(&trigger_sql(&function, schema, &stream_literal))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `<prefix>_<table>`, or with a digest of the table name in place of the
/// name when that would be too long.
fn prefixed_name(prefix: &str, table: &str) -> String {
    let plain = format!("{prefix}_{table}");
    if plain.len() <= MAX_IDENTIFIER_LEN {
        return plain;
    }
    let digest = Sha256::digest(table.as_bytes());
    let mut name = format!("{prefix}_");
    for byte in &digest[..8] {
        // Writing to a String cannot fail.
        let _ = write!(name, "{byte:02x}");
    }
    name
}

/// The triggers' function: one outbox row per statement, holding the
/// statement's transition tables (`new_rows`, `old_rows`) in their text
/// form, then one notification to wake the relay.
///
/// Nothing is rendered here and no lock is taken: the relay renders the
/// changes (with [`render_sql`]'s function) and numbers them after commit,
/// so the writer pays for one array per statement, and a long or bulk
/// transaction holds nothing other writers wait for.
fn function_sql(function: &str, render: &str) -> String {
    let mut render_quoted = String::new();
    push_quoted(&mut render_quoted, render);
    // A string literal of the quoted name (identifiers may hold `'`).
    let render_literal = format!("'{}'", render_quoted.replace('\'', "''"));
    let mut sql = String::from("CREATE OR REPLACE FUNCTION ");
    push_quoted(&mut sql, function);
    let _ = write!(
        sql,
        r"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $fn$
#variable_conflict use_variable
DECLARE
    origin_text text := nullif(current_setting('channels_binding.origin', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO channels_binding_outbox (stream, render, op, new_rows, origin)
            SELECT TG_ARGV[0], {render_literal}::regproc, TG_OP, array_agg(ROW(n.*)::text), origin_text
            FROM new_rows n HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO channels_binding_outbox (stream, render, op, old_rows, origin)
            SELECT TG_ARGV[0], {render_literal}::regproc, TG_OP, array_agg(ROW(o.*)::text), origin_text
            FROM old_rows o HAVING count(*) > 0;
    ELSE
        INSERT INTO channels_binding_outbox (stream, render, op, new_rows, old_rows, origin)
            SELECT TG_ARGV[0], {render_literal}::regproc, TG_OP,
                (SELECT array_agg(ROW(n.*)::text) FROM new_rows n), (SELECT array_agg(ROW(o.*)::text) FROM old_rows o),
                origin_text
            WHERE EXISTS (SELECT FROM new_rows);
    END IF;
    IF FOUND THEN
        PERFORM pg_notify(channels_binding_outbox_channel(), '');
    END IF;
    RETURN NULL;
END
$fn$"
    );
    sql
}

/// The function the relay renders a statement's outbox row with: one
/// [`WireChange`](channels_binding_core::hub::WireChange) payload per row
/// change, in order (for an update, deletions first, then the rest in key
/// order).
fn render_sql(render: &str, schema: &ModelSchema) -> String {
    let pk = schema.primary_key();
    let object = |kind: &str, row: &str, previous: Option<&str>| {
        let previous = previous.map_or_else(String::new, |before| {
            format!("'previous', {}, ", facts_json(schema, before))
        });
        format!(
            "json_build_object('kind', '{kind}', 'pk', {}, 'facts', {}, {previous}'restricted', true, 'origin', origin)::text",
            field_json(pk, row),
            facts_json(schema, row)
        )
    };
    let column = |row: &str| {
        let mut sql = String::new();
        push_column(&mut sql, row, pk);
        sql
    };
    let (n_pk, o_pk) = (column("n"), column("o"));
    let mut table = String::new();
    push_quoted(&mut table, schema.table());

    let mut sql = String::from("CREATE OR REPLACE FUNCTION ");
    push_quoted(&mut sql, render);
    // `extra_float_digits = 1`: floats as their shortest exact decimal, as
    // the row decoder reads them.
    let _ = write!(
        sql,
        r"(op text, new_text text[], old_text text[], origin_text text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT SET extra_float_digits = 1
AS $fn$
#variable_conflict use_variable
DECLARE
    origin json;
BEGIN
    IF origin_text IS NOT NULL THEN
        BEGIN
            origin := origin_text::json;
        EXCEPTION WHEN others THEN
            origin := NULL;
        END;
    END IF;
    IF op = 'INSERT' THEN
        RETURN QUERY SELECT {created_n} FROM unnest(new_text::{table}[]) n ORDER BY {n_pk};
    ELSIF op = 'DELETE' THEN
        RETURN QUERY SELECT {deleted_o} FROM unnest(old_text::{table}[]) o ORDER BY {o_pk};
    ELSE
        -- Rows are paired by primary key: a key that only the old rows
        -- hold was deleted, one only the new rows hold was created.
        RETURN QUERY SELECT CASE
                WHEN {n_pk} IS NULL THEN {deleted_o}
                WHEN {o_pk} IS NULL THEN {created_n}
                ELSE {updated}
            END
            FROM unnest(old_text::{table}[]) o FULL JOIN unnest(new_text::{table}[]) n ON {o_pk} = {n_pk}
            ORDER BY {n_pk} IS NOT NULL, coalesce({n_pk}, {o_pk});
    END IF;
END
$fn$",
        created_n = object("created", "n", None),
        deleted_o = object("deleted", "o", None),
        updated = object("updated", "n", Some("o")),
    );
    sql
}

/// Drops the triggers (and the row-level one of earlier versions) and
/// creates one statement-level trigger per operation: PostgreSQL allows
/// transition tables only on single-event triggers.
fn trigger_sql(function: &str, schema: &ModelSchema, stream_literal: &str) -> String {
    let mut table = String::new();
    push_quoted(&mut table, schema.table());
    let mut function_quoted = String::new();
    push_quoted(&mut function_quoted, function);
    format!(
        "DROP TRIGGER IF EXISTS {TRIGGER} ON {table};
DROP TRIGGER IF EXISTS {TRIGGER}_insert ON {table};
DROP TRIGGER IF EXISTS {TRIGGER}_update ON {table};
DROP TRIGGER IF EXISTS {TRIGGER}_delete ON {table};
CREATE TRIGGER {TRIGGER}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {function_quoted}({stream_literal});
CREATE TRIGGER {TRIGGER}_update AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {function_quoted}({stream_literal});
CREATE TRIGGER {TRIGGER}_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION {function_quoted}({stream_literal});"
    )
}

/// The readable fields of `row` (the alias `n` or `o` of a transition table) as a JSON object.
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

/// `n."name"`.
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
        assert_eq!(prefixed_name(TRIGGER, "notes"), "channels_binding_capture_notes");
        assert_eq!(prefixed_name(RENDER, "notes"), "channels_binding_render_notes");
        let long = "t".repeat(63);
        let name = prefixed_name(RENDER, &long);
        assert!(name.len() <= MAX_IDENTIFIER_LEN, "{name}");
        assert_ne!(name, prefixed_name(RENDER, &"u".repeat(63)));
    }

    #[test]
    fn sql_quotes_declared_identifiers() {
        let schema = ModelSchema::builder("notes")
            .field(Field::integer("id").read())
            .field(Field::text("Title").read())
            .field(Field::text("secret"))
            .build();
        let Ok(schema) = schema else { panic!("valid schema") };
        let sql = render_sql("f", &schema);
        assert!(sql.contains(r#"'Title', to_json(n."Title")"#), "{sql}");
        assert!(!sql.contains("secret"), "unreadable fields stay out: {sql}");
        let trigger = trigger_sql("f", &schema, "'app.Note'");
        assert!(trigger.contains(r#"ON "notes""#), "{trigger}");
        assert!(trigger.contains(r#""f"('app.Note')"#), "{trigger}");
        assert!(trigger.contains("FOR EACH STATEMENT"), "{trigger}");
        assert!(!trigger.contains("FOR EACH ROW"), "{trigger}");
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
        let facts = facts_json(&schema, "n");
        assert_eq!(facts.matches("jsonb_build_object(").count(), 3, "{facts}");
    }
}
