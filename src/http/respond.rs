//! Building HTTP responses from replies and errors.

use channels_binding_core::protocol::RequestId;
use channels_binding_core::{Reply, ReplyHeaders};
use http::{Response, StatusCode};

use crate::body::Body;

use crate::response::with_retry_after;
pub(crate) use crate::response::{error, json};

/// A whole reply frame with the status of its outcome (the frame endpoint);
/// `event` is `None` when the request had no usable event name.
pub(crate) fn frame(reply: &Reply, event: Option<&str>, request_id: Option<&RequestId>) -> Response<Body> {
    let status = reply.error_ref().map_or(StatusCode::OK, |e| e.code().http_status());
    let response = json(status, reply.encode(event, request_id));
    let response = match reply.error_ref() {
        Some(error) => with_retry_after(response, error),
        None => response,
    };
    with_reply_headers(response, reply)
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
