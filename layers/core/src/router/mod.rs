//! The event router: custom handlers with extractors, and bindings.

mod binding;
mod description;
mod event_router;
mod extract;
mod handler;
mod states;

pub use binding::Binding;
pub use description::{BindingDescription, FieldDescription, FieldKind};
pub use event_router::{EventRouter, RouterFuture};
pub use extract::{Data, FromEvent, State};
pub use handler::{BlockingHandler, Handler};
pub use states::States;
