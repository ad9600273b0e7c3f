//! Shared helpers for end-to-end tests: servers on ephemeral ports and a
//! JSON WebSocket client with timeouts (a test never hangs).

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use channels_binding::body::BoxError;
use channels_binding::{Shutdown, serve};
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower::Service;

/// How long a test waits for an expected frame.
pub const WAIT: Duration = Duration::from_secs(5);

/// Serves `service` on 127.0.0.1 with an ephemeral port.
pub async fn spawn_server<S, B>(service: S, shutdown: Shutdown) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(serve(listener, service, shutdown));
    addr
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_url(&format!("ws://{addr}/")).await
    }

    pub async fn connect_url(url: &str) -> Self {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("connect");
        Self { ws }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON frame (pings are skipped).
    pub async fn recv(&mut self) -> Value {
        self.recv_within(WAIT).await
    }

    /// The next JSON frame, waiting up to `wait` (pings are skipped).
    pub async fn recv_within(&mut self, wait: Duration) -> Value {
        loop {
            let message = tokio::time::timeout(wait, self.ws.next())
                .await
                .expect("no frame within the wait")
                .expect("socket ended")
                .expect("socket error");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("frames are JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Sends a frame and returns the next frame (its reply when nothing else is in flight).
    pub async fn call(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        self.recv().await
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        match tokio::time::timeout(quiet, self.ws.next()).await {
            Err(_) => {}
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn close_code(&mut self) -> Option<CloseCode> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no close within the wait")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("socket error before close: {err}"),
                None => return None,
            }
        }
    }
}

/// A parsed HTTP/1.1 response.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .expect("response within the wait")
        .expect("read");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines.next().expect("status line")[9..12].parse().expect("status");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// An open Server-Sent Events stream.
pub struct Sse {
    tcp: TcpStream,
    buffer: String,
}

impl Sse {
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
        use tokio::io::AsyncWriteExt;
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut sse = Self {
            tcp,
            buffer: String::new(),
        };
        let head = sse.read_until("\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("content-type: text/event-stream"),
            "{head}"
        );
        sse
    }

    async fn read_until(&mut self, delimiter: &str) -> String {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(at) = self.buffer.find(delimiter) {
                let item = self.buffer[..at].to_owned();
                self.buffer.drain(..at + delimiter.len());
                return item;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
                .await
                .expect("SSE data within the wait")
                .expect("read");
            assert!(n > 0, "SSE stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// The next event with a name: `(id, event, data)`; comments and
    /// chunk-size lines of the chunked encoding are skipped.
    pub async fn next_event(&mut self) -> (Option<String>, String, String) {
        loop {
            let block = self.read_until("\n\n").await;
            let (mut id, mut event, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if let Some(event) = event {
                return (id, event, data);
            }
        }
    }
}
