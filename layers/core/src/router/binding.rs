//! A binding: everything one stream answers (a model's actions, say).

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::description::BindingDescription;
use crate::event::Event;
use crate::hub::ChangeCodec;
use crate::reply::Reply;

/// A stream-level handler: receives every event of its stream whose action
/// has no custom handler, and answers `unknown_event` for actions it lacks.
///
/// Model bindings implement this; so can anything that owns a whole stream.
///
/// ```
/// use channels_binding_core::{Binding, Event, EventRouter, Reply};
/// use channels_binding_core::protocol::EventError;
/// use futures_util::future::BoxFuture;
///
/// struct Clock;
///
/// impl Binding for Clock {
///     fn stream(&self) -> &str { "clock" }
///     fn actions(&self) -> Vec<String> { vec!["now".into()] }
///     fn call(&self, event: Event) -> BoxFuture<'static, Reply> {
///         let reply = match event.name().action() {
///             "now" => Reply::ok(serde_json::json!({"now": 0})),
///             _ => Reply::error(EventError::unknown_event(event.name().as_str())),
///         };
///         Box::pin(std::future::ready(reply))
///     }
/// }
///
/// let router = EventRouter::new().binding(Clock);
/// ```
pub trait Binding: Send + Sync + 'static {
    /// The stream this binding answers (`auth.User`).
    fn stream(&self) -> &str;

    /// The actions it answers, for discovery and documentation.
    fn actions(&self) -> Vec<String>;

    /// Answers one event of the stream.
    fn call(&self, event: Event) -> BoxFuture<'static, Reply>;

    /// The binding's declared shape, for generated documentation; `None`
    /// for bindings without declared fields.
    fn describe(&self) -> Option<BindingDescription> {
        None
    }

    /// How this stream's changes made elsewhere (on another node, or
    /// outside the API) are rendered and filtered; `None` for a binding
    /// whose changes carry their object and are visible to everyone.
    ///
    /// A hub must know it before the first change of the stream arrives
    /// from the channel layer, so servers register every binding's codec at
    /// start-up with [`EventRouter::register_codecs`](super::EventRouter::register_codecs):
    /// a node that has not handled the stream yet can then replay its
    /// history to a resuming subscriber.
    fn change_codec(&self) -> Option<Arc<dyn ChangeCodec>> {
        None
    }
}
