//! The WebSocket transport: a tower service that upgrades requests and runs
//! each socket against the event stack.
//!
//! * Requests of one socket run concurrently, up to a bound; past it the
//!   socket stops reading until one finishes.
//! * A reply is always written before the pushes its request caused.
//! * A message over the size limit closes the socket with 1009; binary and
//!   malformed frames get a `bad_request` reply and the socket stays open.
//! * Idle sockets are pinged; silent ones are closed. A socket whose push
//!   queue overflows is closed with 1013. Shutdown closes with 1001.

mod config;
mod service;
mod socket;
mod upgrade;

pub use config::WebSocketConfig;
pub use service::{NotUpgrade, ResponseFuture, WebSocket};
