//! The claims of a verified token.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::rejection::Rejection;

/// The longest `sub` accepted, in bytes.
pub const MAX_SUBJECT_LEN: usize = 256;

/// The claims of a token whose signature, algorithm, expiry, `nbf`,
/// audience and issuer have been checked.
///
/// `sub` is a non-empty string of at most [`MAX_SUBJECT_LEN`] bytes without
/// control characters, and `exp` a valid time: both are guaranteed. Any
/// other claim is available through [`get`](Self::get).
///
/// `Debug` shows only the subject and the expiry: other claims may hold
/// personal data.
#[derive(Clone, PartialEq)]
pub struct Claims {
    subject: String,
    expires_at: SystemTime,
    all: Map<String, Value>,
}

impl Claims {
    /// Checks the claims jsonwebtoken does not type for us.
    pub(crate) fn from_map(all: Map<String, Value>) -> Result<Self, Rejection> {
        let subject = match all.get("sub") {
            Some(Value::String(sub)) if valid_subject(sub) => sub.clone(),
            _ => return Err(Rejection::Subject),
        };
        let expires_at = all.get("exp").and_then(numeric_date).ok_or(Rejection::Claims)?;
        Ok(Self {
            subject,
            expires_at,
            all,
        })
    }

    /// The subject (`sub`): the user id.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject as an integer user id, when it is the one canonical
    /// decimal spelling of that id (see [`canonical_id`]): a token for
    /// `"+5763"` or `"05763"` names no user, so one user cannot appear under
    /// several names (with a rate-limit budget and group each).
    pub fn subject_id(&self) -> Option<i64> {
        canonical_id(&self.subject)
    }

    /// The expiry (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The issuer (`iss`), when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.all.get("iss").and_then(Value::as_str)
    }

    /// Any claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.all.get(name)
    }

    /// Every claim.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.all
    }

    /// Every claim, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.all
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("sub", &self.subject)
            .field("exp", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `text` as an `i64` when it is exactly the way that number is written
/// (`5763`, `-2`, `0`), `None` for any other spelling (`+5763`, `05763`,
/// ` 5763`, `5763 `, `-0`) or anything that is not an `i64`.
///
/// An id that can be written several ways is several ids to every table
/// keyed by its text (rate-limit budgets, groups, logs); accepting only the
/// canonical spelling keeps them one.
///
/// ```
/// use channels_binding_jwt::canonical_id;
///
/// assert_eq!(canonical_id("5763"), Some(5763));
/// assert_eq!(canonical_id("-2"), Some(-2));
/// for other in ["+5763", "05763", " 5763", "5763 ", "-0", "", "5e3", "99999999999999999999"] {
///     assert_eq!(canonical_id(other), None, "{other:?}");
/// }
/// ```
pub fn canonical_id(text: &str) -> Option<i64> {
    let id: i64 = text.parse().ok()?;
    // The shortest form is the only one `Display` writes; compare without
    // allocating by checking the characters `parse` tolerates.
    let digits = text.strip_prefix('-').unwrap_or(text);
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    let negative_zero = text.starts_with('-') && id == 0;
    (!text.starts_with('+') && !leading_zero && !negative_zero).then_some(id)
}

/// Whether `sub` can name a user: not empty, bounded, no control characters
/// (ids end up in group names and logs).
pub(crate) fn valid_subject(sub: &str) -> bool {
    !sub.is_empty() && sub.len() <= MAX_SUBJECT_LEN && !sub.chars().any(char::is_control)
}

/// A JWT NumericDate: seconds since the epoch, an integer or a non-negative
/// finite number (its fraction dropped). `None` when it is anything else or
/// does not fit a `SystemTime`.
fn numeric_date(value: &Value) -> Option<SystemTime> {
    let seconds = match value.as_u64() {
        Some(seconds) => seconds,
        None => {
            let float = value
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)?;
            // Truncation is the intent: a fraction of a second never extends a token.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let seconds = float as u64;
            seconds
        }
    };
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Result<Claims, Rejection> {
        match value {
            Value::Object(map) => Claims::from_map(map),
            _ => unreachable!("test claims are objects"),
        }
    }

    #[test]
    fn subject_must_be_a_bounded_string() {
        assert_eq!(claims(json!({"sub": "5763", "exp": 10})).unwrap().subject(), "5763");
        for bad in [
            json!({"exp": 10}),
            json!({"sub": 5763, "exp": 10}),
            json!({"sub": "", "exp": 10}),
            json!({"sub": null, "exp": 10}),
            json!({"sub": ["5763"], "exp": 10}),
            json!({"sub": "a\nb", "exp": 10}),
            json!({"sub": "x".repeat(MAX_SUBJECT_LEN + 1), "exp": 10}),
        ] {
            assert_eq!(claims(bad.clone()).unwrap_err(), Rejection::Subject, "{bad}");
        }
        assert!(claims(json!({"sub": "x".repeat(MAX_SUBJECT_LEN), "exp": 10})).is_ok());
    }

    #[test]
    fn exp_must_be_a_representable_numeric_date() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(claims(json!({"sub": "1", "exp": 10})).unwrap().expires_at(), at(10));
        assert_eq!(claims(json!({"sub": "1", "exp": 10.9})).unwrap().expires_at(), at(10));
        for bad in [json!("10"), json!(-1), json!(-1.5), json!(null), json!(1e300)] {
            assert_eq!(
                claims(json!({"sub": "1", "exp": bad})).unwrap_err(),
                Rejection::Claims,
                "{bad}"
            );
        }
        assert_eq!(claims(json!({"sub": "1"})).unwrap_err(), Rejection::Claims);
    }

    #[test]
    fn debug_shows_only_subject_and_expiry() {
        let claims = claims(json!({"sub": "1", "exp": 10, "email": "a@example.com"})).unwrap();
        let debug = format!("{claims:?}");
        assert!(!debug.contains("example.com"), "{debug}");
        assert_eq!(claims.get("email"), Some(&json!("a@example.com")));
        assert_eq!(claims.issuer(), None);
    }
}
