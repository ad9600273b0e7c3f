//! Which requests a cookie may not authenticate: state-changing requests
//! and upgrades sent from another site's page.
//!
//! A browser attaches cookies to requests that any page makes (a form's
//! `text/plain` POST, a WebSocket upgrade), so a cookie alone cannot tell
//! the user's own page from a hostile one. The `Origin` header can: the
//! browser sets it and a page cannot forge it. A request whose `Origin` is
//! neither this server's own origin (its `Host`) nor trusted is cross-site;
//! [`AuthLayer`](super::AuthLayer) then refuses a cookie identity for it.

use std::collections::HashSet;
use std::sync::Arc;

use http::Method;
use http::header::{HOST, ORIGIN, UPGRADE};
use http::request::Parts;

use super::origin::{InvalidOrigin, parse_origins};

/// The origins trusted besides the server's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct CrossSite {
    trusted: Arc<HashSet<String>>,
}

impl CrossSite {
    /// Trusts these origins (`http(s)://host[:port]`) as well.
    pub(crate) fn trusting<I>(origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Ok(Self {
            trusted: Arc::new(parse_origins(origins)?),
        })
    }

    /// Whether `parts` changes state or upgrades, and comes from a page on
    /// another origin. A request without `Origin` is not a browser's
    /// cross-site request (browsers send it on every cross-origin POST and
    /// every upgrade), so it is not refused here.
    pub(crate) fn refuses_ambient(&self, parts: &Parts) -> bool {
        let state_changing = !matches!(
            parts.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        ) || parts.headers.contains_key(UPGRADE);
        if !state_changing {
            return false;
        }
        let Some(origin) = parts.headers.get(ORIGIN) else {
            return false;
        };
        let Ok(origin) = origin.to_str() else {
            return true;
        };
        let origin = origin.to_ascii_lowercase();
        !(self.trusted.contains(&origin) || same_origin(&origin, parts))
    }
}

/// Whether the (lowercase) `origin` names the server the request was sent
/// to: same host and port as `Host` (or the HTTP/2 authority), and the same
/// scheme when the request says which it used.
fn same_origin(origin: &str, parts: &Parts) -> bool {
    let (scheme, authority) = if let Some(rest) = origin.strip_prefix("http://") {
        ("http", rest)
    } else if let Some(rest) = origin.strip_prefix("https://") {
        ("https", rest)
    } else {
        // `null` (sandboxed frames, files) and anything else.
        return false;
    };
    let Some((origin_host, origin_port)) = split_host_port(authority) else {
        return false;
    };
    let server = parts
        .uri
        .authority()
        .map(|authority| authority.as_str().to_ascii_lowercase())
        .or_else(|| {
            parts
                .headers
                .get(HOST)
                .and_then(|host| host.to_str().ok())
                .map(str::to_ascii_lowercase)
        });
    let Some(server) = server else {
        return false;
    };
    let Some((server_host, server_port)) = split_host_port(&server) else {
        return false;
    };
    let server_scheme = parts.uri.scheme_str().unwrap_or(scheme);
    if server_scheme != scheme {
        return false;
    }
    origin_host == server_host
        && origin_port.unwrap_or(default_port(scheme)) == server_port.unwrap_or(default_port(server_scheme))
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// `host[:port]` or `[v6][:port]`; `None` when malformed.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['@', '/', ' ']) {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn foreign_posts_and_upgrades_are_refused() {
        let policy = CrossSite::default();
        let host = ("host", "app.example:8000");
        let evil = ("origin", "http://evil.example");
        assert!(policy.refuses_ambient(&parts("POST", "/", &[host, evil])));
        assert!(policy.refuses_ambient(&parts("DELETE", "/api/x/1", &[host, evil])));
        assert!(policy.refuses_ambient(&parts("GET", "/ws", &[host, evil, ("upgrade", "websocket")])));
        assert!(policy.refuses_ambient(&parts("POST", "/", &[host, ("origin", "null")])));
        // Same host, another port or scheme, is another origin.
        assert!(policy.refuses_ambient(&parts("POST", "/", &[host, ("origin", "http://app.example:8001")])));
        assert!(policy.refuses_ambient(&parts(
            "POST",
            "https://app.example/",
            &[("origin", "http://app.example")]
        )));
    }

    #[test]
    fn own_trusted_absent_origins_and_reads_pass() {
        let policy = CrossSite::trusting(["https://console.example"]).unwrap();
        let host = ("host", "App.Example:8000");
        assert!(!policy.refuses_ambient(&parts("POST", "/", &[host, ("origin", "http://app.example:8000")])));
        assert!(!policy.refuses_ambient(&parts("POST", "/", &[host, ("origin", "https://console.example")])));
        assert!(!policy.refuses_ambient(&parts("POST", "/", &[host])));
        assert!(!policy.refuses_ambient(&parts("GET", "/api/x", &[host, ("origin", "http://evil.example")])));
        // Default ports are the same origin as no port.
        let plain = ("host", "app.example");
        assert!(!policy.refuses_ambient(&parts("POST", "/", &[plain, ("origin", "http://app.example:80")])));
        assert!(!policy.refuses_ambient(&parts("POST", "/", &[plain, ("origin", "https://app.example")])));
        let v6 = ("host", "[::1]:8000");
        assert!(!policy.refuses_ambient(&parts("POST", "/", &[v6, ("origin", "http://[::1]:8000")])));
    }

    #[test]
    fn malformed_authorities_are_not_an_origin() {
        assert_eq!(split_host_port("a.example:80"), Some(("a.example", Some(80))));
        assert_eq!(split_host_port("[::1]"), Some(("[::1]", None)));
        for bad in ["", ":80", "a:b", "a:1:2", "[::1", "[::1]x", "u@a", "a:99999"] {
            assert_eq!(split_host_port(bad), None, "{bad:?}");
        }
    }
}
