//! The demo's channel layer, from `CHANNELS_BINDING_CHANNEL_LAYER`: one
//! process (`memory`), or several sharing streams through Redis or
//! PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use channels_binding::Hub;
use channels_binding::Settings;
use channels_binding::hub::{Broker, HubConfig};
use channels_binding::models::{PgBroker, PgBrokerConfig};
use channels_binding::redis::RedisBroker;
use sqlx::postgres::PgPoolOptions;

use super::BoxError;

/// The hub for these settings. A broker that cannot be reached at start-up
/// is an error: running alone while the operator asked for a cluster would
/// silently split it.
pub async fn hub(settings: &Settings) -> Result<Hub, BoxError> {
    let layer = settings.channel_layer.as_str();
    let unreachable = |err: &dyn std::fmt::Display| format!("setting CHANNELS_BINDING_CHANNEL_LAYER: {err}");
    let broker: Arc<dyn Broker> = if layer == "memory" {
        return Ok(Hub::new());
    } else if layer.starts_with("redis://") {
        let broker = RedisBroker::builder(layer)
            .prefix(settings.channel_prefix.clone())
            .connect()
            .await
            .map_err(|err| unreachable(&err))?;
        Arc::new(broker)
    } else {
        // LISTEN needs a connection of its own; publishing, positions and
        // replays use this small pool.
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(layer)
            .await
            .map_err(|err| unreachable(&err))?;
        let broker = PgBroker::connect(pool, PgBrokerConfig::default())
            .await
            .map_err(|err| unreachable(&err))?;
        Arc::new(broker)
    };
    tracing::info!(
        channel_layer = broker.name(),
        "sharing streams through the channel layer"
    );
    Ok(Hub::with_broker(HubConfig::default(), broker))
}

/// Whether bindings should capture writes (the demo's and everyone
/// else's) through the outbox: whenever the database is PostgreSQL and the
/// channel layer is shared (Redis or PostgreSQL). Capture triggers then
/// record every committed change in the writing transaction, and the
/// outbox relay publishes it to the channel layer, so a change outlives the
/// process that made it. On SQLite (or the memory layer) there is no
/// durable hand-off: see the README's limits.
pub fn captures_outside_writes(settings: &Settings) -> bool {
    let postgres = |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
    postgres(&settings.database_url) && settings.channel_layer != "memory"
}
