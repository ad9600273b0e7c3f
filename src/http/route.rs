//! Which operation an HTTP request asks for (`docs/PROTOCOL.md` §4): a pure
//! function of method and path, so the mapping is tested without a server.

use channels_binding_core::protocol::EventName;
use http::Method;
use percent_encoding::percent_decode_str;

/// Where an operation's `data` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataFrom {
    /// The JSON body.
    Body,
    /// The query string (search).
    Query,
    /// Nothing: `{}`.
    Nothing,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST <root>`: one frame.
    Frame,
    /// `GET <root>`: the console page.
    Console,
    /// `GET <root>api/openapi.json`.
    OpenApi,
    /// `GET <root>api/asyncapi.json`.
    AsyncApi,
    /// `GET <root>api/<stream>/events`: the change feed as SSE.
    Events(String),
    /// A REST operation mapped onto an event.
    Event {
        /// The event it becomes.
        name: EventName,
        /// Where its data comes from.
        data: DataFrom,
        /// Whether success is `201 Created`.
        creates: bool,
    },
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// Nothing here.
    NotFound,
}

fn decode(segment: &str) -> Option<String> {
    percent_decode_str(segment).decode_utf8().ok().map(|s| s.into_owned())
}

fn event(stream: &str, action: &str, hash: Option<&str>, data: DataFrom, creates: bool) -> Route {
    match EventName::from_parts(stream, action, hash) {
        Ok(name) => Route::Event { name, data, creates },
        Err(_) => Route::NotFound,
    }
}

/// Maps a request to its route.
pub(crate) fn route(method: &Method, path: &str, root: &str) -> Route {
    let Some(rest) = path
        .strip_prefix(root)
        .or_else(|| (path == root.trim_end_matches('/')).then_some(""))
    else {
        return Route::NotFound;
    };
    if rest.is_empty() {
        return match *method {
            Method::POST => Route::Frame,
            Method::GET | Method::HEAD => Route::Console,
            _ => Route::MethodNotAllowed,
        };
    }
    let Some(api) = rest.strip_prefix("api/") else {
        return Route::NotFound;
    };
    let Some(segments) = api.split('/').map(decode).collect::<Option<Vec<String>>>() else {
        return Route::NotFound;
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get = *method == Method::GET || *method == Method::HEAD;
    match segments.as_slice() {
        ["openapi.json"] if get => Route::OpenApi,
        ["asyncapi.json"] if get => Route::AsyncApi,
        ["openapi.json" | "asyncapi.json"] => Route::MethodNotAllowed,
        [stream] if !stream.is_empty() => match *method {
            Method::GET => event(stream, "search", None, DataFrom::Query, false),
            Method::POST => event(stream, "create", None, DataFrom::Body, true),
            _ => Route::MethodNotAllowed,
        },
        [stream, "events"] if get => Route::Events((*stream).to_owned()),
        // `second` is decoded already, like every segment: decoding it again
        // would turn an id's `%25` into `%` and then into other bytes.
        [stream, second] if !stream.is_empty() && !second.is_empty() => {
            match *method {
                Method::GET => event(stream, "retrieve", Some(second), DataFrom::Nothing, false),
                Method::PATCH => event(stream, "update", Some(second), DataFrom::Body, false),
                Method::PUT => event(stream, "save", Some(second), DataFrom::Body, false),
                Method::DELETE => event(stream, "delete", Some(second), DataFrom::Nothing, false),
                // `POST api/<stream>/<action>`: any other action.
                Method::POST => event(stream, second, None, DataFrom::Body, false),
                _ => Route::MethodNotAllowed,
            }
        }
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(route: Route) -> String {
        match route {
            Route::Event { name, .. } => name.as_str().to_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn maps_the_rest_routes_of_the_protocol() {
        let r = |m: Method, p: &str| name(route(&m, p, "/"));
        assert_eq!(r(Method::GET, "/api/auth.User/5763"), "auth.User.retrieve#5763");
        assert_eq!(r(Method::GET, "/api/auth.User"), "auth.User.search");
        assert_eq!(r(Method::POST, "/api/auth.User"), "auth.User.create");
        assert_eq!(r(Method::PATCH, "/api/auth.User/7"), "auth.User.update#7");
        assert_eq!(r(Method::PUT, "/api/auth.User/7"), "auth.User.save#7");
        assert_eq!(r(Method::DELETE, "/api/auth.User/7"), "auth.User.delete#7");
        assert_eq!(r(Method::POST, "/api/simple_reflexion/ping"), "simple_reflexion.ping");
        assert_eq!(r(Method::GET, "/api/auth.User/a%20b"), "auth.User.retrieve#a b");
    }

    #[test]
    fn ids_are_percent_decoded_exactly_once() {
        let r = |m: Method, p: &str| name(route(&m, p, "/"));
        assert_eq!(r(Method::GET, "/api/auth.User/a%2520b"), "auth.User.retrieve#a%20b");
        assert_eq!(r(Method::DELETE, "/api/auth.User/100%25"), "auth.User.delete#100%");
        assert_eq!(r(Method::PATCH, "/api/auth.User/%252F"), "auth.User.update#%2F");
    }

    #[test]
    fn special_routes_and_misses() {
        assert_eq!(route(&Method::POST, "/", "/"), Route::Frame);
        assert_eq!(route(&Method::GET, "/", "/"), Route::Console);
        assert_eq!(route(&Method::GET, "/api/openapi.json", "/"), Route::OpenApi);
        assert_eq!(route(&Method::GET, "/api/asyncapi.json", "/"), Route::AsyncApi);
        assert_eq!(
            route(&Method::GET, "/api/auth.User/events", "/"),
            Route::Events("auth.User".into())
        );
        assert_eq!(route(&Method::DELETE, "/", "/"), Route::MethodNotAllowed);
        assert_eq!(route(&Method::PATCH, "/api/auth.User", "/"), Route::MethodNotAllowed);
        assert_eq!(route(&Method::GET, "/elsewhere", "/"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/api/", "/"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/api/a/b/c", "/"), Route::NotFound);
    }

    #[test]
    fn a_mounted_root() {
        assert_eq!(route(&Method::POST, "/rt/", "/rt/"), Route::Frame);
        assert_eq!(route(&Method::POST, "/rt", "/rt/"), Route::Frame);
        assert_eq!(
            name(route(&Method::GET, "/rt/api/auth.User/1", "/rt/")),
            "auth.User.retrieve#1"
        );
        assert_eq!(route(&Method::GET, "/api/auth.User/1", "/rt/"), Route::NotFound);
    }
}
