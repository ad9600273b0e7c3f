//! JSON responses shared by the HTTP-level layers and the HTTP transport.

use bytes::Bytes;
use channels_binding_core::protocol::{ErrorCode, EventError};
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
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
    with_retry_after(json(error.code().http_status(), bytes), error)
}

/// Adds `Retry-After` to the response of a `rate_limited` error: its
/// `retry_after_ms` in whole seconds, rounded up (at least 1), as the HTTP
/// rate-limit layer does, so that every `429` says when to come back.
pub(crate) fn with_retry_after(mut response: Response<Body>, error: &EventError) -> Response<Body> {
    if error.code() == ErrorCode::RateLimited {
        let ms = error
            .details()
            .get("retry_after_ms")
            .and_then(serde_json::Value::as_u64);
        let seconds = ms.map_or(1, |ms| ms.div_ceil(1000).max(1));
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_errors_carry_retry_after_in_whole_seconds() {
        let response = error(&EventError::rate_limited(1_200));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        assert_eq!(error(&EventError::rate_limited(1)).headers()[RETRY_AFTER], "1");
        assert!(error(&EventError::not_found("no")).headers().get(RETRY_AFTER).is_none());
    }
}
