//! The key map, shared between the governor limiter and the key bound.

use std::sync::Arc;

use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};

use crate::key::RateKey;

/// governor's [`DashMapStateStore`] behind an [`Arc`], so that the limiter can
/// look a key up (`contains`) before governor inserts it: the key bound needs
/// to tell a known caller from a new one, and governor's limiter does not
/// expose its store.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyStore(Arc<DashMapStateStore<RateKey>>);

impl KeyStore {
    /// Whether `key` is tracked.
    pub(crate) fn contains(&self, key: &RateKey) -> bool {
        self.0.contains_key(key)
    }

    /// How many keys are tracked.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl StateStore for KeyStore {
    type Key = RateKey;

    fn measure_and_replace<T, F, E>(&self, key: &RateKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<RateKey> for KeyStore {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
