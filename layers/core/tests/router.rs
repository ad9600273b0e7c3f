//! Integration tests of the event router: custom handlers with extractors,
//! blocking handlers, panics, dispatch to bindings, the page size layer and
//! readiness.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use channels_binding_core::hub::{Connection, Hub, Origin};
use channels_binding_core::page_size::{PageSize, PageSizeLayer};
use channels_binding_core::protocol::{ErrorCode, EventError, EventName};
use channels_binding_core::{
    Binding, Data, Event, EventRouter, FromEvent, Identity, Json, Principal, Reply, State, States,
};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn event(name: &str, data: Value) -> Event {
    Event::new(EventName::parse(name).expect("valid event name"), data, Hub::new())
}

async fn call(router: &mut EventRouter, event: Event) -> Reply {
    match router.ready().await {
        Ok(router) => match router.call(event).await {
            Ok(reply) => reply,
            Err(never) => match never {},
        },
        Err(never) => match never {},
    }
}

fn ok(reply: &Reply) -> &Value {
    match reply.outcome() {
        Ok(value) => value,
        Err(error) => panic!("expected a success reply, got {error:?}"),
    }
}

fn err(reply: &Reply) -> &EventError {
    match reply.outcome() {
        Ok(value) => panic!("expected an error reply, got {value}"),
        Err(error) => error,
    }
}

fn assert_internal(reply: &Reply) {
    let error = err(reply);
    assert_eq!(error.code(), ErrorCode::Internal);
    assert_eq!(error.message(), "internal error");
    // Nothing of the panic or the missing type leaks to the client.
    assert!(error.details().is_empty(), "details: {:?}", error.details());
}

async fn ping() -> Value {
    json!({"pong": true})
}

/// A stream-level binding: answers `now` and `tick`, `unknown_event` otherwise.
struct Clock;

impl Binding for Clock {
    fn stream(&self) -> &str {
        "clock"
    }

    fn actions(&self) -> Vec<String> {
        vec!["now".into(), "tick".into()]
    }

    fn call(&self, event: Event) -> BoxFuture<'static, Reply> {
        let reply = match event.name().action() {
            "now" => Reply::ok(json!({"from": "binding", "action": "now", "hash": event.name().hash()})),
            "tick" => Reply::ok(json!({"from": "binding", "action": "tick", "data": event.data()})),
            _ => Reply::error(EventError::unknown_event(event.name().route())),
        };
        Box::pin(std::future::ready(reply))
    }
}

// ---------------------------------------------------------------------------
// Custom handlers and extractors
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Greeting {
    message: String,
}

#[derive(Clone)]
struct Prefix(&'static str);

#[derive(serde::Serialize)]
struct Greeted {
    echo: String,
    user: Option<String>,
    event: String,
    hash: Option<String>,
    origin_request: Option<u64>,
    connection: Option<u64>,
    sent: usize,
}

async fn greet(
    Data(greeting): Data<Greeting>,
    State(prefix): State<Prefix>,
    identity: Identity,
    hub: Hub,
    name: EventName,
    connection: Option<Connection>,
) -> Result<Json<Greeted>, EventError> {
    let user = identity.id().map(str::to_owned);
    let sent = match &user {
        Some(id) => hub
            .send_to_user(id, "demo.greeted", &json!({"message": greeting.message}))
            .map_err(|_| EventError::internal())?,
        None => 0,
    };
    Ok(Json(Greeted {
        echo: format!("{}{}", prefix.0, greeting.message),
        user,
        event: name.as_str().to_owned(),
        hash: name.hash().map(str::to_owned),
        origin_request: hub.origin().map(|origin| origin.request),
        connection: connection.map(|c| c.id()),
        sent,
    }))
}

#[tokio::test]
async fn async_handler_receives_every_extractor() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::from(Principal::new("42")));
    let mut router = EventRouter::new().on("demo.greet", greet).with_state(Prefix("> "));

    let incoming = Event::new(
        EventName::parse("demo.greet#room1").expect("valid"),
        json!({"message": "hello"}),
        hub.clone(),
    )
    .with_connection(outbox.connection().clone(), 4);
    let reply = call(&mut router, incoming).await;

    assert_eq!(
        ok(&reply),
        &json!({
            "echo": "> hello",
            "user": "42",
            "event": "demo.greet#room1",
            "hash": "room1",
            "origin_request": 4,
            "connection": outbox.connection().id(),
            "sent": 1,
        })
    );
    // The handler's hub is tagged with the request: its push to the caller
    // waits for this reply.
    let push = outbox.try_recv().expect("the handler's push");
    assert_eq!(push.after_reply, Some(4));
    let push: Value = serde_json::from_slice(&push.frame).expect("JSON");
    assert_eq!(push, json!({"event": "demo.greeted", "data": {"message": "hello"}}));
}

