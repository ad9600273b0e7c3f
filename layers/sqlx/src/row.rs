//! SQLite rows to JSON objects, and [`SqlValue`]s to SQLite parameters.

use serde_json::{Map, Number, Value};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteRow};
use sqlx::{Row as _, TypeInfo as _, ValueRef as _};

use crate::field::{Field, FieldType};
use crate::schema::ModelSchema;
use crate::value::SqlValue;

/// Decodes the readable fields of `row` into a JSON object, by declared
/// type: integers and floats become numbers (an integer stored in a float
/// column is accepted), booleans come from SQLite's `0`/`1`, text and
/// timestamps are strings as stored, and `NULL` is `null`.
///
/// # Errors
///
/// A [`sqlx::Error`] when a column is missing or holds a value of another
/// storage class (text in an integer column, a non-finite float, ...).
pub fn decode_row(schema: &ModelSchema, row: &SqliteRow) -> Result<Map<String, Value>, sqlx::Error> {
    let mut object = Map::new();
    for field in schema.readable_fields() {
        object.insert(field.name().to_owned(), decode_field(field, row)?);
    }
    Ok(object)
}

fn decode_field(field: &Field, row: &SqliteRow) -> Result<Value, sqlx::Error> {
    let name = field.name();
    let (is_null, is_integer) = {
        let raw = row.try_get_raw(name)?;
        (raw.is_null(), raw.type_info().name() == "INTEGER")
    };
    if is_null {
        return Ok(Value::Null);
    }
    Ok(match field.field_type() {
        FieldType::Integer => Value::from(row.try_get::<i64, _>(name)?),
        FieldType::Float => {
            // REAL columns hold integers when the value has no fraction and
            // the column has no REAL affinity; both read as floats.
            #[allow(clippy::cast_precision_loss)]
            let f = if is_integer {
                row.try_get::<i64, _>(name)? as f64
            } else {
                row.try_get::<f64, _>(name)?
            };
            Value::Number(Number::from_f64(f).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: format!("{name:?}"),
                source: "non-finite float cannot be sent as JSON".into(),
            })?)
        }
        FieldType::Boolean => Value::Bool(row.try_get::<bool, _>(name)?),
        FieldType::Text | FieldType::Timestamp => Value::String(row.try_get::<String, _>(name)?),
    })
}

/// Binds `params` to `query` in order.
///
/// ```
/// use channels_binding_sqlx::{bind_params, SqlValue};
///
/// let query = bind_params(
///     sqlx::query("SELECT ? + ?"),
///     vec![SqlValue::Int(1), SqlValue::Int(2)],
/// );
/// # drop(query);
/// ```
pub fn bind_params<'q>(
    mut query: Query<'q, Sqlite, SqliteArguments<'q>>,
    params: Vec<SqlValue>,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
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
