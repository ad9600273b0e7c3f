//! The OpenAPI 3.1 document of the HTTP API (PROTOCOL.md §4), generated from
//! the bindings' declarations: the REST mapping under `<root>api/`, the SSE
//! change feeds and the frame endpoint `POST <root>`.
//!
//! The schema helpers here are shared with the AsyncAPI generator, so both
//! documents describe objects, inputs and errors identically.

use std::collections::{BTreeMap, HashSet};

use channels_binding_core::protocol::ErrorCode;
use channels_binding_core::{BindingDescription, FieldDescription, FieldKind};
use serde_json::{Map, Value, json};

/// The version of the wire protocol both documents describe.
pub(super) const API_VERSION: &str = "1";

/// Component names shared by both documents; a binding's schemas never take them.
const RESERVED_SCHEMAS: [&str; 7] = [
    "Error",
    "SearchPage",
    "Position",
    "Frame",
    "ReplyFrame",
    "ErrorFrame",
    "Any",
];

/// The OpenAPI 3.1.0 document of the HTTP API mounted at `root` (`"/"`, or
/// `"/rt/"`; a missing leading or trailing `/` is added).
///
/// For each binding it lists what the REST mapping serves, restricted to the
/// binding's actions: `GET api/<stream>` (search, with the query parameters
/// `page`, `limit`, `order`, `query` and one per filterable field),
/// `POST api/<stream>` (create), `GET`/`PATCH`/`PUT`/`DELETE
/// api/<stream>/{id}` (retrieve, update, save, delete), `POST
/// api/<stream>/list` and `GET api/<stream>/events` (the change feed as
/// Server-Sent Events). Each handler route `stream.action` is `POST
/// api/<stream>/<action>` (with any JSON in and out); a handler that replaces
/// a built-in action keeps that action's method and path. `POST <root>`, the
/// frame endpoint, and `GET api/openapi.json` / `GET api/asyncapi.json` are
/// listed too.
///
/// Components hold one schema per binding for its objects (readable fields),
/// its create and update inputs (writable fields, `additionalProperties:
/// false`), its search page, and the shared `SearchPage`, `Error` and frame
/// schemas. Every operation lists the error responses that apply, with the
/// status of [`ErrorCode::http_status`]. Operation ids are the event routes
/// (`auth.User.search`), so they are unique and stable.
///
/// The function is pure: the same declarations give the same document.
///
/// ```
/// use channels_binding::http::openapi_document;
/// use channels_binding_core::{BindingDescription, FieldDescription, FieldKind};
///
/// let mut id = FieldDescription::new("id", FieldKind::Integer);
/// id.readable = true;
/// let users = BindingDescription::new("auth.User", "id", vec!["retrieve".into()], vec![id]);
/// let doc = openapi_document(&[users], &["simple_reflexion.ping".into()], "/");
/// assert_eq!(doc["openapi"], "3.1.0");
/// assert_eq!(doc["paths"]["/api/auth.User/{id}"]["get"]["operationId"], "auth.User.retrieve");
/// assert!(doc["paths"]["/api/simple_reflexion/ping"]["post"].is_object());
/// ```
pub fn openapi_document(bindings: &[BindingDescription], handler_routes: &[String], root: &str) -> Value {
    let root = normalize_root(root);
    let (mut schemas, named) = binding_schemas(bindings, handler_routes);
    schemas.insert("Frame".to_owned(), frame_schema(bindings, handler_routes));
    schemas.insert("ReplyFrame".to_owned(), reply_frame_schema());
    schemas.insert("ErrorFrame".to_owned(), error_frame_schema());

    let handlers = split_routes(handler_routes);
    let handler_set: HashSet<&str> = handler_routes.iter().map(String::as_str).collect();
    // Operation ids: the event routes first, so they keep their natural ids.
    let mut ids = Names::default();
    for schemas in &named {
        for action in &schemas.binding.actions {
            if rest_location(action).is_some() {
                ids.reserve(&route_of(&schemas.binding.stream, action));
            }
        }
    }
    for route in handler_routes {
        ids.reserve(route);
    }

    let mut paths = Paths::default();
    let mut tags = Names::default();
    let mut tag_list = Vec::new();
    let frames_tag = tags.claim("frames");
    tag_list.push(json!({"name": frames_tag, "description": "The frame endpoint and the API documents."}));
    paths.insert(&root, "post", frame_operation(&mut ids, &frames_tag));
    paths.insert(
        &format!("{root}api/openapi.json"),
        "get",
        document_operation(&mut ids, "openapi", "This OpenAPI document.", &frames_tag),
    );
    paths.insert(
        &format!("{root}api/asyncapi.json"),
        "get",
        document_operation(
            &mut ids,
            "asyncapi",
            "The AsyncAPI document of the WebSocket API.",
            &frames_tag,
        ),
    );

    let mut documented_routes: HashSet<String> = HashSet::new();
    let mut binding_tags: BTreeMap<&str, String> = BTreeMap::new();
    for schemas in &named {
        let binding = schemas.binding;
        let stream = &binding.stream;
        let tag = tags.claim(stream);
        binding_tags.insert(stream, tag.clone());
        tag_list.push(json!({"name": tag, "description": format!("The `{stream}` binding.")}));
        let base = format!("{root}api/{}", path_segment(stream));
        // Collection first, then one object, then the other actions.
        let mut actions: Vec<&String> = binding.actions.iter().collect();
        actions.sort_by_key(|action| {
            ["search", "create", "retrieve", "update", "save", "delete"]
                .iter()
                .position(|a| a == action)
                .unwrap_or(usize::MAX)
        });
        for action in actions {
            let Some((method, with_id)) = rest_location(action) else {
                continue;
            };
            let route = route_of(stream, action);
            let path = match (with_id, action.as_str()) {
                (true, _) => format!("{base}/{{id}}"),
                (false, "search" | "create") => base.clone(),
                (false, _) => format!("{base}/{}", path_segment(action)),
            };
            let operation = if handler_set.contains(route.as_str()) {
                // A custom handler answers this action instead of the binding.
                custom_operation(&route, method, with_id.then(|| pk_schema(binding)))
            } else {
                model_operation(schemas, action)
            };
            let operation = with_id_and_tag(operation, &route, &tag);
            paths.insert(&path, method, operation);
            documented_routes.insert(route);
        }
        let events_id = ids.claim(&format!("{stream}.events"));
        paths.insert(
            &format!("{base}/events"),
            "get",
            events_operation(stream, &events_id, &tag),
        );
    }

    // Handler routes not documented above: `POST api/<stream>/<action>`.
    for (stream, actions) in &handlers {
        let tag = match binding_tags.get(stream.as_str()) {
            Some(tag) => tag.clone(),
            None => {
                let tag = tags.claim(stream);
                tag_list.push(json!({"name": tag, "description": format!("Custom events of `{stream}`.")}));
                tag
            }
        };
        for action in actions {
            let route = route_of(stream, action);
            if !documented_routes.insert(route.clone()) {
                continue;
            }
            let path = format!("{root}api/{}/{}", path_segment(stream), path_segment(action));
            let operation = with_id_and_tag(custom_operation(&route, "post", None), &route, &tag);
            paths.insert(&path, "post", operation);
        }
    }

    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "channels-binding HTTP API",
            "version": API_VERSION,
            "description": "The REST mapping, Server-Sent Events and frame endpoint of a channels-binding \
                server (wire protocol v1). The same events are available over the WebSocket at the root; \
                see `api/asyncapi.json`.",
        },
        "servers": [{"url": "/", "description": "This server."}],
        // Which credentials a server accepts depends on its authentication
        // layers; these are the ready-made strategies', and `{}` stands for
        // anonymous requests, which a server may allow.
        "security": [{"bearer": []}, {"access_token": []}, {"api_key": []}, {}],
    });
    // Moved in rather than interpolated: `json!` would copy them.
    doc["tags"] = Value::Array(tag_list);
    doc["paths"] = paths.into_value();
    doc["components"]["schemas"] = Value::Object(schemas);
    doc["components"]["securitySchemes"] = security_schemes();
    doc
}

