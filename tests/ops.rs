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
async fn the_default_timeout_is_five_seconds_slow_checks_are_ready_and_checks_run_concurrently() {
    let slow = || async {
        tokio::time::sleep(Duration::from_millis(2000)).await;
        Ok::<(), String>(())
    };
    let ready = Readiness::new()
        .check("a", slow)
        .check("b", slow)
        .check("c", || async { Ok::<(), String>(()) });
    let started = tokio::time::Instant::now();
    let (response, body) = call(ready.clone(), "GET", "/ready").await;
    // Slow (a broker answering in 2 s) is not dead: ready, with the detail.
    assert_eq!(response.status(), 200);
    assert_eq!(body, r#"{"status":"ready","checks":{"a":"slow","b":"slow","c":"ok"}}"#);
    // One after the other they would take 4 s.
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );

    let too_slow = ready.check("b", || async {
        tokio::time::sleep(Duration::from_millis(5100)).await;
        Ok::<(), String>(())
    });
    let (response, body) = call(too_slow, "GET", "/ready").await;
    assert_eq!(response.status(), 503);
    // Replacing a check keeps its place.
    assert_eq!(
        body,
        r#"{"status":"unavailable","checks":{"a":"slow","b":"unavailable","c":"ok"}}"#
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

#[cfg(feature = "metrics")]
mod metrics {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use channels_binding::ops::{EventMetricsLayer, Metrics};
    use channels_binding::protocol::{EventError, EventName};
    use channels_binding::require_identity::RequireIdentityLayer;
    use channels_binding::{Event, EventRouter, Hub, Reply};
    use serde_json::json;
    use tower::{Service, ServiceBuilder, ServiceExt};

    use super::{call, header};

    /// The value of one series, if rendered (`name{labels}` exactly).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    async fn send<S>(events: &mut S, name: &str) -> Reply
    where
        S: Service<Event, Response = Reply, Error = std::convert::Infallible>,
    {
        let event = Event::new(EventName::parse(name).unwrap(), json!({}), Hub::new());
        events.ready().await.unwrap().call(event).await.unwrap()
    }

    #[tokio::test]
    async fn install_twice_and_render_what_the_facade_records() {
        let first = Metrics::install().unwrap();
        let second = Metrics::install().unwrap();
        ::metrics::counter!("ops_test_requests_total", "kind" => "a").increment(3);

        let (response, body) = call(second.service(), "GET", "/metrics").await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), Some("text/plain; version=0.0.4"));
        assert_eq!(value(&body, r#"ops_test_requests_total{kind="a"}"#), Some(3.0));
        assert!(body.contains("# TYPE ops_test_requests_total counter"), "{body}");
        assert_eq!(
            value(&first.render(), r#"ops_test_requests_total{kind="a"}"#),
            Some(3.0)
        );
    }

    #[tokio::test]
    async fn on_scrape_closures_run_before_each_rendering() {
        let metrics = Metrics::install().unwrap();
        let scrapes = Arc::new(AtomicUsize::new(0));
        let counted = scrapes.clone();
        metrics.on_scrape(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            ::metrics::gauge!("ops_test_scrapes").set(n as f64);
        });
        metrics.on_scrape(|| panic!("a broken closure does not break the scrape"));

        let (_, body) = call(metrics.service(), "GET", "/metrics").await;
        let first = value(&body, "ops_test_scrapes").unwrap();
        let (_, body) = call(Metrics::install().unwrap().service(), "GET", "/metrics").await;
        let second = value(&body, "ops_test_scrapes").unwrap();
        // Other tests scrape the same process-wide recorder concurrently.
        assert!(second > first, "{first} then {second}");
        assert!(scrapes.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn the_scrape_endpoint_answers_get_and_head_only() {
        let metrics = Metrics::install().unwrap();
        let (response, _) = call(metrics.service(), "POST", "/metrics").await;
        assert_eq!(response.status(), 405);
        assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
        let (response, body) = call(metrics.service(), "HEAD", "/metrics").await;
        assert_eq!(response.status(), 200);
        assert_eq!(body, "");
    }

    #[tokio::test]
    async fn events_are_counted_and_timed_by_route_and_outcome() {
        let metrics = Metrics::install().unwrap();
        let router = EventRouter::new()
            .on("ops_count.ping", || async { json!({"pong": true}) })
            .on("ops_count.fail", || async {
                Err::<(), _>(EventError::not_found("no such thing"))
            });
        let mut events = ServiceBuilder::new().layer(EventMetricsLayer::new()).service(router);

        assert!(send(&mut events, "ops_count.ping").await.is_ok());
        assert!(send(&mut events, "ops_count.ping#5763").await.is_ok());
        assert!(!send(&mut events, "ops_count.fail").await.is_ok());

        let text = metrics.render();
        let ok = r#"channels_binding_events_total{event="ops_count.ping",outcome="ok"}"#;
        let failed = r#"channels_binding_events_total{event="ops_count.fail",outcome="not_found"}"#;
        assert_eq!(value(&text, ok), Some(2.0), "{text}");
        assert_eq!(value(&text, failed), Some(1.0), "{text}");
        let timed = r#"channels_binding_event_duration_seconds_count{event="ops_count.ping"}"#;
        assert_eq!(value(&text, timed), Some(2.0), "{text}");
        assert!(text.contains(r#"channels_binding_event_duration_seconds_bucket{event="ops_count.ping",le="0.005"}"#));
        assert!(!text.contains("5763"), "the hash is not a label");
    }

    #[tokio::test]
    async fn unknown_events_share_the_label_other() {
        let metrics = Metrics::install().unwrap();
        let router = EventRouter::new().on("ops_unknown.ping", || async { json!({}) });
        let mut events = tower::Layer::layer(&EventMetricsLayer::new(), router);
        let series = r#"channels_binding_events_total{event="other",outcome="unknown_event"}"#;
        let before = value(&metrics.render(), series).unwrap_or(0.0);

        for name in ["hostile_a1.x", "hostile_b2.y", "ops_unknown.nope", "hostile_c3.z#1"] {
            let reply = send(&mut events, name).await;
            assert_eq!(reply.error_ref().unwrap().code().as_str(), "unknown_event");
        }

        let text = metrics.render();
        assert_eq!(value(&text, series), Some(before + 4.0), "{text}");
        assert!(
            !text.contains("hostile_") && !text.contains("ops_unknown.nope"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn declared_routes_bound_labels_outside_rejecting_layers() {
        let metrics = Metrics::install().unwrap();
        let router = EventRouter::new().on("ops_auth.ping", || async { json!({}) });
        let mut events = ServiceBuilder::new()
            .layer(EventMetricsLayer::new().routes(router.routes()))
            .layer(RequireIdentityLayer::all())
            .service(router);

        // Refused before routing: the made-up name would otherwise be a label.
        for name in ["ops_auth.ping", "made_up_name.x", "made_up_other.y"] {
            let reply = send(&mut events, name).await;
            assert_eq!(reply.error_ref().unwrap().code().as_str(), "unauthenticated");
        }

        let text = metrics.render();
        let declared = r#"channels_binding_events_total{event="ops_auth.ping",outcome="unauthenticated"}"#;
        assert_eq!(value(&text, declared), Some(1.0), "{text}");
        let other = r#"channels_binding_events_total{event="other",outcome="unauthenticated"}"#;
        assert_eq!(value(&text, other), Some(2.0), "{text}");
        assert!(!text.contains("made_up"), "{text}");
    }
}
