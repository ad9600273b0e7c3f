//! The subscription hub (PROTOCOL.md §3): groups of interest, ordered and
//! permission-filtered delivery of changes, bounded history for `since`
//! replay, and bounded per-connection queues.

mod change;
mod connection;
#[allow(clippy::module_inception)]
mod hub;
mod stream;
mod subscription;

pub use change::{pk_key, Change, ChangeKind, Visibility};
pub use connection::{Connection, Origin, Outbound, Outbox};
pub use hub::{user_group, Hub, HubConfig, SubscribeError, ALL_GROUP, MAX_GROUPS_PER_CONNECTION};
pub use subscription::{PushForm, StreamPosition, Subscribed, Target};