// ---------------------------------------------------------------------------
// Names, routes and paths
// ---------------------------------------------------------------------------

/// `root` with exactly one leading and one trailing `/`.
pub(super) fn normalize_root(root: &str) -> String {
    let trimmed = root.trim_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        format!("/{trimmed}/")
    }
}

/// `stream.action`.
pub(super) fn route_of(stream: &str, action: &str) -> String {
    format!("{stream}.{action}")
}

/// Handler routes by stream (split at the last dot, as event names are);
/// routes without a dot are skipped, since no event can reach them.
pub(super) fn split_routes(routes: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut by_stream: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for route in routes {
        if let Some((stream, action)) = route.rsplit_once('.')
            && !stream.is_empty()
            && !action.is_empty()
        {
            by_stream.entry(stream.to_owned()).or_default().push(action.to_owned());
        }
    }
    for actions in by_stream.values_mut() {
        actions.sort();
        actions.dedup();
    }
    by_stream
}

/// A component or map key: `[A-Za-z0-9._-]`, anything else becomes `_`.
pub(super) fn key(name: &str) -> String {
    let key: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if key.is_empty() { "_".to_owned() } else { key }
}

/// A path segment: characters a URL path cannot hold literally are
/// percent-encoded (dots stay as they are).
fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        let literal = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if literal {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Unique names: a wanted name that is taken gets a `_2`, `_3`, … suffix.
#[derive(Default)]
pub(super) struct Names {
    used: HashSet<String>,
}

impl Names {
    /// Marks `name` as taken (without claiming a variant of it).
    pub(super) fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_owned());
    }

    /// `wanted`, or the first free `wanted_<n>`.
    pub(super) fn claim(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_owned();
        let mut n = 2;
        while self.used.contains(&name) {
            name = format!("{wanted}_{n}");
            n += 1;
        }
        self.used.insert(name.clone());
        name
    }
}

