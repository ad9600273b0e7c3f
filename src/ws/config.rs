//! WebSocket limits and timings.

use std::time::Duration;

/// Limits and timings of the WebSocket transport.
///
/// The defaults suit many mostly idle sockets: small read and write buffers
/// (tungstenite's 128 KiB default read buffer alone would cost ~134 KiB per
/// idle socket), a 64 KiB frame limit, 64 concurrent requests per socket.
///
/// A peer that does not read costs a bounded amount and nobody else's time:
/// its requests still run to their end (they never hold a pool connection
/// waiting for it), their replies wait in a queue of at most
/// [`max_queued_bytes`](Self::max_queued_bytes), and a frame it does not take
/// within [`write_timeout`](Self::write_timeout) closes it (1013).
///
/// ```
/// use std::time::Duration;
/// use channels_binding::ws::WebSocketConfig;
///
/// let config = WebSocketConfig::default()
///     .max_message_size(16 * 1024)
///     .ping_interval(Duration::from_secs(10))
///     .write_timeout(Duration::from_secs(5))
///     .max_queued_bytes(256 * 1024);
/// assert_eq!(config.max_message_size, 16 * 1024);
/// assert_eq!(config.write_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebSocketConfig {
    /// Largest inbound message, in bytes; a larger one closes the socket with 1009.
    pub max_message_size: usize,
    /// Requests of one socket that may run at once; past it, reading pauses.
    pub max_concurrent_requests: usize,
    /// How often an idle socket is pinged.
    pub ping_interval: Duration,
    /// A socket from which nothing (not even a pong) arrives for this long is closed.
    pub idle_timeout: Duration,
    /// tungstenite read buffer per socket.
    pub read_buffer_size: usize,
    /// Bytes buffered before a write reaches the socket (flushes happen after
    /// each batch anyway).
    pub write_buffer_size: usize,
    /// Sockets that may be open at once through one service; past it the
    /// upgrade is answered 503.
    pub max_connections: usize,
    /// Longest a frame may take to reach the peer (the peer must read it);
    /// past it the socket is closed as a slow consumer (1013, or a plain TCP
    /// close when not even the close frame gets through).
    pub write_timeout: Duration,
    /// Bytes of replies and pushes that may wait for the peer to read; past
    /// it the socket is closed with 1013. Bounds a socket's memory whatever
    /// the size of its replies.
    pub max_queued_bytes: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_concurrent_requests: 64,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            read_buffer_size: 4 * 1024,
            write_buffer_size: 4 * 1024,
            max_connections: 100_000,
            write_timeout: Duration::from_secs(10),
            max_queued_bytes: 1024 * 1024,
        }
    }
}

impl WebSocketConfig {
    /// Sets [`max_message_size`](Self::max_message_size).
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`max_concurrent_requests`](Self::max_concurrent_requests) (at least 1).
    #[must_use]
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n.max(1);
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval).
    #[must_use]
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn idle_timeout(mut self, after: Duration) -> Self {
        self.idle_timeout = after;
        self
    }

    /// Sets [`read_buffer_size`](Self::read_buffer_size).
    #[must_use]
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes;
        self
    }

    /// Sets [`write_buffer_size`](Self::write_buffer_size).
    #[must_use]
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`write_timeout`](Self::write_timeout).
    #[must_use]
    pub fn write_timeout(mut self, after: Duration) -> Self {
        self.write_timeout = after;
        self
    }

    /// Sets [`max_queued_bytes`](Self::max_queued_bytes).
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    pub(crate) fn tungstenite(&self) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }
}
