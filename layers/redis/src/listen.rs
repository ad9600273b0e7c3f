//! The feed behind [`Broker::listen`](channels_binding_core::hub::Broker::listen):
//! a task with its own pub/sub connection, reconnecting forever.

use std::time::Duration;

use channels_binding_core::hub::BrokerEvent;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use redis::aio::PubSub;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{Redactor, envelope};

/// The first delay before reconnecting.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest delay before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often an idle subscription is checked with a `PING`.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// What the task needs.
pub(crate) struct Feed {
    pub(crate) client: redis::Client,
    pub(crate) channel: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) redactor: Redactor,
}

/// Aborts the task when the stream is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Spawns the task and returns its events.
pub(crate) fn spawn(handle: &Handle, feed: Feed, capacity: usize) -> BoxStream<'static, BrokerEvent> {
    let (sender, receiver) = mpsc::channel(capacity);
    let task = AbortOnDrop(handle.spawn(run(feed, sender)));
    futures_util::stream::unfold((receiver, task), |(mut receiver, task)| async move {
        let event = receiver.recv().await?;
        Some((event, (receiver, task)))
    })
    .boxed()
}

async fn subscribe(feed: &Feed) -> redis::RedisResult<PubSub> {
    let mut pubsub = feed.client.get_async_pubsub().await?;
    pubsub.subscribe(&feed.channel).await?;
    Ok(pubsub)
}

/// Connects, pumps, and reconnects until the receiver is gone.
async fn run(feed: Feed, sender: mpsc::Sender<BrokerEvent>) {
    let mut backoff = MIN_BACKOFF;
    // `None` before the first attempt, so that a Redis down from the start
    // is reported once too.
    let mut connected: Option<bool> = None;
    loop {
        let attempt = tokio::select! {
            () = sender.closed() => return,
            attempt = tokio::time::timeout(feed.connect_timeout, subscribe(&feed)) => attempt,
        };
        match attempt {
            Ok(Ok(pubsub)) => {
                backoff = MIN_BACKOFF;
                connected = Some(true);
                tracing::debug!(channel = %feed.channel, "redis broker feed subscribed");
                if sender.send(BrokerEvent::Connected).await.is_err() || !pump(&feed, pubsub, &sender).await {
                    return;
                }
                tracing::warn!(channel = %feed.channel, "redis broker feed lost its connection; reconnecting");
            }
            Ok(Err(err)) => {
                tracing::debug!(channel = %feed.channel, error = %feed.redactor.message(&err), "redis broker feed cannot subscribe");
            }
            Err(_) => {
                tracing::debug!(channel = %feed.channel, "redis broker feed: subscribing timed out");
            }
        }
        if connected != Some(false) {
            connected = Some(false);
            if sender.send(BrokerEvent::Disconnected).await.is_err() {
                return;
            }
        }
        tokio::select! {
            () = sender.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Forwards messages until the connection is lost (`true`) or the receiver
/// is gone (`false`).
async fn pump(feed: &Feed, pubsub: PubSub, sender: &mpsc::Sender<BrokerEvent>) -> bool {
    let (mut sink, mut messages) = pubsub.split();
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = sender.closed() => return false,
            message = messages.next() => {
                let Some(message) = message else { return true };
                keepalive.reset();
                match envelope::decode(message.get_payload_bytes()) {
                    Some(delivered) => {
                        if sender.send(BrokerEvent::Change(delivered)).await.is_err() {
                            return false;
                        }
                    }
                    None => tracing::warn!(
                        channel = %feed.channel,
                        len = message.get_payload_bytes().len(),
                        "skipping a malformed message on the redis broker channel"
                    ),
                }
            }
            _ = keepalive.tick() => {
                match tokio::time::timeout(feed.command_timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => {
                        tracing::debug!(error = %feed.redactor.message(&err), "redis broker feed: ping failed");
                        return true;
                    }
                    Err(_) => {
                        tracing::debug!("redis broker feed: ping timed out");
                        return true;
                    }
                }
            }
        }
    }
}
