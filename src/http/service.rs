//! The HTTP transport: the frame endpoint, the REST mapping, the SSE feed,
//! generated API documents and the console page, on the same event stack as
//! the WebSocket.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::StreamPosition;
use channels_binding_core::protocol::{EventError, EventName, parse_frame};
use channels_binding_core::{ClientAddr, Event, EventRouter, Hub, Identity, Reply};
use futures_util::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use tower::{Service, ServiceExt};

use super::config::HttpConfig;
use super::query::search_data;
use super::route::{DataFrom, Route, route};
use super::{asyncapi, client_assets, openapi, respond, sse, typescript};
use crate::body::{Body, BoxError, full};
use crate::shutdown::Shutdown;

/// The console page, embedded: no build step, no external assets.
const CONSOLE: &str = include_str!("console.html");

/// What is computed once from the router: the API documents.
struct Catalog {
    openapi: Bytes,
    asyncapi: Bytes,
    typescript: client_assets::Asset,
}

/// The HTTP side of the API (`docs/PROTOCOL.md` §4), over an event stack `E`:
///
/// * `POST <root>` takes one frame and answers the reply frame, with the
///   status of its outcome;
/// * the REST mapping under `<root>api/` (`GET api/<stream>/<id>` retrieve,
///   `GET api/<stream>?page=&limit=&order=&query=&<field>=` search, `POST`
///   create, `PATCH` update, `PUT` save, `DELETE` delete, `POST
///   api/<stream>/<action>` anything else), bodies being `data` alone and
///   error bodies the `error` object;
/// * `GET api/<stream>/events`, the change feed as Server-Sent Events;
/// * `GET api/openapi.json` and `GET api/asyncapi.json`, generated from the
///   declared bindings;
/// * `GET <root>`, a console page to try frames in a browser;
/// * `GET <root>channels-binding.mjs` (the JavaScript client, with its
///   `.d.ts` and `channels-binding-react.mjs`) and `GET
///   <root>api/channels-binding.d.ts` (TypeScript types of the bindings).
///
/// The identity is the one an authentication layer put into the request's
/// extensions, as for the WebSocket; every event layer of `E` applies to
/// HTTP and WebSocket alike. Use it as the WebSocket's fallback:
///
/// ```
/// use channels_binding::http::HttpApi;
/// use channels_binding::ws::WebSocket;
/// use channels_binding::{EventRouter, Hub};
///
/// let router = EventRouter::new().on("demo.ping", || async { serde_json::json!({"pong": true}) });
/// let hub = Hub::new();
/// let service = WebSocket::new(router.clone(), hub.clone()).fallback(HttpApi::new(router.clone(), hub, &router));
/// ```
pub struct HttpApi<E> {
    events: E,
    hub: Hub,
    config: Arc<HttpConfig>,
    catalog: Arc<Catalog>,
    shutdown: Shutdown,
}

impl<E: Clone> Clone for HttpApi<E> {
    fn clone(&self) -> Self {
        Self {
            events: self.events.clone(),
            hub: self.hub.clone(),
            config: self.config.clone(),
            catalog: self.catalog.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<E> HttpApi<E> {
    /// The HTTP API over the event stack `events`; `router` (the stack's
    /// innermost router) names the streams and documents the API.
    pub fn new(events: E, hub: Hub, router: &EventRouter) -> Self {
        Self::with_config(events, hub, router, HttpConfig::default())
    }

    /// The same, with these limits and options.
    pub fn with_config(events: E, hub: Hub, router: &EventRouter, config: HttpConfig) -> Self {
        let descriptions = router.descriptions();
        let handlers = router.handler_routes();
        let encode = |value: Value| Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        let catalog = Catalog {
            openapi: encode(openapi::openapi_document(&descriptions, &handlers, &config.root)),
            asyncapi: encode(asyncapi::asyncapi_document(&descriptions, &handlers, &config.root)),
            typescript: client_assets::typescript_asset(typescript::typescript_declarations(&descriptions, &handlers)),
        };
        Self {
            events,
            hub,
            config: Arc::new(config),
            catalog: Arc::new(catalog),
            shutdown: Shutdown::new(),
        }
    }

    /// Ends SSE streams when this handle is triggered.
    #[must_use]
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }
}

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unread {
    /// Declared or found larger than the limit.
    TooLarge(usize),
    /// Not received within the body timeout.
    TimedOut(Duration),
    /// The connection failed while reading.
    Broken,
}

impl Unread {
    fn error(self) -> EventError {
        match self {
            Self::TooLarge(limit) => EventError::payload_too_large(format!("body over {limit} bytes")),
            Self::TimedOut(timeout) => EventError::bad_request(format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            )),
            Self::Broken => EventError::bad_request("could not read the request body"),
        }
    }

    /// The error's status, but `408 Request Timeout` for a slow body, so that
    /// clients and proxies know the request may be sent again.
    fn respond(self, response: Response<Body>) -> Response<Body> {
        let mut response = response;
        if let Self::TimedOut(_) = self {
            *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
        }
        response
    }
}

/// Reads a whole body, bounded in size and in time. A declared length over
/// the limit is refused before anything is read.
async fn read_body<B>(body: B, limit: usize, timeout: Duration) -> Result<Bytes, Unread>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if usize::try_from(body.size_hint().lower()).map_or(true, |declared| declared > limit) {
        return Err(Unread::TooLarge(limit));
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(Unread::TooLarge(limit)),
        Ok(Err(_)) => Err(Unread::Broken),
        Err(_) => Err(Unread::TimedOut(timeout)),
    }
}

