//! Rate limiting of events: every WebSocket frame (and every event from any
//! other transport) takes a cell from its caller's budget, before any
//! handler runs.
//!
//! Over the limit, the event is answered with the protocol's `rate_limited`
//! error and its `retry_after_ms`, and the inner service is not called. The
//! layer never applies backpressure: `poll_ready` is the inner service's, so
//! a socket's other events and pushes are never held up by one caller's
//! budget (tower's own `RateLimit` waits in `poll_ready`, which stalls
//! every caller sharing the service and gives each clone its own budget).
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use channels_binding_core::hub::Hub;
//! use channels_binding_core::protocol::EventName;
//! use channels_binding_core::{Event, EventRouter, Identity, Principal};
//! use channels_binding_governor::governor::clock::FakeRelativeClock;
//! use channels_binding_governor::{RateLimit, RateLimiter};
//! use serde_json::json;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let clock = FakeRelativeClock::default();
//! // Five events per second, bursts of ten, per caller.
//! let limiter = RateLimiter::with_clock(
//!     RateLimit::new(NonZeroU32::new(5).unwrap(), NonZeroU32::new(10).unwrap()),
//!     clock.clone(),
//! );
//! let stack = ServiceBuilder::new()
//!     .layer(limiter.event_layer())
//!     .service(EventRouter::new().on("chat.send", || async { json!({"sent": true}) }));
//!
//! let hub = Hub::new();
//! let send = || {
//!     Event::new(EventName::parse("chat.send").unwrap(), json!({}), hub.clone())
//!         .with_identity(Identity::from(Principal::new("alice")))
//! };
//! for _ in 0..10 {
//!     assert!(stack.clone().oneshot(send()).await.unwrap().is_ok());
//! }
//! let reply = stack.clone().oneshot(send()).await.unwrap();
//! let error = reply.error_ref().unwrap();
//! assert_eq!(error.code().as_str(), "rate_limited");
//! assert_eq!(error.details()["retry_after_ms"], 200);
//!
//! clock.advance(Duration::from_millis(200));
//! assert!(stack.oneshot(send()).await.unwrap().is_ok());
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::EventRateLimitLayer;
pub use service::EventRateLimit;