#[tokio::test]
async fn handler_without_a_connection_sees_an_anonymous_untagged_event() {
    let mut router = EventRouter::new().on("demo.greet", greet).with_state(Prefix(""));
    let reply = call(&mut router, event("demo.greet", json!({"message": "hi"}))).await;
    assert_eq!(
        ok(&reply),
        &json!({
            "echo": "hi",
            "user": null,
            "event": "demo.greet",
            "hash": null,
            "origin_request": null,
            "connection": null,
            "sent": 0,
        })
    );
}

#[tokio::test]
async fn explicit_identity_reaches_the_handler() {
    async fn who(identity: Identity) -> Value {
        json!({"id": identity.id(), "staff": identity.is_staff()})
    }
    let mut router = EventRouter::new().on("demo.who", who);
    let incoming = event("demo.who", json!({})).with_identity(Identity::from(Principal::new("7").staff(true)));
    assert_eq!(
        ok(&call(&mut router, incoming).await),
        &json!({"id": "7", "staff": true})
    );
}

#[tokio::test]
async fn data_that_does_not_fit_answers_validation_and_skips_the_handler() {
    #[derive(Clone)]
    struct Runs(Arc<AtomicUsize>);

    async fn counted(Data(greeting): Data<Greeting>, State(runs): State<Runs>) -> Value {
        runs.0.fetch_add(1, Ordering::SeqCst);
        json!({"message": greeting.message})
    }

    let runs = Runs(Arc::new(AtomicUsize::new(0)));
    let mut router = EventRouter::new().on("demo.greet", counted).with_state(runs.clone());

    for data in [json!({"message": 5}), json!({}), json!([1, 2]), json!("text")] {
        let reply = call(&mut router, event("demo.greet", data.clone())).await;
        let error = err(&reply);
        assert_eq!(error.code(), ErrorCode::Validation, "data {data}");
        let messages = error.details()["fields"]["data"]
            .as_array()
            .unwrap_or_else(|| panic!("fields.data is a list for {data}: {:?}", error.details()));
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].as_str().is_some_and(|m| !m.is_empty()),
            "a message for {data}"
        );
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), 0, "the handler never ran");

    let reply = call(&mut router, event("demo.greet", json!({"message": "ok"}))).await;
    assert_eq!(ok(&reply), &json!({"message": "ok"}));
    assert_eq!(runs.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_state_that_was_never_registered_answers_internal() {
    #[derive(Clone)]
    struct Missing;
    async fn needs(State(_): State<Missing>) -> Value {
        json!({"ran": true})
    }
    fn needs_blocking(State(_): State<Missing>) -> Value {
        json!({"ran": true})
    }
    let mut router = EventRouter::new()
        .on("demo.needs", needs)
        .on_blocking("demo.needs_blocking", needs_blocking)
        .with_state(Prefix("another type"));
    assert_internal(&call(&mut router, event("demo.needs", json!({}))).await);
    assert_internal(&call(&mut router, event("demo.needs_blocking", json!({}))).await);
}

#[tokio::test]
async fn with_state_replaces_a_value_of_the_same_type() {
    async fn prefix(State(prefix): State<Prefix>) -> Value {
        json!(prefix.0)
    }
    let mut router = EventRouter::new()
        .with_state(Prefix("first"))
        .on("demo.prefix", prefix)
        .with_state(Prefix("second"));
    assert_eq!(
        ok(&call(&mut router, event("demo.prefix", json!({}))).await),
        &json!("second")
    );
}

#[tokio::test]
async fn handler_results_become_replies() {
    async fn unit() {}
    async fn failing() -> Result<Value, EventError> {
        Err(EventError::not_found("no such thing"))
    }
    async fn raw() -> Reply {
        Reply::ok(json!(1)).with_resync(true)
    }
    let mut router = EventRouter::new()
        .on("demo.unit", unit)
        .on("demo.failing", failing)
        .on("demo.raw", raw);

    assert_eq!(ok(&call(&mut router, event("demo.unit", json!({}))).await), &json!({}));
    let reply = call(&mut router, event("demo.failing", json!({}))).await;
    assert_eq!(err(&reply).code(), ErrorCode::NotFound);
    assert_eq!(err(&reply).message(), "no such thing");
    let reply = call(&mut router, event("demo.raw", json!({}))).await;
    assert_eq!(ok(&reply), &json!(1));
    assert!(reply.meta().resync);
}

// ---------------------------------------------------------------------------
// Blocking handlers
// ---------------------------------------------------------------------------

/// Lets a blocking handler wait, on its own thread, for an async handler that
/// can only run if the reactor is free.
#[derive(Clone)]
struct Gate {
    open: mpsc::SyncSender<()>,
    opened: Arc<Mutex<mpsc::Receiver<()>>>,
    reactor: std::thread::ThreadId,
}

fn wait_for_gate(State(gate): State<Gate>) -> Value {
    let on_reactor = std::thread::current().id() == gate.reactor;
    let in_runtime = tokio::runtime::Handle::try_current().is_ok();
    // Only reached on failure: when this runs on the reactor, nothing can
    // open the gate, and the timeout turns a hang into a failed assertion.
    let opened = gate
        .opened
        .lock()
        .expect("gate lock")
        .recv_timeout(Duration::from_secs(10))
        .is_ok();
    json!({"on_reactor": on_reactor, "in_runtime": in_runtime, "opened": opened})
}

async fn open_gate(State(gate): State<Gate>) -> Value {
    gate.open.send(()).expect("the waiting side is alive");
    json!({"opened": true})
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_handlers_run_off_the_reactor() {
    let (open, opened) = mpsc::sync_channel(1);
    let gate = Gate {
        open,
        opened: Arc::new(Mutex::new(opened)),
        reactor: std::thread::current().id(),
    };
    let router = EventRouter::new()
        .on_blocking("gate.wait", wait_for_gate)
        .on("gate.open", open_gate)
        .with_state(gate);

    let waiting = tokio::spawn(router.clone().oneshot(event("gate.wait", json!({}))));
    // Run the waiting call up to its first suspension. Had the handler run
    // inline, this would block the only runtime thread until the timeout.
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;

    // The reactor is free: another event completes while the first waits.
    let reply = router
        .clone()
        .oneshot(event("gate.open", json!({})))
        .await
        .expect("infallible");
    assert_eq!(ok(&reply), &json!({"opened": true}));

    let reply = waiting.await.expect("task").expect("infallible");
    assert_eq!(
        ok(&reply),
        &json!({"on_reactor": false, "in_runtime": true, "opened": true})
    );
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_handlers_take_extractors() {
    #[allow(clippy::needless_pass_by_value, reason = "handler arguments are extracted by value")]
    fn sum(Data(numbers): Data<Vec<i64>>, name: EventName) -> Json<Value> {
        Json(json!({"sum": numbers.iter().sum::<i64>(), "event": name.as_str()}))
    }
    let mut router = EventRouter::new().on_blocking("math.sum", sum);
    let reply = call(&mut router, event("math.sum", json!([1, 2, 3]))).await;
    assert_eq!(ok(&reply), &json!({"sum": 6, "event": "math.sum"}));
    let reply = call(&mut router, event("math.sum", json!({"not": "a list"}))).await;
    assert_eq!(err(&reply).code(), ErrorCode::Validation);
    assert!(err(&reply).details()["fields"]["data"].is_array());
}

// ---------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------

/// An extractor that panics while extracting.
struct Exploding;

impl FromEvent for Exploding {
    fn from_event(_: &mut Event, _: &States) -> Result<Self, EventError> {
        panic!("extractor exploded");
    }
}

/// A binding that panics while building its future.
struct PanickyBinding;

impl Binding for PanickyBinding {
    fn stream(&self) -> &str {
        "panicky"
    }
    fn actions(&self) -> Vec<String> {
        vec!["go".into()]
    }
    fn call(&self, _: Event) -> BoxFuture<'static, Reply> {
        panic!("binding exploded");
    }
}

#[tokio::test]
async fn panicking_handlers_answer_internal_and_the_router_keeps_serving() {
    async fn async_boom() -> Value {
        panic!("async handler exploded");
    }
    fn blocking_boom() -> Value {
        panic!("blocking handler exploded");
    }
    fn eager_boom() -> std::future::Ready<Value> {
        panic!("handler exploded before returning its future");
    }
    async fn uses_exploding(_: Exploding) -> Value {
        json!({"ran": true})
    }

    let mut router = EventRouter::new()
        .on("demo.ping", ping)
        .on("demo.async_boom", async_boom)
        .on_blocking("demo.blocking_boom", blocking_boom)
        .on("demo.eager_boom", eager_boom)
        .on("demo.extract_boom", uses_exploding)
        .binding(PanickyBinding);

    for name in [
        "demo.async_boom",
        "demo.blocking_boom",
        "demo.eager_boom",
        "demo.extract_boom",
        "panicky.go",
    ] {
        assert_internal(&call(&mut router, event(name, json!({}))).await);
        // The same router instance still answers.
        let reply = call(&mut router, event("demo.ping", json!({}))).await;
        assert_eq!(ok(&reply), &json!({"pong": true}), "after {name}");
    }
    // And panics again the same way: nothing was poisoned.
    assert_internal(&call(&mut router, event("demo.async_boom", json!({}))).await);
    assert_internal(&call(&mut router, event("demo.blocking_boom", json!({}))).await);
}

// ---------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_streams_and_actions_answer_unknown_event() {
    let mut router = EventRouter::new().on("demo.ping", ping).binding(Clock);

    let reply = call(&mut router, event("nope.thing", json!({}))).await;
    assert_eq!(err(&reply).code(), ErrorCode::UnknownEvent);
    assert_eq!(err(&reply).message(), "no binding answers `nope.thing`");

    // The hash is not part of the route.
    let reply = call(&mut router, event("nope.thing#5", json!({}))).await;
    assert_eq!(err(&reply).message(), "no binding answers `nope.thing`");

    // A stream with handlers but no binding, and an action it lacks.
    let reply = call(&mut router, event("demo.pong", json!({}))).await;
    assert_eq!(err(&reply).code(), ErrorCode::UnknownEvent);
    assert_eq!(err(&reply).message(), "no binding answers `demo.pong`");

    // A binding's stream, and an action the binding lacks.
    let reply = call(&mut router, event("clock.nope", json!({}))).await;
    assert_eq!(err(&reply).code(), ErrorCode::UnknownEvent);

    // Names are case-sensitive.
    let reply = call(&mut router, event("Demo.ping", json!({}))).await;
    assert_eq!(err(&reply).code(), ErrorCode::UnknownEvent);
}

#[tokio::test]
async fn a_custom_handler_overrides_the_bindings_action_of_the_same_name() {
    async fn custom_now(name: EventName) -> Value {
        json!({"from": "handler", "hash": name.hash()})
    }
    let mut router = EventRouter::new()
        .binding(Clock)
        .on("clock.now", custom_now)
        .on("demo.ping", ping);

    let reply = call(&mut router, event("clock.now", json!({}))).await;
    assert_eq!(ok(&reply), &json!({"from": "handler", "hash": null}));
    let reply = call(&mut router, event("clock.now#3", json!({}))).await;
    assert_eq!(ok(&reply), &json!({"from": "handler", "hash": "3"}));
    // Other actions still reach the binding, with the event intact.
    let reply = call(&mut router, event("clock.tick", json!({"n": 1}))).await;
    assert_eq!(
        ok(&reply),
        &json!({"from": "binding", "action": "tick", "data": {"n": 1}})
    );

    assert_eq!(router.routes(), ["clock.now", "clock.tick", "demo.ping"]);
    assert_eq!(router.bindings().map(Binding::stream).collect::<Vec<_>>(), ["clock"]);
    assert!(format!("{router:?}").contains("clock.tick"));
}

#[tokio::test]
async fn registration_order_does_not_matter_for_the_override() {
    async fn custom_now() -> Value {
        json!({"from": "handler"})
    }
    let mut router = EventRouter::new().on("clock.now", custom_now).binding(Clock);
    let reply = call(&mut router, event("clock.now", json!({}))).await;
    assert_eq!(ok(&reply), &json!({"from": "handler"}));
}

#[tokio::test]
async fn later_registrations_replace_earlier_ones() {
    async fn first() -> Value {
        json!(1)
    }
    async fn second() -> Value {
        json!(2)
    }
    struct OtherClock;
    impl Binding for OtherClock {
        fn stream(&self) -> &str {
            "clock"
        }
        fn actions(&self) -> Vec<String> {
            vec!["later".into()]
        }
        fn call(&self, _: Event) -> BoxFuture<'static, Reply> {
            Box::pin(std::future::ready(Reply::ok(json!("other"))))
        }
    }

    let mut router = EventRouter::new()
        .on("demo.n", first)
        .on("demo.n", second)
        .binding(Clock)
        .binding(OtherClock);
    assert_eq!(ok(&call(&mut router, event("demo.n", json!({}))).await), &json!(2));
    assert_eq!(
        ok(&call(&mut router, event("clock.now", json!({}))).await),
        &json!("other")
    );
    assert_eq!(router.routes(), ["clock.later", "demo.n"]);
}

