//! Limits of the HTTP transport.

use std::time::Duration;

/// Limits and options of [`HttpApi`](super::HttpApi).
///
/// ```
/// use channels_binding::http::HttpConfig;
///
/// use std::time::Duration;
///
/// let config = HttpConfig::default()
///     .max_body_size(16 * 1024)
///     .body_timeout(Duration::from_secs(10))
///     .console(false);
/// assert_eq!(config.max_body_size, 16 * 1024);
/// assert_eq!(config.body_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The path the API is mounted at, ending with `/` (default `/`).
    pub root: String,
    /// Largest request body, in bytes; larger is `413 payload_too_large` (default 64 KiB),
    /// answered at once when the declared `Content-Length` is larger.
    pub max_body_size: usize,
    /// Longest time to receive a whole request body, from the end of its
    /// head; slower is `408` with `bad_request` and the connection is closed
    /// (default 30 s).
    pub body_timeout: Duration,
    /// How often an idle SSE stream gets a keep-alive comment (default 15 s).
    pub sse_keep_alive: Duration,
    /// Whether a plain `GET <root>` serves the browser console (default yes).
    pub console: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            root: "/".to_owned(),
            max_body_size: 64 * 1024,
            body_timeout: Duration::from_secs(30),
            sse_keep_alive: Duration::from_secs(15),
            console: true,
        }
    }
}

impl HttpConfig {
    /// Sets [`root`](Self::root); a missing leading or trailing `/` is added.
    #[must_use]
    pub fn root(mut self, root: &str) -> Self {
        let trimmed = root.trim_matches('/');
        self.root = if trimmed.is_empty() {
            "/".to_owned()
        } else {
            format!("/{trimmed}/")
        };
        self
    }

    /// Sets [`max_body_size`](Self::max_body_size).
    #[must_use]
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Sets [`body_timeout`](Self::body_timeout).
    #[must_use]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Sets [`sse_keep_alive`](Self::sse_keep_alive).
    #[must_use]
    pub fn sse_keep_alive(mut self, every: Duration) -> Self {
        self.sse_keep_alive = every;
        self
    }

    /// Sets [`console`](Self::console).
    #[must_use]
    pub fn console(mut self, serve: bool) -> Self {
        self.console = serve;
        self
    }
}
