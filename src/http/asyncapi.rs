//! The AsyncAPI 3.0 document of the WebSocket API (PROTOCOL.md §1-3),
//! generated from the bindings' declarations with the same schemas as the
//! OpenAPI document.

use std::collections::HashSet;

use channels_binding_core::BindingDescription;
use serde_json::{Map, Value, json};

use super::openapi::{
    API_VERSION, BindingSchemas, Names, ack_schema, binding_schemas, error_frame_schema, filters_schema, key,
    list_input_schema, normalize_root, order_schema, pk_schema, position_schema, regex_escape, route_of, schema_ref,
    since_schema, split_routes, write_schema,
};

/// The key of the one channel: the socket.
const CHANNEL: &str = "socket";

/// The AsyncAPI 3.0.0 document of the WebSocket API at `root` (`"/"`, or
/// `"/rt/"`; a missing leading or trailing `/` is added).
///
/// One channel, the socket, carries every message:
///
/// * per binding action, the request `<stream>.<action>[#<pk>]` and its
///   reply (the request's event unchanged), with `data` schemas built from
///   the binding's fields: objects of readable fields, writable fields on
///   writes, `filters` and `order` on filterable and orderable fields;
/// * per binding, the pushes of its change feed, `<stream>.created`,
///   `<stream>.updated#<pk>` and `<stream>.deleted#<pk>`, and the echo of a
///   `retrieve` subscription (the `retrieve` event again, with the new state);
/// * per handler route `stream.action`, its request and reply (any JSON);
/// * the error reply `{event, error: {code, message, ...}}`, a possible reply
///   of every request.
///
/// Requests are `receive` operations of the server, each with its `reply`;
/// pushes are `send` operations.
///
/// ```
/// use channels_binding::http::asyncapi_document;
///
/// let doc = asyncapi_document(&[], &["simple_reflexion.ping".into()], "/");
/// assert_eq!(doc["asyncapi"], "3.0.0");
/// assert_eq!(doc["operations"]["simple_reflexion.ping"]["action"], "receive");
/// ```
pub fn asyncapi_document(bindings: &[BindingDescription], handler_routes: &[String], root: &str) -> Value {
    let root = normalize_root(root);
    let (mut schemas, named) = binding_schemas(bindings, handler_routes);
    schemas.insert("Position".to_owned(), position_schema());
    schemas.insert("ErrorFrame".to_owned(), error_frame_schema());

    let mut doc = Doc::default();
    // Request operations keep the event routes as ids; pushes take what is left.
    for schemas in &named {
        for action in &schemas.binding.actions {
            doc.operation_ids.reserve(&route_of(&schemas.binding.stream, action));
        }
    }
    for route in handler_routes {
        doc.operation_ids.reserve(route);
    }
    let error = doc.message(
        "error",
        json!({
            "name": "error",
            "title": "Error reply",
            "summary": "The reply to any request that failed: the request's event and the error object.",
            "payload": schema_ref("ErrorFrame"),
        }),
    );

    let handler_set: HashSet<&str> = handler_routes.iter().map(String::as_str).collect();
    let mut documented: HashSet<String> = HashSet::new();
    for schemas in &named {
        let binding = schemas.binding;
        for action in &binding.actions {
            let route = route_of(&binding.stream, action);
            let (request, reply) = if handler_set.contains(route.as_str()) {
                (json!({}), json!({}))
            } else {
                (request_data(schemas, action), reply_data(schemas, action))
            };
            doc.request(&route, request, reply, &error);
            documented.insert(route);
        }
        doc.pushes(schemas);
    }
    for (stream, actions) in split_routes(handler_routes) {
        for action in actions {
            let route = route_of(&stream, &action);
            if documented.insert(route.clone()) {
                doc.request(&route, json!({}), json!({}), &error);
            }
        }
    }

    let mut document = json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "channels-binding WebSocket API",
            "version": API_VERSION,
            "description": "JSON frames over one WebSocket (wire protocol v1). A request is \
                `{event: \"<stream>.<action>[#<hash>]\", data, request_id?}`; its reply carries the same \
                `event` (and `request_id`), with `data` on success or `error` on failure. Subscriptions \
                (by `retrieve`, `search`, `list` or `subscribe`) bring pushes `{event, data, seq, epoch}`. \
                The same events are served over HTTP; see `api/openapi.json`.",
        },
        "defaultContentType": "application/json",
        "channels": {
            CHANNEL: {
                "address": root,
                "title": "The socket",
                "description": "A WebSocket upgrade on the root. Credentials go in the upgrade request \
                    (header, cookie, or the `access_token` query parameter for browsers).",
                "bindings": {"ws": {
                    "method": "GET",
                    "query": {
                        "type": "object",
                        "properties": {"access_token": {
                            "type": "string",
                            "description": "A bearer token, for clients that cannot set headers.",
                        }},
                    },
                    "bindingVersion": "0.1.0",
                }},
            },
        },
    });
    // Moved in rather than interpolated: `json!` would copy them.
    document["channels"][CHANNEL]["messages"] = Value::Object(doc.channel_messages);
    document["operations"] = Value::Object(doc.operations);
    document["components"]["schemas"] = Value::Object(schemas);
    document["components"]["messages"] = Value::Object(doc.messages);
    document
}

