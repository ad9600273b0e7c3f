//! TypeScript declarations of the declared bindings (`GET
//! <root>api/channels-binding.d.ts`), from the same descriptions as the
//! OpenAPI and AsyncAPI documents: one interface per stream for its objects,
//! its write inputs and its search parameters, and an `Api` type mapping
//! every event name to its request and reply `data`, which the client's
//! `connect<Api>(url)` uses to type `call` and `subscribe`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use channels_binding_core::{BindingDescription, FieldDescription, FieldKind};

/// The TypeScript declarations for these bindings and handler routes
/// (`simple_reflexion.ping`, typed as any request and an `unknown` reply).
///
/// The object interface of a stream holds its readable fields, as the
/// detail serializer sends them; search and list rows are `Partial` of it
/// plus the primary key, since a list serializer may send fewer fields.
/// Write inputs hold only writable fields, so a misspelt or read-only field
/// is a compile error, as it is a `validation` error on the server.
///
/// ```
/// use channels_binding::http::typescript_declarations;
/// use channels_binding_core::{BindingDescription, FieldDescription, FieldKind};
///
/// let mut id = FieldDescription::new("id", FieldKind::Integer);
/// id.readable = true;
/// let mut name = FieldDescription::new("username", FieldKind::String);
/// name.readable = true;
/// name.writable = true;
/// let users = BindingDescription::new("auth.User", "id", vec!["retrieve".into(), "update".into()], vec![id, name]);
/// let ts = typescript_declarations(&[users], &["simple_reflexion.ping".into()]);
/// assert!(ts.contains("export interface AuthUser {"));
/// assert!(ts.contains("\"auth.User.retrieve\": { request: { \"id\"?: number }; reply: AuthUser };"));
/// assert!(ts.contains("\"simple_reflexion.ping\""));
/// ```
pub fn typescript_declarations(bindings: &[BindingDescription], handler_routes: &[String]) -> String {
    let mut out = String::from(HEADER);
    let mut names = TypeNames::default();
    let mut events: BTreeMap<String, String> = BTreeMap::new();
    let mut streams: BTreeMap<String, String> = BTreeMap::new();
    for binding in bindings {
        let object = names.claim(&pascal(&binding.stream));
        let pk = binding
            .fields
            .iter()
            .find(|f| f.name == binding.primary_key)
            .map_or("string | number", ts_type);
        let pk_name = quote(&binding.primary_key);
        let _ = writeln!(
            out,
            "/** An object of `{}` (its readable fields). */",
            comment(&binding.stream)
        );
        let _ = writeln!(out, "export interface {object} {{");
        for field in binding.fields.iter().filter(|f| f.readable) {
            let _ = writeln!(out, "  {}: {};", quote(&field.name), field_type(field));
        }
        out.push_str("}\n");
        let row = names.claim(&format!("{object}Row"));
        let _ = writeln!(
            out,
            "/** A row of a `{}` search or list: a list serializer may send fewer fields. */",
            comment(&binding.stream)
        );
        let _ = writeln!(out, "export type {row} = Partial<{object}> & {{ {pk_name}: {pk} }};");
        let create = names.claim(&format!("{object}Create"));
        let update = names.claim(&format!("{object}Update"));
        write_input(&mut out, &create, binding, true, None);
        write_input(&mut out, &update, binding, false, Some(pk));
        let search = names.claim(&format!("{object}Search"));
        let order = names.claim(&format!("{object}Order"));
        let terms: Vec<String> = binding
            .fields
            .iter()
            .filter(|f| f.orderable)
            .flat_map(|f| [quote(&f.name), quote(&format!("-{}", f.name))])
            .collect();
        let _ = writeln!(
            out,
            "export type {order} = {};",
            if terms.is_empty() {
                "never".to_owned()
            } else {
                terms.join(" | ")
            }
        );
        let filters: Vec<String> = binding
            .fields
            .iter()
            .filter(|f| f.filterable)
            .map(|f| format!("{}?: {t} | Array<{t}>", quote(&f.name), t = field_type(f)))
            .collect();
        let _ = writeln!(
            out,
            "export interface {search} {{\n  page?: number;\n  limit?: number;\n  order?: {order} | {order}[];\n  query?: string;\n  filters?: {{ {} }};\n}}\n",
            filters.join("; ")
        );
        let by_id = format!("{{ {pk_name}?: {pk} }}");
        for action in &binding.actions {
            let (request, reply) = match action.as_str() {
                "retrieve" => (by_id.clone(), object.clone()),
                "search" => (search.clone(), format!("SearchPage<{row}, {order}>")),
                "list" => (format!("Pick<{search}, \"filters\" | \"order\">"), format!("{row}[]")),
                "create" => (create.clone(), object.clone()),
                "update" => (update.clone(), object.clone()),
                "save" => (update.clone(), format!("{{ success: true; id: {pk} }}")),
                "delete" => (by_id.clone(), format!("{{ success: true; id: {pk} }}")),
                "subscribe" => (
                    format!("{{ {pk_name}?: {pk}; since?: Position }}"),
                    "{ subscribed: string }".to_owned(),
                ),
                "unsubscribe" => (by_id.clone(), "{ unsubscribed: string }".to_owned()),
                _ => ("any".to_owned(), "unknown".to_owned()),
            };
            let name = format!("{}.{action}", binding.stream);
            events.insert(name, format!("{{ request: {request}; reply: {reply} }}"));
        }
        streams.insert(binding.stream.clone(), object);
    }
    for route in handler_routes {
        events
            .entry(route.clone())
            .or_insert_with(|| "{ request: any; reply: unknown }".to_owned());
    }
    out.push_str("/** Every event: request and reply `data`. */\nexport interface Events {\n");
    for (name, types) in &events {
        let _ = writeln!(out, "  {}: {types};", quote(name));
    }
    out.push_str("}\n\n/** The object type of every stream, for subscriptions. */\nexport interface Streams {\n");
    for (stream, object) in &streams {
        let _ = writeln!(out, "  {}: {object};", quote(stream));
    }
    out.push_str("}\n\n/** This API, for `connect<Api>(url)`. */\nexport interface Api {\n  events: Events;\n  streams: Streams;\n}\n");
    out
}

