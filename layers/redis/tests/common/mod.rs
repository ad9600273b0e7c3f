//! What the Redis broker tests share: where Redis is, unique prefixes, and
//! the skip-or-fail rule when Redis is not there.

#![allow(dead_code, unreachable_pub)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use channels_binding_core::hub::{BrokerEvent, Delivered};
use channels_binding_redis::{RedisBroker, RedisBrokerBuilder};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// The shared test Redis: `CHANNELS_BINDING_TEST_REDIS_URL`, else the local default.
pub fn redis_url() -> String {
    std::env::var("CHANNELS_BINDING_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Whether a missing Redis must fail the test rather than skip it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| !ci.is_empty())
}

/// Fails under CI, else prints a loud skip line (straight to stderr, past
/// the test harness' capture, so that it shows without `--nocapture`).
pub fn skip(what: &str, why: &str) {
    assert!(!in_ci(), "{what} not available under CI: {why}");
    let line = format!("\nSKIPPED: {what}: {why}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// The URL without its user information, for messages.
pub fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// A prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    format!("cb_test:{test}:{:016x}", hasher.finish())
}

/// A builder on the shared test Redis with the given prefix.
pub fn builder(prefix: &str) -> RedisBrokerBuilder {
    RedisBroker::builder(redis_url())
        .prefix(prefix)
        .connect_timeout(Duration::from_secs(2))
        .command_timeout(Duration::from_secs(5))
}

/// Connects, or skips (returns `None`) when Redis is not reachable outside CI.
pub async fn connect(builder: RedisBrokerBuilder) -> Option<RedisBroker> {
    match builder.connect().await {
        Ok(broker) => Some(broker),
        Err(err) => {
            skip(
                &format!("redis not reachable at {}", shown_url(&redis_url())),
                &err.to_string(),
            );
            None
        }
    }
}

/// Deletes every key under `prefix` on the shared test Redis (and nothing else).
pub async fn delete_prefix(prefix: &str) {
    let client = redis::Client::open(redis_url()).expect("valid url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    for key in keys {
        assert!(key.starts_with(&format!("{prefix}:")));
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .expect("DEL");
    }
}

/// The next feed event, failing the test after `within`.
pub async fn next_event(feed: &mut BoxStream<'static, BrokerEvent>, within: Duration) -> BrokerEvent {
    tokio::time::timeout(within, feed.next())
        .await
        .expect("a feed event in time")
        .expect("the feed does not end")
}

/// Waits for `Connected`, failing on anything else.
pub async fn connected(feed: &mut BoxStream<'static, BrokerEvent>) {
    let event = next_event(feed, Duration::from_secs(5)).await;
    assert_eq!(event, BrokerEvent::Connected);
}

/// The next `count` changes, failing on connection events.
pub async fn changes(feed: &mut BoxStream<'static, BrokerEvent>, count: usize) -> Vec<Delivered> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        match next_event(feed, Duration::from_secs(5)).await {
            BrokerEvent::Change(delivered) => out.push(delivered),
            other => panic!("unexpected feed event {other:?}"),
        }
    }
    out
}
