//! Typed application state shared by handlers.

use std::fmt;

/// A typed map of application state, one value per type.
#[derive(Clone, Default)]
pub struct States(http::Extensions);

impl States {
    /// Stores a value, replacing any value of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(value);
    }

    /// The value of type `T`, if registered.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.get::<T>()
    }
}

impl fmt::Debug for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("States").field("len", &self.0.len()).finish()
    }
}