/// The REST location of a built-in action: its method and whether the path
/// ends in `{id}`; `None` for actions that need a connection (`subscribe`,
/// `unsubscribe`: over HTTP the change feed is `GET api/<stream>/events`).
fn rest_location(action: &str) -> Option<(&'static str, bool)> {
    match action {
        "search" => Some(("get", false)),
        "create" => Some(("post", false)),
        "retrieve" => Some(("get", true)),
        "update" => Some(("patch", true)),
        "save" => Some(("put", true)),
        "delete" => Some(("delete", true)),
        "subscribe" | "unsubscribe" => None,
        // `list` and any other action: `POST api/<stream>/<action>`.
        _ => Some(("post", false)),
    }
}

/// Paths in a stable order, each with its operations by method.
#[derive(Default)]
struct Paths {
    items: Vec<(String, Map<String, Value>)>,
}

impl Paths {
    /// Adds an operation; a method already taken on that path keeps its first operation.
    fn insert(&mut self, path: &str, method: &str, operation: Value) {
        let item = match self.items.iter_mut().position(|(p, _)| p == path) {
            Some(index) => &mut self.items[index].1,
            None => {
                self.items.push((path.to_owned(), Map::new()));
                let last = self.items.len() - 1;
                &mut self.items[last].1
            }
        };
        item.entry(method.to_owned()).or_insert(operation);
    }

    fn into_value(self) -> Value {
        Value::Object(
            self.items
                .into_iter()
                .map(|(path, item)| (path, Value::Object(item)))
                .collect(),
        )
    }
}

// ---------------------------------------------------------------------------
// Schemas shared with the AsyncAPI document
// ---------------------------------------------------------------------------

/// A `$ref` to a component schema.
pub(super) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The component names of one binding's schemas.
pub(super) struct BindingSchemas<'a> {
    /// The binding.
    pub(super) binding: &'a BindingDescription,
    /// Its objects (readable fields).
    pub(super) object: String,
    /// Its create input (writable fields, required ones required).
    pub(super) create: String,
    /// Its update input (writable fields, none required).
    pub(super) update: String,
    /// Its search page.
    pub(super) page: String,
}

/// The component schemas of every binding, with `Error` and `SearchPage`,
/// and the names each binding's schemas got. An action a handler route
/// answers instead of the binding does not use the binding's schemas.
pub(super) fn binding_schemas<'a>(
    bindings: &'a [BindingDescription],
    handler_routes: &[String],
) -> (Map<String, Value>, Vec<BindingSchemas<'a>>) {
    let mut names = Names::default();
    for reserved in RESERVED_SCHEMAS {
        names.reserve(reserved);
    }
    let mut schemas = Map::new();
    schemas.insert("Error".to_owned(), error_schema());
    schemas.insert("SearchPage".to_owned(), search_page_schema());
    let mut named = Vec::with_capacity(bindings.len());
    for binding in bindings {
        let base = key(&binding.stream);
        let named_binding = BindingSchemas {
            binding,
            object: names.claim(&base),
            create: names.claim(&format!("{base}.Create")),
            update: names.claim(&format!("{base}.Update")),
            page: names.claim(&format!("{base}.Page")),
        };
        let has = |action: &str| {
            binding.actions.iter().any(|a| a == action) && !handler_routes.contains(&route_of(&binding.stream, action))
        };
        schemas.insert(named_binding.object.clone(), object_schema(binding));
        // Inputs and pages only for the actions that use them (the names are
        // claimed anyway, so they do not depend on the actions).
        if has("create") {
            schemas.insert(named_binding.create.clone(), write_schema(binding, true, false));
        }
        if has("update") || has("save") {
            schemas.insert(named_binding.update.clone(), write_schema(binding, false, false));
        }
        if has("search") {
            schemas.insert(
            named_binding.page.clone(),
            json!({
                "description": format!("A page of `{}` search results.", binding.stream),
                "allOf": [
                    schema_ref("SearchPage"),
                    {"type": "object", "properties": {"rows": {"type": "array", "items": schema_ref(&named_binding.object)}}},
                ],
            }),
        );
        }
        named.push(named_binding);
    }
    (schemas, named)
}

