//! Where a token is found in a request: the `Authorization: Bearer` header,
//! else the `access_token` query parameter (RFC 6750 §2.1 and §2.3).
//!
//! * No bearer header and no `access_token`: not a JWT request (`None`), so
//!   the next strategy may try; an `Authorization` header with another
//!   scheme (`Basic`, …) is not ours either.
//! * A bearer header or an `access_token` is ours: when it is empty, too
//!   long or not a compact JWS (three base64url segments), `check_shape`
//!   rejects it before any decoding.
//! * More than one token (two bearer headers, two `access_token`
//!   parameters, or a header and a parameter): rejected, since which one
//!   counts would depend on who reads the request (RFC 6750 §2: a client
//!   "MUST NOT use more than one method").

use std::borrow::Cow;

use http::header::AUTHORIZATION;
use http::request::Parts;

use crate::rejection::Rejection;

/// The query parameter that carries a token.
pub(crate) const QUERY_PARAMETER: &str = "access_token";

/// The one token of the request, if there is one.
pub(crate) fn extract(parts: &Parts, query: bool) -> Result<Option<Cow<'_, str>>, Rejection> {
    let header = from_header(parts)?;
    let query = if query { from_query(parts)? } else { None };
    let token = match (header, query) {
        (Some(_), Some(_)) => return Err(Rejection::Multiple),
        (Some(token), None) => Cow::Borrowed(token),
        (None, Some(token)) => token,
        (None, None) => return Ok(None),
    };
    Ok(Some(token))
}

/// The token of the only `Authorization: Bearer` header (the scheme is
/// case-insensitive), as raw text; the shape is checked later.
fn from_header(parts: &Parts) -> Result<Option<&str>, Rejection> {
    let mut found = None;
    for value in parts.headers.get_all(AUTHORIZATION) {
        let Some(credentials) = bearer_credentials(value.as_bytes()) else {
            continue;
        };
        if found.is_some() {
            return Err(Rejection::Multiple);
        }
        // Non-ASCII bytes cannot be part of a JWT.
        found = Some(std::str::from_utf8(credentials).map_err(|_| Rejection::Malformed)?);
    }
    Ok(found)
}

/// The credentials after a `Bearer` scheme, `None` for another scheme.
/// `Bearer` alone gives empty credentials (ours, and invalid).
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    let scheme_len = value
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(value.len());
    if !value[..scheme_len].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    Some(value[scheme_len..].trim_ascii())
}

/// The percent-decoded value of the only `access_token` parameter.
fn from_query(parts: &Parts) -> Result<Option<Cow<'_, str>>, Rejection> {
    let Some(query) = parts.uri.query() else {
        return Ok(None);
    };
    let mut found = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name != QUERY_PARAMETER {
            continue;
        }
        if found.is_some() {
            return Err(Rejection::Multiple);
        }
        found = Some(value);
    }
    Ok(found)
}

/// Rejects what cannot be a compact JWS before any decoding: empty, too
/// long, not exactly three segments of base64url characters.
pub(crate) fn check_shape(token: &str, max_len: usize) -> Result<(), Rejection> {
    if token.len() > max_len {
        return Err(Rejection::TooLong);
    }
    let mut segments = 0;
    for segment in token.split('.') {
        segments += 1;
        let base64url = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        // Header and payload are never empty; an empty signature is `alg: none`.
        if !base64url || segment.is_empty() {
            return Err(Rejection::Malformed);
        }
    }
    if segments == 3 {
        Ok(())
    } else {
        Err(Rejection::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";

    fn parts(uri: &str, authorization: &[&str]) -> Parts {
        let mut request = http::Request::builder().uri(uri);
        for value in authorization {
            request = request.header(AUTHORIZATION, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn extract_from(uri: &str, authorization: &[&str]) -> Result<Option<String>, Rejection> {
        extract(&parts(uri, authorization), true).map(|t| t.map(Cow::into_owned))
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(
                extract_from("/", &[&format!("{scheme} {TOKEN}")]),
                Ok(Some(TOKEN.to_owned())),
                "{scheme}"
            );
        }
        assert_eq!(
            extract_from("/", &[&format!("Bearer   {TOKEN}  ")]),
            Ok(Some(TOKEN.to_owned()))
        );
    }

    #[test]
    fn other_schemes_and_no_credentials_are_not_ours() {
        assert_eq!(extract_from("/", &[]), Ok(None));
        assert_eq!(extract_from("/?other=1", &["Basic dXNlcjpwYXNz"]), Ok(None));
        assert_eq!(extract_from("/", &["Bearerx abc"]), Ok(None));
        assert_eq!(extract_from("/", &["Token abc"]), Ok(None));
    }

    #[test]
    fn empty_bearer_is_ours_and_invalid() {
        assert_eq!(extract_from("/", &["Bearer"]), Ok(Some(String::new())));
        assert_eq!(extract_from("/", &["Bearer   "]), Ok(Some(String::new())));
        assert_eq!(extract_from("/?access_token=", &[]), Ok(Some(String::new())));
        assert_eq!(check_shape("", 8192), Err(Rejection::Malformed));
    }

    #[test]
    fn query_parameter_is_percent_decoded() {
        let encoded = TOKEN.replace('.', "%2E");
        assert_eq!(
            extract_from(&format!("/ws?x=1&access_token={encoded}&y=2"), &[]),
            Ok(Some(TOKEN.to_owned()))
        );
        // A Basic header does not hide the query token.
        assert_eq!(
            extract_from(&format!("/ws?access_token={TOKEN}"), &["Basic dXNlcjpwYXNz"]),
            Ok(Some(TOKEN.to_owned()))
        );
        let with_query = parts(&format!("/ws?access_token={TOKEN}"), &[]);
        assert_eq!(extract(&with_query, false), Ok(None));
    }

    #[test]
    fn more_than_one_token_is_rejected() {
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(extract_from("/", &[&bearer, &bearer]), Err(Rejection::Multiple));
        assert_eq!(
            extract_from(&format!("/?access_token={TOKEN}&access_token={TOKEN}"), &[]),
            Err(Rejection::Multiple)
        );
        assert_eq!(
            extract_from(&format!("/?access_token={TOKEN}"), &[&bearer]),
            Err(Rejection::Multiple)
        );
        // One bearer among other schemes is fine.
        assert_eq!(
            extract_from("/", &["Basic dXNlcjpwYXNz", &bearer]),
            Ok(Some(TOKEN.to_owned()))
        );
    }

    #[test]
    fn shape_is_checked_before_decoding() {
        assert_eq!(check_shape(TOKEN, 8192), Ok(()));
        assert_eq!(check_shape(TOKEN, TOKEN.len() - 1), Err(Rejection::TooLong));
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "a..c",
            ".b.c",
            "a.b.",
            "a.b.c=",
            "a.b+/.c",
            "a.b.c d",
            "a.b.\u{e9}",
        ] {
            assert_eq!(check_shape(bad, 8192), Err(Rejection::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn non_ascii_header_is_malformed() {
        let mut parts = parts("/", &[]);
        parts.headers.insert(
            AUTHORIZATION,
            http::HeaderValue::from_bytes(b"Bearer a.b.\xe9").unwrap(),
        );
        assert_eq!(extract(&parts, true), Err(Rejection::Malformed));
    }
}
