//! Rate limiting for **channels-binding**, with [governor]: a budget per
//! caller, shared by every clone of a service and by HTTP and WebSocket.
//!
//! * [`RateLimit`]: the rate, the burst, and the bound on tracked callers.
//! * [`RateLimiter`]: one set of budgets (governor's keyed GCRA limiter),
//!   cheap to clone, with a layer for each level of the stack:
//!   [`http_layer`](RateLimiter::http_layer) answers `429` with
//!   `Retry-After`, [`event_layer`](RateLimiter::event_layer) answers the
//!   protocol's `rate_limited` error with `retry_after_ms`.
//! * [`RateKey`]: who a budget belongs to: the identity when authenticated,
//!   else the client address, else the connection.
//!
//! Both layers decide in `call` and never wait in `poll_ready` (tower's
//! `RateLimit` does, which stalls axum and gives every clone its own budget),
//! and the key map is bounded: see [`RateLimit`] for what happens when it is
//! full.
//!
//! ```
//! use std::num::NonZeroU32;
//! use channels_binding_core::EventRouter;
//! use channels_binding_governor::{RateLimit, RateLimiter};
//! use tower::ServiceBuilder;
//!
//! // Twenty events or requests per second per caller, bursts of forty.
//! let limiter = RateLimiter::new(RateLimit::new(NonZeroU32::new(20).unwrap(), NonZeroU32::new(40).unwrap()));
//! let events = ServiceBuilder::new()
//!     .layer(limiter.event_layer())
//!     .service(EventRouter::new());
//! // The same budgets for plain HTTP routes: one caller, one budget.
//! let http_layer = limiter.http_layer();
//! ```

mod body;
mod bound;
mod config;
mod key;
mod limited;
mod limiter;
mod store;

pub mod event;
pub mod http;

pub use self::event::{EventRateLimit, EventRateLimitLayer};
pub use self::http::{HttpRateLimit, HttpRateLimitLayer};
pub use body::{Body, BoxError};
pub use config::{ConfigError, RateLimit};
pub use key::RateKey;
pub use limited::RateLimited;
pub use limiter::RateLimiter;

/// The governor version this crate builds on, for its clocks
/// ([`governor::clock::FakeRelativeClock`] in tests).
pub use governor;