#[tokio::test]
async fn adding_routes_to_a_clone_leaves_the_original_unchanged() {
    let base = EventRouter::new().on("demo.ping", ping);
    let mut extended = base.clone().binding(Clock);
    let mut base = base;
    assert_eq!(base.routes(), ["demo.ping"]);
    assert_eq!(extended.routes(), ["clock.now", "clock.tick", "demo.ping"]);
    assert!(call(&mut extended, event("clock.now", json!({}))).await.is_ok());
    assert!(!call(&mut base, event("clock.now", json!({}))).await.is_ok());
}

#[test]
fn an_empty_router_lists_no_routes() {
    assert!(EventRouter::new().routes().is_empty());
    assert_eq!(EventRouter::new().bindings().count(), 0);
}

#[test]
#[should_panic(expected = "is not a valid `<stream>.<action>` route")]
fn registering_a_hashed_route_panics() {
    let _ = EventRouter::new().on("demo.ping#1", ping);
}

#[test]
#[should_panic(expected = "is not a valid `<stream>.<action>` route")]
fn registering_a_route_without_an_action_panics() {
    let _ = EventRouter::new().on("ping", ping);
}

// ---------------------------------------------------------------------------
// Page size layer
// ---------------------------------------------------------------------------

/// Answers with the page sizes a layer above attached, or `null`.
struct Pages;

