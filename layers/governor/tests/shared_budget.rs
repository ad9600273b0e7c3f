//! One caller, one budget: the HTTP layer and the event layer of one limiter
//! draw on the same budgets, so switching transport does not double a rate.

// Test set-up may unwrap: a panic here is a failed test with its location.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::Hub;
use channels_binding_core::protocol::EventName;
use channels_binding_core::{ClientAddr, Event, EventRouter, Identity, Principal, Reply};
use channels_binding_governor::governor::clock::FakeRelativeClock;
use channels_binding_governor::{RateLimit, RateLimiter};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tower::{Layer, ServiceExt, service_fn};

fn limiter() -> (RateLimiter, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    // One per second, bursts of two.
    let config = RateLimit::new(NonZeroU32::MIN, NonZeroU32::new(2).unwrap());
    (RateLimiter::with_clock(config, clock.clone()), clock)
}

fn http_request(identity: Option<&str>, addr: &str) -> Request<()> {
    let mut request = Request::new(());
    if let Some(id) = identity {
        request.extensions_mut().insert(Identity::from(Principal::new(id)));
    }
    request.extensions_mut().insert(ClientAddr(addr.parse().unwrap()));
    request
}

fn ws_event(hub: &Hub, identity: Option<&str>, addr: &str) -> Event {
    let identity = identity.map_or_else(Identity::anonymous, |id| Identity::from(Principal::new(id)));
    let outbox = hub.connect(identity);
    let mut event = Event::new(EventName::parse("chat.send").unwrap(), json!({}), hub.clone())
        .with_connection(outbox.connection().clone(), 1);
    event.extensions_mut().insert(ClientAddr(addr.parse().unwrap()));
    event
}

#[tokio::test]
async fn http_and_events_share_one_budget_per_caller() {
    let (limiter, clock) = limiter();
    let http = limiter.http_layer().layer(service_fn(|_request: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    }));
    let events = limiter
        .event_layer()
        .layer(EventRouter::new().on("chat.send", || async { json!({"sent": true}) }));
    let hub = Hub::new();

    // The same user: one cell over HTTP, one over a socket, then both refuse.
    let status = http
        .clone()
        .oneshot(http_request(Some("alice"), "192.0.2.1:1"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let reply: Reply = events
        .clone()
        .oneshot(ws_event(&hub, Some("alice"), "198.51.100.1:1"))
        .await
        .unwrap();
    assert!(reply.is_ok());
    let reply = events
        .clone()
        .oneshot(ws_event(&hub, Some("alice"), "198.51.100.1:1"))
        .await
        .unwrap();
    assert_eq!(reply.error_ref().unwrap().details()["retry_after_ms"], 1000);
    let status = http
        .clone()
        .oneshot(http_request(Some("alice"), "192.0.2.1:1"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // An anonymous caller by address: the same on both transports.
    let reply = events
        .clone()
        .oneshot(ws_event(&hub, None, "203.0.113.5:1"))
        .await
        .unwrap();
    assert!(reply.is_ok());
    let status = http
        .clone()
        .oneshot(http_request(None, "203.0.113.5:2"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let status = http
        .clone()
        .oneshot(http_request(None, "203.0.113.5:3"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let reply = events
        .clone()
        .oneshot(ws_event(&hub, None, "203.0.113.5:4"))
        .await
        .unwrap();
    assert!(!reply.is_ok());

    // Time refills both.
    clock.advance(Duration::from_secs(1));
    let status = http
        .clone()
        .oneshot(http_request(Some("alice"), "192.0.2.1:1"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let reply = events.oneshot(ws_event(&hub, None, "203.0.113.5:4")).await.unwrap();
    assert!(reply.is_ok());
    assert_eq!(limiter.key_count(), 2);
}
