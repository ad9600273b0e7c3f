//! Outages, on a private `redis-server` this test starts, kills and restarts
//! (the shared test Redis is never touched).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use channels_binding_core::hub::{Broker, BrokerError, BrokerEvent, Outgoing, Replay};
use channels_binding_redis::RedisBroker;
use common::{changes, connected, next_event, skip};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `redis-server` on `port` with no persistence, waiting until it
/// answers; `None` (skip) when there is no `redis-server` outside CI.
async fn start_server(port: u16) -> Option<Child> {
    let spawned = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(err) => {
            skip("redis-server not runnable", &err.to_string());
            return None;
        }
    };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut connection) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
        {
            return Some(child);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis-server on {port} did not start"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn stop_server(mut child: Child) {
    child.kill().await.unwrap();
}

/// A key no other batch of this test run has.
fn key() -> channels_binding_core::hub::BatchKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = format!("test-{}", std::process::id());
    channels_binding_core::hub::BatchKey::new(&run, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn change(payload: &str) -> Vec<Outgoing> {
    vec![Outgoing {
        stream: Arc::from("r.Restart"),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }]
}

#[tokio::test]
async fn the_feed_and_commands_survive_a_restart_that_loses_history() {
    let port = free_port();
    let Some(server) = start_server(port).await else { return };
    let broker = RedisBroker::builder(format!("redis://127.0.0.1:{port}"))
        .prefix("restart")
        .connect_timeout(Duration::from_millis(500))
        .command_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let mut feed = broker.listen();
    connected(&mut feed).await;
    broker.publish(&key(), change("before")).await.unwrap();
    let before = broker.position("r.Restart").await.unwrap();
    assert_eq!(before.seq, 1);
    assert_eq!(changes(&mut feed, 1).await[0].position, before);

    stop_server(server).await;
    assert_eq!(
        next_event(&mut feed, Duration::from_secs(5)).await,
        BrokerEvent::Disconnected
    );
    let started = tokio::time::Instant::now();
    let err = broker.publish(&key(), change("while down")).await.unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed only after {:?}",
        started.elapsed()
    );
    assert!(matches!(broker.check().await, Err(BrokerError::Unavailable(_))));
    assert!(matches!(
        broker.position("r.Restart").await,
        Err(BrokerError::Unavailable(_))
    ));
    // Down for a while: the feed retries quietly (one Disconnected only).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let Some(_server) = start_server(port).await else {
        return;
    };
    assert_eq!(
        next_event(&mut feed, Duration::from_secs(10)).await,
        BrokerEvent::Connected
    );

    // The command connection comes back on its own too, without failing
    // the first call after the outage.
    broker.publish(&key(), change("after")).await.unwrap();
    broker.check().await.unwrap();
    let after = broker.position("r.Restart").await.unwrap();
    assert_ne!(
        after.epoch, before.epoch,
        "a restart without persistence is a new epoch"
    );
    assert_eq!(after.seq, 1);
    let delivered = changes(&mut feed, 1).await;
    assert_eq!(delivered[0].position, after);
    assert_eq!(delivered[0].payload, "after");
    assert_eq!(broker.replay("r.Restart", &before).await.unwrap(), Replay::Gone);
}

#[tokio::test]
async fn a_feed_started_while_redis_is_down_reports_it_and_connects_later() {
    let port = free_port();
    let Some(server) = start_server(port).await else { return };
    let broker = RedisBroker::builder(format!("redis://127.0.0.1:{port}"))
        .prefix("late")
        .connect_timeout(Duration::from_millis(500))
        .command_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    stop_server(server).await;
    let mut feed = broker.listen();
    assert_eq!(
        next_event(&mut feed, Duration::from_secs(5)).await,
        BrokerEvent::Disconnected
    );
    let Some(_server) = start_server(port).await else {
        return;
    };
    assert_eq!(
        next_event(&mut feed, Duration::from_secs(10)).await,
        BrokerEvent::Connected
    );
}

#[tokio::test]
async fn connecting_to_nothing_fails_as_unavailable_without_the_password() {
    let port = free_port();
    let err = RedisBroker::builder(format!("redis://user:sup3rsecret@127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("sup3rsecret"), "{err}");
    let err = RedisBroker::builder("not a url").connect().await.unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
}
