//! Response headers a handler asks the HTTP transport to send with its reply.

use http::{HeaderName, HeaderValue};

/// Headers for the HTTP response carrying a reply (a `Set-Cookie` after a
/// sign-in, say). Attach with [`Reply::with_extension`](crate::Reply::with_extension);
/// the HTTP transport sends them, the WebSocket transport cannot and ignores them.
///
/// ```
/// use channels_binding_core::{Reply, ReplyHeaders};
/// use http::{header::SET_COOKIE, HeaderValue};
///
/// let reply = Reply::ok(serde_json::json!({}))
///     .with_extension(ReplyHeaders::new().with(SET_COOKIE, HeaderValue::from_static("a=b; HttpOnly")));
/// assert_eq!(reply.extensions().get::<ReplyHeaders>().unwrap().iter().count(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReplyHeaders(Vec<(HeaderName, HeaderValue)>);

impl ReplyHeaders {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header (repeatable, as `Set-Cookie` is).
    #[must_use]
    pub fn with(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.push((name, value));
        self
    }

    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter().map(|(n, v)| (n, v))
    }
}
