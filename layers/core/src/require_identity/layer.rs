//! The layer.

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::service::RequireIdentity;
use crate::protocol::EventName;

type Rule = Arc<dyn Fn(&EventName) -> bool + Send + Sync>;

/// Requires an identity for the events a rule selects.
#[derive(Clone)]
pub struct RequireIdentityLayer {
    applies: Rule,
}

impl RequireIdentityLayer {
    /// Every event needs an identity.
    pub fn all() -> Self {
        Self::when(|_| true)
    }

    /// Events whose action is one of these need an identity (`create`, `delete`, …).
    pub fn for_actions<I>(actions: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let actions: Vec<String> = actions.into_iter().map(Into::into).collect();
        Self::when(move |name| actions.iter().any(|a| a == name.action()))
    }

    /// Events for which `rule` answers `true` need an identity.
    pub fn when(rule: impl Fn(&EventName) -> bool + Send + Sync + 'static) -> Self {
        Self {
            applies: Arc::new(rule),
        }
    }
}

impl fmt::Debug for RequireIdentityLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireIdentityLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RequireIdentityLayer {
    type Service = RequireIdentity<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireIdentity::new(inner, self.applies.clone())
    }
}
