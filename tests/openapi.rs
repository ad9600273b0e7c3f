//! The generated API documents: the OpenAPI one parsed by a real OpenAPI 3.1
//! library (`oas3`) and checked operation by operation; the AsyncAPI one
//! checked for structure, with every `$ref` resolved.

#![allow(unreachable_pub)]

// The generators are pure functions: compiled here directly, they are tested
// without the rest of the HTTP transport.
#[path = "../src/http/asyncapi.rs"]
mod asyncapi;
#[path = "../src/http/openapi.rs"]
mod openapi;

use std::collections::{BTreeMap, BTreeSet};

use asyncapi::asyncapi_document;
use channels_binding_core::protocol::ErrorCode;
use channels_binding_core::{BindingDescription, FieldDescription, FieldKind};
use oas3::spec::{ObjectOrReference, ObjectSchema, Schema, SchemaType as Type, SchemaTypeSet as TypeSet};
use oas3::{Map, Spec};
use openapi::openapi_document;
use serde_json::{Value, json};

const ACTIONS: [&str; 9] = [
    "retrieve",
    "search",
    "list",
    "create",
    "update",
    "save",
    "delete",
    "subscribe",
    "unsubscribe",
];

/// Flags of a hand-made field: r(ead) w(rite) q(uired) n(ullable) s(earch) f(ilter) o(rder).
fn field(name: &str, kind: FieldKind, flags: &str) -> FieldDescription {
    let mut f = FieldDescription::new(name, kind);
    f.readable = flags.contains('r');
    f.writable = flags.contains('w');
    f.required = flags.contains('q');
    f.nullable = flags.contains('n');
    f.searchable = flags.contains('s');
    f.filterable = flags.contains('f');
    f.orderable = flags.contains('o');
    f
}

fn users() -> BindingDescription {
    let mut username = field("username", FieldKind::String, "rwqso");
    username.max_length = Some(150);
    BindingDescription::new(
        "auth.User",
        "id",
        ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
        vec![
            field("id", FieldKind::Integer, "rfo"),
            username,
            field("email", FieldKind::String, "rwqs"),
            field("is_staff", FieldKind::Boolean, "rwf"),
            field("date_joined", FieldKind::Timestamp, "ro"),
            field("bio", FieldKind::String, "rwn"),
            // Write-only: accepted on writes, never sent.
            field("password", FieldKind::String, "w"),
        ],
    )
}

fn notes() -> BindingDescription {
    BindingDescription::new(
        "notes.Note",
        "id",
        ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
        vec![
            field("id", FieldKind::Integer, "ro"),
            field("owner_id", FieldKind::Integer, "rf"),
            field("title", FieldKind::String, "rwqso"),
            field("body", FieldKind::String, "rwn"),
            field("score", FieldKind::Number, "rwno"),
            field("created_at", FieldKind::Timestamp, "ro"),
        ],
    )
}

fn bindings() -> Vec<BindingDescription> {
    vec![users(), notes()]
}

fn routes() -> Vec<String> {
    vec!["notes.Note.archive".to_owned(), "simple_reflexion.ping".to_owned()]
}

fn spec_of(doc: &Value) -> Spec {
    let spec = oas3::from_json(doc.to_string()).expect("oas3 parses the document");
    spec.validate_version().expect("an OpenAPI 3.1 version");
    spec
}

// ---------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------

/// `(METHOD, path) -> operationId` of every operation.
fn operations(spec: &Spec) -> BTreeMap<(String, String), String> {
    spec.operations()
        .map(|(path, method, op)| {
            let id = op.operation_id.clone().expect("every operation has an id");
            ((method.as_str().to_owned(), path), id)
        })
        .collect()
}

fn object(schema: &Schema) -> &ObjectSchema {
    match schema {
        Schema::Object(boxed) => match boxed.as_ref() {
            ObjectOrReference::Object(object) => object,
            ObjectOrReference::Ref { ref_path, .. } => panic!("unresolved reference {ref_path}"),
        },
        Schema::Boolean(b) => panic!("boolean schema {b:?}"),
    }
}

fn component<'a>(spec: &'a Spec, name: &str) -> &'a ObjectSchema {
    let schemas = &spec.components.as_ref().expect("components").schemas;
    object(schemas.get(name).unwrap_or_else(|| panic!("no component {name}")))
}

