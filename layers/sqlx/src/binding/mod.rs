//! Model bindings: a declared table as a stream of the event API.

mod actions;
mod codec;
mod model_binding;
mod permissions;
mod read_scope;
mod request;
mod serializer;
mod subscription;

pub use model_binding::{ACTIONS, MAX_LIST_SIZE, ModelBinding, ModelBindingBuilder, ReadScopeFn};
pub use permissions::{CreateHook, WriteAction, WriteRule, owner_or_staff};
pub use read_scope::ReadScope;
pub use serializer::{AllFields, Fields, Serializer, Typed};
