//! The tower request: one inbound event.

use std::fmt;

use serde_json::Value;

use crate::hub::{Connection, Hub, Origin};
use crate::identity::Identity;
use crate::protocol::{EventName, InboundFrame, RequestId};

/// One inbound event: what every transport turns a WebSocket frame, an HTTP
/// body or a REST route into before calling the event stack.
///
/// ```
/// use channels_binding_core::{Event, Identity, Principal};
/// use channels_binding_core::hub::Hub;
/// use channels_binding_core::protocol::EventName;
/// use serde_json::json;
///
/// let event = Event::new(EventName::parse("auth.User.retrieve#5763").unwrap(), json!({}), Hub::new())
///     .with_identity(Identity::from(Principal::new("5763")));
/// assert_eq!(event.name().hash(), Some("5763"));
/// assert!(event.connection().is_none());
/// ```
pub struct Event {
    name: EventName,
    data: Value,
    request_id: Option<RequestId>,
    identity: Identity,
    connection: Option<Connection>,
    origin: Option<Origin>,
    hub: Hub,
    extensions: http::Extensions,
}

impl Event {
    /// An anonymous event with no connection (as over HTTP).
    pub fn new(name: EventName, data: Value, hub: Hub) -> Self {
        Self {
            name,
            data,
            request_id: None,
            identity: Identity::anonymous(),
            connection: None,
            origin: None,
            hub,
            extensions: http::Extensions::new(),
        }
    }

    /// An event from a parsed frame.
    pub fn from_frame(frame: InboundFrame, hub: Hub) -> Self {
        let mut event = Self::new(frame.name, frame.data, hub);
        event.request_id = frame.request_id;
        event
    }

    /// Sets the caller's identity.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Sets the client's request id.
    #[must_use]
    pub fn with_request_id(mut self, request_id: Option<RequestId>) -> Self {
        self.request_id = request_id;
        self
    }

    /// Marks the event as request number `request` of a connection: pushes it
    /// causes to that connection are written after its reply, and subscribing
    /// actions subscribe that connection.
    #[must_use]
    pub fn with_connection(mut self, connection: Connection, request: u64) -> Self {
        let origin = Origin {
            connection: connection.id(),
            request,
        };
        self.identity = connection.identity();
        self.hub = self.hub.with_origin(Some(origin));
        self.origin = Some(origin);
        self.connection = Some(connection);
        self
    }

    /// The event name.
    pub fn name(&self) -> &EventName {
        &self.name
    }

    /// The payload.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The payload, mutably (layers may normalise it).
    pub fn data_mut(&mut self) -> &mut Value {
        &mut self.data
    }

    /// Takes the payload out, leaving `null`.
    pub fn take_data(&mut self) -> Value {
        std::mem::take(&mut self.data)
    }

    /// The client's request id.
    pub fn request_id(&self) -> Option<&RequestId> {
        self.request_id.as_ref()
    }

    /// Who is calling.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The connection the event came from (`None` over HTTP).
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// The connection and request number, when the event came from a connection.
    pub fn origin(&self) -> Option<Origin> {
        self.origin
    }

    /// The hub, tagged with this event's origin.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Typed values that layers attach for inner services.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Typed values that layers attach for inner services, mutably.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `data` may hold credentials or personal data: keep it out of logs.
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("request_id", &self.request_id)
            .field("identity", &self.identity)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}
