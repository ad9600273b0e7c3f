//! Error codes and error replies (PROTOCOL.md §1).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use http::StatusCode;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// The machine-readable code of an error reply.
///
/// Each code maps to one HTTP status, so a frame sent over HTTP and over a
/// WebSocket fails the same way.
///
/// ```
/// use channels_binding_core::protocol::ErrorCode;
///
/// assert_eq!(ErrorCode::NotFound.as_str(), "not_found");
/// assert_eq!(ErrorCode::NotFound.http_status().as_u16(), 404);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not JSON, not an object, or `event`/`data` have the wrong type.
    BadRequest,
    /// No binding or action answers this event.
    UnknownEvent,
    /// The targeted object does not exist.
    NotFound,
    /// Input was rejected; `fields` says why.
    Validation,
    /// The action needs an identity and there is none, or credentials are invalid.
    Unauthenticated,
    /// The identity may not do this.
    Forbidden,
    /// Over the rate limit; `retry_after_ms` says when to retry.
    RateLimited,
    /// The frame or the result is over a configured bound.
    PayloadTooLarge,
    /// A backend is down; retrying later may succeed.
    Unavailable,
    /// A bug. The message never carries a traceback, SQL or secrets.
    Internal,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownEvent,
        ErrorCode::NotFound,
        ErrorCode::Validation,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Validation => "validation",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that carries this code.
    pub const fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::UnknownEvent | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Field-level validation messages: `{field: [message, ...]}`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// An error reply: `{"code": C, "message": M, ...details}`.
///
/// Build one with the constructor named after its code. Details such as
/// `fields` or `retry_after_ms` are extra keys of the error object.
///
/// ```
/// use channels_binding_core::protocol::{ErrorCode, EventError};
///
/// let err = EventError::validation_field("username", "may not be blank");
/// assert_eq!(err.code(), ErrorCode::Validation);
/// let json = serde_json::to_value(&err).unwrap();
/// assert_eq!(json["fields"]["username"][0], "may not be blank");
/// ```
#[derive(Clone, PartialEq)]
pub struct EventError {
    code: ErrorCode,
    message: Cow<'static, str>,
    /// Boxed: most errors have none, and errors travel in `Result`s.
    details: Option<Box<serde_json::Map<String, Value>>>,
}

impl EventError {
    /// An error with a code and a message meant for the client.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds a detail key to the error object (`fields`, `retry_after_ms`, …).
    ///
    /// `code` and `message` are reserved and ignored here.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        if key != "code" && key != "message" {
            self.details.get_or_insert_with(Box::default).insert(key, value.into());
        }
        self
    }

    /// `bad_request`: the frame itself is malformed.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `unknown_event`: nothing answers this event.
    pub fn unknown_event(event: &str) -> Self {
        Self::new(ErrorCode::UnknownEvent, format!("no binding answers `{event}`"))
    }

    /// `not_found`: the targeted object does not exist.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `validation` with a field map.
    pub fn validation(fields: FieldErrors) -> Self {
        let fields: serde_json::Map<String, Value> = fields.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
        Self::new(ErrorCode::Validation, "invalid input").with_detail("fields", fields)
    }

    /// `validation` for a single field.
    pub fn validation_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.into(), vec![message.into()]);
        Self::validation(fields)
    }

    /// `unauthenticated`: an identity is needed, or the credentials are invalid.
    pub fn unauthenticated(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// `forbidden`: the identity may not do this.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// `rate_limited` with the wait before a retry may succeed.
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self::new(ErrorCode::RateLimited, "rate limit exceeded").with_detail("retry_after_ms", retry_after_ms)
    }

    /// `payload_too_large`.
    pub fn payload_too_large(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
    }

    /// `unavailable`: a backend is down.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// `internal`: a bug. The message is fixed so that nothing internal leaks;
    /// log the cause where it happens.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Extra keys of the error object (empty when there are none).
    pub fn details(&self) -> &serde_json::Map<String, Value> {
        static NONE: std::sync::LazyLock<serde_json::Map<String, Value>> =
            std::sync::LazyLock::new(serde_json::Map::new);
        self.details.as_deref().unwrap_or(&NONE)
    }
}

impl fmt::Debug for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("details", &self.details)
            .finish()
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EventError {}

impl serde::Serialize for EventError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let details = self.details.as_deref();
        let mut map = serializer.serialize_map(Some(2 + details.map_or(0, serde_json::Map::len)))?;
        map.serialize_entry("code", self.code.as_str())?;
        map.serialize_entry("message", &*self.message)?;
        for (key, value) in details.into_iter().flatten() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status() {
        let statuses: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.http_status().as_u16()).collect();
        assert_eq!(statuses, [400, 404, 404, 422, 401, 403, 429, 413, 503, 500]);
    }

    #[test]
    fn details_cannot_override_code_or_message() {
        let err = EventError::bad_request("x")
            .with_detail("code", "internal")
            .with_detail("message", "leak");
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json, serde_json::json!({"code": "bad_request", "message": "x"}));
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let json = serde_json::to_value(EventError::rate_limited(250)).unwrap();
        assert_eq!(json["retry_after_ms"], 250);
    }
}