/// The JSON schema of a field's values, `null` included when it is
/// nullable and `with_null` is set.
pub(super) fn field_schema(field: &FieldDescription, with_null: bool) -> Value {
    let (kind, format) = match field.kind {
        FieldKind::Integer => ("integer", Some("int64")),
        FieldKind::Number => ("number", Some("double")),
        FieldKind::String => ("string", None),
        FieldKind::Boolean => ("boolean", None),
        FieldKind::Timestamp => ("string", Some("date-time")),
        _ => return json!({}),
    };
    let mut schema = Map::new();
    schema.insert(
        "type".to_owned(),
        if field.nullable && with_null {
            json!([kind, "null"])
        } else {
            json!(kind)
        },
    );
    if let Some(format) = format {
        schema.insert("format".to_owned(), json!(format));
    }
    if let Some(max) = field.max_length.filter(|_| kind == "string") {
        schema.insert("maxLength".to_owned(), json!(max));
    }
    Value::Object(schema)
}

/// A field's schema in an object or input, with its flags as description.
fn property_schema(field: &FieldDescription, read_only: bool) -> Value {
    let mut schema = field_schema(field, true);
    let mut notes = Vec::new();
    if field.required && field.writable {
        notes.push("required on create");
    }
    if field.searchable {
        notes.push("matched by `query`");
    }
    if field.filterable {
        notes.push("filterable");
    }
    if field.orderable {
        notes.push("orderable");
    }
    if let Value::Object(map) = &mut schema {
        if read_only {
            map.insert("readOnly".to_owned(), json!(true));
        }
        if !notes.is_empty() {
            let mut text = notes.join(", ");
            text[..1].make_ascii_uppercase();
            map.insert("description".to_owned(), json!(format!("{text}.")));
        }
    }
    schema
}

/// The schema of the primary key (no `null`).
pub(super) fn pk_schema(binding: &BindingDescription) -> Value {
    binding
        .fields
        .iter()
        .find(|f| f.name == binding.primary_key)
        .map_or_else(|| json!({"type": ["integer", "string"]}), |f| field_schema(f, false))
}

/// A binding's objects: every readable field (a serializer may send fewer).
fn object_schema(binding: &BindingDescription) -> Value {
    let properties: Map<String, Value> = binding
        .fields
        .iter()
        .filter(|f| f.readable)
        .map(|f| (f.name.clone(), property_schema(f, !f.writable)))
        .collect();
    json!({
        "type": "object",
        "title": binding.stream,
        "description": format!(
            "An object of `{}`: its readable fields, as its serializer sends them. The primary key is `{}`.",
            binding.stream, binding.primary_key
        ),
        "properties": properties,
    })
}

