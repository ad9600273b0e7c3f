//! PostgreSQL rows to JSON objects, and [`SqlValue`]s to PostgreSQL
//! parameters.
//!
//! The JSON is the same as SQLite's for the same values: integers of any
//! width are numbers, `real` reads as the decimal it was written as (not
//! its binary widening), `numeric` as the nearest float, and timestamps in
//! the canonical form of [`canonical_timestamp`](crate::canonical_timestamp).

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};
use sqlx::postgres::{PgArguments, PgRow, PgValueFormat, PgValueRef, Postgres};
use sqlx::query::Query;
use sqlx::{Row as _, TypeInfo as _, ValueRef as _};

use crate::field::{Field, FieldType};
use crate::schema::ModelSchema;
use crate::timestamp::{canonical_timestamp, format_unix_micros};
use crate::value::SqlValue;

/// Microseconds from 1970-01-01 (Unix) to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Decodes the readable fields of `row` into a JSON object, by declared
/// type:
///
/// * integer fields from `smallint`, `integer` or `bigint`;
/// * float fields from `double precision`, `real`, `numeric` or any integer
///   column;
/// * boolean fields from `boolean`; text fields from `text`, `varchar`,
///   `char(n)` or `name`;
/// * timestamp fields from the text the builder's `to_char` writes, or from
///   a `timestamptz` or `timestamp` column (the latter read as UTC), as
///   `YYYY-MM-DDTHH:MM:SS.mmmZ`;
/// * `NULL` as `null`.
///
/// # Errors
///
/// A [`sqlx::Error`] when a column is missing or has another type, or holds
/// a value JSON cannot carry (`NaN`, `infinity`, a year past 9999).
pub fn decode_pg_row(schema: &ModelSchema, row: &PgRow) -> Result<Map<String, Value>, sqlx::Error> {
    let mut object = Map::new();
    for field in schema.readable_fields() {
        object.insert(field.name().to_owned(), decode_field(field, row)?);
    }
    Ok(object)
}

fn decode_field(field: &Field, row: &PgRow) -> Result<Value, sqlx::Error> {
    let name = field.name();
    let raw = row.try_get_raw(name)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_name = raw.type_info().name().to_owned();
    Ok(match (field.field_type(), type_name.as_str()) {
        (FieldType::Integer, "INT2") => Value::from(row.try_get::<i16, _>(name)?),
        (FieldType::Integer, "INT4") => Value::from(row.try_get::<i32, _>(name)?),
        (FieldType::Integer, _) => Value::from(row.try_get::<i64, _>(name)?),
        (FieldType::Float, float_type) => {
            let f = match float_type {
                "INT2" => f64::from(row.try_get::<i16, _>(name)?),
                "INT4" => f64::from(row.try_get::<i32, _>(name)?),
                #[allow(clippy::cast_precision_loss)]
                "INT8" => row.try_get::<i64, _>(name)? as f64,
                // The shortest decimal that reads back as the same f32 is the
                // value as written: `real` 0.1 reads as 0.1, not 0.10000000149.
                "FLOAT4" => widen(row.try_get::<f32, _>(name)?),
                "NUMERIC" => numeric(&raw).map_err(|e| decode_error(name, e))?,
                _ => row.try_get::<f64, _>(name)?,
            };
            Value::Number(
                Number::from_f64(f).ok_or_else(|| decode_error(name, "non-finite float cannot be sent as JSON"))?,
            )
        }
        (FieldType::Boolean, _) => Value::Bool(row.try_get::<bool, _>(name)?),
        (FieldType::Timestamp, "TIMESTAMPTZ" | "TIMESTAMP") => {
            Value::String(timestamp(&raw, type_name == "TIMESTAMPTZ").map_err(|e| decode_error(name, e))?)
        }
        (FieldType::Text | FieldType::Timestamp, _) => Value::String(row.try_get::<String, _>(name)?),
    })
}

fn decode_error(name: &str, message: impl Into<String>) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: format!("{name:?}"),
        source: message.into().into(),
    }
}

fn widen(f: f32) -> f64 {
    // Display prints the shortest representation that round-trips, which
    // always parses; the fallback is unreachable but harmless.
    f.to_string().parse().unwrap_or_else(|_| f64::from(f))
}

/// A `numeric` as the nearest `f64`.
fn numeric(raw: &PgValueRef<'_>) -> Result<f64, String> {
    match raw.format() {
        PgValueFormat::Text => {
            let text = raw.as_str().map_err(|e| e.to_string())?;
            text.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("numeric {text:?} is not a finite number"))
        }
        PgValueFormat::Binary => numeric_binary(raw.as_bytes().map_err(|e| e.to_string())?),
    }
}