/// The document being built: messages and operations, with unique keys.
#[derive(Default)]
struct Doc {
    message_keys: Names,
    operation_ids: Names,
    /// `components.messages`.
    messages: Map<String, Value>,
    /// The channel's messages: references to `components.messages`.
    channel_messages: Map<String, Value>,
    operations: Map<String, Value>,
}

impl Doc {
    /// Adds a message; answers a reference to it in the channel.
    fn message(&mut self, wanted: &str, message: Value) -> Value {
        let name = self.message_keys.claim(&key(wanted));
        self.messages.insert(name.clone(), message);
        self.channel_messages
            .insert(name.clone(), json!({"$ref": format!("#/components/messages/{name}")}));
        json!({"$ref": format!("#/channels/{CHANNEL}/messages/{name}")})
    }

    /// A request, its reply, and the operation receiving it.
    fn request(&mut self, route: &str, request_data: Value, reply_data: Value, error: &Value) {
        let event = json!({
            "type": "string",
            "pattern": format!("^{}(#.+)?$", regex_escape(route)),
            "description": "The event; a `#<hash>` suffix targets one object (its primary key).",
            "examples": [route],
        });
        let mut request = json!({
            "name": route,
            "title": format!("{route} request"),
            "payload": {
                "type": "object",
                "required": ["event"],
                "properties": {
                    "event": event,
                    "request_id": {"type": ["string", "number"], "description": "Echoed by the reply."},
                },
            },
        });
        request["payload"]["properties"]["data"] = request_data;
        let request = self.message(&format!("{route}.request"), request);
        let mut reply = json!({
            "name": route,
            "title": format!("{route} reply"),
            "payload": {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "description": "The request's event, unchanged."},
                    "request_id": {"type": ["string", "number"]},
                    "resync": {
                        "type": "boolean",
                        "description": "The requested `since` could not be replayed: refetch.",
                    },
                    "epoch": {"type": "string", "description": "The subscribed stream's epoch."},
                    "seq": {"type": "integer", "minimum": 0, "description": "The stream's position."},
                },
            },
        });
        reply["payload"]["properties"]["data"] = reply_data;
        let reply = self.message(&format!("{route}.reply"), reply);
        // Routes are reserved up front: a request operation's id is its route.
        self.operation_ids.reserve(route);
        self.operations.insert(
            route.to_owned(),
            json!({
                "action": "receive",
                "channel": {"$ref": format!("#/channels/{CHANNEL}")},
                "title": route,
                "summary": format!("Answers `{route}`."),
                "messages": [request],
                "reply": {
                    "channel": {"$ref": format!("#/channels/{CHANNEL}")},
                    "messages": [reply, error],
                },
            }),
        );
    }

    /// A push and the operation sending it.
    fn push(&mut self, wanted: &str, event: Value, data: Value, summary: &str) {
        let mut message = json!({
            "name": wanted,
            "title": format!("{wanted} push"),
            "summary": summary,
            "payload": {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "seq": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Grows by one per change of the stream.",
                    },
                    "epoch": {
                        "type": "string",
                        "description": "Changes when the stream's history is lost.",
                    },
                },
            },
        });
        message["payload"]["properties"]["event"] = event;
        message["payload"]["properties"]["data"] = data;
        let message = self.message(wanted, message);
        let id = self.operation_ids.claim(wanted);
        self.operations.insert(
            id,
            json!({
                "action": "send",
                "channel": {"$ref": format!("#/channels/{CHANNEL}")},
                "title": wanted,
                "summary": summary,
                "messages": [message],
            }),
        );
    }

    /// A binding's pushes: its change feed and the echo of `retrieve`.
    fn pushes(&mut self, schemas: &BindingSchemas<'_>) {
        let stream = &schemas.binding.stream;
        let escaped = regex_escape(stream);
        let object = schema_ref(&schemas.object);
        let hashed = |action: &str| {
            json!({
                "type": "string",
                "pattern": format!("^{escaped}\\.{action}#.+$"),
                "description": format!("`{stream}.{action}#<pk>`"),
            })
        };
        self.push(
            &format!("{stream}.created"),
            json!({"type": "string", "const": format!("{stream}.created")}),
            object.clone(),
            &format!("A `{stream}` was created (to the stream's subscribers)."),
        );
        self.push(
            &format!("{stream}.updated"),
            hashed("updated"),
            object.clone(),
            &format!("A `{stream}` changed (to the stream's subscribers): its new state."),
        );
        self.push(
            &format!("{stream}.deleted"),
            hashed("deleted"),
            json!({
                "type": "object",
                "required": ["id"],
                "properties": {"id": pk_schema(schemas.binding)},
            }),
            &format!("A `{stream}` was deleted (to the stream's and the object's subscribers)."),
        );
        if schemas.binding.actions.iter().any(|a| a == "retrieve") {
            self.push(
                &format!("{stream}.retrieve.push"),
                json!({
                    "type": "string",
                    "pattern": format!("^{escaped}\\.retrieve(#.+)?$"),
                    "description": "The exact event string of the `retrieve` that subscribed.",
                }),
                object,
                &format!("A retrieved `{stream}` changed: the `retrieve` event again, with the object's new state."),
            );
        }
    }
}