fn keys<V>(map: &Map<String, V>) -> BTreeSet<String> {
    map.keys().cloned().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn op<'a>(spec: &'a Spec, id: &str) -> &'a oas3::spec::Operation {
    spec.operation_by_id(id).unwrap_or_else(|| panic!("no operation {id}"))
}

/// The resolved JSON schema of an operation's request body.
fn body_schema(spec: &Spec, id: &str) -> Schema {
    let body = op(spec, id).request_body(spec).expect("resolves").expect("has a body");
    body.content["application/json"]
        .schema(spec)
        .expect("resolves")
        .expect("has a schema")
}

/// The resolved JSON schema of an operation's response.
fn response_schema(spec: &Spec, id: &str, status: &str) -> Schema {
    let responses = op(spec, id).responses(spec);
    let response = responses.get(status).unwrap_or_else(|| panic!("{id} has no {status}"));
    response.content["application/json"]
        .schema(spec)
        .expect("resolves")
        .expect("has a schema")
}

fn statuses(spec: &Spec, id: &str) -> BTreeSet<u16> {
    op(spec, id)
        .responses(spec)
        .keys()
        .map(|s| s.parse().expect("numeric status"))
        .collect()
}

#[test]
fn openapi_lists_every_binding_and_operation() {
    let doc = openapi_document(&bindings(), &routes(), "/");
    let spec = spec_of(&doc);
    assert_eq!(spec.openapi, "3.1.0");

    let mut expected = BTreeMap::new();
    for stream in ["auth.User", "notes.Note"] {
        let base = format!("/api/{stream}");
        let by_id = format!("{base}/{{id}}");
        for (method, path, action) in [
            ("GET", &base, "search"),
            ("POST", &base, "create"),
            ("GET", &by_id, "retrieve"),
            ("PATCH", &by_id, "update"),
            ("PUT", &by_id, "save"),
            ("DELETE", &by_id, "delete"),
            ("POST", &format!("{base}/list"), "list"),
            ("GET", &format!("{base}/events"), "events"),
        ] {
            expected.insert((method.to_owned(), path.clone()), format!("{stream}.{action}"));
        }
    }
    for (method, path, id) in [
        ("POST", "/api/notes.Note/archive", "notes.Note.archive"),
        ("POST", "/api/simple_reflexion/ping", "simple_reflexion.ping"),
        ("POST", "/", "frame"),
        ("GET", "/api/openapi.json", "openapi"),
        ("GET", "/api/asyncapi.json", "asyncapi"),
    ] {
        expected.insert((method.to_owned(), path.to_owned()), id.to_owned());
    }
    let actual = operations(&spec);
    assert_eq!(actual, expected);

    let ids: Vec<&String> = actual.values().collect();
    let unique: BTreeSet<&String> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "operation ids are unique");

    let tags: BTreeSet<String> = spec.tags.iter().map(|t| t.name.clone()).collect();
    assert_eq!(tags, set(&["auth.User", "frames", "notes.Note", "simple_reflexion"]));
    for (_, _, operation) in spec.operations() {
        for tag in &operation.tags {
            assert!(tags.contains(tag), "undeclared tag {tag}");
        }
    }
    // Same declarations, same document.
    assert_eq!(doc, openapi_document(&bindings(), &routes(), "/"));
}

