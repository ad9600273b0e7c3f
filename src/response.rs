//! JSON responses shared by the HTTP-level layers and the HTTP transport.

use bytes::Bytes;
use channels_binding_core::protocol::EventError;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::body::{Body, full};

/// A JSON response.
pub(crate) fn json(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(bytes.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The protocol's error object alone, with the code's status.
pub(crate) fn error(error: &EventError) -> Response<Body> {
    let bytes =
        serde_json::to_vec(error).unwrap_or_else(|_| br#"{"code":"internal","message":"internal error"}"#.to_vec());
    json(error.code().http_status(), bytes)
}
