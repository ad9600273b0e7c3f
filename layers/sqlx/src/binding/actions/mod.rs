//! One file per model action, each a `apply` from event to reply, in the
//! manner of mini-redis commands. Dispatch is in `model_binding.rs`.

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod list;
pub(crate) mod retrieve;
pub(crate) mod save;
pub(crate) mod search;
pub(crate) mod subscribe;
pub(crate) mod update;
