//! Recognising and answering a WebSocket upgrade request (RFC 6455 §4.2).

use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::body::{Body, full};

/// Whether the request asks for a WebSocket (`Connection: upgrade`,
/// `Upgrade: websocket`); such a request is ours even if malformed.
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    header_has_token(headers, &CONNECTION, "upgrade") && header_has_token(headers, &UPGRADE, "websocket")
}

fn header_has_token(headers: &HeaderMap, name: &http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// Checks the handshake headers; returns the `Sec-WebSocket-Accept` value.
pub(crate) fn accept_key(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
    if method != Method::GET {
        return Err("a WebSocket upgrade must use GET");
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let key = headers.get(SEC_WEBSOCKET_KEY).ok_or("Sec-WebSocket-Key is missing")?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|_| "Sec-WebSocket-Key is invalid")
}

/// The 101 response that completes the handshake.
pub(crate) fn switching_protocols(accept: HeaderValue) -> Response<Body> {
    let mut response = Response::new(crate::body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// A plain-text error response for a refused upgrade.
pub(crate) fn refuse(status: StatusCode, reason: &'static str) -> Response<Body> {
    let mut response = Response::new(full(reason));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn recognises_upgrades_case_insensitively_in_token_lists() {
        assert!(is_upgrade_request(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket")
        ])));
        assert!(!is_upgrade_request(&headers(&[("connection", "keep-alive")])));
        assert!(!is_upgrade_request(&headers(&[
            ("connection", "upgrade"),
            ("upgrade", "h2c")
        ])));
    }

    #[test]
    fn computes_the_rfc_accept_key() {
        // The example of RFC 6455 §1.3.
        let map = headers(&[
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]);
        let accept = accept_key(&Method::GET, &map).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(accept_key(&Method::POST, &map).is_err());
        assert!(accept_key(&Method::GET, &headers(&[("sec-websocket-version", "13")])).is_err());
        assert!(
            accept_key(
                &Method::GET,
                &headers(&[("sec-websocket-key", "x"), ("sec-websocket-version", "8")])
            )
            .is_err()
        );
    }
}
