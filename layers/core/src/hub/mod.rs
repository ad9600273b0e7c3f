//! The subscription hub (PROTOCOL.md §3): groups of interest, ordered and
//! permission-filtered delivery of changes, bounded history for `since`
//! replay, and bounded per-connection queues.

mod broker;
mod change;
mod connection;
#[allow(clippy::module_inception)]
mod hub;
mod link;
mod memory_broker;
mod stream;
mod subscription;
mod wire;

pub use broker::{BatchKey, Broker, BrokerError, BrokerEvent, Delivered, Outgoing, Replay};
pub use change::{Change, ChangeCodec, ChangeKind, Visibility, pk_key};
pub use connection::{Connection, Origin, Outbound, Outbox};
pub use hub::{ALL_GROUP, Hub, HubConfig, HubStats, MAX_GROUPS_PER_CONNECTION, SubscribeError, user_group};
pub use memory_broker::MemoryBroker;
pub use subscription::{PushForm, StreamPosition, Subscribed, Target};
pub use wire::{KeptRule, WireChange, WireKind, WireOrigin};
