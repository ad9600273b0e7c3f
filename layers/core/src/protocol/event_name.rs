//! Event names: `<stream>.<action>[#<hash>]`.

use std::fmt;
use std::sync::Arc;

/// Longest event name accepted, in bytes. Names are routing keys, not payloads;
/// the bound keeps group keys and log lines small.
pub const MAX_EVENT_NAME_LEN: usize = 512;

/// A parsed event name such as `auth.User.retrieve#5763`.
///
/// The stream may contain dots (`auth.User`); the action is the last
/// dot-separated segment before the first `#`; the optional hash is everything
/// after that `#`. The original string is kept unchanged so that a reply can
/// echo it byte for byte.
///
/// ```
/// use channels_binding_core::protocol::EventName;
///
/// let name = EventName::parse("auth.User.retrieve#5763").unwrap();
/// assert_eq!(name.stream(), "auth.User");
/// assert_eq!(name.action(), "retrieve");
/// assert_eq!(name.hash(), Some("5763"));
/// assert_eq!(name.route(), "auth.User.retrieve");
/// assert_eq!(name.as_str(), "auth.User.retrieve#5763");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventName {
    raw: Arc<str>,
    /// Byte index of the dot that separates stream and action.
    action_dot: usize,
    /// Byte index of the first `#`, if any.
    hash_mark: Option<usize>,
}

/// Why a string is not an event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventNameError {
    /// The name is empty.
    #[error("event name is empty")]
    Empty,
    /// The name is longer than [`MAX_EVENT_NAME_LEN`].
    #[error("event name is longer than {MAX_EVENT_NAME_LEN} bytes")]
    TooLong,
    /// There is no `.` separating a stream from an action.
    #[error("event name must look like `<stream>.<action>`")]
    MissingAction,
    /// A dot-separated segment of the stream or the action is empty.
    #[error("event name has an empty segment")]
    EmptySegment,
    /// A `#` is present but nothing follows it.
    #[error("event hash is empty")]
    EmptyHash,
    /// Whitespace or a control character outside the hash.
    #[error("event name contains whitespace or a control character")]
    InvalidCharacter,
}

impl EventName {
    /// Parses an event name.
    ///
    /// # Errors
    ///
    /// Returns an [`EventNameError`] when the string is not of the form
    /// `<stream>.<action>[#<hash>]` with non-empty segments.
    pub fn parse(raw: &str) -> Result<Self, EventNameError> {
        let (action_dot, hash_mark) = Self::split_points(raw)?;
        Ok(Self {
            raw: Arc::from(raw),
            action_dot,
            hash_mark,
        })
    }

    /// Builds an event name from its parts.
    ///
    /// ```
    /// use channels_binding_core::protocol::EventName;
    ///
    /// let name = EventName::from_parts("auth.User", "deleted", Some("5")).unwrap();
    /// assert_eq!(name.as_str(), "auth.User.deleted#5");
    /// ```
    ///
    /// # Errors
    ///
    /// Returns an [`EventNameError`] when a part is empty or malformed, or when
    /// the action contains a `.` or `#`.
    pub fn from_parts(stream: &str, action: &str, hash: Option<&str>) -> Result<Self, EventNameError> {
        if action.contains('.') || action.contains('#') || stream.contains('#') {
            return Err(EventNameError::InvalidCharacter);
        }
        let mut raw = String::with_capacity(stream.len() + action.len() + 2 + hash.map_or(0, str::len));
        raw.push_str(stream);
        raw.push('.');
        raw.push_str(action);
        if let Some(hash) = hash {
            raw.push('#');
            raw.push_str(hash);
        }
        Self::parse(&raw)
    }

