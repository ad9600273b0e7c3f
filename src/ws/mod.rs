//! The WebSocket transport: a tower service that upgrades requests and runs
//! each socket against the event stack.
//!
//! * Requests of one socket run concurrently, each as its own task, up to a
//!   bound; past it the socket stops reading until one finishes. A peer that
//!   does not read never holds a database connection: replies wait in a
//!   bounded queue, and a frame not taken within the write timeout (or a
//!   queue over its byte budget) closes the socket with 1013.
//! * A reply is always written before the pushes its request caused.
//! * A message over the size limit closes the socket with 1009; binary and
//!   malformed frames get a `bad_request` reply and the socket stays open.
//! * Idle sockets are pinged; silent ones are closed. A socket whose push
//!   queue overflows is closed with 1013. Shutdown closes with 1001.
//! * A socket lives no longer than its credentials: at their expiry, or when
//!   they are revoked (the session signed out), it is closed with 1008. A
//!   sign-in on the socket brings the new credentials' expiry and revocation.

mod config;
mod service;
mod socket;
mod upgrade;
mod writer;

pub use config::WebSocketConfig;
pub use service::{NotUpgrade, ResponseFuture, WebSocket};
