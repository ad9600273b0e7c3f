//! Hand-written baselines: what a competent engineer writes directly on axum
//! 0.8's WebSocket support, with none of the library's promises (no request
//! concurrency per socket, no reply-before-push ordering, no sequence
//! history, no permission filtering, no subscription bookkeeping).
//!
//! Each answers frames in the same shape as the library, so client work per
//! message is the same on both sides. They use the same per-socket buffer
//! sizes and message limit as the library's defaults (4 KiB read and write
//! buffers, 64 KiB messages), so memory figures compare like with like.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::routing::get;
use axum::serve::ListenerExt;
use serde_json::{Map, Value, json};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, broadcast};

use super::{BoxError, announce, stop_requested};
use crate::demo_data;

/// Closes a socket from which nothing arrived for this long (the library's
/// default idle timeout), so a vanished client never pins a task forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// Per-socket buffers and limits: the library's defaults.
const BUFFER: usize = 4 * 1024;
const MAX_MESSAGE: usize = 64 * 1024;

/// Pushes that may wait for one subscriber: the library's default queue.
const BROADCAST_CAPACITY: usize = 1024;

/// The epoch string of the broadcast baseline's pushes (same frame shape as
/// the library's; this server keeps no history, so it never changes).
const EPOCH: &str = "baseline";

fn upgrade(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(BUFFER)
        .write_buffer_size(BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
}

/// Serves `app` with TCP_NODELAY (as the library's accept loop does) until
/// the driver asks to stop.
async fn serve(listener: TcpListener, addr: SocketAddr, app: Router) -> Result<(), BoxError> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    announce(addr);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_requested())
        .await?;
    Ok(())
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A parsed request: event name, data, request id.
struct Request {
    event: String,
    data: Value,
    request_id: Option<Value>,
}

/// Parses a frame the minimal way: any JSON object with a string `event`.
/// The error is the encoded `bad_request` reply.
fn parse(text: &str) -> Result<Request, String> {
    let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(text) else {
        return Err(error_frame(None, "bad_request", "frame is not a JSON object", None));
    };
    let request_id = frame.remove("request_id");
    let Some(Value::String(event)) = frame.remove("event") else {
        return Err(error_frame(
            None,
            "bad_request",
            "`event` must be a string",
            request_id.as_ref(),
        ));
    };
    let data = frame.remove("data").unwrap_or_else(|| Value::Object(Map::new()));
    Ok(Request {
        event,
        data,
        request_id,
    })
}

fn reply_frame(event: &str, data: Value, request_id: Option<&Value>, extra: &[(&str, Value)]) -> String {
    let mut frame = Map::new();
    frame.insert("event".to_owned(), Value::String(event.to_owned()));
    frame.insert("data".to_owned(), data);
    if let Some(id) = request_id {
        frame.insert("request_id".to_owned(), id.clone());
    }
    for (key, value) in extra {
        frame.insert((*key).to_owned(), value.clone());
    }
    Value::Object(frame).to_string()
}

fn error_frame(event: Option<&str>, code: &str, message: &str, request_id: Option<&Value>) -> String {
    let mut frame = Map::new();
    frame.insert(
        "event".to_owned(),
        event.map_or(Value::Null, |e| Value::String(e.to_owned())),
    );
    frame.insert("error".to_owned(), json!({"code": code, "message": message}));
    if let Some(id) = request_id {
        frame.insert("request_id".to_owned(), id.clone());
    }
    Value::Object(frame).to_string()
}

/// The next text frame, or `None` when the socket closed, broke or idled out.
/// Pings are answered by tungstenite itself.
async fn next_text(socket: &mut WebSocket) -> Option<Utf8Bytes> {
    loop {
        match tokio::time::timeout(IDLE_TIMEOUT, socket.recv()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(text),
            Ok(Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) | Err(_) => return None,
        }
    }
}

// ---------------------------------------------------------------------------
// baseline-echo

/// `baseline-echo`: parses each text frame to a `serde_json::Value` and sends
/// back `{"event": <event>, "data": {"pong": true, "time": .., "message": "Hi"}}`.
pub(super) async fn echo(listener: TcpListener, addr: SocketAddr) -> Result<(), BoxError> {
    let app = Router::new().route(
        "/",
        get(|ws: WebSocketUpgrade| async move { upgrade(ws).on_upgrade(echo_socket) }),
    );
    serve(listener, addr, app).await
}

fn pong() -> Value {
    json!({"pong": true, "time": unix_secs(), "message": "Hi"})
}

