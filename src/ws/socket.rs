//! One WebSocket connection: read frames, run each request as its own task,
//! queue replies and pushes in the right order for the writer.
//!
//! Nothing here waits for the peer to read. Requests run in spawned tasks,
//! so a query finishes and gives its pool connection back whether or not
//! the peer takes the reply; replies and pushes wait in the writer's bounded
//! queue; the writer is one `select!` arm among the others, so pings, the
//! idle check and the end of the credentials are seen while a write is
//! pending. A peer that does not take a frame within the write timeout, or
//! lets more than the byte budget pile up, is closed with 1013.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::{Connection, Outbound, Outbox};
use channels_binding_core::protocol::{EventError, parse_frame};
use channels_binding_core::{ClientAddr, CredentialsEnd, Event, Hub, Identity, Reply};
use futures_util::stream::SplitStream;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tower::{Service, ServiceExt};

use super::config::WebSocketConfig;
use super::writer::Writer;
use crate::shutdown::Shutdown;

/// Pushes moved from the hub's queue to the writer's per pass, so one busy
/// socket cannot starve its own reads.
const WRITE_BATCH: usize = 64;

/// How long a closing socket keeps draining the peer's bytes, so that the
/// close frame is not lost to a TCP reset.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// How long revoked credentials wait for the socket's own requests before
/// the socket closes: signing out on the socket itself revokes the session
/// a moment before the socket's identity becomes anonymous.
const REVOKED_GRACE: Duration = Duration::from_millis(500);