#[test]
fn openapi_write_schemas_follow_the_field_flags() {
    let spec = spec_of(&openapi_document(&bindings(), &routes(), "/"));

    let create = body_schema(&spec, "auth.User.create");
    let create = object(&create);
    assert_eq!(
        keys(&create.properties),
        set(&["username", "email", "is_staff", "bio", "password"])
    );
    assert_eq!(create.required, ["username", "email"]);
    assert!(matches!(create.additional_properties, Some(Schema::Boolean(ref b)) if !b.0));
    assert!(
        op(&spec, "auth.User.create")
            .request_body(&spec)
            .unwrap()
            .unwrap()
            .required
            == Some(true)
    );

    for id in ["auth.User.update", "auth.User.save"] {
        let update = body_schema(&spec, id);
        let update = object(&update);
        assert_eq!(
            keys(&update.properties),
            set(&["username", "email", "is_staff", "bio", "password"])
        );
        assert!(update.required.is_empty(), "{id}: a partial update requires nothing");
        assert!(matches!(update.additional_properties, Some(Schema::Boolean(ref b)) if !b.0));
    }

    let note = body_schema(&spec, "notes.Note.create");
    assert_eq!(object(&note).required, ["title"]);
    assert_eq!(keys(&object(&note).properties), set(&["title", "body", "score"]));

    // Objects: readable fields only, with their JSON types.
    let user = response_schema(&spec, "auth.User.retrieve", "200");
    let user = object(&user);
    assert_eq!(
        keys(&user.properties),
        set(&["id", "username", "email", "is_staff", "date_joined", "bio"])
    );
    let prop = |name: &str| object(&user.properties[name]).clone();
    assert_eq!(prop("id").schema_type, Some(TypeSet::Single(Type::Integer)));
    assert_eq!(prop("id").read_only, Some(true));
    assert_eq!(prop("username").max_length, Some(150));
    assert_eq!(prop("is_staff").schema_type, Some(TypeSet::Single(Type::Boolean)));
    let joined = prop("date_joined");
    assert_eq!(joined.schema_type, Some(TypeSet::Single(Type::String)));
    assert_eq!(joined.format.as_deref(), Some("date-time"));
    assert_eq!(
        prop("bio").schema_type,
        Some(TypeSet::Multiple(vec![Type::String, Type::Null]))
    );
    let score = &component(&spec, "notes.Note").properties["score"];
    assert_eq!(
        object(score).schema_type,
        Some(TypeSet::Multiple(vec![Type::Number, Type::Null]))
    );

    // Save and delete answer `{success: true, id}`.
    for id in ["auth.User.save", "auth.User.delete"] {
        let ack = response_schema(&spec, id, "200");
        let ack = object(&ack);
        assert_eq!(ack.required, ["success", "id"]);
        assert_eq!(object(&ack.properties["success"]).const_value, Some(json!(true)));
    }
    // Create answers 201 with the object.
    let created = response_schema(&spec, "auth.User.create", "201");
    assert!(object(&created).properties.contains_key("date_joined"));
}

#[test]
fn openapi_search_has_its_query_parameters() {
    let spec = spec_of(&openapi_document(&bindings(), &routes(), "/"));
    let search = op(&spec, "auth.User.search");
    let parameters = search.parameters(&spec).expect("resolves");
    let names: Vec<&str> = parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["page", "limit", "order", "query", "id", "is_staff"]);
    assert!(parameters.iter().all(|p| p.location == oas3::spec::ParameterIn::Query));
    let order = parameters.iter().find(|p| p.name == "order").unwrap();
    assert_eq!(order.explode, Some(true));
    let items = object(order.schema.as_ref().unwrap()).items.clone().unwrap();
    let pattern = object(&items).pattern.clone().unwrap();
    assert!(
        pattern.contains("-date_joined") && !pattern.contains("email"),
        "{pattern}"
    );
    // Search pages: the shared wrapper with this binding's rows.
    let page = component(&spec, "auth.User.Page");
    assert_eq!(page.all_of.len(), 2);
    let wrapper = component(&spec, "SearchPage");
    assert_eq!(wrapper.required, ["page", "limit", "count", "order", "rows"]);

    // Notes: no searchable field but `title`, one filter.
    let notes = op(&spec, "notes.Note.search").parameters(&spec).unwrap();
    let names: Vec<&str> = notes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["page", "limit", "order", "query", "owner_id"]);

    // The SSE feed documents Last-Event-ID.
    let events = op(&spec, "auth.User.events");
    let header = &events.parameters(&spec).unwrap()[0];
    assert_eq!(header.name, "Last-Event-ID");
    assert_eq!(header.location, oas3::spec::ParameterIn::Header);
    let responses = events.responses(&spec);
    assert!(responses["200"].content.contains_key("text/event-stream"));
}

