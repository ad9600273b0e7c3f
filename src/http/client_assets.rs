//! The JavaScript client, served by the API itself so a page needs no build
//! step: `GET <root>channels-binding.mjs` (the ES module),
//! `GET <root>channels-binding.d.ts` (its TypeScript declarations) and
//! `GET <root>channels-binding-react.mjs` (React hooks over it).
//!
//! The files are embedded at compile time. Each response carries a strong
//! `ETag` (a hash of the content) and `Cache-Control: public, max-age=300`:
//! browsers reuse the file for five minutes, then revalidate, and an
//! `If-None-Match` that matches gets `304 Not Modified` without a body.
//! They are public and carry no credentials, so they are served with
//! `Access-Control-Allow-Origin: *`: a page on another origin may import them.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, Response, StatusCode};

use crate::body::{Body, empty, full};

/// The client module.
pub const CLIENT_MJS: &str = include_str!("../client/channels-binding.mjs");
/// The client's TypeScript declarations.
pub const CLIENT_DTS: &str = include_str!("../client/channels-binding.d.ts");
/// The React hooks module.
pub const REACT_MJS: &str = include_str!("../client/channels-binding-react.mjs");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const TYPESCRIPT: &str = "application/typescript; charset=utf-8";
/// Long enough to spare repeated downloads, short enough that a server
/// upgrade reaches pages within minutes.
const CACHE: &str = "public, max-age=300";

/// One embedded file with its validator.
pub(crate) struct Asset {
    content_type: &'static str,
    body: Bytes,
    etag: HeaderValue,
}

/// A strong validator for `content`: a 64-bit hash, the same for every
/// process of one build (`DefaultHasher::new` uses fixed keys). Another
/// build may hash differently, which costs one download, never a stale file.
pub(crate) fn etag_of(content: &[u8]) -> HeaderValue {
    let mut hasher = std::hash::DefaultHasher::new();
    content.hash(&mut hasher);
    HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish())).unwrap_or(HeaderValue::from_static("\"0\""))
}

impl Asset {
    pub(crate) fn new(content_type: &'static str, body: Bytes) -> Self {
        let etag = etag_of(&body);
        Self {
            content_type,
            body,
            etag,
        }
    }

    /// The response to a `GET`/`HEAD` with these request headers.
    pub(crate) fn respond(&self, method: &Method, headers: &HeaderMap) -> Response<Body> {
        let fresh = headers
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag.as_bytes() == self.etag.as_bytes());
        let (status, body) = if fresh {
            (StatusCode::NOT_MODIFIED, empty())
        } else if *method == Method::HEAD {
            (StatusCode::OK, empty())
        } else {
            (StatusCode::OK, full(self.body.clone()))
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE));
        headers.insert(ETAG, self.etag.clone());
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        // Public files with no credentials in them: a page on another origin
        // may import the module (module scripts are fetched with CORS).
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        response
    }
}

/// The embedded client file at `rest` (the path after the root), if any.
pub(crate) fn client_asset(rest: &str) -> Option<&'static Asset> {
    static ASSETS: OnceLock<[Asset; 3]> = OnceLock::new();
    let [mjs, dts, react] = ASSETS.get_or_init(|| {
        [
            Asset::new(JAVASCRIPT, Bytes::from_static(CLIENT_MJS.as_bytes())),
            Asset::new(TYPESCRIPT, Bytes::from_static(CLIENT_DTS.as_bytes())),
            Asset::new(JAVASCRIPT, Bytes::from_static(REACT_MJS.as_bytes())),
        ]
    });
    match rest {
        "channels-binding.mjs" => Some(mjs),
        "channels-binding.d.ts" => Some(dts),
        "channels-binding-react.mjs" => Some(react),
        _ => None,
    }
}

/// The response for `parts` when it asks for a client file or the
/// generated declarations (`typescript`) with `GET` or `HEAD`.
pub(crate) fn respond(parts: &http::request::Parts, root: &str, typescript: &Asset) -> Option<Response<Body>> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return None;
    }
    let rest = parts.uri.path().strip_prefix(root)?;
    let asset = if rest == "api/channels-binding.d.ts" {
        typescript
    } else {
        client_asset(rest)?
    };
    Some(asset.respond(&parts.method, &parts.headers))
}

/// The generated declarations of the declared bindings, as an asset.
pub(crate) fn typescript_asset(source: String) -> Asset {
    Asset::new(TYPESCRIPT, Bytes::from(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_client_with_a_validator() {
        let asset = client_asset("channels-binding.mjs").expect("the module");
        let response = asset.respond(&Method::GET, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], JAVASCRIPT);
        assert_eq!(response.headers()[CACHE_CONTROL], CACHE);
        assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let etag = response.headers()[ETAG].clone();

        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, etag);
        assert_eq!(asset.respond(&Method::GET, &headers).status(), StatusCode::NOT_MODIFIED);
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(asset.respond(&Method::GET, &headers).status(), StatusCode::OK);
        assert!(client_asset("channels-binding-react.mjs").is_some());
        assert!(client_asset("channels-binding.d.ts").is_some());
        assert!(client_asset("elsewhere.mjs").is_none());
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
    }
}