/// A binding's write input: its writable fields and nothing else;
/// `required` lists the required ones on create; `with_id` adds `id`.
pub(super) fn write_schema(binding: &BindingDescription, create: bool, with_id: bool) -> Value {
    let mut properties: Map<String, Value> = binding
        .fields
        .iter()
        .filter(|f| f.writable)
        .map(|f| (f.name.clone(), property_schema(f, false)))
        .collect();
    if with_id {
        properties.insert("id".to_owned(), pk_schema(binding));
    }
    let required: Vec<&str> = binding
        .fields
        .iter()
        .filter(|f| create && f.writable && f.required)
        .map(|f| f.name.as_str())
        .collect();
    let description = if create {
        format!(
            "A new `{}`: writable fields only; any other key is rejected with `validation`.",
            binding.stream
        )
    } else {
        format!(
            "Changes to a `{}` (a partial update): writable fields only; any other key is rejected with `validation`.",
            binding.stream
        )
    };
    let mut schema = json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// The `order` terms a binding accepts: `field` and `-field` per orderable field.
pub(super) fn order_terms(binding: &BindingDescription) -> Vec<String> {
    binding
        .fields
        .iter()
        .filter(|f| f.orderable)
        .flat_map(|f| [f.name.clone(), format!("-{}", f.name)])
        .collect()
}

/// `order` in a JSON body: one term or a list of them.
pub(super) fn order_schema(binding: &BindingDescription) -> Value {
    let term = json!({"type": "string", "enum": order_terms(binding)});
    json!({
        "description": "A field name, `-field` for descending, or a list of them; only orderable fields.",
        "anyOf": [term, {"type": "array", "items": term}],
    })
}

/// `filters` in a JSON body: `{field: value}` (equality) or `{field: [values]}` (in).
pub(super) fn filters_schema(binding: &BindingDescription) -> Value {
    let properties: Map<String, Value> = binding
        .fields
        .iter()
        .filter(|f| f.filterable)
        .map(|f| {
            let value = field_schema(f, true);
            (
                f.name.clone(),
                json!({"anyOf": [value, {"type": "array", "items": value}]}),
            )
        })
        .collect();
    json!({
        "type": "object",
        "description": "`{field: value}` (equality) or `{field: [v1, v2]}` (in), on filterable fields only.",
        "properties": properties,
        "additionalProperties": false,
    })
}

/// The body of `list`: `{filters?, order?, query?}`; `since` too for the WebSocket.
pub(super) fn list_input_schema(binding: &BindingDescription, since: bool) -> Value {
    let mut properties = Map::new();
    properties.insert("filters".to_owned(), filters_schema(binding));
    properties.insert("order".to_owned(), order_schema(binding));
    properties.insert(
        "query".to_owned(),
        json!({"type": "string", "description": "A case-insensitive substring matched over the searchable fields."}),
    );
    if since {
        properties.insert("since".to_owned(), since_schema());
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// `since`: resume the change feed after this position.
pub(super) fn since_schema() -> Value {
    json!({
        "description": "Replay every change after this position before going live; a reply with \
            `resync: true` means the history is gone and the client must refetch.",
        "allOf": [schema_ref("Position")],
    })
}

/// `{"success": true, "id": <pk>}`.
pub(super) fn ack_schema(binding: &BindingDescription) -> Value {
    json!({
        "type": "object",
        "required": ["success", "id"],
        "properties": {"success": {"const": true}, "id": pk_schema(binding)},
    })
}

fn error_schema() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "description": "An error: its code, a message for people, and details for some codes.",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
            "fields": {
                "type": "object",
                "description": "`validation`: messages per field, including unknown and read-only fields.",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "retry_after_ms": {
                "type": "integer",
                "minimum": 0,
                "description": "`rate_limited`: milliseconds to wait before retrying.",
            },
        },
    })
}

fn search_page_schema() -> Value {
    json!({
        "type": "object",
        "description": "One page of search results: `count` is the number of matches, `rows` this page of them.",
        "required": ["page", "limit", "count", "order", "rows"],
        "properties": {
            "page": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1},
            "count": {"type": "integer", "minimum": 0},
            "order": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "object"}},
        },
    })
}

/// A position in a stream's history: `{epoch, seq}`.
pub(super) fn position_schema() -> Value {
    json!({
        "type": "object",
        "description": "A position in a stream's change history.",
        "required": ["epoch", "seq"],
        "properties": {"epoch": {"type": "string"}, "seq": {"type": "integer", "minimum": 0}},
    })
}

/// What each code means, for response descriptions.
pub(super) fn code_meaning(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadRequest => "the request is malformed (not JSON, or data of the wrong type)",
        ErrorCode::UnknownEvent => "no binding or action answers the event",
        ErrorCode::NotFound => "the targeted object does not exist (or may not be read)",
        ErrorCode::Validation => "input rejected; `fields` says why",
        ErrorCode::Unauthenticated => "an identity is needed, or the credentials are invalid or expired",
        ErrorCode::Forbidden => "the identity may not do this",
        ErrorCode::RateLimited => "over the rate limit; `retry_after_ms` says when to retry",
        ErrorCode::PayloadTooLarge => "the request or the result is over a configured bound",
        ErrorCode::Unavailable => "a backend is down; retrying later may succeed",
        ErrorCode::Internal => "a bug on the server",
        _ => "see the message",
    }
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// Errors every operation may answer: the request, authentication,
/// permissions, rate limits and the server itself.
const COMMON_ERRORS: [ErrorCode; 6] = [
    ErrorCode::BadRequest,
    ErrorCode::Unauthenticated,
    ErrorCode::Forbidden,
    ErrorCode::RateLimited,
    ErrorCode::Internal,
    ErrorCode::Unavailable,
];

