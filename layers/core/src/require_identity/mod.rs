//! Anonymous rejection per action: events that need an identity answer
//! `unauthenticated` when there is none, before any handler runs.
//!
//! ```
//! use channels_binding_core::require_identity::RequireIdentityLayer;
//! use channels_binding_core::EventRouter;
//! use tower::ServiceBuilder;
//!
//! // Reads stay open; writes need an identity.
//! let stack = ServiceBuilder::new()
//!     .layer(RequireIdentityLayer::for_actions(["create", "update", "save", "delete"]))
//!     .service(EventRouter::new());
//! ```

mod layer;
mod service;

pub use layer::RequireIdentityLayer;
pub use service::{RequireIdentity, ResponseFuture};
