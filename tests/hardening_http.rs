//! Hostile HTTP clients against the real quickstart process: silent and
//! half-sent connections, huge and slow bodies, idle keep-alives, a flood of
//! idle connections under a low open-file limit, NUL and empty text, the
//! rate limit's `Retry-After`, ids decoded once, and the docs' links.
//!
//! Timeouts are set short through the settings, so each case takes at most
//! a few seconds; bounds are generous on the slow side for a loaded machine.

// Test set-up may unwrap: a panic here is a failed test with its location.
#![allow(clippy::unwrap_used)]

mod common;
mod pg_schema;
mod quickstart_process_harness;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quickstart_process_harness::{Quickstart, quickstart_binary};
use serde_json::Value;

/// The longest any case waits for something the server should do.
const PATIENCE: Duration = Duration::from_secs(8);

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads until the server closes the connection; returns how long that took
/// and what arrived first. Panics if it stays open for [`PATIENCE`].
fn wait_for_close(stream: &mut TcpStream) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (start.elapsed(), received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                return (start.elapsed(), received);
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "still open after {PATIENCE:?}; received {:?}",
                    String::from_utf8_lossy(&received)
                )
            }
            Err(err) => panic!("read failed: {err}"),
        }
    }
}

/// A parsed response.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads one response framed by `Content-Length` (every response here is).
fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let mut byte = [0_u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a response head");
        assert_eq!(n, 1, "closed in the head: {:?}", String::from_utf8_lossy(&raw));
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0_u8; length];
    stream.read_exact(&mut body).unwrap();
    Response { status, headers, body }
}

/// One request on its own connection.
fn request(addr: &str, method: &str, path: &str, body: &str) -> Response {
    let mut stream = connect(addr);
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut stream)
}

fn start(env: &[(&str, &str)]) -> Quickstart {
    Quickstart::start(env)
}

// ---- timeouts ----

#[test]
fn a_silent_connection_is_closed_after_the_header_timeout() {
    let server = start(&[("CHANNELS_BINDING_HEADER_TIMEOUT", "500ms")]);
    let mut silent = connect(&server.addr);
    let (after, received) = wait_for_close(&mut silent);
    assert!(after >= Duration::from_millis(400), "closed too early: {after:?}");
    assert!(received.is_empty());
    // The server goes on serving.
    assert_eq!(request(&server.addr, "GET", "/api/auth.User/5763", "").status, 200);
}

