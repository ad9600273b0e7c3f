//! Building HTTP responses from replies and errors.

use bytes::Bytes;
use channels_binding_core::protocol::{EventError, RequestId};
use channels_binding_core::{Reply, ReplyHeaders};
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

/// The error object alone, with the code's status (REST).
pub(crate) fn error(error: &EventError) -> Response<Body> {
    let bytes =
        serde_json::to_vec(error).unwrap_or_else(|_| br#"{"code":"internal","message":"internal error"}"#.to_vec());
    json(error.code().http_status(), bytes)
}

/// A whole reply frame with the status of its outcome (the frame endpoint).
pub(crate) fn frame(reply: &Reply, event: &str, request_id: Option<&RequestId>) -> Response<Body> {
    let status = reply.error_ref().map_or(StatusCode::OK, |e| e.code().http_status());
    with_reply_headers(json(status, reply.encode(Some(event), request_id)), reply)
}

/// The payload alone on success, the error object otherwise (REST).
pub(crate) fn payload(reply: &Reply, success: StatusCode) -> Response<Body> {
    let response = match reply.outcome() {
        Ok(data) => json(success, serde_json::to_vec(data).unwrap_or_else(|_| b"null".to_vec())),
        Err(err) => error(err),
    };
    with_reply_headers(response, reply)
}

/// Adds the headers a handler asked for ([`ReplyHeaders`]).
fn with_reply_headers(mut response: Response<Body>, reply: &Reply) -> Response<Body> {
    if let Some(headers) = reply.extensions().get::<ReplyHeaders>() {
        for (name, value) in headers.iter() {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}
