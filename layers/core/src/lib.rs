//! Core of **channels-binding**: the types and traits every part of the
//! stack shares, and the light pieces with no heavy dependency.
//!
//! * [`protocol`]: event names, frames, request ids, error codes.
//! * [`Event`] / [`Reply`]: the tower request and response of the event stack.
//! * [`EventRouter`]: dispatch to custom handlers (plain functions with
//!   extractors, async or blocking) and to [`Binding`]s such as model bindings.
//! * [`hub`]: subscriptions, ordered permission-filtered delivery, history.
//! * [`page_size`]: the `DEFAULT_PAGE_SIZE` / `MAX_PAGE_SIZE` layer.
//!
//! Transports (WebSocket, HTTP) and integrations (sqlx models) live in other
//! crates and depend only on this one.
//!
//! The wire protocol these types implement is specified in the repository's
//! `docs/PROTOCOL.md` (cited by section, `PROTOCOL.md §3`, throughout these
//! docs); the demo contract of the quickstart in `docs/DEMO.md`.

pub mod auth;
pub mod hub;
pub mod page_size;
pub mod protocol;
pub mod require_identity;

mod client_addr;
mod event;
mod identity;
mod reply;
mod reply_headers;
mod router;

pub use client_addr::ClientAddr;
pub use event::Event;
pub use hub::Hub;
pub use identity::{CredentialsEnd, Identity, Principal, Revocation, WeakRevocation};
pub use reply::{IntoReply, Json, Reply};
pub use reply_headers::ReplyHeaders;
pub use router::{
    Binding, BindingDescription, BlockingHandler, Data, EventRouter, FieldDescription, FieldKind, FromEvent, Handler,
    RouterFuture, State, States,
};
