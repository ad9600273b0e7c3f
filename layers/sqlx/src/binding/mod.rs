//! Model bindings: a declared table as a stream of the event API.

mod actions;
mod model_binding;
mod request;
mod serializer;
mod subscription;

pub use model_binding::{ModelBinding, ModelBindingBuilder, ReadRule, ACTIONS, MAX_LIST_SIZE};
pub use serializer::{AllFields, Fields, Serializer, Typed};
