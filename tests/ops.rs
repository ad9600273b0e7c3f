//! The operations endpoints: the readiness probe's answers, the Prometheus
//! recorder and scrape endpoint, and the event metrics layer's labels.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use channels_binding::body::Body;
use channels_binding::ops::Readiness;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call<S>(service: S, method: &str, uri: &str) -> (Response<()>, String)
where
    S: tower::Service<Request<()>, Response = Response<Body>, Error = std::convert::Infallible>,
{
    let request = Request::builder().method(method).uri(uri).body(()).unwrap();
    let response = service.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes: Bytes = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn header<'a>(response: &'a Response<()>, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|value| value.to_str().unwrap())
}

/// Everything logged while the guard lives, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn ready_when_every_check_passes() {
    let ready = Readiness::new()
        .check("database", || async { Ok::<(), String>(()) })
        .check("channel_layer", || async { Ok::<(), io::Error>(()) });
    let (response, body) = call(ready, "GET", "/ready").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body,
        r#"{"status":"ready","checks":{"database":"ok","channel_layer":"ok"}}"#
    );
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn no_checks_is_ready() {
    let (response, body) = call(Readiness::new(), "GET", "/ready").await;
    assert_eq!(response.status(), 200);
    assert_eq!(body, r#"{"status":"ready","checks":{}}"#);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_check_is_unavailable_and_its_error_only_logged() {
    let (logs, _guard) = capture_logs();
    let ready = Readiness::new()
        .check("database", || async { Ok::<(), String>(()) })
        .check("channel_layer", || async {
            Err::<(), _>("connect to redis://admin:hunter2@10.0.0.7:6379 refused".to_owned())
        });
    let (response, body) = call(ready, "GET", "/ready").await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(
        body,
        r#"{"status":"unavailable","checks":{"database":"ok","channel_layer":"unavailable"}}"#
    );
    assert!(!body.contains("hunter2") && !body.contains("10.0.0.7"));
    let logged = logs.text();
    assert!(logged.contains("WARN"), "{logged}");
    assert!(
        logged.contains("channel_layer") && logged.contains("10.0.0.7:6379 refused"),
        "{logged}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_check_over_the_timeout_is_unavailable() {
    let ready = Readiness::new()
        .timeout(Duration::from_millis(100))
        .check("database", || async { Ok::<(), String>(()) })
        .check("channel_layer", || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), String>(())
        });
    let started = tokio::time::Instant::now();
    let (response, body) = call(ready, "GET", "/ready").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        body,
        r#"{"status":"unavailable","checks":{"database":"ok","channel_layer":"unavailable"}}"#
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_default_timeout_is_two_seconds_and_checks_run_concurrently() {
    let slow = || async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok::<(), String>(())
    };
    let ready = Readiness::new().check("a", slow).check("b", slow).check("c", slow);
    let started = tokio::time::Instant::now();
    let (response, _) = call(ready.clone(), "GET", "/ready").await;
    assert_eq!(response.status(), 200);
    // One after the other they would take 4.5 s, and each would still pass.
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    let too_slow = ready.check("b", || async {
        tokio::time::sleep(Duration::from_millis(2100)).await;
        Ok::<(), String>(())
    });
    let (response, body) = call(too_slow, "GET", "/ready").await;
    assert_eq!(response.status(), 503);
    // Replacing a check keeps its place.
    assert_eq!(
        body,
        r#"{"status":"unavailable","checks":{"a":"ok","b":"unavailable","c":"ok"}}"#
    );
}

#[tokio::test]
async fn a_panicking_check_is_unavailable() {
    let ready = Readiness::new().check("database", || async {
        if true {
            panic!("boom at 10.0.0.7");
        }
        Ok::<(), String>(())
    });
    let (response, body) = call(ready, "GET", "/ready").await;
    assert_eq!(response.status(), 503);
    assert_eq!(body, r#"{"status":"unavailable","checks":{"database":"unavailable"}}"#);
}

#[tokio::test]
async fn only_get_and_head() {
    let ready = Readiness::new().check("database", || async { Err::<(), _>("down") });
    let (response, body) = call(ready.clone(), "POST", "/ready").await;
    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
    assert!(body.contains("method not allowed"));

    let (response, body) = call(ready, "HEAD", "/ready").await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(body, "");
}
