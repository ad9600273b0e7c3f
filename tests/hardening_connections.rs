//! Hostile and ending connections against the quickstart process: a client
//! that floods requests and never reads must not stall anyone else, and a
//! connection lives no longer than its credentials (token expiry, sign-out).

mod common;
mod quickstart_process_harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use channels_binding::jwt::TokenIssuer;
use common::{Client, http};
use futures_util::StreamExt;
use quickstart_process_harness::Quickstart;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECRET: &str = "a-demo-secret-of-at-least-32-bytes!!";

/// The default `WebSocketConfig::write_timeout` the quickstart runs with.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

async fn start(env: &[(&'static str, &'static str)]) -> (Quickstart, SocketAddr) {
    let env = env.to_vec();
    let server = tokio::task::spawn_blocking(move || Quickstart::start(&env))
        .await
        .expect("start the quickstart");
    let addr = server.addr.parse().expect("a socket address");
    (server, addr)
}

/// One masked client text frame (RFC 6455 §5.2) with an all-zero mask, so
/// the payload goes out as is.
fn client_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | u8::try_from(len).expect("short")),
        len => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(len).expect("under 64 KiB").to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// A WebSocket opened by hand over a TCP socket with a 4 KiB receive buffer,
/// whose reading half is then never read.
async fn non_reading_socket(addr: SocketAddr) -> (tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(addr).await.expect("connect");
    let (read, mut write) = tcp.into_split();
    write
        .write_all(
            format!(
                "GET / HTTP/1.1\r\nhost: {addr}\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
                 sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("handshake");
    // Read the 101 head only, line by line, so that no frame is consumed.
    let mut head = BufReader::with_capacity(1, read);
    let mut status = String::new();
    head.read_line(&mut status).await.expect("status line");
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    loop {
        let mut line = String::new();
        head.read_line(&mut line).await.expect("header line");
        if line == "\r\n" {
            break;
        }
    }
    (head.into_inner(), write)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::test]
async fn a_client_that_never_reads_stalls_nobody_and_is_closed() {
    let (server, addr) = start(&[]).await;
    let (_unread, mut write) = non_reading_socket(addr).await;
    let ids: Vec<u32> = (1..=100).collect();
    let flood = client_text_frame(
        json!({"event": "auth.User.retrieve", "data": {"id": ids}})
            .to_string()
            .as_bytes(),
    );
    let started = Instant::now();
    // The server closes it for its byte budget or a write timeout, then
    // gives the close frame one more write timeout: this bounds it.
    let bound = 2 * WRITE_TIMEOUT + Duration::from_secs(5);
    // Floods until the server drops the connection (a write then fails).
    let flooder = tokio::spawn(async move {
        let deadline = started + bound;
        let mut sent = 0u32;
        while Instant::now() < deadline {
            let frame = if sent < 3000 {
                &flood[..]
            } else {
                &client_text_frame(b"{}")[..]
            };
            match tokio::time::timeout(Duration::from_millis(200), write.write_all(frame)).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(_)) => return Some((started.elapsed(), sent)),
                // The server stopped reading: keep trying until it hangs up.
                Err(_) => {}
            }
            if sent >= 3000 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        None
    });
    // Let the flood fill every buffer on the way.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut latencies = Vec::new();
    for round in 0..30 {
        let asked = Instant::now();
        let reply = tokio::time::timeout(
            Duration::from_secs(3),
            http(addr, "GET", &format!("/api/auth.User/{}", round % 100 + 1), &[], ""),
        )
        .await
        .expect("a REST answer within 3 s while a client does not read");
        latencies.push(asked.elapsed());
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let asked = Instant::now();
    let mut other = Client::connect(addr).await;
    let reply = other
        .call(json!({"event": "auth.User.retrieve", "data": {"id": 5763}}))
        .await;
    let socket_latency = asked.elapsed();
    assert_eq!(reply["data"]["username"], "Admin", "{reply}");
    let ready = http(addr, "GET", "/ready", &[], "").await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    latencies.sort();
    eprintln!(
        "second client while one floods without reading: REST p50 {:?}, p99 {:?} (n={}); new socket + retrieve {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len(),
        socket_latency,
    );
    assert!(percentile(&latencies, 0.99) < Duration::from_secs(2), "{latencies:?}");

    let closed = flooder.await.expect("the flooder");
    let (after, sent) = closed.expect("the server hangs up on a client that never reads");
    eprintln!("non-reader closed after {after:?}, {sent} frames sent");
    assert!(after < bound, "{after:?}");
    drop(server);
}

fn token(user: &str, lifetime: Duration) -> String {
    TokenIssuer::new(SECRET.as_bytes())
        .expect("issuer")
        .issue(user, lifetime)
        .expect("token")
}

/// Reads an SSE response until the server ends it (the last chunk of the
/// chunked body, or EOF); returns what came and when it ended.
async fn read_until_ended(tcp: &mut TcpStream, within: Duration) -> Option<(Instant, String)> {
    let deadline = Instant::now() + within;
    let mut seen = String::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some((Instant::now(), seen)),
            Ok(Ok(n)) => {
                seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
                if seen.ends_with("\r\n0\r\n\r\n") {
                    return Some((Instant::now(), seen));
                }
            }
        }
    }
}