/// Reads a JSON body, bounded; an empty body is `{}`.
async fn read_json<B>(body: B, limit: usize, timeout: Duration) -> Result<Value, Response<Body>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let bytes = read_body(body, limit, timeout)
        .await
        .map_err(|unread| unread.respond(respond::error(&unread.error())))?;
    if bytes.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(&bytes).map_err(|_| respond::error(&EventError::bad_request("the body is not valid JSON")))
}

fn page(content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body.into()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

impl<E, B> Service<Request<B>> for HttpApi<E>
where
    E: Service<Event, Response = Reply, Error = Infallible> + Clone + Send + 'static,
    E::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.answer(request).await) })
    }
}

impl<E> HttpApi<E>
where
    E: Service<Event, Response = Reply, Error = Infallible> + Clone + Send + 'static,
    E::Future: Send,
{
    async fn answer<B>(self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let identity = parts.extensions.get::<Identity>().cloned().unwrap_or_default();
        let client_addr = parts.extensions.get::<ClientAddr>().copied();
        if let Some(response) = client_assets::respond(&parts, &self.config.root, &self.catalog.typescript) {
            return response;
        }
        match route(&parts.method, parts.uri.path(), &self.config.root) {
            Route::Frame => {
                // The frame endpoint answers frames, even when there is no frame to read.
                let bytes = match read_body(body, self.config.max_body_size, self.config.body_timeout).await {
                    Ok(bytes) => bytes,
                    Err(unread) => return unread.respond(respond::frame(&Reply::error(unread.error()), None, None)),
                };
                let frame = match parse_frame(&bytes) {
                    Ok(frame) => frame,
                    Err(error) => return respond::json(StatusCode::BAD_REQUEST, error.encode()),
                };
                let name = frame.name.as_shared().clone();
                let request_id = frame.request_id.clone();
                let event = self.event(Event::from_frame(frame, self.hub.clone()), identity, client_addr);
                let reply = self.call_events(event).await;
                respond::frame(&reply, Some(&name), request_id.as_ref())
            }
            Route::Console if self.config.console => page("text/html; charset=utf-8", CONSOLE),
            Route::OpenApi => page("application/json", self.catalog.openapi.clone()),
            Route::AsyncApi => page("application/json", self.catalog.asyncapi.clone()),
            Route::Events(stream) => {
                self.events_feed(&stream, identity, client_addr, parts.headers.get("last-event-id"))
                    .await
            }
            Route::Event { name, data, creates } => {
                let data = match data {
                    DataFrom::Nothing => Ok(Value::Object(serde_json::Map::new())),
                    DataFrom::Query => search_data(parts.uri.query())
                        .map_err(|message| respond::error(&EventError::bad_request(message))),
                    DataFrom::Body => read_json(body, self.config.max_body_size, self.config.body_timeout).await,
                };
                let data = match data {
                    Ok(data) => data,
                    Err(response) => return response,
                };
                // The object's id is in the path; a different one in the body is a mistake.
                if name.hash().is_some() && data.get("id").is_some() {
                    return respond::error(&EventError::validation_field("id", "the id is given by the path"));
                }
                let event = self.event(Event::new(name, data, self.hub.clone()), identity, client_addr);
                let reply = self.call_events(event).await;
                let success = if creates { StatusCode::CREATED } else { StatusCode::OK };
                respond::payload(&reply, success)
            }
            Route::MethodNotAllowed => respond::json(
                StatusCode::METHOD_NOT_ALLOWED,
                br#"{"code":"bad_request","message":"method not allowed here"}"#.as_slice(),
            ),
            Route::Console | Route::NotFound => {
                respond::error(&EventError::not_found("nothing here: see api/openapi.json"))
            }
        }
    }

    /// Opens an SSE feed: a `subscribe` event through the stack on a fresh
    /// hub connection, whose pushes then stream to the client.
    fn events_feed(
        &self,
        stream: &str,
        identity: Identity,
        client_addr: Option<ClientAddr>,
        last_event_id: Option<&HeaderValue>,
    ) -> impl std::future::Future<Output = Response<Body>> + Send + 'static {
        let opened = EventName::from_parts(stream, "subscribe", None).map(|name| {
            let outbox = self.hub.connect(identity);
            let data = sse::subscribe_data(last_event_id);
            let unreadable_id = last_event_id.is_some() && data.get("since").is_none();
            let event = self.event(
                Event::new(name, data, self.hub.clone()).with_connection(outbox.connection().clone(), 0),
                outbox.connection().identity(),
                client_addr,
            );
            (outbox, unreadable_id, self.call_events(event))
        });
        let keep_alive = self.config.sse_keep_alive;
        let shutdown = self.shutdown.clone();
        async move {
            let Ok((outbox, unreadable_id, reply)) = opened else {
                return respond::error(&EventError::not_found("no such stream"));
            };
            let reply = reply.await;
            if let Err(error) = reply.outcome() {
                return respond::error(error);
            }
            let position = reply
                .meta()
                .position
                .clone()
                .map(|(epoch, seq)| StreamPosition { epoch, seq });
            let resync = if reply.meta().resync || unreadable_id {
                position
            } else {
                None
            };
            sse::stream(outbox, resync, keep_alive, shutdown)
        }
    }

    fn event(&self, event: Event, identity: Identity, client_addr: Option<ClientAddr>) -> Event {
        let mut event = event.with_identity(identity);
        if let Some(addr) = client_addr {
            event.extensions_mut().insert(addr);
        }
        event
    }

    fn call_events(&self, event: Event) -> impl std::future::Future<Output = Reply> + Send + 'static {
        // Clone before awaiting: the future must not borrow `self` (E need not be Sync).
        let events = self.events.clone();
        async move {
            match events.oneshot(event).await {
                Ok(reply) => reply,
                Err(never) => match never {},
            }
        }
    }
}

/// The console's HTML, for servers that serve it elsewhere.
pub fn console_html() -> &'static str {
    CONSOLE
}