const HEADER: &str = "\
// TypeScript declarations of this server's API, generated from its bindings.
// Save as api.d.ts next to channels-binding.d.ts and use:
//   import { connect } from './channels-binding.mjs';
//   import type { Api } from './api';
//   const client = connect<Api>('/');

/** A stream position (`since`, replies and pushes). */
export interface Position {
  epoch: string;
  seq: number;
}

/** One page of search results. */
export interface SearchPage<Row, Order> {
  page: number;
  limit: number;
  count: number;
  order: Order | Order[];
  rows: Row[];
}

";

/// Writes a write-input interface: writable fields, required ones required
/// on create; `id` (the primary key's type) added for updates.
fn write_input(out: &mut String, name: &str, binding: &BindingDescription, create: bool, id: Option<&str>) {
    let _ = writeln!(out, "export interface {name} {{");
    if let Some(pk) = id {
        let _ = writeln!(out, "  \"id\"?: {pk};");
    }
    for field in binding.fields.iter().filter(|f| f.writable) {
        if id.is_some() && field.name == "id" {
            continue;
        }
        let optional = if create && field.required { "" } else { "?" };
        let _ = writeln!(out, "  {}{optional}: {};", quote(&field.name), field_type(field));
    }
    out.push_str("}\n");
}

fn ts_type(field: &FieldDescription) -> &'static str {
    match field.kind {
        FieldKind::Integer | FieldKind::Number => "number",
        FieldKind::Boolean => "boolean",
        // RFC 3339 text on the wire.
        FieldKind::String | FieldKind::Timestamp => "string",
        // A kind added later: nothing is promised about it.
        #[allow(unreachable_patterns)]
        _ => "unknown",
    }
}

fn field_type(field: &FieldDescription) -> String {
    if field.nullable {
        format!("{} | null", ts_type(field))
    } else {
        ts_type(field).to_owned()
    }
}

/// Text safe inside a `/** */` comment.
fn comment(text: &str) -> String {
    text.replace("*/", "*\\/")
}

/// A string literal (also a valid property name): JSON's quoting is TypeScript's.
fn quote(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// `auth.User` → `AuthUser`; anything but ASCII letters and digits separates words.
fn pascal(stream: &str) -> String {
    let mut out = String::new();
    for word in stream
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

/// Type names handed out once each, avoiding the header's and each other's.
#[derive(Default)]
struct TypeNames(HashSet<String>);

impl TypeNames {
    fn claim(&mut self, wanted: &str) -> String {
        const TAKEN: [&str; 6] = ["Position", "SearchPage", "Events", "Streams", "Api", "Partial"];
        let mut name = wanted.to_owned();
        let mut n = 2;
        while TAKEN.contains(&name.as_str()) || self.0.contains(&name) {
            name = format!("{wanted}{n}");
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_after_streams_without_collisions() {
        assert_eq!(pascal("auth.User"), "AuthUser");
        assert_eq!(pascal("notes.note_item"), "NotesNoteItem");
        assert_eq!(pascal("9lives"), "T9lives");
        let mut names = TypeNames::default();
        assert_eq!(names.claim("Api"), "Api2");
        assert_eq!(names.claim("AuthUser"), "AuthUser");
        assert_eq!(names.claim("AuthUser"), "AuthUser2");
    }

    #[test]
    fn quotes_hostile_names() {
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
