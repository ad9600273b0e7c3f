//! Metric names and their help texts (the table in the module docs).

/// Events answered, by `event` and `outcome`.
pub(super) const EVENTS: &str = "channels_binding_events_total";
/// Time to answer an event, by `event`.
pub(super) const EVENT_DURATION: &str = "channels_binding_event_duration_seconds";

/// Registers the help texts of every metric the crate's parts record.
pub(super) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

    describe_counter!(
        EVENTS,
        "Events answered, by event (stream.action or \"other\") and outcome (ok or error code)."
    );
    describe_histogram!(EVENT_DURATION, Unit::Seconds, "Time to answer an event, by event.");
    describe_gauge!("channels_binding_connections", "Open connections on the hub.");
    describe_counter!("channels_binding_deliveries_total", "Frames delivered to connections.");
    describe_counter!("channels_binding_drops_total", "Frames dropped, by reason.");
    describe_gauge!(
        "channels_binding_queued_frames",
        "Frames queued for delivery across connections."
    );
    describe_gauge!("channels_binding_max_queue_depth", "Deepest connection queue.");
    describe_gauge!(
        "channels_binding_broker_connected",
        "1 when the broker is connected, 0 otherwise."
    );
    describe_counter!(
        "channels_binding_resyncs_total",
        "Resyncs sent to clients that missed changes."
    );
}
