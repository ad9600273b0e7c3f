//! One WebSocket connection: read frames, run events concurrently, write
//! replies and pushes in the right order.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::{Outbound, Outbox};
use channels_binding_core::protocol::{EventError, parse_frame};
use channels_binding_core::{ClientAddr, Event, Hub, Reply};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tower::{Service, ServiceExt};

use super::config::WebSocketConfig;
use crate::shutdown::Shutdown;

/// Frames written per batch before a flush, so one busy socket cannot starve
/// its own reads.
const WRITE_BATCH: usize = 64;

/// How long a closing socket keeps draining the peer's bytes, so that the
/// close frame is not lost to a TCP reset.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// Stands for "never" where a deadline is needed.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// When the connection's credentials expire, on the tokio clock.
fn credentials_expiry(connection: &channels_binding_core::hub::Connection) -> Option<Instant> {
    let identity = connection.identity();
    let at = identity.principal()?.expiry()?;
    let left = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

/// Why the loop ended, and the close frame to send (if any).
enum End {
    /// The peer closed or the connection broke: nothing more to send.
    Gone,
    /// We close with this code and reason.
    Close(CloseCode, &'static str),
}

pub(crate) struct Socket<S, E> {
    pub(crate) ws: WebSocketStream<S>,
    pub(crate) outbox: Outbox,
    pub(crate) events: E,
    pub(crate) hub: Hub,
    pub(crate) config: Arc<WebSocketConfig>,
    pub(crate) shutdown: Shutdown,
    /// The peer address of the upgrade request, copied into every event.
    pub(crate) client_addr: Option<ClientAddr>,
}

async fn answer<E>(events: E, event: Event, request: u64) -> (u64, Bytes)
where
    E: Service<Event, Response = Reply, Error = Infallible>,
{
    let name = event.name().as_shared().clone();
    let request_id = event.request_id().cloned();
    let reply = match events.oneshot(event).await {
        Ok(reply) => reply,
        Err(never) => match never {},
    };
    (request, reply.encode(Some(&name), request_id.as_ref()))
}

fn text(frame: Bytes) -> Message {
    match Utf8Bytes::try_from(frame) {
        Ok(text) => Message::Text(text),
        // Frames are encoded by serde_json and always UTF-8; never send garbage.
        Err(_) => Message::Text(Utf8Bytes::from_static(
            r#"{"event":null,"error":{"code":"internal","message":"internal error"}}"#,
        )),
    }
}

impl<S, E> Socket<S, E>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Service<Event, Response = Reply, Error = Infallible> + Clone + Send + 'static,
    E::Future: Send,
{
    pub(crate) async fn run(mut self) {
        let end = self.serve().await;
        if let End::Close(code, reason) = end {
            self.close(code, reason).await;
        }
        // Dropping the outbox unregisters the connection from the hub.
    }

    async fn serve(&mut self) -> End {
        let connection = self.outbox.connection().clone();
        let max_inflight = self.config.max_concurrent_requests;
        let mut inflight = FuturesUnordered::new();
        // Requests whose reply is not written yet.
        let mut unanswered: HashSet<u64> = HashSet::new();
        // A push that must wait for a reply; while it waits, the outbox is not
        // drained, which keeps every later push behind it too.
        let mut parked: Option<Outbound> = None;
        let mut next_request: u64 = 0;
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval_at(Instant::now() + self.config.ping_interval, self.config.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A socket lives no longer than the credentials it was opened with.
        let expiry = credentials_expiry(&connection);
        let expired = tokio::time::sleep_until(expiry.unwrap_or_else(|| Instant::now() + FAR_FUTURE));
        tokio::pin!(expired);
        // Built once, not on every pass of the loop.
        let shutdown = self.shutdown.clone();
        let shutting_down = shutdown.triggered();
        tokio::pin!(shutting_down);
        let overflow_connection = connection.clone();
        let overflowed = overflow_connection.overflowed();
        tokio::pin!(overflowed);

        loop {
            tokio::select! {
                biased;
                () = &mut shutting_down => return End::Close(CloseCode::Away, "server shutting down"),
                () = &mut expired, if expiry.is_some() => {
                    return End::Close(CloseCode::Policy, "credentials expired: reconnect with fresh credentials");
                }
                () = &mut overflowed => return End::Close(CloseCode::Again, "slow consumer: reconnect and resume with since"),
                Some((request, frame)) = inflight.next(), if !inflight.is_empty() => {
                    unanswered.remove(&request);
                    if self.ws.feed(text(frame)).await.is_err() {
                        return End::Gone;
                    }
                    let released = parked.take_if(|push| push.after_reply == Some(request));
                    if let Some(push) = released
                        && self.ws.feed(text(push.frame)).await.is_err()
                    {
                        return End::Gone;
                    }
                    if self.ws.flush().await.is_err() {
                        return End::Gone;
                    }
                }
                pushed = self.outbox.recv(), if parked.is_none() => {
                    let Some(push) = pushed else { return End::Close(CloseCode::Away, "hub closed") };
                    let mut next = Some(push);
                    let mut written = 0;
                    while let Some(push) = next.take() {
                        if push.after_reply.is_some_and(|request| unanswered.contains(&request)) {
                            parked = Some(push);
                            break;
                        }
                        if self.ws.feed(text(push.frame)).await.is_err() {
                            return End::Gone;
                        }
                        written += 1;
                        if written < WRITE_BATCH {
                            next = self.outbox.try_recv();
                        }
                    }
                    if written > 0 && self.ws.flush().await.is_err() {
                        return End::Gone;
                    }
                }
                message = self.ws.next(), if inflight.len() < max_inflight => {
                    last_heard = Instant::now();
                    match message {
                        None => return End::Gone,
                        Some(Ok(Message::Text(text))) => match parse_frame(text.as_bytes()) {
                            Ok(frame) => {
                                next_request += 1;
                                unanswered.insert(next_request);
                                let mut event = Event::from_frame(frame, self.hub.clone())
                                    .with_connection(connection.clone(), next_request);
                                if let Some(addr) = self.client_addr {
                                    event.extensions_mut().insert(addr);
                                }
                                inflight.push(answer(self.events.clone(), event, next_request));
                            }
                            Err(error) => {
                                if self.ws.send(self::text(error.encode())).await.is_err() {
                                    return End::Gone;
                                }
                            }
                        },
                        Some(Ok(Message::Binary(_))) => {
                            let error = EventError::bad_request("binary frames are not supported: send JSON text frames");
                            let reply = Reply::error(error).encode(None, None);
                            if self.ws.send(self::text(reply)).await.is_err() {
                                return End::Gone;
                            }
                        }
                        // tungstenite answers pings and close frames itself on the next flush.
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                            if self.ws.flush().await.is_err() {
                                return End::Gone;
                            }
                        }
                        Some(Ok(Message::Close(_))) => {
                            // Flushing sends our half of the closing handshake.
                            let _ = self.ws.flush().await;
                            return End::Gone;
                        }
                        Some(Err(WsError::Capacity(_))) => return End::Close(CloseCode::Size, "message too big"),
                        Some(Err(WsError::Utf8(_))) => return End::Close(CloseCode::Invalid, "text frame is not UTF-8"),
                        Some(Err(err)) => {
                            tracing::debug!(error = %err, connection = connection.id(), "websocket read failed");
                            return End::Gone;
                        }
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= self.config.idle_timeout {
                        return End::Close(CloseCode::Away, "idle timeout");
                    }
                    if self.ws.send(Message::Ping(Bytes::new())).await.is_err() {
                        return End::Gone;
                    }
                }
            }
        }
    }

    /// Sends a close frame, then reads and discards whatever the peer still
    /// sends for a moment: closing a TCP socket with unread input makes the
    /// kernel send a reset, and the peer may lose our close frame.
    async fn close(&mut self, code: CloseCode, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let sent = tokio::time::timeout(CLOSE_DRAIN, self.ws.send(Message::Close(Some(frame)))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
        let deadline = Instant::now() + CLOSE_DRAIN;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(_))) => continue,
                // The frame layer gave up (oversized or broken input): drain raw bytes.
                Ok(Some(Err(_))) => break,
                Ok(None) | Err(_) => return,
            }
        }
        // On the heap and only while closing: an array here would be part of
        // every socket task's state for its whole life.
        let mut scratch = vec![0u8; 4096];
        let raw = self.ws.get_mut();
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, raw.read(&mut scratch)).await {
            if n == 0 {
                break;
            }
        }
    }
}