async fn echo_socket(mut socket: WebSocket) {
    while let Some(text) = next_text(&mut socket).await {
        let reply = match parse(&text) {
            Ok(request) => reply_frame(&request.event, pong(), request.request_id.as_ref(), &[]),
            Err(error) => error,
        };
        if socket.send(Message::Text(reply.into())).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// baseline-retrieve

/// The columns `auth.User.retrieve` reads (the binding's readable fields).
const SELECT_USER: &str = "SELECT id, username, email, is_staff, date_joined FROM auth_user WHERE id = ?";

/// One row of [`SELECT_USER`].
type UserRow = (i64, String, String, bool, String);

/// `baseline-retrieve`: `auth.User.retrieve {id}` answered by one
/// hand-written `SELECT` on an in-memory SQLite database holding the demo's
/// schema and rows (the quickstart's own `demo_data`, so they cannot drift).
pub(super) async fn retrieve(listener: TcpListener, addr: SocketAddr) -> Result<(), BoxError> {
    // An in-memory database lives as long as its one connection, so the pool
    // holds exactly one, forever (as the quickstart does).
    let options: SqliteConnectOptions = "sqlite::memory:".parse()?;
    let pool = SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await?;
    demo_data::install(&channels_binding::models::Database::from(pool.clone())).await?;
    let app = Router::new()
        .route(
            "/",
            get(|State(pool): State<SqlitePool>, ws: WebSocketUpgrade| async move {
                upgrade(ws).on_upgrade(move |socket| retrieve_socket(socket, pool))
            }),
        )
        .with_state(pool);
    serve(listener, addr, app).await
}

async fn retrieve_socket(mut socket: WebSocket, pool: SqlitePool) {
    while let Some(text) = next_text(&mut socket).await {
        let reply = match parse(&text) {
            Ok(request) => answer_retrieve(&pool, request).await,
            Err(error) => error,
        };
        if socket.send(Message::Text(reply.into())).await.is_err() {
            return;
        }
    }
}

async fn answer_retrieve(pool: &SqlitePool, request: Request) -> String {
    let rid = request.request_id.as_ref();
    let event = request.event.as_str();
    if event != "auth.User.retrieve" {
        return error_frame(Some(event), "unknown_event", "no such event", rid);
    }
    let Some(id) = request.data.get("id").and_then(Value::as_i64) else {
        return error_frame(Some(event), "validation", "`id` must be an integer", rid);
    };
    let row: Result<Option<UserRow>, _> = sqlx::query_as(SELECT_USER).bind(id).fetch_optional(pool).await;
    match row {
        Ok(Some((id, username, email, is_staff, date_joined))) => {
            let user = json!({"id": id, "username": username, "email": email, "is_staff": is_staff, "date_joined": date_joined});
            // The library's reply also names the stream position; keep the
            // same bytes shape.
            reply_frame(event, user, rid, &[("epoch", json!(EPOCH)), ("seq", json!(0))])
        }
        Ok(None) => error_frame(Some(event), "not_found", "no such object", rid),
        Err(_) => error_frame(Some(event), "unavailable", "database error", rid),
    }
}

// ---------------------------------------------------------------------------
// baseline-broadcast

/// The broadcast baseline's shared state: one channel for every subscriber,
/// and the sequence counter (under a lock, so pushes leave in seq order).
struct Broadcast {
    tx: broadcast::Sender<Utf8Bytes>,
    seq: Mutex<u64>,
}

/// `baseline-broadcast`: `auth.User.subscribe` joins one tokio broadcast
/// channel; `auth.User.update {id, username}` answers the writer and
/// serializes the updated object once into a push that every subscriber's
/// task forwards. No database, no permission check, no history.
pub(super) async fn broadcast(listener: TcpListener, addr: SocketAddr) -> Result<(), BoxError> {
    let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
    let state = Arc::new(Broadcast { tx, seq: Mutex::new(0) });
    let app = Router::new()
        .route(
            "/",
            get(|State(state): State<Arc<Broadcast>>, ws: WebSocketUpgrade| async move {
                upgrade(ws).on_upgrade(move |socket| broadcast_socket(socket, state))
            }),
        )
        .with_state(state);
    serve(listener, addr, app).await
}

async fn broadcast_socket(mut socket: WebSocket, state: Arc<Broadcast>) {
    let mut pushes: Option<broadcast::Receiver<Utf8Bytes>> = None;
    loop {
        let next_push = async {
            match pushes.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            push = next_push => match push {
                Ok(frame) => {
                    if socket.send(Message::Text(frame)).await.is_err() {
                        return;
                    }
                }
                // Fell behind the channel: close as the library does (1013),
                // never skip silently.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let frame = CloseFrame { code: close_code::AGAIN, reason: Utf8Bytes::from_static("slow consumer") };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            text = next_text(&mut socket) => {
                let Some(text) = text else { return };
                let reply = match parse(&text) {
                    Ok(request) => answer_broadcast(&state, request, &mut pushes).await,
                    Err(error) => error,
                };
                if socket.send(Message::Text(reply.into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn answer_broadcast(
    state: &Broadcast,
    request: Request,
    pushes: &mut Option<broadcast::Receiver<Utf8Bytes>>,
) -> String {
    let rid = request.request_id.as_ref();
    let event = request.event.as_str();
    match event {
        "auth.User.subscribe" => {
            if pushes.is_none() {
                *pushes = Some(state.tx.subscribe());
            }
            reply_frame(event, json!({"subscribed": "auth.User"}), rid, &[])
        }
        "auth.User.update" => {
            let id = request.data.get("id").and_then(Value::as_i64);
            let username = request.data.get("username").and_then(Value::as_str);
            let (Some(id), Some(username)) = (id, username) else {
                return error_frame(Some(event), "validation", "`id` and `username` are required", rid);
            };
            // The demo's admin row with the new name: the object the library
            // would push.
            let user = json!({
                "id": id,
                "username": username,
                "email": "admin@admin.com",
                "is_staff": true,
                "date_joined": "2024-01-25T12:00:00.000Z",
            });
            {
                let mut seq = state.seq.lock().await;
                *seq += 1;
                let push = reply_frame(
                    &format!("auth.User.updated#{id}"),
                    user.clone(),
                    None,
                    &[("seq", json!(*seq)), ("epoch", json!(EPOCH))],
                );
                // Serialized once; every subscriber gets a clone of the bytes.
                // No receiver is not an error: nobody is listening yet.
                let _ = state.tx.send(Utf8Bytes::from(push));
            }
            reply_frame(event, user, rid, &[])
        }
        _ => error_frame(Some(event), "unknown_event", "no such event", rid),
    }
}
