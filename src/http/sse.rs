//! The change feed of a stream as Server-Sent Events. Opening a feed is a
//! `<stream>.subscribe` event through the same event stack as everything
//! else (so anonymous rejection, rate limits and read scopes apply), on a
//! hub connection whose pushes become the SSE body: `seq`/`epoch` are the
//! event ids, and `Last-Event-ID` resumes through the hub's bounded history.
//! A feed lives no longer than the credentials it was opened with: it ends
//! at their expiry or when they are revoked (the session signed out).

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::{Outbox, StreamPosition};
use channels_binding_core::{CredentialsEnd, Identity};
use futures_util::stream;
use http::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::body::{Body, BoxError};
use crate::shutdown::Shutdown;

/// Parses a `Last-Event-ID` of the form `<epoch>:<seq>`.
fn parse_event_id(value: &HeaderValue) -> Option<StreamPosition> {
    let text = value.to_str().ok()?;
    let (epoch, seq) = text.rsplit_once(':')?;
    Some(StreamPosition {
        epoch: epoch.into(),
        seq: seq.parse().ok()?,
    })
}

#[derive(serde::Deserialize)]
struct PushHead<'a> {
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    seq: Option<u64>,
    #[serde(borrow)]
    epoch: Option<Cow<'a, str>>,
}

/// One push frame as an SSE event: `id: epoch:seq`, `event: <name>`, and the
/// whole frame as `data` (serde_json writes it on one line).
fn sse_event(frame: &[u8]) -> Bytes {
    let head: PushHead<'_> = serde_json::from_slice(frame).unwrap_or(PushHead {
        event: None,
        seq: None,
        epoch: None,
    });
    let mut out = Vec::with_capacity(frame.len() + 64);
    if let (Some(epoch), Some(seq)) = (&head.epoch, head.seq) {
        out.extend_from_slice(format!("id: {epoch}:{seq}\n").as_bytes());
    }
    // An object's hash comes from data and could hold a line break, which
    // would end the field: such events go out unnamed (still in `data`).
    if let Some(event) = head.event.as_deref().filter(|e| !e.contains(['\r', '\n'])) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(frame);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

struct Feed {
    outbox: Outbox,
    first: Option<Bytes>,
    keep_alive: tokio::time::Interval,
    shutdown: Shutdown,
    /// Set once the last chunk (why the feed ends) went out.
    ended: bool,
}

/// Completes when the credentials of a feed's identity end (never for anonymous).
async fn credentials_end(identity: &Identity) -> CredentialsEnd {
    match identity.principal() {
        Some(principal) => principal.ended().await,
        None => std::future::pending().await,
    }
}

/// The last chunk of a feed whose credentials ended: a comment, so that
/// nothing is mistaken for an event, then the body ends.
fn ended_chunk(end: CredentialsEnd) -> Bytes {
    Bytes::from(format!(": {}\n\n", end.reason()))
}

/// The `data` of the `subscribe` event that opens a feed: `since` from a
/// `Last-Event-ID` of the form `<epoch>:<seq>`.
pub(crate) fn subscribe_data(last_event_id: Option<&HeaderValue>) -> serde_json::Value {
    match last_event_id.and_then(parse_event_id) {
        Some(since) => serde_json::json!({ "since": since }),
        None => serde_json::json!({}),
    }
}

/// Streams what arrives for a subscribed connection as Server-Sent Events.
///
/// `resync` (the `subscribe` reply said the resume point is lost, or the
/// `Last-Event-ID` was unreadable) sends a `resync` event first: refetch,
/// then follow.
pub(crate) fn stream(
    outbox: Outbox,
    resync: Option<StreamPosition>,
    keep_alive: Duration,
    shutdown: Shutdown,
) -> Response<Body> {
    let mut first = String::from("retry: 3000\n: connected\n\n");
    if let Some(position) = resync {
        first.push_str(&format!(
            "event: resync\ndata: {{\"epoch\":{},\"seq\":{}}}\n\n",
            serde_json::Value::from(&*position.epoch),
            position.seq
        ));
    }
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = Feed {
        outbox,
        first: Some(Bytes::from(first)),
        keep_alive: interval,
        shutdown,
        ended: false,
    };
    let events = stream::unfold(state, |mut state| async move {
        if let Some(first) = state.first.take() {
            return Some((Ok::<_, BoxError>(Frame::data(first)), state));
        }
        if state.ended {
            return None;
        }
        let connection = state.outbox.connection().clone();
        let identity = connection.identity();
        let chunk = tokio::select! {
            biased;
            () = state.shutdown.triggered() => return None,
            // Before pushes: nothing is delivered once the credentials ended.
            end = credentials_end(&identity) => {
                state.ended = true;
                ended_chunk(end)
            }
            // A client that falls behind is dropped; it resumes with Last-Event-ID.
            () = connection.overflowed() => return None,
            pushed = state.outbox.recv() => sse_event(&pushed?.frame),
            _ = state.keep_alive.tick() => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok(Frame::data(chunk)), state))
    });
    let mut response = Response::new(StreamBody::new(events).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_pushes_as_sse_events() {
        let frame = br#"{"event":"auth.User.updated#5","data":{"id":5},"seq":3,"epoch":"e1"}"#;
        let event = String::from_utf8(sse_event(frame).to_vec()).unwrap();
        assert_eq!(
            event,
            "id: e1:3\nevent: auth.User.updated#5\ndata: {\"event\":\"auth.User.updated#5\",\"data\":{\"id\":5},\"seq\":3,\"epoch\":\"e1\"}\n\n"
        );
        let sneaky = br#"{"event":"a.B.updated#x\nevent: forged","data":{},"seq":1,"epoch":"e"}"#;
        let event = String::from_utf8(sse_event(sneaky).to_vec()).unwrap();
        assert!(!event.contains("\nevent: forged"), "{event}");
    }

    #[test]
    fn parses_last_event_ids() {
        let position = parse_event_id(&HeaderValue::from_static("abc:12")).unwrap();
        assert_eq!((&*position.epoch, position.seq), ("abc", 12));
        assert!(parse_event_id(&HeaderValue::from_static("nonsense")).is_none());
    }
}
