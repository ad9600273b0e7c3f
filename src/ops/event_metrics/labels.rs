//! The `event` and `outcome` labels, bounded whatever clients send.

use std::collections::HashSet;
use std::sync::Arc;

use channels_binding_core::Reply;
use channels_binding_core::protocol::{ErrorCode, EventName};
use metrics::SharedString;

/// The label of every event whose name a client chose freely.
pub(super) const OTHER: &str = "other";

/// How an event is labelled: its route, unless that route is unknown.
#[derive(Debug, Clone, Default)]
pub(super) struct EventLabels {
    /// When set, the only routes that get a label of their own.
    declared: Option<Arc<HashSet<String>>>,
}

impl EventLabels {
    pub(super) fn declared(routes: HashSet<String>) -> Self {
        Self {
            declared: Some(Arc::new(routes)),
        }
    }

    /// `stream.action` (never the `#hash`), or `other` when nothing
    /// answers that route or it is not among the declared ones.
    pub(super) fn event(&self, name: &EventName, reply: &Reply) -> SharedString {
        let unknown = reply
            .error_ref()
            .is_some_and(|error| error.code() == ErrorCode::UnknownEvent);
        let undeclared = self
            .declared
            .as_ref()
            .is_some_and(|routes| !routes.contains(name.route()));
        if unknown || undeclared {
            SharedString::const_str(OTHER)
        } else {
            SharedString::from(name.route().to_owned())
        }
    }

    /// `ok`, or the error code.
    pub(super) fn outcome(reply: &Reply) -> &'static str {
        match reply.error_ref() {
            None => "ok",
            Some(error) => error.code().as_str(),
        }
    }
}
