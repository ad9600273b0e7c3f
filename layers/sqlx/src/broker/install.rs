//! The SQL objects of the PostgreSQL channel layer, installed idempotently
//! in the pool's current schema.
//!
//! Every object lives in the schema that is current when it is installed,
//! and every function is created with `SET search_path FROM CURRENT` after
//! the installing transaction narrowed `search_path` to that one schema:
//! a function finds its tables whatever the caller's `search_path` (a
//! trigger fired by `psql` in another schema, say).

use sqlx::postgres::PgConnection;

/// The key of the transaction-scoped advisory lock every installation takes
/// (`"cbbroker"` in ASCII): concurrent `CREATE OR REPLACE FUNCTION`s of the
/// same function otherwise fail with "tuple concurrently updated", and
/// concurrent `CREATE TABLE IF NOT EXISTS` with a unique violation.
pub(crate) const INSTALL_LOCK: i64 = 0x6362_6272_6f6b_6572;

/// Narrows the transaction's `search_path` to the current schema, so that
/// functions created next capture exactly it.
const PIN_SCHEMA: &str = "SELECT set_config('search_path', quote_ident(current_schema()), true)";

/// Tables, settings, epoch and functions. Runs under [`INSTALL_LOCK`] with
/// `search_path` pinned to one schema.
const OBJECTS: &str = r#"
CREATE TABLE IF NOT EXISTS channels_binding_streams (
    stream text PRIMARY KEY,
    seq bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS channels_binding_epoch (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    epoch text NOT NULL,
    channel text NOT NULL
);
INSERT INTO channels_binding_epoch (epoch, channel)
    VALUES (
        left(md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text), 16),
        'cb_' || left(md5(current_schema()), 20)
    )
    ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS channels_binding_history (
    stream text NOT NULL,
    seq bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    payload text NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE TABLE IF NOT EXISTS channels_binding_settings (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    history_len bigint NOT NULL CHECK (history_len > 0),
    history_age interval NOT NULL
);
INSERT INTO channels_binding_settings (history_len, history_age)
    VALUES (1000, interval '5 minutes')
    ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS channels_binding_batches (
    id text PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS channels_binding_batches_at ON channels_binding_batches (at);

-- The outbox: statements' changes recorded in the writing transaction by
-- capture triggers, one row per statement (the transition tables' rows in
-- their text form), waiting for the relay. `render` turns a row into the
-- changes' payloads, after commit; `batch` is the first id of the batch a
-- relay claimed the row in, kept until it is published.
CREATE TABLE IF NOT EXISTS channels_binding_outbox (
    id bigserial PRIMARY KEY,
    stream text NOT NULL,
    render regproc NOT NULL,
    op text NOT NULL,
    new_rows text[],
    old_rows text[],
    origin text,
    batch bigint
);
-- The relay leader's heartbeat: its lock session's pid and last beat.
CREATE TABLE IF NOT EXISTS channels_binding_relay (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    pid integer NOT NULL,
    beat timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS channels_binding_outbox_batch ON channels_binding_outbox (batch) WHERE batch IS NOT NULL;

CREATE OR REPLACE FUNCTION channels_binding_channel() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT
AS $fn$ SELECT channel FROM channels_binding_epoch $fn$;

CREATE OR REPLACE FUNCTION channels_binding_publish(stream text, payload text) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $fn$
#variable_conflict use_column
DECLARE
    next_seq bigint;
    keep bigint;
    max_age interval;
    node record;
    envelope text;
BEGIN
    -- The row lock taken here is held until the caller's transaction ends:
    -- writers of one stream are serialized, so seq order is commit order.
    INSERT INTO channels_binding_streams AS s (stream, seq)
        VALUES (channels_binding_publish.stream, 1)
        ON CONFLICT (stream) DO UPDATE SET seq = s.seq + 1
        RETURNING s.seq INTO next_seq;
    INSERT INTO channels_binding_history (stream, seq, payload)
        VALUES (channels_binding_publish.stream, next_seq, channels_binding_publish.payload);
    SELECT c.history_len, c.history_age INTO keep, max_age FROM channels_binding_settings c;
    DELETE FROM channels_binding_history h
        WHERE h.stream = channels_binding_publish.stream
          AND h.seq < next_seq
          AND (h.seq <= next_seq - coalesce(keep, 1000)
               OR h.at < clock_timestamp() - coalesce(max_age, interval '5 minutes'));
    SELECT e.epoch, e.channel INTO node FROM channels_binding_epoch e;
    envelope := json_build_object(
        'stream', channels_binding_publish.stream, 'epoch', node.epoch, 'seq', next_seq,
        'payload', channels_binding_publish.payload)::text;
    -- NOTIFY refuses payloads of 8000 bytes or more: send a reference.
    IF octet_length(envelope) > 7900 THEN
        envelope := json_build_object(
            'stream', channels_binding_publish.stream, 'epoch', node.epoch, 'seq', next_seq)::text;
    END IF;
    PERFORM pg_notify(node.channel, envelope);
    RETURN next_seq;
END
$fn$;

CREATE OR REPLACE FUNCTION channels_binding_publish_batch(streams text[], payloads text[]) RETURNS SETOF bigint
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $fn$
DECLARE
    n integer := coalesce(array_length(streams, 1), 0);
BEGIN
    IF n <> coalesce(array_length(payloads, 1), 0) THEN
        RAISE EXCEPTION 'channels_binding_publish_batch: % streams but % payloads',
            n, coalesce(array_length(payloads, 1), 0);
    END IF;
    FOR i IN 1 .. n LOOP
        RETURN NEXT channels_binding_publish(streams[i], payloads[i]);
    END LOOP;
END
$fn$;

-- Publishes a batch once per key: a key recorded within the history age
-- (a retry after a lost reply) publishes nothing and returns no row. A
-- concurrent retry waits on the key's index entry until the first attempt
-- commits or rolls back, then does nothing or everything.
CREATE OR REPLACE FUNCTION channels_binding_publish_keyed(batch_key text, streams text[], payloads text[])
RETURNS SETOF bigint
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $fn$
BEGIN
    DELETE FROM channels_binding_batches b
        WHERE b.at < clock_timestamp()
            - coalesce((SELECT c.history_age FROM channels_binding_settings c), interval '5 minutes');
    INSERT INTO channels_binding_batches (id) VALUES (batch_key) ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT channels_binding_publish_batch(streams, payloads);
END
$fn$;

-- The changes of a claimed batch, in order: each outbox row rendered by its
-- table's render function.
CREATE OR REPLACE FUNCTION channels_binding_outbox_changes(claimed bigint)
RETURNS TABLE (stream text, payload text)
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $fn$
DECLARE
    entry record;
BEGIN
    FOR entry IN SELECT o.stream, o.render, o.op, o.new_rows, o.old_rows, o.origin
                 FROM channels_binding_outbox o WHERE o.batch = claimed ORDER BY o.id LOOP
        RETURN QUERY EXECUTE format('SELECT $1, r FROM %s($2, $3, $4, $5) r', entry.render)
            USING entry.stream, entry.op, entry.new_rows, entry.old_rows, entry.origin;
    END LOOP;
END
$fn$;

-- The channel capture triggers notify once per statement, waking the relay.
CREATE OR REPLACE FUNCTION channels_binding_outbox_channel() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT
AS $fn$ SELECT channel || '_outbox' FROM channels_binding_epoch $fn$;

CREATE OR REPLACE FUNCTION channels_binding_number_json(value text) RETURNS json
LANGUAGE sql IMMUTABLE
AS $fn$
SELECT CASE
    WHEN value IS NULL THEN NULL
    WHEN value IN ('NaN', 'Infinity', '-Infinity') THEN 'null'::json
    WHEN value ~ '^-?[0-9]+$' THEN (value || '.0')::json
    ELSE value::json
END
$fn$;
"#;

/// Takes the installation lock, pins `search_path` to the current schema
/// and installs the channel layer's objects, all in `tx` (the caller
/// commits, possibly after installing more under the same lock).
///
/// # Errors
///
/// Any database error; `current_schema()` being `NULL` (no schema of the
/// `search_path` exists) fails when the epoch row is inserted.
pub(crate) async fn install_objects(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(INSTALL_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(PIN_SCHEMA).execute(&mut *tx).await?;
    sqlx::raw_sql(OBJECTS).execute(&mut *tx).await?;
    Ok(())
}
