#![doc = include_str!("../README.md")]

pub mod body;
pub mod ws;

mod serve;
mod settings;
mod shutdown;

pub use channels_binding_core::{
    hub, page_size, protocol, Binding, BlockingHandler, Data, Event, EventRouter, FromEvent, Handler, Hub, Identity,
    IntoReply, Json, Principal, Reply, State, States,
};
pub use serve::serve;
pub use settings::{Secret, Settings, SettingsError, CONFIG_FILE_VAR, ENV_PREFIX};
pub use shutdown::Shutdown;

/// Model bindings on sqlx (SQLite; PostgreSQL with its feature).
#[cfg(feature = "sqlite")]
pub use channels_binding_sqlx as models;
