//! Dispatch of events to handlers and bindings by name.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tower::Service;

use super::binding::Binding;
use super::handler::{BlockingHandler, Handler};
use super::states::States;
use crate::event::Event;
use crate::protocol::{EventError, EventName};
use crate::reply::Reply;

type BoxedHandler = Arc<dyn Fn(Event, Arc<States>) -> BoxFuture<'static, Reply> + Send + Sync>;

#[derive(Clone, Default)]
struct Routes {
    handlers: HashMap<String, BoxedHandler>,
    bindings: HashMap<String, Arc<dyn Binding>>,
    states: Arc<States>,
}

/// The innermost service of the event stack: finds who answers an event.
///
/// A custom handler registered for `<stream>.<action>` wins; otherwise the
/// binding of `<stream>` answers; otherwise the reply is `unknown_event`.
/// Registering is one line per handler, like the original's `@bind`.
///
/// A handler that panics answers `internal`; the connection lives on.
///
/// ```
/// use channels_binding_core::{Data, Event, EventRouter, Json};
/// use channels_binding_core::hub::Hub;
/// use channels_binding_core::protocol::EventName;
/// use tower::ServiceExt;
///
/// #[derive(serde::Serialize)]
/// struct Pong { pong: bool, message: &'static str }
///
/// async fn ping() -> Json<Pong> {
///     Json(Pong { pong: true, message: "Hi" })
/// }
///
/// fn sync_ping() -> Json<Pong> {
///     // Blocking work is fine here: this runs on the blocking pool.
///     Json(Pong { pong: true, message: "Hi" })
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let router = EventRouter::new()
///     .on("simple_reflexion.ping", ping)
///     .on_blocking("simple_reflexion.sync_ping", sync_ping);
///
/// let event = Event::new(EventName::parse("simple_reflexion.ping").unwrap(), serde_json::json!({}), Hub::new());
/// let reply = router.oneshot(event).await.unwrap();
/// assert_eq!(reply.outcome().unwrap()["message"], "Hi");
/// # }
/// ```
#[derive(Clone, Default)]
pub struct EventRouter {
    routes: Arc<Routes>,
}

impl EventRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    fn routes_mut(&mut self) -> &mut Routes {
        Arc::make_mut(&mut self.routes)
    }

    fn check_route(name: &str) -> EventName {
        match EventName::parse(name) {
            Ok(parsed) if parsed.hash().is_none() => parsed,
            _ => panic!("`{name}` is not a valid `<stream>.<action>` route"),
        }
    }

    /// Answers `name` (`<stream>.<action>`) with an async function.
    ///
    /// # Panics
    ///
    /// When `name` is not a valid `<stream>.<action>` (a programming error,
    /// caught at start-up).
    #[must_use]
    pub fn on<H, A>(mut self, name: &str, handler: H) -> Self
    where
        H: Handler<A>,
        A: 'static,
    {
        let route = Self::check_route(name);
        let boxed: BoxedHandler = Arc::new(move |event, states| Handler::call(&handler, event, states));
        self.routes_mut().handlers.insert(route.route().to_owned(), boxed);
        self
    }

    /// Answers `name` with a blocking function, run on the blocking pool.
    ///
    /// # Panics
    ///
    /// When `name` is not a valid `<stream>.<action>`.
    #[must_use]
    pub fn on_blocking<H, A>(mut self, name: &str, handler: H) -> Self
    where
        H: BlockingHandler<A>,
        A: 'static,
    {
        let route = Self::check_route(name);
        let boxed: BoxedHandler = Arc::new(move |event, states| BlockingHandler::call(&handler, event, states));
        self.routes_mut().handlers.insert(route.route().to_owned(), boxed);
        self
    }

    /// Adds a binding for its stream, replacing any earlier one.
    #[must_use]
    pub fn binding(mut self, binding: impl Binding) -> Self {
        let stream = binding.stream().to_owned();
        self.routes_mut().bindings.insert(stream, Arc::new(binding));
        self
    }

    /// Registers shared state for [`State<T>`](super::State) extractors.
    #[must_use]
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        Arc::make_mut(&mut self.routes_mut().states).insert(state);
        self
    }

    /// Every event route this router answers, sorted: custom handlers and
    /// each binding's actions.
    pub fn routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self.routes.handlers.keys().cloned().collect();
        for (stream, binding) in &self.routes.bindings {
            routes.extend(binding.actions().into_iter().map(|action| format!("{stream}.{action}")));
        }
        routes.sort();
        routes.dedup();
        routes
    }

    /// The declared shape of every binding that has one, sorted by stream.
    pub fn descriptions(&self) -> Vec<super::BindingDescription> {
        let mut descriptions: Vec<_> = self.routes.bindings.values().filter_map(|b| b.describe()).collect();
        descriptions.sort_by(|a, b| a.stream.cmp(&b.stream));
        descriptions
    }

    /// The custom handlers' routes (`stream.action`), sorted.
    pub fn handler_routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self.routes.handlers.keys().cloned().collect();
        routes.sort();
        routes
    }

    /// Registers every binding's [`change_codec`](Binding::change_codec)
    /// with `hub`, so that changes of every stream arriving from other nodes
    /// (live or replayed to a resuming subscriber) are rendered and filtered
    /// from the first one, before this node has handled any event of the
    /// stream. Call it once at start-up, before serving.
    ///
    /// ```
    /// use channels_binding_core::EventRouter;
    /// use channels_binding_core::hub::Hub;
    ///
    /// let hub = Hub::new();
    /// let router = EventRouter::new();
    /// router.register_codecs(&hub);
    /// ```
    pub fn register_codecs(&self, hub: &crate::hub::Hub) {
        for (stream, binding) in &self.routes.bindings {
            if let Some(codec) = binding.change_codec() {
                hub.register_codec(stream, &codec);
            }
        }
    }

    /// The bindings, by stream.
    pub fn bindings(&self) -> impl Iterator<Item = &dyn Binding> {
        self.routes.bindings.values().map(|b| &**b)
    }

    fn dispatch(&self, event: Event) -> BoxFuture<'static, Reply> {
        if let Some(handler) = self.routes.handlers.get(event.name().route()) {
            return handler(event, self.routes.states.clone());
        }
        if let Some(binding) = self.routes.bindings.get(event.name().stream()) {
            return binding.call(event);
        }
        Box::pin(std::future::ready(Reply::error(EventError::unknown_event(
            event.name().route(),
        ))))
    }
}

impl fmt::Debug for EventRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRouter").field("routes", &self.routes()).finish()
    }
}

/// The future of [`EventRouter`]'s `call`.
pub type RouterFuture = BoxFuture<'static, Result<Reply, Infallible>>;

impl Service<Event> for EventRouter {
    type Response = Reply;
    type Error = Infallible;
    type Future = RouterFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: Event) -> Self::Future {
        let name = event.name().clone();
        // A panic while extracting or building the future must not escape either.
        let future = match std::panic::catch_unwind(AssertUnwindSafe(|| self.dispatch(event))) {
            Ok(future) => future,
            Err(_) => {
                tracing::error!(event = %name, "handler panicked");
                return Box::pin(std::future::ready(Ok(Reply::error(EventError::internal()))));
            }
        };
        Box::pin(async move {
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(reply) => Ok(reply),
                Err(_) => {
                    tracing::error!(event = %name, "handler panicked");
                    Ok(Reply::error(EventError::internal()))
                }
            }
        })
    }
}