/// Stands for "never" where a deadline is needed.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Why the loop ended, and the close frame to send (if any).
enum End {
    /// The peer closed or the connection broke: nothing more to send.
    Gone,
    /// We close with this code and reason.
    Close(CloseCode, &'static str),
    /// The peer does not take our bytes: a close frame would not get through.
    Stalled,
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

/// Runs one request to its encoded reply. A panicking handler answers
/// `internal` instead of taking the socket down.
async fn answer<E>(events: E, event: Event, request: u64) -> (u64, Bytes)
where
    E: Service<Event, Response = Reply, Error = Infallible>,
{
    let name = event.name().as_shared().clone();
    let request_id = event.request_id().cloned();
    let reply = match AssertUnwindSafe(events.oneshot(event)).catch_unwind().await {
        Ok(Ok(reply)) => reply,
        Ok(Err(never)) => match never {},
        Err(_) => {
            tracing::error!(event = %name, "event handler panicked");
            Reply::error(EventError::internal())
        }
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

/// Completes when the credentials of `identity` end (never for anonymous, or
/// for credentials that neither expire nor can be revoked).
type CredentialsEnding = Pin<Box<dyn Future<Output = CredentialsEnd> + Send>>;

fn credentials_ending(identity: &Identity) -> Option<CredentialsEnding> {
    let principal = identity.principal()?;
    if principal.expiry().is_none() && principal.revocation().is_none() {
        return None;
    }
    let identity = identity.clone();
    Some(Box::pin(async move {
        match identity.principal() {
            Some(principal) => principal.ended().await,
            None => std::future::pending().await,
        }
    }))
}

/// Completes with `end` after `grace`.
fn after_grace(end: CredentialsEnd, grace: Duration) -> CredentialsEnding {
    Box::pin(async move {
        tokio::time::sleep(grace).await;
        end
    })
}

/// The state of a socket's loop, one method per thing that can happen.
struct SocketState<S, E> {
    stream: SplitStream<WebSocketStream<S>>,
    writer: Writer<S>,
    outbox: Outbox,
    connection: Connection,
    events: E,
    hub: Hub,
    config: Arc<WebSocketConfig>,
    client_addr: Option<ClientAddr>,
    /// Requests under way; dropping the set (the socket ended) aborts them.
    tasks: JoinSet<(u64, Bytes)>,
    /// Requests whose reply is not queued yet.
    unanswered: HashSet<u64>,
    /// A push that must wait for a reply; while it waits, the outbox is not
    /// drained, which keeps every later push behind it too.
    parked: Option<Outbound>,
    next_request: u64,
    last_heard: Instant,
    /// The connection's identity, followed so that a sign-in on the socket
    /// brings its own expiry and revocation.
    identity: watch::Receiver<Identity>,
    /// Completes when the current identity's credentials end.
    ending: Option<CredentialsEnding>,
    /// The credentials were revoked and the socket waits (briefly) for its
    /// own requests before closing; nothing is read or pushed meanwhile.
    revoked: bool,
}

impl<S, E> Socket<S, E>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Service<Event, Response = Reply, Error = Infallible> + Clone + Send + 'static,
    E::Future: Send,
{
    pub(crate) async fn run(self) {
        let Socket {
            ws,
            outbox,
            events,
            hub,
            config,
            shutdown,
            client_addr,
        } = self;
        let (sink, stream) = ws.split();
        let connection = outbox.connection().clone();
        let mut identity = connection.watch_identity();
        let ending = credentials_ending(&identity.borrow_and_update());
        let mut state = SocketState {
            stream,
            writer: Writer::new(sink),
            outbox,
            connection,
            events,
            hub,
            config,
            client_addr,
            tasks: JoinSet::new(),
            unanswered: HashSet::new(),
            parked: None,
            next_request: 0,
            last_heard: Instant::now(),
            identity,
            ending,
            revoked: false,
        };
        let end = state.serve(&shutdown).await;
        state.finish(end).await;
        // Dropping the outbox unregisters the connection from the hub.
    }
}

impl<S, E> SocketState<S, E>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Service<Event, Response = Reply, Error = Infallible> + Clone + Send + 'static,
    E::Future: Send,
{
    async fn serve(&mut self, shutdown: &Shutdown) -> End {
        let mut ping = tokio::time::interval_at(Instant::now() + self.config.ping_interval, self.config.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let write_deadline = tokio::time::sleep(FAR_FUTURE);
        tokio::pin!(write_deadline);
        // Built once, not on every pass of the loop.
        let shutting_down = shutdown.triggered();
        tokio::pin!(shutting_down);
        let overflow_connection = self.connection.clone();
        let overflowed = overflow_connection.overflowed();
        tokio::pin!(overflowed);

        loop {
            let was_busy = self.writer.busy();
            let can_read = !self.revoked
                && self.unanswered.len() < self.config.max_concurrent_requests
                && self.writer.len() < self.config.max_concurrent_requests;
            let can_push = !self.revoked && self.parked.is_none() && self.writer_has_room_for_pushes();
            let ending = &mut self.ending;
            let step = tokio::select! {
                biased;
                () = &mut shutting_down => Err(End::Close(CloseCode::Away, "server shutting down")),
                () = &mut overflowed => Err(End::Close(CloseCode::Again, "slow consumer: reconnect and resume with since")),
                // Before the end of the credentials: a sign-out on the socket
                // itself revokes and then switches to anonymous.
                changed = self.identity.changed() => match changed {
                    Ok(()) => {
                        self.on_identity_changed();
                        Ok(())
                    }
                    // The connection is gone: nothing more to follow.
                    Err(_) => Err(End::Gone),
                },
                end = async {
                    match ending {
                        Some(ending) => ending.await,
                        None => std::future::pending().await,
                    }
                }, if ending.is_some() => {
                    self.on_credentials_end(end)
                }
                () = &mut write_deadline, if self.writer.busy() => self.on_write_deadline(write_deadline.as_mut()),
                written = self.writer.drive(), if self.writer.busy() => written.map_err(|_| End::Gone),
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => match joined {
                    Ok((request, frame)) => self.on_reply(request, frame),
                    // Only an abort ends a task without its output; nothing aborts them here.
                    Err(_) => Ok(()),
                },
                pushed = self.outbox.recv(), if can_push => self.on_push(pushed),
                message = self.stream.next(), if can_read => self.on_message(message),
                _ = ping.tick() => self.on_tick(),
            };
            if let Err(end) = step {
                return end;
            }
            if self.writer.busy() && !was_busy {
                write_deadline
                    .as_mut()
                    .reset(self.writer.waiting_since() + self.config.write_timeout);
            }
        }
    }

    /// The write clock ran out: close if the writer made no progress since,
    /// otherwise wait until the frame now being written is due.
    fn on_write_deadline(&mut self, deadline: Pin<&mut Sleep>) -> Result<(), End> {
        let due = self.writer.waiting_since() + self.config.write_timeout;
        if due <= Instant::now() {
            tracing::debug!(
                connection = self.connection.id(),
                "write timed out: closing a peer that does not read"
            );
            return Err(End::Stalled);
        }
        deadline.reset(due);
        Ok(())
    }

    fn on_identity_changed(&mut self) {
        let identity = self.identity.borrow_and_update().clone();
        self.ending = credentials_ending(&identity);
        // A sign-out on this socket: the revoked identity is gone, the socket stays.
        self.revoked = false;
    }

    fn on_credentials_end(&mut self, end: CredentialsEnd) -> Result<(), End> {
        if end == CredentialsEnd::Revoked && !self.revoked && !self.unanswered.is_empty() {
            // Perhaps our own `auth.logout`, which switches the identity
            // right after revoking: hold everything back for a moment.
            self.revoked = true;
            self.ending = Some(after_grace(end, REVOKED_GRACE));
            return Ok(());
        }
        Err(End::Close(CloseCode::Policy, end.reason()))
    }

    fn on_reply(&mut self, request: u64, frame: Bytes) -> Result<(), End> {
        self.unanswered.remove(&request);
        self.queue(text(frame))?;
        if let Some(push) = self.parked.take_if(|push| push.after_reply == Some(request)) {
            self.queue(text(push.frame))?;
        }
        if self.revoked
            && self.unanswered.is_empty()
            && self.connection.identity().principal().is_some_and(|p| p.is_revoked())
        {
            return Err(End::Close(CloseCode::Policy, CredentialsEnd::Revoked.reason()));
        }
        Ok(())
    }

    fn on_push(&mut self, pushed: Option<Outbound>) -> Result<(), End> {
        let Some(push) = pushed else {
            return Err(End::Close(CloseCode::Away, "hub closed"));
        };
        let mut next = Some(push);
        while let Some(push) = next.take() {
            if push
                .after_reply
                .is_some_and(|request| self.unanswered.contains(&request))
            {
                self.parked = Some(push);
                break;
            }
            self.queue(text(push.frame))?;
            if self.writer_has_room_for_pushes() {
                next = self.outbox.try_recv();
            }
        }
        Ok(())
    }

    fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Result<(), End> {
        self.last_heard = Instant::now();
        match message {
            None => Err(End::Gone),
            Some(Ok(Message::Text(text))) => match parse_frame(text.as_bytes()) {
                Ok(frame) => {
                    self.next_request += 1;
                    let request = self.next_request;
                    self.unanswered.insert(request);
                    let mut event =
                        Event::from_frame(frame, self.hub.clone()).with_connection(self.connection.clone(), request);
                    if let Some(addr) = self.client_addr {
                        event.extensions_mut().insert(addr);
                    }
                    let mut answering = Box::pin(answer(self.events.clone(), event, request));
                    // Most events that need no I/O (a ping, a rejection by a
                    // layer) are done at their first poll: answered here,
                    // without the cost of a task. The others get a task of
                    // their own, so the query runs to its end and frees its
                    // pool connection however slowly the peer reads. A future
                    // first polled with a no-op waker registers its real
                    // waker when the task polls it again.
                    match answering.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                        Poll::Ready((request, frame)) => self.on_reply(request, frame),
                        Poll::Pending => {
                            self.tasks.spawn(answering);
                            Ok(())
                        }
                    }
                }
                Err(error) => self.queue(self::text(error.encode())),
            },
            Some(Ok(Message::Binary(_))) => {
                let error = EventError::bad_request("binary frames are not supported: send JSON text frames");
                self.queue(self::text(Reply::error(error).encode(None, None)))
            }
            // tungstenite queues the answers to pings itself; a flush sends them.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                self.writer.flush_soon();
                Ok(())
            }
            Some(Ok(Message::Close(_))) => {
                // Flushing sends our half of the closing handshake.
                self.writer.flush_soon();
                Err(End::Gone)
            }
            Some(Err(WsError::Capacity(_))) => Err(End::Close(CloseCode::Size, "message too big")),
            Some(Err(WsError::Utf8(_))) => Err(End::Close(CloseCode::Invalid, "text frame is not UTF-8")),
            Some(Err(err)) => {
                tracing::debug!(error = %err, connection = self.connection.id(), "websocket read failed");
                Err(End::Gone)
            }
        }
    }

    fn on_tick(&mut self) -> Result<(), End> {
        if self.last_heard.elapsed() >= self.config.idle_timeout {
            return Err(End::Close(CloseCode::Away, "idle timeout"));
        }
        self.writer.queue(Message::Ping(Bytes::new()));
        Ok(())
    }

    /// Whether pushes may move from the hub's queue to the writer's. Past a
    /// batch, or half the byte budget, they wait in the hub's queue, whose
    /// own bound is what closes a socket that falls behind on pushes.
    fn writer_has_room_for_pushes(&self) -> bool {
        self.writer.len() < WRITE_BATCH && self.writer.queued_bytes() < self.config.max_queued_bytes / 2
    }

    /// Queues a frame for the writer; a peer that lets more than the byte
    /// budget pile up is a slow consumer.
    fn queue(&mut self, message: Message) -> Result<(), End> {
        self.writer.queue(message);
        if self.writer.queued_bytes() > self.config.max_queued_bytes {
            tracing::debug!(
                connection = self.connection.id(),
                "byte budget exceeded: closing a slow consumer"
            );
            return Err(End::Close(
                CloseCode::Again,
                "slow consumer: too much waiting to be written",
            ));
        }
        Ok(())
    }

    /// Ends the socket: sends what is due and the close frame (within the
    /// write timeout: a slow peer may still read it), or nothing when the
    /// peer is gone or already timed out.
    async fn finish(mut self, end: End) {
        let (code, reason) = match end {
            End::Gone => {
                // The answer to the peer's close frame, if tungstenite queued one.
                let _ = tokio::time::timeout(CLOSE_DRAIN, self.writer.drive()).await;
                return;
            }
            End::Stalled => return,
            End::Close(code, reason) => (code, reason),
        };
        // Nothing more for credentials that ended, and nothing a slow
        // consumer would only fall further behind on.
        if matches!(code, CloseCode::Policy | CloseCode::Again) {
            self.writer.discard_queued();
        }
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        self.writer.queue(Message::Close(Some(frame)));
        // Shutdown does not wait on slow peers: the server has its own drain bound.
        let patience = if code == CloseCode::Away {
            CLOSE_DRAIN
        } else {
            self.config.write_timeout
        };
        let sent = tokio::time::timeout(patience, self.writer.drive()).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
        self.drain(Instant::now() + CLOSE_DRAIN).await;
    }

    /// Reads and discards whatever the peer still sends for a moment: closing
    /// a TCP socket with unread input makes the kernel send a reset, and the
    /// peer may lose our close frame.
    async fn drain(self, deadline: Instant) {
        let SocketState { mut stream, writer, .. } = self;
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(_))) => continue,
                // The frame layer gave up (oversized or broken input): drain raw bytes.
                Ok(Some(Err(_))) => break,
                Ok(None) | Err(_) => return,
            }
        }
        let Ok(mut ws) = writer.into_sink().reunite(stream) else {
            return;
        };
        // On the heap and only while closing: an array here would be part of
        // every socket task's state for its whole life.
        let mut scratch = vec![0u8; 4096];
        let raw = ws.get_mut();
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, raw.read(&mut scratch)).await {
            if n == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use channels_binding_core::{EventRouter, Principal, Revocation};
    use futures_util::SinkExt;
    use serde_json::json;
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;

    type Peer = WebSocketStream<DuplexStream>;

    fn events() -> EventRouter {
        EventRouter::new().on("demo.blob", || async { json!({ "blob": "x".repeat(2000) }) })
    }

    /// A socket over an in-memory pipe of `buffer` bytes each way; returns
    /// the peer's end and the socket's task.
    async fn socket(
        config: WebSocketConfig,
        identity: Identity,
        buffer: usize,
    ) -> (Peer, Hub, Connection, tokio::task::JoinHandle<()>) {
        let (ours, theirs) = tokio::io::duplex(buffer);
        let hub = Hub::new();
        let outbox = hub.connect(identity);
        let connection = outbox.connection().clone();
        let ws = WebSocketStream::from_raw_socket(ours, Role::Server, Some(config.tungstenite())).await;
        let task = tokio::spawn(
            Socket {
                ws,
                outbox,
                events: events(),
                hub: hub.clone(),
                config: Arc::new(config),
                shutdown: Shutdown::new(),
                client_addr: None,
            }
            .run(),
        );
        let peer = WebSocketStream::from_raw_socket(theirs, Role::Client, None).await;
        (peer, hub, connection, task)
    }

    async fn send_blobs(peer: &mut Peer, n: usize) {
        for _ in 0..n {
            peer.send(Message::text(r#"{"event":"demo.blob"}"#))
                .await
                .expect("send");
        }
    }

    /// Reads until the close frame; returns the replies seen and its code.
    async fn read_to_close(peer: &mut Peer) -> (usize, Option<CloseCode>) {
        let mut replies = 0;
        while let Some(message) = peer.next().await {
            match message {
                Ok(Message::Text(_)) => replies += 1,
                Ok(Message::Close(frame)) => return (replies, frame.map(|f| f.code)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (replies, None)
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_does_not_read_is_dropped_after_the_write_timeout() {
        let config = WebSocketConfig::default().write_timeout(Duration::from_secs(2));
        let (mut peer, _hub, _connection, task) = socket(config, Identity::anonymous(), 1024).await;
        let started = Instant::now();
        send_blobs(&mut peer, 8).await;
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the socket ends")
            .expect("no panic");
        let lived = started.elapsed();
        assert!(
            lived >= Duration::from_secs(2) && lived < Duration::from_secs(3),
            "{lived:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn replies_past_the_byte_budget_close_the_socket_with_1013() {
        let config = WebSocketConfig::default()
            .write_timeout(Duration::from_secs(60))
            .max_queued_bytes(8 * 1024);
        let (mut peer, _hub, _connection, task) = socket(config, Identity::anonymous(), 1024).await;
        send_blobs(&mut peer, 20).await;
        // Not reading for a while: replies pile up past the budget.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (replies, code) = read_to_close(&mut peer).await;
        assert_eq!(code, Some(CloseCode::Again));
        assert!(replies < 20, "the queued replies were dropped, not written: {replies}");
        task.await.expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_identity_closes_the_socket_with_1008() {
        let revocation = Revocation::new();
        let identity = Identity::from(Principal::new("7").revocable(revocation.clone()));
        let (mut peer, _hub, _connection, task) = socket(WebSocketConfig::default(), identity, 64 * 1024).await;
        send_blobs(&mut peer, 1).await;
        assert!(matches!(peer.next().await, Some(Ok(Message::Text(_)))));
        revocation.revoke();
        assert_eq!(read_to_close(&mut peer).await, (0, Some(CloseCode::Policy)));
        task.await.expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sign_in_on_the_socket_brings_its_expiry() {
        let (mut peer, hub, connection, task) =
            socket(WebSocketConfig::default(), Identity::anonymous(), 64 * 1024).await;
        let started = Instant::now();
        let principal = Principal::new("7").expires_at(SystemTime::now() + Duration::from_secs(5));
        hub.set_identity(&connection, Identity::from(principal));
        assert_eq!(read_to_close(&mut peer).await, (0, Some(CloseCode::Policy)));
        let lived = started.elapsed();
        assert!(
            lived >= Duration::from_secs(4) && lived < Duration::from_secs(6),
            "{lived:?}"
        );
        task.await.expect("no panic");
    }
}
