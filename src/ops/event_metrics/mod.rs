//! Counts and times every event by route and outcome, with bounded labels.

mod future;
mod labels;
mod layer;
mod service;

pub use future::EventMetricsFuture;
pub use layer::EventMetricsLayer;
pub use service::EventMetrics;
