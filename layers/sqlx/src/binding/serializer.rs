//! Serializers: how a row's readable fields become the JSON a client sees.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::store::Object;

/// Turns a row (its readable fields) into the JSON sent to clients.
///
/// A binding has one for detail views (`retrieve`, `create`, `update`, and
/// object pushes) and one for rows of `search` and `list`.
pub trait Serializer: Send + Sync + 'static {
    /// Serializes one row.
    ///
    /// # Errors
    ///
    /// A message for the server log; the client sees `internal`.
    fn serialize(&self, row: Object) -> Result<Value, String>;

    /// The fields this serializer reads, when it names them, so a binding
    /// can check them against the schema when it is built.
    fn fields(&self) -> Option<&[String]> {
        None
    }
}

/// Every readable field, as stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllFields;

impl Serializer for AllFields {
    fn serialize(&self, row: Object) -> Result<Value, String> {
        Ok(Value::Object(row))
    }
}

/// A field list: only these fields, in this order.
///
/// ```
/// use channels_binding_sqlx::{Fields, Serializer};
/// use serde_json::json;
///
/// let rows = Fields::new(["id", "username"]);
/// let row = json!({"id": 1, "username": "a", "email": "a@example.com"});
/// let out = rows.serialize(row.as_object().unwrap().clone()).unwrap();
/// assert_eq!(out, json!({"id": 1, "username": "a"}));
/// ```
#[derive(Debug, Clone)]
pub struct Fields(Vec<String>);

impl Fields {
    /// A serializer of these fields.
    pub fn new<I>(fields: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self(fields.into_iter().map(Into::into).collect())
    }
}

impl Serializer for Fields {
    fn serialize(&self, mut row: Object) -> Result<Value, String> {
        let mut out = Object::with_capacity(self.0.len());
        for field in &self.0 {
            let value = row.remove(field).unwrap_or(Value::Null);
            out.insert(field.clone(), value);
        }
        Ok(Value::Object(out))
    }

    fn fields(&self) -> Option<&[String]> {
        Some(&self.0)
    }
}

/// A typed serde struct: the row is deserialized into `T` and `T` is
/// serialized back, so `T` decides names, computed fields and formats.
///
/// ```
/// use channels_binding_sqlx::{Serializer, Typed};
/// use serde_json::json;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct PublicUser {
///     id: i64,
///     #[serde(rename(serialize = "name"))]
///     username: String,
/// }
///
/// let row = json!({"id": 1, "username": "a", "email": "a@example.com"});
/// let out = Typed::<PublicUser>::new().serialize(row.as_object().unwrap().clone()).unwrap();
/// assert_eq!(out, json!({"id": 1, "name": "a"}));
/// ```
pub struct Typed<T>(PhantomData<fn() -> T>);

impl<T> Typed<T> {
    /// A serializer through `T`.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> Default for Typed<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Typed<{}>", std::any::type_name::<T>())
    }
}

impl<T: DeserializeOwned + Serialize + 'static> Serializer for Typed<T> {
    fn serialize(&self, row: Object) -> Result<Value, String> {
        let typed: T = serde_json::from_value(Value::Object(row))
            .map_err(|err| format!("row does not fit {}: {err}", std::any::type_name::<T>()))?;
        serde_json::to_value(typed).map_err(|err| err.to_string())
    }
}
