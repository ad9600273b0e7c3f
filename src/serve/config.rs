//! The limits of [`serve_with_config`](crate::serve_with_config).

use std::time::Duration;

/// Time and connection limits of the accept loop, so that no client can hold
/// a connection (a file descriptor) without using it.
///
/// * `header_timeout`: from a connection's first byte of a request (or from
///   the accept, for its first request) to the end of that request's head.
///   A silent connection or half-sent headers are closed when it runs out.
/// * `keep_alive_timeout`: how long a kept-alive connection may wait, idle,
///   between the end of one response and the first byte of the next request
///   (HTTP/1), or with no stream open (HTTP/2).
/// * `max_connections`: plain HTTP connections at once; a connection accepted
///   over the cap is closed at once, so that descriptors remain for the
///   database and for the connections already served. On Unix the cap is also
///   kept below the process's open-file limit. Upgraded WebSockets leave the
///   count (their own ping and idle checks bound them).
/// * `http2_ping_interval`: HTTP/2 keep-alive pings on busy connections (a
///   long SSE feed); a peer that does not answer within the same time is
///   dropped.
///
/// Request bodies are bounded in time and size by the service that reads
/// them ([`HttpConfig`](crate::http::HttpConfig)).
///
/// ```
/// use std::time::Duration;
/// use channels_binding::ServeConfig;
///
/// let config = ServeConfig::default()
///     .header_timeout(Duration::from_secs(5))
///     .max_connections(2_000);
/// assert_eq!(config.header_timeout, Duration::from_secs(5));
/// assert_eq!(config.keep_alive_timeout, Duration::from_secs(60));
/// assert_eq!(config.max_connections, 2_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Longest wait for a request's head (default 10 s).
    pub header_timeout: Duration,
    /// Longest idle time between requests on one connection (default 60 s).
    pub keep_alive_timeout: Duration,
    /// Most plain HTTP connections at once (default 10 000).
    pub max_connections: usize,
    /// HTTP/2 keep-alive ping interval and answer timeout (default 30 s).
    pub http2_ping_interval: Duration,
    /// How long shutdown waits for requests and sockets in flight (default 10 s).
    pub drain_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            http2_ping_interval: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl ServeConfig {
    /// Sets [`header_timeout`](Self::header_timeout).
    #[must_use]
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Sets [`keep_alive_timeout`](Self::keep_alive_timeout).
    #[must_use]
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// Sets [`max_connections`](Self::max_connections) (at least 1).
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets [`http2_ping_interval`](Self::http2_ping_interval).
    #[must_use]
    pub fn http2_ping_interval(mut self, every: Duration) -> Self {
        self.http2_ping_interval = every;
        self
    }

    /// Sets [`drain_timeout`](Self::drain_timeout).
    #[must_use]
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}