/// `id` in a request: the primary key (or the `#<pk>` hash instead).
fn id_property(binding: &BindingDescription, many: bool) -> Value {
    let pk = pk_schema(binding);
    if many {
        json!({
            "description": "The primary key, or a list of them; the `#<pk>` hash may replace it.",
            "anyOf": [pk, {"type": "array", "items": pk}],
        })
    } else {
        json!({"description": "The primary key; the `#<pk>` hash may replace it.", "allOf": [pk]})
    }
}

/// The `data` of a built-in action's request.
fn request_data(schemas: &BindingSchemas<'_>, action: &str) -> Value {
    let binding = schemas.binding;
    let object = |properties: Value| json!({"type": "object", "properties": properties, "additionalProperties": false});
    match action {
        "retrieve" => object(json!({"id": id_property(binding, true), "since": since_schema()})),
        "search" => object(json!({
            "page": {"type": "integer", "minimum": 1, "default": 1},
            "limit": {
                "type": "integer",
                "minimum": 1,
                "description": "Clamped to [1, MAX_PAGE_SIZE]; the binding's page size by default.",
            },
            "filters": filters_schema(binding),
            "order": order_schema(binding),
            "query": {"type": "string", "description": "A case-insensitive substring over the searchable fields."},
            "since": since_schema(),
        })),
        "list" => list_input_schema(binding, true),
        "create" => schema_ref(&schemas.create),
        "update" | "save" => write_schema(binding, false, true),
        "delete" => object(json!({"id": id_property(binding, false)})),
        "subscribe" | "unsubscribe" => object(json!({"id": id_property(binding, false), "since": since_schema()})),
        _ => json!({}),
    }
}

/// The `data` of a built-in action's successful reply.
fn reply_data(schemas: &BindingSchemas<'_>, action: &str) -> Value {
    let object = schema_ref(&schemas.object);
    match action {
        "retrieve" => json!({"anyOf": [object, {"type": "array", "items": object}]}),
        "search" => schema_ref(&schemas.page),
        "list" => json!({"type": "array", "items": object}),
        "create" | "update" => object,
        "save" | "delete" => ack_schema(schemas.binding),
        "subscribe" => json!({
            "type": "object",
            "required": ["subscribed"],
            "properties": {"subscribed": {"type": "string", "description": "`<stream>[#id]`"}},
        }),
        "unsubscribe" => json!({
            "type": "object",
            "required": ["unsubscribed"],
            "properties": {"unsubscribed": {"type": "string", "description": "`<stream>[#id]`"}},
        }),
        _ => json!({}),
    }
}