impl Binding for Pages {
    fn stream(&self) -> &str {
        "pages"
    }
    fn actions(&self) -> Vec<String> {
        vec!["size".into()]
    }
    fn call(&self, event: Event) -> BoxFuture<'static, Reply> {
        let sizes = event
            .extensions()
            .get::<PageSize>()
            .map(|size| json!({"default": size.default_size(), "max": size.max_size()}));
        Box::pin(std::future::ready(Reply::ok(sizes.unwrap_or(Value::Null))))
    }
}

#[tokio::test]
async fn page_size_layer_is_visible_to_bindings_below_it() {
    let page_size = PageSize::new(50, 200).expect("valid sizes");
    let stack = ServiceBuilder::new()
        .layer(PageSizeLayer::new(page_size))
        .service(EventRouter::new().binding(Pages));
    let reply = stack
        .clone()
        .oneshot(event("pages.size", json!({})))
        .await
        .expect("infallible");
    assert_eq!(ok(&reply), &json!({"default": 50, "max": 200}));

    // Without the layer there is nothing.
    let reply = EventRouter::new()
        .binding(Pages)
        .oneshot(event("pages.size", json!({})))
        .await
        .expect("infallible");
    assert_eq!(ok(&reply), &Value::Null);

    // The outermost layer wins over an inner one: it inserts last.
    let nested = ServiceBuilder::new()
        .layer(PageSizeLayer::new(PageSize::DEFAULT))
        .layer(PageSizeLayer::new(page_size))
        .service(EventRouter::new().binding(Pages));
    let reply = nested
        .oneshot(event("pages.size", json!({})))
        .await
        .expect("infallible");
    assert_eq!(ok(&reply), &json!({"default": 50, "max": 200}));
}

