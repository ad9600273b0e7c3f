//! Rate limiting of HTTP requests: per-caller budgets in front of any HTTP
//! service (the WebSocket upgrade, the `POST /` envelope, the REST routes,
//! or any axum router), before the inner service runs.
//!
//! Over the limit, the answer is `429 Too Many Requests` with `Retry-After`
//! (whole seconds, rounded up) and the protocol's error object as JSON:
//! `{"code":"rate_limited","message":"rate limit exceeded","retry_after_ms":N}`.
//! The service's error type is the inner one: a rejection is a response.
//! `poll_ready` is the inner service's; the budget is checked in `call`.
//!
//! Callers are keyed by the [`Identity`](channels_binding_core::Identity) in
//! the request's extensions when there is one, else by
//! [`ClientAddr`](channels_binding_core::ClientAddr) (see
//! [`RateKey`](crate::RateKey)). Place the layer inside the authentication
//! layer to give each user a budget, or outside it to limit sign-in
//! attempts per address.
//!
//! ```
//! use std::convert::Infallible;
//! use std::num::NonZeroU32;
//! use bytes::Bytes;
//! use channels_binding_core::ClientAddr;
//! use channels_binding_governor::{RateLimit, RateLimiter};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let limiter = RateLimiter::new(RateLimit::new(NonZeroU32::MIN, NonZeroU32::MIN));
//! let app = ServiceBuilder::new()
//!     .layer(limiter.http_layer())
//!     .service(service_fn(|_req: http::Request<()>| async {
//!         Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"hello"))))
//!     }));
//!
//! let request = || {
//!     let mut request = http::Request::new(());
//!     request.extensions_mut().insert(ClientAddr("192.0.2.7:50000".parse().unwrap()));
//!     request
//! };
//! let ok = app.clone().oneshot(request()).await.unwrap();
//! assert_eq!(ok.status(), 200);
//! assert_eq!(ok.into_body().collect().await.unwrap().to_bytes(), "hello");
//!
//! let limited = app.oneshot(request()).await.unwrap();
//! assert_eq!(limited.status(), 429);
//! assert_eq!(limited.headers()["retry-after"], "1");
//! let body = limited.into_body().collect().await.unwrap().to_bytes();
//! let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(error["code"], "rate_limited");
//! assert!(error["retry_after_ms"].as_u64().unwrap() > 0);
//! # }
//! ```

mod future;
mod layer;
mod response;
mod service;

pub use future::ResponseFuture;
pub use layer::HttpRateLimitLayer;
pub use service::HttpRateLimit;