/// The error codes an action may answer, beyond [`COMMON_ERRORS`].
fn action_errors(action: &str) -> &'static [ErrorCode] {
    match action {
        // An id of the wrong type is `validation`.
        "retrieve" | "delete" => &[ErrorCode::NotFound, ErrorCode::Validation],
        "search" => &[ErrorCode::Validation],
        "list" => &[ErrorCode::Validation, ErrorCode::PayloadTooLarge],
        "create" => &[ErrorCode::Validation, ErrorCode::PayloadTooLarge],
        "update" | "save" => &[ErrorCode::NotFound, ErrorCode::Validation, ErrorCode::PayloadTooLarge],
        _ => &[ErrorCode::NotFound, ErrorCode::Validation, ErrorCode::PayloadTooLarge],
    }
}

/// How error bodies look: the error object (REST) or an error frame.
#[derive(Clone, Copy)]
enum ErrorBody {
    Object,
    Frame,
}

/// The error responses for these codes, by status.
fn error_responses(codes: &[ErrorCode], body: ErrorBody) -> Map<String, Value> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        let list = by_status.entry(code.http_status().as_u16()).or_default();
        if !list.contains(code) {
            list.push(*code);
        }
    }
    let mut responses = Map::new();
    for (status, codes) in by_status {
        let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        let description = codes
            .iter()
            .map(|c| format!("`{}`: {}.", c.as_str(), code_meaning(*c)))
            .collect::<Vec<_>>()
            .join(" ");
        let schema = match body {
            ErrorBody::Object => json!({
                "allOf": [schema_ref("Error"), {"properties": {"code": {"enum": names}}}],
            }),
            ErrorBody::Frame => json!({
                "allOf": [schema_ref("ErrorFrame"), {"properties": {"error": {"properties": {"code": {"enum": names}}}}}],
            }),
        };
        let mut response = json!({
            "description": description,
            "content": {"application/json": {"schema": schema}},
        });
        if status == 401 {
            response["headers"] = json!({"WWW-Authenticate": {
                "description": "The challenge, when an HTTP authentication layer refused the request.",
                "schema": {"type": "string"},
            }});
        }
        if status == 429 {
            response["headers"] = json!({"Retry-After": {
                "description": "Seconds to wait, when the HTTP rate limit layer refused the request.",
                "schema": {"type": "integer", "minimum": 0},
            }});
        }
        responses.insert(status.to_string(), response);
    }
    responses
}

/// A JSON success response.
fn json_response(description: &str, schema: Value) -> Value {
    let mut response = json!({"description": description});
    response["content"]["application/json"]["schema"] = schema;
    response
}

/// A JSON request body.
fn json_body(schema: Value, required: bool) -> Value {
    let mut body = json!({"required": required});
    body["content"]["application/json"]["schema"] = schema;
    body
}

/// The `{id}` path parameter.
fn id_parameter(schema: Value) -> Value {
    let mut parameter = json!({
        "name": "id",
        "in": "path",
        "required": true,
        "description": "The object's primary key.",
    });
    parameter["schema"] = schema;
    parameter
}

/// Sets `operationId` and `tags`.
fn with_id_and_tag(mut operation: Value, id: &str, tag: &str) -> Value {
    operation["operationId"] = json!(id);
    operation["tags"] = json!([tag]);
    operation
}

/// Assembles an operation.
fn operation(
    summary: String,
    parameters: Vec<Value>,
    body: Option<Value>,
    success: (u16, Value),
    errors: &[ErrorCode],
) -> Value {
    let mut responses = Map::new();
    responses.insert(success.0.to_string(), success.1);
    let mut all: Vec<ErrorCode> = COMMON_ERRORS.to_vec();
    all.extend_from_slice(errors);
    responses.extend(error_responses(&all, ErrorBody::Object));
    let mut op = json!({"summary": Value::String(summary), "responses": Value::Object(responses)});
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = body {
        op["requestBody"] = body;
    }
    op
}

