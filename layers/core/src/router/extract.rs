//! Handler arguments taken from the event: `Data<T>`, `State<T>`, `Identity`, `Hub`, …

use std::ops::{Deref, DerefMut};

use serde::de::DeserializeOwned;

use super::states::States;
use crate::event::Event;
use crate::hub::{Connection, Hub};
use crate::identity::Identity;
use crate::protocol::{EventError, EventName};

/// A value a handler can take as an argument.
///
/// A failed extraction answers the event with the returned error; the
/// handler does not run.
pub trait FromEvent: Sized + Send + 'static {
    /// Extracts the value.
    ///
    /// # Errors
    ///
    /// The error reply to send instead of running the handler.
    fn from_event(event: &mut Event, states: &States) -> Result<Self, EventError>;
}

/// The event's `data`, deserialized into `T`.
///
/// Data that does not fit `T` is a `validation` reply naming what is wrong.
///
/// ```
/// use channels_binding_core::Data;
///
/// #[derive(serde::Deserialize)]
/// struct Greeting { message: String }
///
/// async fn greet(Data(greeting): Data<Greeting>) -> serde_json::Value {
///     serde_json::json!({ "echo": greeting.message })
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromEvent for Data<T> {
    fn from_event(event: &mut Event, _: &States) -> Result<Self, EventError> {
        serde_json::from_value(event.take_data())
            .map(Data)
            .map_err(|err| EventError::validation_field("data", err.to_string()))
    }
}

impl<T> Deref for Data<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Data<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// Shared application state registered with [`EventRouter::with_state`](super::EventRouter::with_state).
///
/// ```
/// use channels_binding_core::{EventRouter, State};
///
/// #[derive(Clone)]
/// struct Greeting(&'static str);
///
/// async fn hello(State(greeting): State<Greeting>) -> serde_json::Value {
///     serde_json::json!({ "message": greeting.0 })
/// }
///
/// let router = EventRouter::new().on("demo.hello", hello).with_state(Greeting("Hi"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for State<T> {
    fn from_event(_: &mut Event, states: &States) -> Result<Self, EventError> {
        match states.get::<T>() {
            Some(state) => Ok(State(state.clone())),
            None => {
                tracing::error!(
                    state = std::any::type_name::<T>(),
                    "handler asks for a state that was never registered"
                );
                Err(EventError::internal())
            }
        }
    }
}

impl FromEvent for Identity {
    fn from_event(event: &mut Event, _: &States) -> Result<Self, EventError> {
        Ok(event.identity().clone())
    }
}

impl FromEvent for Hub {
    fn from_event(event: &mut Event, _: &States) -> Result<Self, EventError> {
        Ok(event.hub().clone())
    }
}

impl FromEvent for EventName {
    fn from_event(event: &mut Event, _: &States) -> Result<Self, EventError> {
        Ok(event.name().clone())
    }
}

impl FromEvent for Option<Connection> {
    fn from_event(event: &mut Event, _: &States) -> Result<Self, EventError> {
        Ok(event.connection().cloned())
    }
}

impl FromEvent for Option<crate::ClientAddr> {
    fn from_event(event: &mut Event, _: &States) -> Result<Self, EventError> {
        Ok(event.extensions().get::<crate::ClientAddr>().copied())
    }
}