#[test]
fn half_sent_and_dripping_headers_are_closed_after_the_header_timeout() {
    let server = start(&[
        ("CHANNELS_BINDING_HEADER_TIMEOUT", "500ms"),
        ("CHANNELS_BINDING_KEEP_ALIVE_TIMEOUT", "30s"),
    ]);
    let mut half = connect(&server.addr);
    half.write_all(b"GET /api/auth.User/5763 HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (after, _) = wait_for_close(&mut half);
    assert!(after >= Duration::from_millis(400), "closed too early: {after:?}");

    // One header byte every 100 ms keeps the socket busy but never ends the
    // head: the timeout runs from the first byte, not from the last.
    let mut drip = connect(&server.addr);
    let start = Instant::now();
    let head = b"GET /api/auth.User/5763 HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain(std::iter::repeat(&b'a'));
    // A write fails once the server's close (and its reset) came back.
    let closed_after = head
        .take(80)
        .find_map(|byte| {
            std::thread::sleep(Duration::from_millis(100));
            drip.write_all(&[*byte]).is_err().then(|| start.elapsed())
        })
        .unwrap_or_else(|| panic!("a dripping head stayed open for {:?}", start.elapsed()));
    assert!(closed_after < Duration::from_secs(4), "closed after {closed_after:?}");
}

#[test]
fn a_declared_10_gb_body_is_refused_at_once() {
    // The default body timeout (30 s): the refusal does not wait for it.
    let server = start(&[]);
    for path in ["/", "/api/auth.User"] {
        let mut stream = connect(&server.addr);
        let start = Instant::now();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10737418240\r\n\r\n{{"
        )
        .unwrap();
        let response = read_response(&mut stream);
        assert_eq!(response.status, 413, "{path}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "answered after {:?}",
            start.elapsed()
        );
        let error = if path == "/" {
            response.json()["error"].clone()
        } else {
            response.json()
        };
        assert_eq!(error["code"], "payload_too_large", "{path}");
        // The rest of the body is not waited for: the connection ends.
        wait_for_close(&mut stream);
    }
}

#[test]
fn a_half_sent_body_is_cut_at_the_body_timeout() {
    let server = start(&[("CHANNELS_BINDING_BODY_TIMEOUT", "500ms")]);
    let mut stream = connect(&server.addr);
    let start = Instant::now();
    stream
        .write_all(b"POST /api/auth.User HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"username\":")
        .unwrap();
    let response = read_response(&mut stream);
    let after = start.elapsed();
    assert_eq!(response.status, 408);
    assert_eq!(response.json()["code"], "bad_request");
    assert!(after >= Duration::from_millis(400), "answered too early: {after:?}");
    wait_for_close(&mut stream);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let server = start(&[
        ("CHANNELS_BINDING_HEADER_TIMEOUT", "300ms"),
        ("CHANNELS_BINDING_KEEP_ALIVE_TIMEOUT", "1500ms"),
    ]);
    let mut stream = connect(&server.addr);
    let get = b"GET /api/auth.User/5763 HTTP/1.1\r\nhost: x\r\n\r\n";
    stream.write_all(get).unwrap();
    assert_eq!(read_response(&mut stream).status, 200);
    // Idle for longer than the header timeout: the keep-alive one applies.
    std::thread::sleep(Duration::from_millis(800));
    stream.write_all(get).unwrap();
    assert_eq!(read_response(&mut stream).status, 200);
    let (after, received) = wait_for_close(&mut stream);
    assert!(after >= Duration::from_millis(1300), "closed too early: {after:?}");
    assert!(received.is_empty());
}

#[tokio::test]
async fn websockets_and_sse_feeds_outlive_the_http_timeouts() {
    let server = tokio::task::spawn_blocking(|| {
        start(&[
            ("CHANNELS_BINDING_HEADER_TIMEOUT", "300ms"),
            ("CHANNELS_BINDING_KEEP_ALIVE_TIMEOUT", "300ms"),
        ])
    })
    .await
    .unwrap();
    let addr = server.addr.parse().unwrap();
    let mut ws = common::Client::connect(addr).await;
    let mut feed = common::Sse::open(addr, "/api/auth.User/events", &[]).await;
    // Quiet for several times both timeouts: an upgraded socket and a feed
    // in flight are not idle HTTP connections.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reply = ws.call(serde_json::json!({"event": "simple_reflexion.ping"})).await;
    assert_eq!(reply["data"]["pong"], true);
    let saved = ws
        .call(serde_json::json!({"event": "auth.User.save", "data": {"id": 5763, "username": "Still here"}}))
        .await;
    assert_eq!(saved["data"]["success"], true, "{saved}");
    let (_, event, data) = feed.next_event().await;
    assert!(event.starts_with("auth.User."), "{event}");
    assert!(data.contains("Still here"), "{data}");
    drop(server);
}

// ---- the connection cap ----

/// The quickstart under an open-file limit of 128, as `prlimit` starts it.
struct Limited {
    child: Child,
    addr: String,
}

impl Limited {
    fn start() -> Self {
        let mut child = Command::new("prlimit")
            .arg("--nofile=128:128")
            .arg("--")
            .arg(quickstart_binary())
            .env_clear()
            .env("CHANNELS_BINDING_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("prlimit runs the quickstart");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on http://").unwrap().to_owned();
        Self { child, addr }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn idle_connections_beyond_the_open_file_limit_do_not_lock_clients_out() {
    let server = Limited::start();
    // More idle connections than the process has descriptors: without a cap
    // below the limit, accept fails (EMFILE) and nobody else gets in.
    let mut idle: Vec<TcpStream> = (0..150).map(|_| connect(&server.addr)).collect();
    let start = Instant::now();
    let mut served = connect(&server.addr);
    served
        .write_all(b"GET /api/auth.User/5763 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let response = read_response(&mut served);
    assert_eq!(response.status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "served after {:?}",
        start.elapsed()
    );
    // Room was made by closing the connections idle the longest.
    let (after, _) = wait_for_close(&mut idle[0]);
    assert!(after < Duration::from_secs(3));
}

// ---- input ----

/// NUL in a search, in a written text field, and `""` for a required one:
/// `validation` with the field named, and nothing written.
fn text_input_is_validated(addr: &str) {
    let search = request(addr, "GET", "/api/auth.User?query=%00", "");
    assert_eq!(search.status, 422, "{}", String::from_utf8_lossy(&search.body));
    assert_eq!(search.json()["code"], "validation");
    assert!(search.json()["fields"]["query"].is_array());

    let frame = request(
        addr,
        "POST",
        "/",
        r#"{"event":"auth.User.search","data":{"query":"a\u0000"}}"#,
    );
    assert_eq!(frame.status, 422);
    assert_eq!(frame.json()["error"]["code"], "validation");

    for body in [
        r#"{"username":"a\u0000b"}"#,
        r#"{"email":"\u0000"}"#,
        r#"{"username":""}"#,
    ] {
        let patch = request(addr, "PATCH", "/api/auth.User/5763", body);
        assert_eq!(patch.status, 422, "{body}: {}", String::from_utf8_lossy(&patch.body));
        assert_eq!(patch.json()["code"], "validation", "{body}");
    }
    let create = request(
        addr,
        "POST",
        "/api/auth.User",
        r#"{"username":"","email":"new@example.com"}"#,
    );
    assert_eq!(create.status, 422);
    assert_eq!(create.json()["fields"]["username"][0], "may not be empty");

    // A sign-in with NUL in it is refused as input, not as a database error
    // (PostgreSQL answered 503 here).
    let login = request(
        addr,
        "POST",
        "/",
        r#"{"event":"auth.login","data":{"username":"\u0000","password":"demo"}}"#,
    );
    assert_eq!(login.status, 422, "{}", String::from_utf8_lossy(&login.body));
    assert_eq!(login.json()["error"]["code"], "validation");

    let unchanged = request(addr, "GET", "/api/auth.User/5763", "").json();
    assert_eq!(unchanged["username"], "Admin");
    assert_eq!(unchanged["email"], "admin@admin.com");
}

#[test]
fn nul_and_empty_text_are_validation_on_sqlite() {
    let server = start(&[]);
    text_input_is_validated(&server.addr);
}

#[tokio::test]
async fn nul_and_empty_text_are_validation_on_postgres() {
    let Some((admin, name, url)) = pg_schema::schema().await else {
        return;
    };
    let server = tokio::task::spawn_blocking(move || start(&[("CHANNELS_BINDING_DATABASE_URL", &url)]))
        .await
        .unwrap();
    let addr = server.addr.clone();
    tokio::task::spawn_blocking(move || text_input_is_validated(&addr))
        .await
        .unwrap();
    drop(server);
    sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}

// ---- rate limit, routing ----

#[test]
fn every_429_says_when_to_retry() {
    let server = start(&[
        ("CHANNELS_BINDING_RATE_LIMIT_PER_SECOND", "1"),
        ("CHANNELS_BINDING_RATE_LIMIT_BURST", "1"),
    ]);
    let ping = r#"{"event":"simple_reflexion.ping"}"#;
    let mut limited = Vec::new();
    for (method, path, body) in [("POST", "/", ping); 4]
        .into_iter()
        .chain([("GET", "/api/auth.User/5763", ""); 4])
    {
        let response = request(&server.addr, method, path, body);
        if response.status == 429 {
            limited.push(path);
            let retry_after: u64 = response
                .header("retry-after")
                .unwrap_or_else(|| panic!("{method} {path}: 429 without Retry-After"))
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry_after), "{retry_after}");
        }
    }
    // A burst of one a second: most of the eight are over, on both paths.
    assert!(
        limited.contains(&"/") && limited.contains(&"/api/auth.User/5763"),
        "{limited:?}"
    );
}

#[test]
fn path_segments_are_decoded_once() {
    let server = start(&[]);
    assert_eq!(
        request(&server.addr, "POST", "/api/simple_reflexion/ping", "").status,
        200
    );
    // `%2569` is `%69` once decoded, `i` only if decoded twice.
    let twice = request(&server.addr, "POST", "/api/simple_reflexion/p%2569ng", "");
    assert_eq!(twice.status, 404, "{}", String::from_utf8_lossy(&twice.body));
    assert_eq!(twice.json()["code"], "unknown_event");
}

// ---- documents ----

/// Relative link targets of a Markdown text: `](target)`, without the
/// `#fragment`, skipping URLs and same-page anchors.
fn relative_links(markdown: &str) -> Vec<String> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target.trim()))
        .map(|target| target.split_once('#').map_or(target, |(path, _)| path))
        .filter(|target| !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_relative_link_of_the_docs_resolves() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for contract in ["docs/PROTOCOL.md", "docs/DEMO.md"] {
        assert!(root.join(contract).is_file(), "{contract} is in the repository");
    }
    let mut documents = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "md") {
            documents.push(path);
        }
    }
    let mut checked = 0;
    for document in &documents {
        let text = std::fs::read_to_string(document).unwrap();
        let dir = document.parent().unwrap_or(Path::new("."));
        for target in relative_links(&text) {
            assert!(
                dir.join(&target).exists(),
                "{} links to {target}, which is not in the repository",
                document.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "the README links to docs/PROTOCOL.md and docs/DEMO.md");
}
