//! The tower response: the outcome of one event.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::hub::StreamPosition;
use crate::protocol::{EventError, ReplyMeta, RequestId, encode_reply};

/// The outcome of one event: a payload or an error, plus frame metadata.
///
/// Rejections are replies, not service errors: every service in the event
/// stack has `Error = Infallible`, and a layer that refuses an event answers
/// with an error reply.
///
/// ```
/// use channels_binding_core::protocol::EventError;
/// use channels_binding_core::Reply;
/// use serde_json::json;
///
/// let ok = Reply::ok(json!({"pong": true}));
/// assert!(ok.is_ok());
/// let bytes = ok.encode(Some("simple_reflexion.ping"), None);
/// assert_eq!(&bytes[..], br#"{"event":"simple_reflexion.ping","data":{"pong":true}}"#);
///
/// let err = Reply::error(EventError::not_found("no such user"));
/// assert_eq!(err.error_ref().unwrap().code().as_str(), "not_found");
/// ```
#[derive(Debug, Clone)]
pub struct Reply {
    outcome: Result<Value, EventError>,
    meta: ReplyMeta,
    /// Hints for the transport that carries the reply (a cookie to set over
    /// HTTP, say); transports ignore what they do not understand.
    extensions: http::Extensions,
}

impl Reply {
    /// A success reply with this payload.
    pub fn ok(data: Value) -> Self {
        Self {
            outcome: Ok(data),
            meta: ReplyMeta::default(),
            extensions: http::Extensions::new(),
        }
    }

    /// A success reply serializing `data`; a serialization failure is `internal`.
    pub fn json(data: &impl Serialize) -> Self {
        match serde_json::to_value(data) {
            Ok(value) => Self::ok(value),
            Err(err) => {
                tracing::error!(error = %err, "handler result does not serialize to JSON");
                Self::error(EventError::internal())
            }
        }
    }

    /// An error reply.
    pub fn error(error: EventError) -> Self {
        Self {
            outcome: Err(error),
            meta: ReplyMeta::default(),
            extensions: http::Extensions::new(),
        }
    }

    /// Says the client's `since` could not be honoured: it must refetch.
    #[must_use]
    pub fn with_resync(mut self, resync: bool) -> Self {
        self.meta.resync = resync;
        self
    }

    /// Attaches the stream position the payload reflects.
    #[must_use]
    pub fn with_position(mut self, position: StreamPosition) -> Self {
        self.meta.position = Some((position.epoch, position.seq));
        self
    }

    /// Attaches a hint for the transport (see [`extensions`](Self::extensions)).
    #[must_use]
    pub fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Hints for the transport carrying this reply, such as a cookie the
    /// HTTP transport should set.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Whether this is a success.
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The payload or the error.
    pub fn outcome(&self) -> Result<&Value, &EventError> {
        self.outcome.as_ref()
    }

    /// The error, if any.
    pub fn error_ref(&self) -> Option<&EventError> {
        self.outcome.as_ref().err()
    }

    /// Frame metadata (`resync`, position).
    pub fn meta(&self) -> &ReplyMeta {
        &self.meta
    }

    /// Splits the reply.
    pub fn into_parts(self) -> (Result<Value, EventError>, ReplyMeta) {
        (self.outcome, self.meta)
    }

    /// Encodes the reply frame for an event name and request id.
    pub fn encode(&self, event: Option<&str>, request_id: Option<&RequestId>) -> Bytes {
        encode_reply(event, self.outcome.as_ref(), request_id, &self.meta)
    }
}

/// Anything a handler may return.
///
/// ```
/// use channels_binding_core::{IntoReply, Json};
/// use serde_json::json;
///
/// #[derive(serde::Serialize)]
/// struct Pong { pong: bool }
///
/// assert!(Json(Pong { pong: true }).into_reply().is_ok());
/// assert!(json!({"pong": true}).into_reply().is_ok());
/// ```
pub trait IntoReply {
    /// Converts into a [`Reply`].
    fn into_reply(self) -> Reply;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl IntoReply for Value {
    fn into_reply(self) -> Reply {
        Reply::ok(self)
    }
}

impl IntoReply for EventError {
    fn into_reply(self) -> Reply {
        Reply::error(self)
    }
}

impl IntoReply for () {
    fn into_reply(self) -> Reply {
        Reply::ok(Value::Object(serde_json::Map::new()))
    }
}

impl<T: IntoReply, E: Into<EventError>> IntoReply for Result<T, E> {
    fn into_reply(self) -> Reply {
        match self {
            Ok(value) => value.into_reply(),
            Err(error) => Reply::error(error.into()),
        }
    }
}

/// A handler result serialized with serde.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoReply for Json<T> {
    fn into_reply(self) -> Reply {
        Reply::json(&self.0)
    }
}