// ---------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn the_router_is_always_ready_even_with_calls_in_flight() {
    #[derive(Clone)]
    struct Hold(Arc<tokio::sync::Semaphore>);
    async fn held(State(hold): State<Hold>) -> Value {
        let _permit = hold.0.acquire().await.expect("semaphore open");
        json!({"done": true})
    }

    let hold = Hold(Arc::new(tokio::sync::Semaphore::new(0)));
    let mut router = EventRouter::new().on("demo.held", held).with_state(hold.clone());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(router.poll_ready(&mut cx), Poll::Ready(Ok(()))));

    let mut in_flight = Vec::new();
    for _ in 0..100 {
        assert!(matches!(router.poll_ready(&mut cx), Poll::Ready(Ok(()))));
        let mut future = router.call(event("demo.held", json!({})));
        assert!(future.as_mut().poll(&mut cx).is_pending(), "the handler waits");
        in_flight.push(future);
    }
    // No backpressure: still ready with 100 calls pending.
    assert!(matches!(router.poll_ready(&mut cx), Poll::Ready(Ok(()))));

    // Wrapped in a layer, readiness is the router's.
    let mut stack = PageSizeLayer::new(PageSize::DEFAULT).layer(router.clone());
    assert!(matches!(stack.poll_ready(&mut cx), Poll::Ready(Ok(()))));

    hold.0.add_permits(100);
    for future in in_flight {
        let reply = future.await.expect("infallible");
        assert_eq!(ok(&reply), &json!({"done": true}));
    }
}

#[test]
fn origin_is_set_by_with_connection() {
    let hub = Hub::new();
    let outbox = hub.connect(Identity::from(Principal::new("9")));
    let incoming = event("demo.ping", json!({})).with_connection(outbox.connection().clone(), 11);
    let expected = Origin {
        connection: outbox.connection().id(),
        request: 11,
    };
    assert_eq!(incoming.origin(), Some(expected));
    assert_eq!(incoming.hub().origin(), Some(expected));
    assert_eq!(incoming.identity().id(), Some("9"));
}
