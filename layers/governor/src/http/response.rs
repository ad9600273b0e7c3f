//! The `429` response.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::body::Body;
use crate::limited::RateLimited;

/// `429 Too Many Requests`, `Retry-After` in whole seconds, and the
/// protocol's error object as a JSON body.
pub(crate) fn too_many_requests(limited: &RateLimited) -> Response<Body> {
    let error = limited.to_event_error();
    let json = serde_json::to_vec(&error).unwrap_or_else(|_| {
        // An error object of strings and a number always serializes; keep a
        // fixed body rather than panic if that ever changes.
        br#"{"code":"rate_limited","message":"rate limit exceeded"}"#.to_vec()
    });
    let body = Full::new(Bytes::from(json))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(limited.retry_after_secs()));
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn status_headers_and_body() {
        let response = too_many_requests(&RateLimited::new(Duration::from_millis(2500)));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            br#"{"code":"rate_limited","message":"rate limit exceeded","retry_after_ms":2500}"#
        );
    }
}
