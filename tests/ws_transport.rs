//! End-to-end tests of the WebSocket transport over real sockets.

mod common;

use std::time::Duration;

use channels_binding::hub::{HubConfig, Target};
use channels_binding::protocol::EventError;
use channels_binding::ws::{WebSocket, WebSocketConfig};
use channels_binding::{Data, EventRouter, Hub, Identity, Shutdown};
use common::{Client, spawn_server};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[derive(serde::Deserialize)]
struct Sleep {
    ms: u64,
}

async fn sleep(Data(sleep): Data<Sleep>) -> Value {
    tokio::time::sleep(Duration::from_millis(sleep.ms)).await;
    json!({ "slept": sleep.ms })
}

async fn shout(hub: Hub, Data(message): Data<Value>) -> Result<Value, EventError> {
    // Sent before the reply is returned: the transport must still write the
    // reply first on the sender's socket.
    hub.broadcast("chat.message", &message)
        .map_err(|_| EventError::internal())?;
    Ok(json!({ "sent": true }))
}

async fn follow(hub: Hub, connection: Option<channels_binding::hub::Connection>) -> Result<Value, EventError> {
    let connection = connection.ok_or_else(|| EventError::bad_request("needs a socket"))?;
    hub.subscribe(&connection, "demo.Thing", Target::Feed, None)
        .map_err(|err| EventError::payload_too_large(err.to_string()))?;
    Ok(json!({ "subscribed": "demo.Thing" }))
}

fn router() -> EventRouter {
    EventRouter::new()
        .on("demo.echo", |Data(data): Data<Value>| async move { data })
        .on("demo.sleep", sleep)
        .on("chat.shout", shout)
        .on("demo.follow", follow)
        .on("demo.whoami", |identity: Identity| async move {
            json!({ "anonymous": identity.is_anonymous() })
        })
        .on("demo.whereami", |addr: Option<channels_binding::ClientAddr>| async move {
            json!({ "ip": addr.map(|a| a.0.ip().to_string()) })
        })
}

async fn server(config: WebSocketConfig, hub: Hub) -> (std::net::SocketAddr, Shutdown) {
    let shutdown = Shutdown::new();
    let service = WebSocket::new(router(), hub).config(config).shutdown(shutdown.clone());
    (spawn_server(service, shutdown.clone()).await, shutdown)
}