#[test]
fn openapi_error_responses_carry_their_statuses() {
    let spec = spec_of(&openapi_document(&bindings(), &routes(), "/"));
    let common = [400, 401, 403, 429, 500, 503];
    let with = |extra: &[u16], success: u16| -> BTreeSet<u16> {
        common.iter().chain(extra).copied().chain([success]).collect()
    };
    assert_eq!(statuses(&spec, "auth.User.retrieve"), with(&[404, 422], 200));
    assert_eq!(statuses(&spec, "auth.User.search"), with(&[422], 200));
    assert_eq!(statuses(&spec, "auth.User.list"), with(&[413, 422], 200));
    assert_eq!(statuses(&spec, "auth.User.create"), with(&[413, 422], 201));
    assert_eq!(statuses(&spec, "auth.User.update"), with(&[404, 413, 422], 200));
    assert_eq!(statuses(&spec, "auth.User.save"), with(&[404, 413, 422], 200));
    assert_eq!(statuses(&spec, "auth.User.delete"), with(&[404, 422], 200));
    assert_eq!(statuses(&spec, "simple_reflexion.ping"), with(&[404, 413, 422], 200));
    assert_eq!(statuses(&spec, "auth.User.events"), with(&[413], 200));
    assert_eq!(statuses(&spec, "frame"), with(&[404, 413, 422], 200));

    // `Error` lists every code.
    let error = component(&spec, "Error");
    let codes: Vec<Value> = ErrorCode::ALL.iter().map(|c| json!(c.as_str())).collect();
    assert_eq!(object(&error.properties["code"]).enum_values, codes);
    assert_eq!(error.required, ["code", "message"]);
    assert!(error.properties.contains_key("fields") && error.properties.contains_key("retry_after_ms"));

    // Every error response names codes whose HTTP status is that response's.
    let mut seen = BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        for (status, response) in operation.responses(&spec) {
            let status: u16 = status.parse().unwrap();
            if status < 400 {
                continue;
            }
            let schema = response.content["application/json"].schema.as_ref().expect("a schema");
            let refinement = object(&object(schema).all_of[1]).clone();
            let code_schema = match refinement.properties.get("code") {
                Some(code) => object(code).clone(),
                // The frame endpoint: `{error: {code}}`.
                None => object(&object(&refinement.properties["error"]).properties["code"]).clone(),
            };
            assert!(!code_schema.enum_values.is_empty(), "{method} {path} {status}");
            for code in &code_schema.enum_values {
                let code = ErrorCode::ALL
                    .iter()
                    .find(|c| json!(c.as_str()) == *code)
                    .expect("a known code");
                assert_eq!(code.http_status().as_u16(), status, "{method} {path}: {code}");
                seen.insert(code.as_str());
            }
        }
    }
    assert_eq!(seen.len(), ErrorCode::ALL.len(), "every code is documented somewhere");
}

#[test]
fn openapi_under_a_mounted_root() {
    let spec = spec_of(&openapi_document(&bindings(), &routes(), "rt"));
    let paths: Vec<String> = spec.paths.as_ref().unwrap().keys().cloned().collect();
    assert!(paths.iter().all(|p| p.starts_with("/rt/")), "{paths:?}");
    assert!(paths.contains(&"/rt/api/auth.User/{id}".to_owned()));
    assert!(spec.operation(&http::Method::POST, "/rt/").is_some());
}

#[test]
fn openapi_custom_handlers_and_name_clashes() {
    // A handler replacing `search`, one on the path of the SSE feed, and a
    // stream named like a shared schema.
    let clash = BindingDescription::new(
        "Error",
        "code",
        vec!["retrieve".to_owned()],
        vec![field("code", FieldKind::String, "r")],
    );
    let routes = vec![
        "auth.User.search".to_owned(),
        "auth.User.events".to_owned(),
        "lonely".to_owned(),
    ];
    let doc = openapi_document(&[users(), clash], &routes, "/");
    let spec = spec_of(&doc);
    let ops = operations(&spec);
    assert_eq!(
        ops[&("GET".to_owned(), "/api/auth.User".to_owned())],
        "auth.User.search"
    );
    assert_eq!(
        ops[&("POST".to_owned(), "/api/auth.User/events".to_owned())],
        "auth.User.events"
    );
    assert_eq!(
        ops[&("GET".to_owned(), "/api/auth.User/events".to_owned())],
        "auth.User.events_2"
    );
    assert_eq!(ops[&("GET".to_owned(), "/api/Error/{id}".to_owned())], "Error.retrieve");
    // The handler's search is documented as any JSON, not as the model's page.
    let search = response_schema(&spec, "auth.User.search", "200");
    assert!(object(&search).properties.is_empty() && object(&search).all_of.is_empty());
    assert!(
        op(&spec, "auth.User.search").request_body.is_none(),
        "a GET has no body"
    );
    // `Error` stays the error schema; the binding's objects get another name.
    assert!(component(&spec, "Error").properties.contains_key("message"));
    assert!(component(&spec, "Error_2").properties.contains_key("code"));
    // A route without a dot cannot be an event.
    assert!(!doc.to_string().contains("lonely"));
}