/// One built-in action of a model binding.
fn model_operation(schemas: &BindingSchemas<'_>, action: &str) -> Value {
    let binding = schemas.binding;
    let stream = &binding.stream;
    let object = schema_ref(&schemas.object);
    let id = || vec![id_parameter(pk_schema(binding))];
    let errors = action_errors(action);
    match action {
        "search" => operation(
            format!("Search `{stream}`"),
            search_parameters(binding),
            None,
            (200, json_response("One page of results.", schema_ref(&schemas.page))),
            errors,
        ),
        "create" => operation(
            format!("Create a `{stream}`"),
            Vec::new(),
            Some(json_body(schema_ref(&schemas.create), true)),
            (201, json_response("The created object.", object)),
            errors,
        ),
        "retrieve" => operation(
            format!("Retrieve a `{stream}`"),
            id(),
            None,
            (200, json_response("The object.", object)),
            errors,
        ),
        "update" => operation(
            format!("Update a `{stream}` (partial)"),
            id(),
            Some(json_body(schema_ref(&schemas.update), true)),
            (200, json_response("The updated object.", object)),
            errors,
        ),
        "save" => operation(
            format!("Save a `{stream}`"),
            id(),
            Some(json_body(schema_ref(&schemas.update), true)),
            (200, json_response("Saved.", ack_schema(binding))),
            errors,
        ),
        "delete" => operation(
            format!("Delete a `{stream}`"),
            id(),
            None,
            (200, json_response("Deleted.", ack_schema(binding))),
            errors,
        ),
        "list" => operation(
            format!("List `{stream}` (every match, bounded)"),
            Vec::new(),
            Some(json_body(list_input_schema(binding, false), false)),
            (
                200,
                json_response(
                    "Every matching object; too many is `payload_too_large`.",
                    json!({"type": "array", "items": object}),
                ),
            ),
            errors,
        ),
        other => operation(
            format!("`{stream}.{other}`"),
            Vec::new(),
            Some(json_body(json!({}), false)),
            (200, json_response("The action's reply data.", json!({}))),
            errors,
        ),
    }
}

/// A custom handler: any JSON in (a body for `POST`, `PATCH` and `PUT`),
/// any JSON out.
fn custom_operation(route: &str, method: &str, id: Option<Value>) -> Value {
    let parameters = id.map(id_parameter).into_iter().collect();
    let body = matches!(method, "post" | "patch" | "put").then(|| json_body(json!({}), false));
    let mut op = operation(
        format!("`{route}`"),
        parameters,
        body,
        (200, json_response("The handler's reply data.", json!({}))),
        action_errors(""),
    );
    op["description"] = json!(format!(
        "The custom handler of `{route}`: the body is its `data` (default `{{}}`), the response its reply data."
    ));
    op
}

/// The query parameters of `search`.
fn search_parameters(binding: &BindingDescription) -> Vec<Value> {
    let mut parameters = vec![
        json!({
            "name": "page", "in": "query", "required": false,
            "description": "The page, from 1; past the end is an empty page with the true count.",
            "schema": {"type": "integer", "minimum": 1, "default": 1},
        }),
        json!({
            "name": "limit", "in": "query", "required": false,
            "description": "Rows per page: the binding's page size by default (else DEFAULT_PAGE_SIZE, 25), \
                clamped to [1, MAX_PAGE_SIZE] (100 by default).",
            "schema": {"type": "integer", "minimum": 1},
        }),
    ];
    let terms = order_terms(binding);
    if !terms.is_empty() {
        let alternatives = terms.iter().map(|t| regex_escape(t)).collect::<Vec<_>>().join("|");
        parameters.push(json!({
            "name": "order", "in": "query", "required": false,
            "description": format!(
                "Sort terms, comma-separated or repeated: {}.",
                terms.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
            ),
            "style": "form",
            "explode": true,
            "schema": {"type": "array", "items": {"type": "string", "pattern": format!("^({alternatives})(,({alternatives}))*$")}},
        }));
    }
    if binding.fields.iter().any(|f| f.searchable) {
        let searched: Vec<String> = binding
            .fields
            .iter()
            .filter(|f| f.searchable)
            .map(|f| format!("`{}`", f.name))
            .collect();
        parameters.push(json!({
            "name": "query", "in": "query", "required": false,
            "description": format!("A case-insensitive substring matched over {}.", searched.join(", ")),
            "schema": {"type": "string"},
        }));
    }
    for field in binding.fields.iter().filter(|f| f.filterable) {
        if matches!(field.name.as_str(), "page" | "limit" | "order" | "query") {
            // The query string cannot tell such a filter from the parameter.
            continue;
        }
        parameters.push(json!({
            "name": field.name, "in": "query", "required": false,
            "description": format!("Only objects whose `{}` equals this value; repeat for any of several values.", field.name),
            "style": "form",
            "explode": true,
            "schema": {"type": "array", "items": field_schema(field, false)},
        }));
    }
    parameters
}

