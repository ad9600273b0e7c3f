//! Placeholder until the generator lands.

use channels_binding_core::BindingDescription;

/// Placeholder.
pub fn openapi_document(_: &[BindingDescription], _: &[String], _: &str) -> serde_json::Value {
    serde_json::json!({})
}
