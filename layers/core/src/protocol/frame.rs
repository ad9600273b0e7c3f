//! Frames: parsing what clients send and encoding what the server sends.
//!
//! One JSON object per WebSocket text frame or HTTP body:
//! `{"event": "<stream>.<action>[#<hash>]", "data": <any JSON>, "request_id": <string|number>}`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::EventError;
use super::event_name::EventName;

/// Longest `request_id` string accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A client-chosen id echoed in every reply to the frame that carried it.
///
/// ```
/// use channels_binding_core::protocol::{parse_frame, RequestId};
///
/// let frame = parse_frame(br#"{"event":"a.b","request_id":7}"#).unwrap();
/// assert_eq!(frame.request_id, Some(RequestId::from(7u64)));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum RequestId {
    /// A numeric id.
    Number(serde_json::Number),
    /// A string id.
    String(Arc<str>),
}

impl RequestId {
    fn from_json(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::Number(n) => Ok(RequestId::Number(n)),
            Value::String(s) if s.len() <= MAX_REQUEST_ID_LEN => Ok(RequestId::String(s.into())),
            Value::String(_) => Err("`request_id` is too long"),
            _ => Err("`request_id` must be a string or a number"),
        }
    }
}

impl From<u64> for RequestId {
    fn from(n: u64) -> Self {
        RequestId::Number(n.into())
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId::String(s.into())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => fmt::Display::fmt(n, f),
            RequestId::String(s) => fmt::Debug::fmt(s, f),
        }
    }
}

impl Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RequestId::Number(n) => n.serialize(serializer),
            RequestId::String(s) => serializer.serialize_str(s),
        }
    }
}

/// A well-formed inbound frame.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundFrame {
    /// The event name.
    pub name: EventName,
    /// The payload; `{}` when the frame has none.
    pub data: Value,
    /// The client's request id, if any.
    pub request_id: Option<RequestId>,
}

/// A frame that could not be accepted, with what is needed to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// The `bad_request` error to send back.
    pub error: EventError,
    /// The frame's `event` string, when it had one, so the reply can echo it.
    pub event: Option<String>,
    /// The frame's request id, when it had a valid one.
    pub request_id: Option<RequestId>,
}

impl FrameError {
    fn new(message: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self {
            error: EventError::bad_request(message),
            event: None,
            request_id: None,
        }
    }

    /// Encodes the error reply for this frame.
    pub fn encode(&self) -> Bytes {
        encode_reply(
            self.event.as_deref(),
            Err(&self.error),
            self.request_id.as_ref(),
            &ReplyMeta::default(),
        )
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for FrameError {}

/// Parses one inbound frame.
///
/// Never panics, whatever the bytes: invalid UTF-8, invalid JSON, nesting
/// deeper than serde_json's recursion limit (128) and wrong types all become a
/// [`FrameError`] whose reply is `bad_request`.
///
/// ```
/// use channels_binding_core::protocol::parse_frame;
///
/// let frame = parse_frame(br#"{"event":"auth.User.retrieve","data":{"id":5763}}"#).unwrap();
/// assert_eq!(frame.name.as_str(), "auth.User.retrieve");
/// assert_eq!(frame.data["id"], 5763);
///
/// let err = parse_frame(b"not json").unwrap_err();
/// assert_eq!(err.error.code().as_str(), "bad_request");
/// ```
///
/// # Errors
///
/// Returns a [`FrameError`] when the bytes are not a JSON object with a
/// string `event` naming `<stream>.<action>`, or when `request_id` is neither
/// a string nor a number.
pub fn parse_frame(bytes: &[u8]) -> Result<InboundFrame, FrameError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| FrameError::new(describe_json_error(&e)))?;
    let Value::Object(mut object) = value else {
        return Err(FrameError::new("frame must be a JSON object"));
    };
    // Read the request id first so that every later error can echo it.
    let request_id = match object.remove("request_id") {
        None | Some(Value::Null) => None,
        Some(value) => match RequestId::from_json(value) {
            Ok(id) => Some(id),
            Err(message) => return Err(FrameError::new(message)),
        },
    };
    let event = match object.remove("event") {
        Some(Value::String(event)) => event,
        Some(_) => {
            let mut err = FrameError::new("`event` must be a string");
            err.request_id = request_id;
            return Err(err);
        }
        None => {
            let mut err = FrameError::new("`event` is missing");
            err.request_id = request_id;
            return Err(err);
        }
    };
    let name = match EventName::parse(&event) {
        Ok(name) => name,
        Err(reason) => {
            return Err(FrameError {
                error: EventError::bad_request(format!("invalid event name: {reason}")),
                event: Some(event),
                request_id,
            });
        }
    };
    let data = match object.remove("data") {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(data) => data,
    };
    Ok(InboundFrame { name, data, request_id })
}

