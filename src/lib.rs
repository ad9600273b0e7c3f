#![doc = include_str!("../README.md")]

pub mod auth;
pub mod body;
pub mod http;
pub mod ops;
pub mod ws;

mod response;
mod serve;
mod settings;
mod shutdown;

pub use channels_binding_core::{
    Binding, BlockingHandler, ClientAddr, Data, Event, EventRouter, FromEvent, Handler, Hub, Identity, IntoReply, Json,
    Principal, Reply, State, States, hub, page_size, protocol, require_identity,
};
pub use serve::{ServeConfig, serve, serve_with_config};
pub use settings::{CONFIG_FILE_VAR, ENV_PREFIX, Secret, Settings, SettingsError};
pub use shutdown::Shutdown;

/// Model bindings on sqlx (SQLite; PostgreSQL with its feature).
#[cfg(feature = "sqlite")]
pub use channels_binding_sqlx as models;

/// JWT bearer authentication (feature `jwt`).
#[cfg(feature = "jwt")]
pub use channels_binding_jwt as jwt;

/// The Redis channel layer (feature `redis`).
#[cfg(feature = "redis")]
pub use channels_binding_redis as redis;

/// Rate limiting with governor (feature `rate-limit`).
#[cfg(feature = "rate-limit")]
pub use channels_binding_governor as rate_limit;