#[tokio::test]
async fn replies_echo_event_and_request_id() {
    let (addr, _shutdown) = server(WebSocketConfig::default(), Hub::new()).await;
    let mut client = Client::connect(addr).await;
    let reply = client
        .call(json!({"event": "demo.echo#x", "data": {"a": 1}, "request_id": "r-1"}))
        .await;
    assert_eq!(
        reply,
        json!({"event": "demo.echo#x", "data": {"a": 1}, "request_id": "r-1"})
    );
    let reply = client.call(json!({"event": "demo.whoami"})).await;
    assert_eq!(reply, json!({"event": "demo.whoami", "data": {"anonymous": true}}));
    // The peer address of the upgrade request reaches every event.
    let reply = client.call(json!({"event": "demo.whereami"})).await;
    assert_eq!(reply["data"]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn bad_frames_get_bad_request_and_the_socket_stays_open() {
    let (addr, _shutdown) = server(WebSocketConfig::default(), Hub::new()).await;
    let mut client = Client::connect(addr).await;

    client.send_text("this is not json").await;
    assert_eq!(client.recv().await["error"]["code"], "bad_request");

    client.send_text("[1,2,3]").await;
    assert_eq!(client.recv().await["error"]["code"], "bad_request");

    client.send(json!({"data": {}, "request_id": 4})).await;
    let reply = client.recv().await;
    assert_eq!(reply["error"]["code"], "bad_request");
    assert_eq!(reply["request_id"], 4);

    client.send(json!({"event": "nodot"})).await;
    let reply = client.recv().await;
    assert_eq!(reply["event"], "nodot");
    assert_eq!(reply["error"]["code"], "bad_request");

    let deep = format!(
        r#"{{"event":"demo.echo","data":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    client.send_text(&deep).await;
    assert_eq!(client.recv().await["error"]["code"], "bad_request");

    client.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let reply = client.recv().await;
    assert_eq!(reply["error"]["code"], "bad_request");
    assert!(reply["error"]["message"].as_str().unwrap().contains("binary"));

    client.send(json!({"event": "nope.nothing"})).await;
    assert_eq!(client.recv().await["error"]["code"], "unknown_event");

    // Still alive and answering.
    let reply = client.call(json!({"event": "demo.echo", "data": 1})).await;
    assert_eq!(reply["data"], 1);
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let config = WebSocketConfig::default().max_message_size(1024);
    let (addr, _shutdown) = server(config, Hub::new()).await;
    let mut client = Client::connect(addr).await;
    let big = json!({"event": "demo.echo", "data": "x".repeat(4096)});
    client.send(big).await;
    assert_eq!(client.close_code().await, Some(CloseCode::Size));
}

#[tokio::test]
async fn requests_on_one_socket_run_concurrently() {
    let (addr, _shutdown) = server(WebSocketConfig::default(), Hub::new()).await;
    let mut client = Client::connect(addr).await;
    client
        .send(json!({"event": "demo.sleep", "data": {"ms": 2000}, "request_id": "slow"}))
        .await;
    client
        .send(json!({"event": "demo.echo", "data": "fast", "request_id": "fast"}))
        .await;
    // The fast reply overtakes the slow one.
    let first = client.recv().await;
    assert_eq!(first["request_id"], "fast");
    let second = client.recv().await;
    assert_eq!(second["request_id"], "slow");
}

#[tokio::test]
async fn concurrency_is_bounded_per_socket() {
    let config = WebSocketConfig::default().max_concurrent_requests(1);
    let (addr, _shutdown) = server(config, Hub::new()).await;
    let mut client = Client::connect(addr).await;
    client
        .send(json!({"event": "demo.sleep", "data": {"ms": 300}, "request_id": "slow"}))
        .await;
    client
        .send(json!({"event": "demo.echo", "data": "fast", "request_id": "fast"}))
        .await;
    // With one request at a time, the second waits for the first.
    assert_eq!(client.recv().await["request_id"], "slow");
    assert_eq!(client.recv().await["request_id"], "fast");
}

#[tokio::test]
async fn the_reply_reaches_the_sender_before_the_push_it_caused() {
    let (addr, _shutdown) = server(WebSocketConfig::default(), Hub::new()).await;
    let mut sender = Client::connect(addr).await;
    let mut other = Client::connect(addr).await;
    for round in 0..20 {
        sender
            .send(json!({"event": "chat.shout", "data": {"round": round}, "request_id": round}))
            .await;
        let first = sender.recv().await;
        assert_eq!(first["event"], "chat.shout", "round {round}: reply first, got {first}");
        assert_eq!(first["request_id"], round);
        let second = sender.recv().await;
        assert_eq!(second, json!({"event": "chat.message", "data": {"round": round}}));
        assert_eq!(
            other.recv().await,
            json!({"event": "chat.message", "data": {"round": round}})
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_with_1013_and_others_keep_receiving() {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(8));
    let (addr, _shutdown) = server(WebSocketConfig::default(), hub.clone()).await;
    let mut slow = Client::connect(addr).await;
    let mut healthy = Client::connect(addr).await;
    assert_eq!(
        slow.call(json!({"event": "demo.follow"})).await["data"]["subscribed"],
        "demo.Thing"
    );
    assert_eq!(
        healthy.call(json!({"event": "demo.follow"})).await["data"]["subscribed"],
        "demo.Thing"
    );

    // The slow client stops reading. Large pushes fill its TCP buffers and
    // then its bounded queue. The healthy one reads; the publisher never gets
    // more than four changes ahead of it, well inside its queue.
    let payload = "y".repeat(16 * 1024);
    let total = 2000u64;
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0u64);
    let healthy_task = tokio::spawn(async move {
        let mut seen = 0u64;
        while seen < total {
            let push = healthy.recv().await;
            seen += 1;
            assert_eq!(push["seq"], seen, "healthy consumer sees every change in order");
            let _ = progress_tx.send(seen);
        }
        seen
    });
    for i in 0..total {
        progress
            .wait_for(|seen| *seen + 4 >= i)
            .await
            .expect("healthy consumer alive");
        hub.publish(channels_binding::hub::Change::new(
            "demo.Thing",
            channels_binding::hub::ChangeKind::Updated,
            json!(i),
            json!({"id": i, "blob": payload}),
        ));
    }
    assert_eq!(healthy_task.await.unwrap(), total);
    assert_eq!(slow.close_code().await, Some(CloseCode::Again));
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let (addr, shutdown) = server(WebSocketConfig::default(), Hub::new()).await;
    let mut client = Client::connect(addr).await;
    assert_eq!(client.call(json!({"event": "demo.echo", "data": 1})).await["data"], 1);
    shutdown.trigger();
    assert_eq!(client.close_code().await, Some(CloseCode::Away));
    assert!(shutdown.wait(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn an_idle_socket_that_never_answers_is_closed() {
    let config = WebSocketConfig::default()
        .ping_interval(Duration::from_millis(100))
        .idle_timeout(Duration::from_millis(300));
    let (addr, _shutdown) = server(config, Hub::new()).await;
    // A raw TCP peer that completes the handshake and then never reads or
    // answers pings.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    // Wait past the idle timeout, then read everything: the server must have
    // sent a close frame (opcode 0x8) and ended the connection.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "server did not end the idle connection");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let body_start = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let frames = &received[body_start..];
    assert!(frames.contains(&0x88), "a close frame was sent: {frames:?}");
}

#[tokio::test]
async fn answering_pings_keeps_a_socket_open() {
    let config = WebSocketConfig::default()
        .ping_interval(Duration::from_millis(50))
        .idle_timeout(Duration::from_millis(200));
    let (addr, _shutdown) = server(config, Hub::new()).await;
    let mut client = Client::connect(addr).await;
    // Reading makes tungstenite answer pings; stay well past the idle timeout.
    client.expect_silence(Duration::from_millis(600)).await;
    assert_eq!(client.call(json!({"event": "demo.echo", "data": 2})).await["data"], 2);
}

#[tokio::test]
async fn plain_requests_get_426_and_malformed_upgrades_400() {
    let (addr, _shutdown) = server(WebSocketConfig::default(), Hub::new()).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (request, status) in [
        ("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "426"),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n\r\n",
            "400",
        ),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with(&format!("HTTP/1.1 {status}")), "{response}");
    }
}

#[tokio::test]
async fn connection_cap_refuses_with_503() {
    let config = WebSocketConfig::default().max_connections(1);
    let (addr, _shutdown) = server(config, Hub::new()).await;
    let _first = Client::connect(addr).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
}