/// PostgreSQL's binary `numeric`: `ndigits`, `weight`, `sign`, `dscale`
/// (16 bits each), then `ndigits` base-10000 digits, the first worth
/// `10000^weight`. Rewritten as `<digits>e<exponent>` so that Rust's parser
/// rounds it correctly.
fn numeric_binary(bytes: &[u8]) -> Result<f64, String> {
    let word = |i: usize| {
        bytes
            .get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_owned())
    };
    let ndigits = word(0)?;
    let weight = i32::from(word(1)?.cast_signed());
    let negative = match word(2)? {
        0x0000 => false,
        0x4000 => true,
        0xC000 => return Err("numeric NaN cannot be sent as JSON".into()),
        _ => return Err("numeric infinity cannot be sent as JSON".into()),
    };
    if ndigits == 0 {
        return Ok(0.0);
    }
    let mut text = String::with_capacity(usize::from(ndigits) * 4 + 8);
    if negative {
        text.push('-');
    }
    for i in 0..usize::from(ndigits) {
        let digit = word(4 + i)?;
        if digit > 9999 {
            return Err("corrupt numeric digit".into());
        }
        // Writing to a String cannot fail.
        let _ = write!(text, "{digit:04}");
    }
    let exponent = 4 * (weight - (i32::from(ndigits) - 1));
    let _ = write!(text, "e{exponent}");
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| "numeric out of the range of a float".to_owned())
}

/// A `timestamptz` (or a `timestamp`, taken as UTC) in canonical form.
fn timestamp(raw: &PgValueRef<'_>, with_zone: bool) -> Result<String, String> {
    let canonical = match raw.format() {
        PgValueFormat::Binary => {
            let bytes: [u8; 8] = raw
                .as_bytes()
                .map_err(|e| e.to_string())?
                .try_into()
                .map_err(|_| "a timestamp is 8 bytes".to_owned())?;
            // ±infinity are i64::MAX and i64::MIN: out of range either way.
            i64::from_be_bytes(bytes)
                .checked_add(PG_EPOCH_MICROS)
                .and_then(format_unix_micros)
        }
        PgValueFormat::Text => {
            // The ISO DateStyle: `2024-01-01 12:00:00.5+00`, offsets
            // without minutes, and no zone at all for `timestamp`.
            let text = raw.as_str().map_err(|e| e.to_string())?;
            let b = text.as_bytes();
            let short_offset =
                b.len() > 3 && matches!(b[b.len() - 3], b'+' | b'-') && b[b.len() - 2..].iter().all(u8::is_ascii_digit);
            if !with_zone {
                canonical_timestamp(&format!("{text}Z"))
            } else if short_offset {
                canonical_timestamp(&format!("{text}:00"))
            } else {
                canonical_timestamp(text)
            }
        }
    };
    canonical.ok_or_else(|| "timestamp outside years 0000..=9999 or not in ISO format".to_owned())
}

/// Binds `params` to `query` in order, as `bigint`, `double precision`,
/// `text` and `boolean`. `Null` binds a `bigint` `NULL`; the builder never
/// binds one (it writes `NULL` and `IS NULL` instead), since PostgreSQL
/// checks a parameter's type against its column.
///
/// ```
/// use channels_binding_sqlx::{bind_pg_params, SqlValue};
///
/// let query = bind_pg_params(
///     sqlx::query("SELECT $1 + $2"),
///     vec![SqlValue::Int(1), SqlValue::Int(2)],
/// );
/// # drop(query);
/// ```
pub fn bind_pg_params(
    mut query: Query<'_, Postgres, PgArguments>,
    params: Vec<SqlValue>,
) -> Query<'_, Postgres, PgArguments> {
    for param in params {
        query = match param {
            SqlValue::Null => query.bind(None::<i64>),
            SqlValue::Int(v) => query.bind(v),
            SqlValue::Float(v) => query.bind(v),
            SqlValue::Text(v) => query.bind(v),
            SqlValue::Bool(v) => query.bind(v),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `numeric` binary of base-10000 `digits` with `weight` and `sign`.
    fn numeric_bytes(weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let ndigits = u16::try_from(digits.len()).unwrap_or(u16::MAX);
        for word in [ndigits, weight.cast_unsigned(), sign, 0] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        for digit in digits {
            bytes.extend_from_slice(&digit.to_be_bytes());
        }
        bytes
    }

    #[test]
    fn numeric_binary_values() {
        let n = |w, s, d: &[u16]| numeric_binary(&numeric_bytes(w, s, d));
        assert_eq!(n(0, 0, &[]), Ok(0.0));
        assert_eq!(n(0, 0, &[12]), Ok(12.0));
        assert_eq!(n(1, 0, &[1, 2345]), Ok(12_345.0));
        assert_eq!(n(0, 0x4000, &[2, 5000]), Ok(-2.5));
        assert_eq!(n(-1, 0, &[1000]), Ok(0.1));
        assert_eq!(n(-2, 0, &[5]), Ok(0.000_000_05));
        assert_eq!(n(2, 0, &[1]), Ok(100_000_000.0));
        assert!(n(0, 0xC000, &[]).is_err());
        assert!(n(0, 0xD000, &[]).is_err());
        assert!(n(0, 0xF000, &[]).is_err());
        assert!(n(0, 0, &[10_000]).is_err());
        assert!(n(200, 0, &[1]).is_err(), "10^800 is not a finite float");
        assert!(numeric_binary(&[0, 1, 0, 0]).is_err(), "truncated");
    }

    #[test]
    fn real_widens_to_its_decimal() {
        assert_eq!(widen(0.1), 0.1);
        assert_eq!(widen(1.5), 1.5);
        assert_eq!(widen(f32::MAX), 3.402_823_5e38);
    }
}