    fn split_points(raw: &str) -> Result<(usize, Option<usize>), EventNameError> {
        if raw.is_empty() {
            return Err(EventNameError::Empty);
        }
        if raw.len() > MAX_EVENT_NAME_LEN {
            return Err(EventNameError::TooLong);
        }
        let hash_mark = raw.find('#');
        let route = match hash_mark {
            Some(at) => {
                if at + 1 == raw.len() {
                    return Err(EventNameError::EmptyHash);
                }
                &raw[..at]
            }
            None => raw,
        };
        if route.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EventNameError::InvalidCharacter);
        }
        let action_dot = route.rfind('.').ok_or(EventNameError::MissingAction)?;
        if route.split('.').any(str::is_empty) {
            return Err(EventNameError::EmptySegment);
        }
        Ok((action_dot, hash_mark))
    }

    /// The whole name, exactly as received.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The whole name as a shared string (cheap to clone).
    pub fn as_shared(&self) -> &Arc<str> {
        &self.raw
    }

    /// The stream: everything before the action (`auth.User`).
    pub fn stream(&self) -> &str {
        &self.raw[..self.action_dot]
    }

    /// The action: the last segment before the hash (`retrieve`).
    pub fn action(&self) -> &str {
        &self.raw[self.action_dot + 1..self.hash_mark.unwrap_or(self.raw.len())]
    }

    /// The hash: everything after the first `#`, if present.
    pub fn hash(&self) -> Option<&str> {
        self.hash_mark.map(|at| &self.raw[at + 1..])
    }

    /// `<stream>.<action>` without the hash: the routing key.
    pub fn route(&self) -> &str {
        &self.raw[..self.hash_mark.unwrap_or(self.raw.len())]
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.raw, f)
    }
}

impl std::str::FromStr for EventName {
    type Err = EventNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_stream_action_and_hash() {
        let name = EventName::parse("simple_reflexion.ping").unwrap();
        assert_eq!(
            (name.stream(), name.action(), name.hash()),
            ("simple_reflexion", "ping", None)
        );
        let name = EventName::parse("a.b.c.d#x#y").unwrap();
        assert_eq!((name.stream(), name.action(), name.hash()), ("a.b.c", "d", Some("x#y")));
        assert_eq!(name.route(), "a.b.c.d");
    }

    #[test]
    fn rejects_malformed_names() {
        assert_eq!(EventName::parse(""), Err(EventNameError::Empty));
        assert_eq!(EventName::parse("ping"), Err(EventNameError::MissingAction));
        assert_eq!(EventName::parse(".ping"), Err(EventNameError::EmptySegment));
        assert_eq!(EventName::parse("a..ping"), Err(EventNameError::EmptySegment));
        assert_eq!(EventName::parse("a.ping."), Err(EventNameError::EmptySegment));
        assert_eq!(EventName::parse("a.ping#"), Err(EventNameError::EmptyHash));
        assert_eq!(EventName::parse("a b.ping"), Err(EventNameError::InvalidCharacter));
        assert_eq!(EventName::parse("#a.b"), Err(EventNameError::MissingAction));
        assert_eq!(EventName::parse(&"a.".repeat(300)), Err(EventNameError::TooLong));
    }

    fn segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_\\-]{1,12}"
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_round_trips(
            stream in proptest::collection::vec(segment(), 1..4),
            action in segment(),
            hash in proptest::option::of("[^\\x00]{1,20}"),
        ) {
            let stream = stream.join(".");
            let name = EventName::from_parts(&stream, &action, hash.as_deref()).unwrap();
            let parsed = EventName::parse(name.as_str()).unwrap();
            prop_assert_eq!(parsed.stream(), stream.as_str());
            prop_assert_eq!(parsed.action(), action.as_str());
            prop_assert_eq!(parsed.hash(), hash.as_deref());
            prop_assert_eq!(parsed, name);
        }

        #[test]
        fn parsing_any_string_never_panics(raw in any::<String>()) {
            if let Ok(name) = EventName::parse(&raw) {
                prop_assert_eq!(name.as_str(), raw.as_str());
                prop_assert!(!name.stream().is_empty());
                prop_assert!(!name.action().is_empty());
            }
        }
    }
}