async fn open_sse(addr: SocketAddr, path: &str, header: (&str, &str)) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n{}: {}\r\n\r\n",
        header.0, header.1
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    tcp
}

#[tokio::test]
async fn an_sse_feed_ends_when_its_token_expires() {
    let (server, addr) = start(&[("CHANNELS_BINDING_JWT_SECRET", SECRET)]).await;
    let issued = Instant::now();
    // `exp` counts whole seconds: this token expires 1 to 2 s from now.
    let bearer = format!("Bearer {}", token("1", Duration::from_secs(2)));
    let mut feed = open_sse(addr, "/api/notes.Note/events", ("authorization", &bearer)).await;
    let (ended, seen) = read_until_ended(&mut feed, Duration::from_secs(5))
        .await
        .expect("the server ends a feed whose token expired");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains(": connected"), "{seen}");
    let lived = ended - issued;
    assert!(
        lived >= Duration::from_millis(900) && lived <= Duration::from_secs(3),
        "ended {lived:?} after the token was issued"
    );
    drop(server);
}

/// Signs in over HTTP; returns the `name=value` of the session cookie.
async fn sign_in(addr: SocketAddr, username: &str) -> String {
    let body = json!({"event": "auth.login", "data": {"username": username, "password": "demo"}}).to_string();
    let login = http(addr, "POST", "/", &[], &body).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let set_cookie = login.header("set-cookie").expect("a session cookie");
    set_cookie.split(';').next().expect("name=value").to_owned()
}

async fn socket_with_cookie(addr: SocketAddr, cookie: &str) -> Client {
    let mut request = format!("ws://{addr}/").into_client_request().expect("request");
    request
        .headers_mut()
        .insert("cookie", http::HeaderValue::from_str(cookie).expect("cookie"));
    let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
    Client { ws }
}

/// Frames up to the close; the close code (None for a close without one).
async fn frames_until_close(ws: &mut Client, within: Duration) -> (Vec<Value>, Option<CloseCode>) {
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.ws.next())
            .await
            .expect("the server closes the socket in time")
        {
            Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(&text).expect("JSON")),
            Some(Ok(Message::Close(frame))) => return (frames, frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (frames, None),
        }
    }
}

#[tokio::test]
async fn signing_out_ends_the_sockets_and_feeds_of_that_session() {
    let (server, addr) = start(&[]).await;
    let cookie = sign_in(addr, "user1").await;

    let mut socket = socket_with_cookie(addr, &cookie).await;
    let subscribed = socket.call(json!({"event": "notes.Note.subscribe"})).await;
    assert!(subscribed.get("error").is_none(), "{subscribed}");
    let mut feed = open_sse(addr, "/api/notes.Note/events", ("cookie", &cookie)).await;
    let mut opened = String::new();
    while !opened.contains(": connected") {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(common::WAIT, feed.read(&mut chunk))
            .await
            .expect("the feed opens")
            .expect("read");
        assert!(n > 0, "the feed opens: {opened}");
        opened.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    assert!(opened.starts_with("HTTP/1.1 200"), "{opened}");
    // Another session of the same user, which signing out the first must not end.
    let other_cookie = sign_in(addr, "user1").await;
    let mut other = socket_with_cookie(addr, &other_cookie).await;
    assert!(
        other
            .call(json!({"event": "notes.Note.subscribe"}))
            .await
            .get("error")
            .is_none()
    );

    let signed_out = Instant::now();
    let logout = http(addr, "POST", "/", &[("cookie", &cookie)], r#"{"event":"auth.logout"}"#).await;
    assert_eq!(logout.status, 200, "{}", logout.body);

    let (frames, code) = frames_until_close(&mut socket, Duration::from_secs(1)).await;
    assert_eq!(code, Some(CloseCode::Policy));
    assert!(frames.is_empty(), "nothing after sign-out: {frames:?}");
    let ended = read_until_ended(&mut feed, Duration::from_secs(1)).await;
    assert!(ended.is_some(), "the feed of the signed-out session ends");
    assert!(
        signed_out.elapsed() < Duration::from_millis(1500),
        "{:?}",
        signed_out.elapsed()
    );

    // A note written now reaches the other session only.
    let created = http(
        addr,
        "POST",
        "/api/notes.Note",
        &[("cookie", &other_cookie)],
        r#"{"title":"after sign-out"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let push = other.recv().await;
    assert_eq!(push["data"]["title"], "after sign-out", "{push}");
    drop(server);
}

#[tokio::test]
async fn signing_out_on_the_socket_itself_keeps_it_open_as_anonymous() {
    let (server, addr) = start(&[]).await;
    let cookie = sign_in(addr, "user1").await;
    let mut socket = socket_with_cookie(addr, &cookie).await;
    assert_eq!(
        socket.call(json!({"event": "notes.Note.search"})).await["data"]["count"],
        1
    );
    assert_eq!(
        socket.call(json!({"event": "auth.logout"})).await["data"]["signed_out"],
        true
    );
    // Past the grace a revoked socket gets for its own requests.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        socket.call(json!({"event": "notes.Note.search"})).await["error"]["code"],
        "unauthenticated"
    );
    // And the cookie no longer opens anything.
    let refused = http(addr, "GET", "/api/notes.Note", &[("cookie", &cookie)], "").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    drop(server);
}