// ---------------------------------------------------------------------------
// AsyncAPI
// ---------------------------------------------------------------------------

/// Resolves a local `$ref` (`#/a/b`, JSON Pointer escapes included).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` in the document, with where it is.
fn references(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    out.push((at.to_owned(), child.as_str().expect("a string $ref").to_owned()));
                } else {
                    references(child, &format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                references(child, &format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

fn is_component_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The message a `#/channels/…/messages/…` reference names, followed to its component.
fn message<'a>(doc: &'a Value, reference: &Value) -> &'a Value {
    let reference = reference["$ref"].as_str().expect("a message reference");
    let in_channel = resolve(doc, reference).unwrap_or_else(|| panic!("unresolved {reference}"));
    let component = in_channel["$ref"]
        .as_str()
        .expect("channel messages refer to components");
    resolve(doc, component).unwrap_or_else(|| panic!("unresolved {component}"))
}

#[test]
fn asyncapi_is_well_formed() {
    let doc = asyncapi_document(&bindings(), &routes(), "/");
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(doc["defaultContentType"], "application/json");

    // Every reference resolves.
    let mut refs = Vec::new();
    references(&doc, "", &mut refs);
    assert!(refs.len() > 50);
    for (at, reference) in &refs {
        assert!(reference.starts_with("#/"), "{at}: non-local {reference}");
        assert!(resolve(&doc, reference).is_some(), "{at}: unresolved {reference}");
    }

    // Component keys follow the AsyncAPI key pattern.
    let components = doc["components"].as_object().unwrap();
    for kind in ["schemas", "messages"] {
        for key in components[kind].as_object().unwrap().keys() {
            assert!(is_component_key(key), "components.{kind}.{key}");
        }
    }

    // One channel, at the root, whose messages are the component messages.
    let channels = doc["channels"].as_object().unwrap();
    assert_eq!(channels.len(), 1);
    let (channel_key, channel) = channels.iter().next().unwrap();
    assert_eq!(channel["address"], "/");
    let channel_messages = channel["messages"].as_object().unwrap();
    let component_messages = components["messages"].as_object().unwrap();
    assert_eq!(
        channel_messages.keys().collect::<BTreeSet<_>>(),
        component_messages.keys().collect::<BTreeSet<_>>()
    );
    for (name, message) in component_messages {
        let payload = match message["payload"]["$ref"].as_str() {
            Some(reference) => resolve(&doc, reference).unwrap(),
            None => &message["payload"],
        };
        assert_eq!(payload["type"], "object", "message {name} is a JSON object frame");
        assert!(
            payload["properties"]["event"].is_object(),
            "message {name} has an event"
        );
    }

    // Operations: on that channel, with messages of that channel; replies too.
    let prefix = format!("#/channels/{channel_key}/messages/");
    let mut used = BTreeSet::new();
    let operations = doc["operations"].as_object().unwrap();
    for (id, operation) in operations {
        let action = operation["action"].as_str().unwrap();
        assert!(action == "send" || action == "receive", "{id}: {action}");
        assert_eq!(
            operation["channel"]["$ref"],
            format!("#/channels/{channel_key}"),
            "{id}"
        );
        let mut messages: Vec<&Value> = operation["messages"].as_array().unwrap().iter().collect();
        assert!(!messages.is_empty(), "{id} has messages");
        if action == "receive" {
            let reply = &operation["reply"];
            assert_eq!(reply["channel"]["$ref"], format!("#/channels/{channel_key}"), "{id}");
            let replies = reply["messages"].as_array().unwrap();
            assert!(
                replies.iter().any(|m| m["$ref"] == format!("{prefix}error")),
                "{id} may fail"
            );
            messages.extend(replies);
        } else {
            assert!(operation.get("reply").is_none(), "{id}: pushes have no reply");
        }
        for m in messages {
            let reference = m["$ref"].as_str().unwrap();
            assert!(
                reference.starts_with(&prefix),
                "{id}: {reference} is not a message of its channel"
            );
            used.insert(reference.trim_start_matches(&prefix).to_owned());
        }
    }
    assert_eq!(
        used,
        channel_messages.keys().cloned().collect::<BTreeSet<String>>(),
        "every message is used"
    );
    assert_eq!(doc, asyncapi_document(&bindings(), &routes(), "/"));
}

#[test]
fn asyncapi_describes_every_event() {
    let doc = asyncapi_document(&bindings(), &routes(), "/");
    let operations = doc["operations"].as_object().unwrap();
    for stream in ["auth.User", "notes.Note"] {
        let escaped = stream.replace('.', "\\.");
        for action in ACTIONS {
            let route = format!("{stream}.{action}");
            let operation = &operations[&route];
            assert_eq!(operation["action"], "receive", "{route}");
            let request = message(&doc, &operation["messages"][0]);
            assert_eq!(request["name"], route);
            assert_eq!(
                request["payload"]["properties"]["event"]["pattern"],
                format!("^{escaped}\\.{action}(#.+)?$")
            );
        }
        for (push, event) in [
            (
                "created",
                json!({"type": "string", "const": format!("{stream}.created")}),
            ),
            ("updated", json!(format!("^{escaped}\\.updated#.+$"))),
            ("deleted", json!(format!("^{escaped}\\.deleted#.+$"))),
            ("retrieve.push", json!(format!("^{escaped}\\.retrieve(#.+)?$"))),
        ] {
            let operation = &operations[&format!("{stream}.{push}")];
            assert_eq!(operation["action"], "send");
            let payload = &message(&doc, &operation["messages"][0])["payload"];
            assert_eq!(payload["required"], json!(["event", "data"]));
            assert!(payload["properties"]["seq"].is_object() && payload["properties"]["epoch"].is_object());
            let event_schema = &payload["properties"]["event"];
            match event.as_str() {
                Some(pattern) => assert_eq!(event_schema["pattern"], pattern, "{stream}.{push}"),
                None => assert_eq!(*event_schema, event),
            }
        }
    }
    for route in routes() {
        let operation = &operations[&route];
        assert_eq!(operation["action"], "receive");
        assert_eq!(
            message(&doc, &operation["messages"][0])["payload"]["properties"]["data"],
            json!({})
        );
    }

    // Payloads come from the field descriptions.
    let create = message(&doc, &operations["auth.User.create"]["messages"][0]);
    let data = resolve(&doc, create["payload"]["properties"]["data"]["$ref"].as_str().unwrap()).unwrap();
    assert_eq!(data["required"], json!(["username", "email"]));
    assert_eq!(data["additionalProperties"], false);
    let update = message(&doc, &operations["auth.User.update"]["messages"][0]);
    let update = &update["payload"]["properties"]["data"];
    assert!(update.get("required").is_none());
    assert!(update["properties"]["id"].is_object() && update["properties"]["password"].is_object());
    let search = message(&doc, &operations["auth.User.search"]["messages"][0]);
    let filters = &search["payload"]["properties"]["data"]["properties"]["filters"]["properties"];
    assert_eq!(
        filters.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "is_staff"]
    );
    let retrieve = message(&doc, &operations["auth.User.retrieve"]["reply"]["messages"][0]);
    assert_eq!(
        retrieve["payload"]["properties"]["data"]["anyOf"][0]["$ref"],
        "#/components/schemas/auth.User"
    );
    let user = &doc["components"]["schemas"]["auth.User"]["properties"];
    assert_eq!(user["date_joined"]["format"], "date-time");
    assert_eq!(user["bio"]["type"], json!(["string", "null"]));
    assert!(user.get("password").is_none(), "write-only fields are never sent");

    // The error reply.
    let error = &doc["components"]["messages"]["error"]["payload"];
    let error = resolve(&doc, error["$ref"].as_str().unwrap()).unwrap();
    assert_eq!(error["required"], json!(["event", "error"]));
    let object = resolve(&doc, error["properties"]["error"]["$ref"].as_str().unwrap()).unwrap();
    let codes: Vec<Value> = ErrorCode::ALL.iter().map(|c| json!(c.as_str())).collect();
    assert_eq!(object["properties"]["code"]["enum"], json!(codes));

    // A mounted root is the channel's address.
    let mounted = asyncapi_document(&bindings(), &routes(), "/rt");
    assert_eq!(mounted["channels"]["socket"]["address"], "/rt/");
}
