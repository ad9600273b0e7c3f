//! The lean WebSocket client of the load generator: tokio-tungstenite over a
//! plain `TcpStream` with small buffers (the driver holds up to 10 000
//! sockets in one process), every network await under a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

/// A client socket.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// How long a TCP connect plus WebSocket handshake may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one send, or the wait for one reply, may take.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a WebSocket to `ws://addr{path}` (path includes any query string).
pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Result<Ws, String> {
    let attempt = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        // Request/response on loopback: never wait for Nagle.
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let request = format!("ws://{addr}{path}")
            .into_client_request()
            .map_err(|e| format!("bad request: {e}"))?;
        // Frames here are well under 1 KiB; small buffers keep 10 000 client
        // sockets cheap. A send flushes at once whatever the write buffer.
        let config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20));
        let (ws, _response) = client_async_with_config(request, tcp, Some(config))
            .await
            .map_err(|e| format!("handshake with {addr}: {e}"))?;
        Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("connect to {addr} timed out after {CONNECT_TIMEOUT:?}"))?
}

/// Sends one text frame.
pub(crate) async fn send(ws: &mut Ws, text: impl Into<Utf8Bytes>) -> Result<(), String> {
    match tokio::time::timeout(IO_TIMEOUT, ws.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("send: {err}")),
        Err(_) => Err(format!("send timed out after {IO_TIMEOUT:?}")),
    }
}

/// Why no text frame arrived.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The deadline passed first.
    Timeout,
    /// The server closed the socket, with this close code if it sent one.
    Closed(Option<u16>),
    /// The connection broke.
    Failed(String),
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Timeout => f.write_str("no frame before the deadline"),
            RecvError::Closed(Some(code)) => write!(f, "closed by the server with code {code}"),
            RecvError::Closed(None) => f.write_str("closed by the server"),
            RecvError::Failed(err) => write!(f, "socket error: {err}"),
        }
    }
}

/// The next text frame before `deadline`; control frames are skipped
/// (tungstenite answers pings itself).
pub(crate) async fn recv_until(ws: &mut Ws, deadline: Instant) -> Result<Utf8Bytes, RecvError> {
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(RecvError::Timeout),
            Ok(None) => return Err(RecvError::Closed(None)),
            Ok(Some(Err(err))) => return Err(RecvError::Failed(err.to_string())),
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text),
            Ok(Some(Ok(Message::Close(frame)))) => return Err(RecvError::Closed(frame.map(|f| u16::from(f.code)))),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The next text frame, waiting at most [`IO_TIMEOUT`].
pub(crate) async fn recv(ws: &mut Ws) -> Result<Utf8Bytes, String> {
    recv_until(ws, Instant::now() + IO_TIMEOUT)
        .await
        .map_err(|e| e.to_string())
}

/// Sends a frame and returns the next text frame: the reply, when nothing
/// else is in flight on the socket.
pub(crate) async fn call(ws: &mut Ws, text: impl Into<Utf8Bytes>) -> Result<Utf8Bytes, String> {
    send(ws, text).await?;
    recv(ws).await
}
