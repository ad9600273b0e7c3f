//! What a connection subscribes to, and where in a stream's history it resumes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How pushes about one object are named for a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PushForm {
    /// Repeat this exact event string (the one a `retrieve` used) with the
    /// object's new state; deletes arrive as `<stream>.deleted#<pk>`.
    Echo(Arc<str>),
    /// Change-feed names: `<stream>.updated#<pk>` / `<stream>.deleted#<pk>`.
    Feed,
}

/// What a subscription covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every change of the stream (`created`, `updated#pk`, `deleted#pk`).
    Feed,
    /// Changes of one object.
    Object {
        /// The object's primary key, as in an event hash.
        pk: Arc<str>,
        /// How pushes are named.
        form: PushForm,
    },
}

/// A place in a stream's history: the last change a client has seen.
///
/// ```
/// use channels_binding_core::hub::StreamPosition;
///
/// let since: StreamPosition = serde_json::from_str(r#"{"epoch":"a1","seq":41}"#).unwrap();
/// assert_eq!(since.seq, 41);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Changes whenever the stream's history is lost.
    pub epoch: Arc<str>,
    /// The number of the last change; grows by one per change.
    pub seq: u64,
}

/// What [`Hub::subscribe`](super::Hub::subscribe) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// The stream's position when the subscription went live.
    pub position: StreamPosition,
    /// Changes replayed from history.
    pub replayed: usize,
    /// `true` when a resume was asked for but is impossible (other epoch,
    /// history trimmed): the client must refetch.
    pub resync: bool,
    /// `true` when the connection did not hold this subscription before, so
    /// that a caller undoing a batch knows what to remove.
    pub created: bool,
}
