//! What the probe and scrape endpoints share: they answer `GET` and `HEAD` only.

use http::header::{ALLOW, HeaderValue};
use http::{Method, Response, StatusCode};

use crate::body::Body;
use crate::response;

/// Whether a probe endpoint answers this method.
pub(super) fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// `405` with `Allow: GET, HEAD` and the protocol's error object.
pub(super) fn not_allowed() -> Response<Body> {
    let mut response = response::json(
        StatusCode::METHOD_NOT_ALLOWED,
        br#"{"code":"bad_request","message":"method not allowed here"}"#.as_slice(),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}