/// Describes a JSON error without echoing client bytes back.
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Io | Category::Syntax => {
            format!("frame is not valid JSON (line {}, column {})", err.line(), err.column())
        }
        Category::Eof => "frame is not valid JSON (unexpected end)".to_owned(),
        Category::Data => "frame is not a JSON object".to_owned(),
    }
}

/// Extra top-level keys of a reply frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyMeta {
    /// `true` when a `since` resume was impossible and the client must refetch.
    pub resync: bool,
    /// The stream position the reply reflects (for subscribing actions).
    pub position: Option<(Arc<str>, u64)>,
}

#[derive(Serialize)]
struct ReplyFrame<'a> {
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a EventError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a RequestId>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resync: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// Encodes a reply frame: `{"event", "data" | "error", "request_id"?, "resync"?, "epoch"?, "seq"?}`.
///
/// `event` is `None` only for frames that had no usable event string; it is
/// then sent as `null`.
pub fn encode_reply(
    event: Option<&str>,
    outcome: Result<&Value, &EventError>,
    request_id: Option<&RequestId>,
    meta: &ReplyMeta,
) -> Bytes {
    let (data, error) = match outcome {
        Ok(data) => (Some(data), None),
        Err(error) => (None, Some(error)),
    };
    let frame = ReplyFrame {
        event,
        data,
        error,
        request_id,
        resync: meta.resync,
        epoch: meta.position.as_ref().map(|(epoch, _)| &**epoch),
        seq: meta.position.as_ref().map(|(_, seq)| *seq),
    };
    encode(&frame)
}

#[derive(Serialize)]
struct PushFrame<'a> {
    event: &'a str,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a str>,
}

/// Encodes a push: `{"event", "data", "seq"?, "epoch"?}`.
///
/// `data` is already serialized, so fanning one change out to many event
/// names copies bytes instead of serializing the object again.
pub fn encode_push(event: &str, data: &RawValue, position: Option<(&str, u64)>) -> Bytes {
    encode(&PushFrame {
        event,
        data,
        seq: position.map(|(_, seq)| seq),
        epoch: position.map(|(epoch, _)| epoch),
    })
}

#[derive(Serialize)]
struct ResyncFrame<'a> {
    event: String,
    data: ResyncData<'a>,
    resync: bool,
}

#[derive(Serialize)]
struct ResyncData<'a> {
    epoch: &'a str,
    seq: u64,
}

/// Encodes the push telling a subscriber that changes of `stream` were lost
/// (a channel-layer outage, a restart that lost history):
/// `{"event": "<stream>.resync", "data": {"epoch", "seq"}, "resync": true}`.
/// The client refetches what it shows; its subscriptions stay.
///
/// ```
/// use channels_binding_core::protocol::encode_resync;
///
/// let frame = encode_resync("auth.User", "e2", 7);
/// assert_eq!(&frame[..], br#"{"event":"auth.User.resync","data":{"epoch":"e2","seq":7},"resync":true}"#);
/// ```
pub fn encode_resync(stream: &str, epoch: &str, seq: u64) -> Bytes {
    encode(&ResyncFrame {
        event: format!("{stream}.resync"),
        data: ResyncData { epoch, seq },
        resync: true,
    })
}