/// `GET api/<stream>/events`.
fn events_operation(stream: &str, id: &str, tag: &str) -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".to_owned(),
        json!({
            "description": format!(
                "The change feed of `{stream}` as Server-Sent Events, filtered by what the caller may read. \
                 Each event has `id: <epoch>:<seq>`, `event: <name>` (`{stream}.created`, `{stream}.updated#<pk>`, \
                 `{stream}.deleted#<pk>`) and the whole push frame `{{event, data, seq, epoch}}` as `data`. \
                 An `event: resync` with `{{epoch, seq}}` means the changes after `Last-Event-ID` are lost: refetch."
            ),
            "headers": {"Cache-Control": {"schema": {"type": "string", "const": "no-cache"}}},
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }),
    );
    let mut codes = COMMON_ERRORS.to_vec();
    // The hub refuses a subscription over its bounds.
    codes.push(ErrorCode::PayloadTooLarge);
    responses.extend(error_responses(&codes, ErrorBody::Object));
    json!({
        "operationId": id,
        "tags": [tag],
        "summary": format!("Follow `{stream}`'s changes (Server-Sent Events)"),
        "parameters": [{
            "name": "Last-Event-ID", "in": "header", "required": false,
            "description": "The last `id` received (`<epoch>:<seq>`): the changes after it are replayed first.",
            "schema": {"type": "string"},
        }],
        "responses": responses,
    })
}

/// `POST <root>`: one frame.
fn frame_operation(ids: &mut Names, tag: &str) -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".to_owned(),
        json_response("The reply frame.", schema_ref("ReplyFrame")),
    );
    responses.extend(error_responses(&ErrorCode::ALL, ErrorBody::Frame));
    json!({
        "operationId": ids.claim("frame"),
        "tags": [tag],
        "summary": "Send one frame",
        "description": "Any event, as over the WebSocket: the body is a frame, the response the reply frame, \
            with the status of its error code (200 on success).",
        "requestBody": json_body(schema_ref("Frame"), true),
        "responses": responses,
    })
}

/// `GET api/openapi.json` and `GET api/asyncapi.json`.
fn document_operation(ids: &mut Names, id: &str, summary: &str, tag: &str) -> Value {
    let mut responses = Map::new();
    responses.insert("200".to_owned(), json_response(summary, json!({"type": "object"})));
    // Only the layers in front of the API (authentication, rate limits) refuse these.
    let codes = [ErrorCode::Unauthenticated, ErrorCode::Forbidden, ErrorCode::RateLimited];
    responses.extend(error_responses(&codes, ErrorBody::Object));
    json!({
        "operationId": ids.claim(id),
        "tags": [tag],
        "summary": summary,
        "responses": responses,
    })
}

fn frame_schema(bindings: &[BindingDescription], handler_routes: &[String]) -> Value {
    let mut events: Vec<String> = bindings
        .iter()
        .flat_map(|b| b.actions.iter().map(|a| route_of(&b.stream, a)))
        .chain(
            split_routes(handler_routes)
                .into_iter()
                .flat_map(|(stream, actions)| actions.into_iter().map(move |a| route_of(&stream, &a))),
        )
        .collect();
    events.sort();
    events.dedup();
    let mut event = json!({
        "type": "string",
        "description": "`<stream>.<action>[#<hash>]`; the hash targets one object (its primary key).",
    });
    if !events.is_empty() {
        event["examples"] = json!(events);
    }
    json!({
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": event,
            "data": {"description": "The event's data; `{}` when absent."},
            "request_id": {"type": ["string", "number"], "description": "Echoed by the reply."},
        },
    })
}

fn reply_frame_schema() -> Value {
    json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "description": "The request's event, unchanged."},
            "data": {"description": "The reply's data."},
            "request_id": {"type": ["string", "number"]},
            "resync": {"type": "boolean", "description": "The requested `since` could not be replayed: refetch."},
            "epoch": {"type": "string"},
            "seq": {"type": "integer", "minimum": 0},
        },
    })
}

/// The ready-made authentication strategies (`jwt::JwtStrategy`, `auth::ApiKeyStrategy`).
fn security_schemes() -> Value {
    json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "`Authorization: Bearer <token>`, when the server authenticates JWTs.",
        },
        "access_token": {
            "type": "apiKey",
            "in": "query",
            "name": "access_token",
            "description": "The same token as a query parameter, for browsers (WebSocket upgrades, EventSource).",
        },
        "api_key": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "An API key, when the server authenticates API keys.",
        },
    })
}

/// An error reply frame: `{event, error, request_id?}`.
pub(super) fn error_frame_schema() -> Value {
    json!({
        "type": "object",
        "required": ["event", "error"],
        "properties": {
            "event": {"type": ["string", "null"], "description": "The request's event, `null` when it had none."},
            "error": schema_ref("Error"),
            "request_id": {"type": ["string", "number"]},
        },
    })
}

/// Escapes a literal for an ECMA-262 regular expression.
pub(super) fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