fn encode<T: Serialize>(frame: &T) -> Bytes {
    match serde_json::to_vec(frame) {
        Ok(bytes) => Bytes::from(bytes),
        // Serializing a `Value`, `RawValue` or plain strings cannot fail: every
        // map key is a string. Keep a well-formed frame anyway.
        Err(err) => {
            tracing::error!(error = %err, "failed to encode a frame");
            Bytes::from_static(br#"{"event":null,"error":{"code":"internal","message":"internal error"}}"#)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn data_defaults_to_an_empty_object() {
        let frame = parse_frame(br#"{"event":"a.b"}"#).unwrap();
        assert_eq!(frame.data, json!({}));
        let frame = parse_frame(br#"{"event":"a.b","data":null}"#).unwrap();
        assert_eq!(frame.data, json!({}));
    }

    #[test]
    fn errors_echo_what_they_can() {
        let err = parse_frame(br#"{"event":"nope","request_id":"r1"}"#).unwrap_err();
        assert_eq!(err.event.as_deref(), Some("nope"));
        assert_eq!(err.request_id, Some(RequestId::from("r1")));
        let err = parse_frame(br#"{"event":5,"request_id":2}"#).unwrap_err();
        assert_eq!(err.event, None);
        assert_eq!(err.request_id, Some(RequestId::from(2)));
        let reply: Value = serde_json::from_slice(&err.encode()).unwrap();
        assert_eq!(
            reply,
            json!({"event": null, "error": {"code": "bad_request", "message": "`event` must be a string"}, "request_id": 2})
        );
    }

    #[test]
    fn rejects_non_objects_and_bad_request_ids() {
        for input in [
            &b"[]"[..],
            b"1",
            b"\"x\"",
            b"null",
            br#"{"event":"a.b","request_id":[1]}"#,
        ] {
            assert!(parse_frame(input).is_err(), "{input:?}");
        }
        let long = format!(
            r#"{{"event":"a.b","request_id":"{}"}}"#,
            "x".repeat(MAX_REQUEST_ID_LEN + 1)
        );
        assert!(parse_frame(long.as_bytes()).is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            r#"{{"event":"a.b","data":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = parse_frame(deep.as_bytes()).unwrap_err();
        assert_eq!(err.error.code(), super::super::ErrorCode::BadRequest);
    }

    #[test]
    fn replies_keep_event_and_request_id() {
        let bytes = encode_reply(
            Some("a.b#1"),
            Ok(&json!({"x": 1})),
            Some(&RequestId::from(9)),
            &ReplyMeta::default(),
        );
        let reply: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(reply, json!({"event": "a.b#1", "data": {"x": 1}, "request_id": 9}));
    }

    #[test]
    fn pushes_carry_position() {
        let data = RawValue::from_string("{\"id\":1}".into()).unwrap();
        let bytes = encode_push("a.B.updated#1", &data, Some(("e1", 4)));
        let push: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            push,
            json!({"event": "a.B.updated#1", "data": {"id": 1}, "seq": 4, "epoch": "e1"})
        );
    }

    proptest! {
        #[test]
        fn no_byte_sequence_panics_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_frame(&bytes);
        }

        #[test]
        fn no_json_shape_panics_the_parser(event in any::<String>(), data in ".*", rid in any::<i64>()) {
            let frame = json!({"event": event, "data": data, "request_id": rid});
            let bytes = serde_json::to_vec(&frame).unwrap();
            match parse_frame(&bytes) {
                Ok(parsed) => prop_assert_eq!(parsed.name.as_str(), event.as_str()),
                Err(err) => prop_assert_eq!(err.request_id, Some(RequestId::Number(rid.into()))),
            }
        }
    }
}
