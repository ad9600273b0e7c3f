//! What the tests over several quickstart processes share: starting a
//! process with a database and a channel layer, bearer tokens for it, its
//! sockets, the shared test Redis, and a private `redis-server` a test may
//! stop, restart or freeze.
//!
//! Redis is taken from `CHANNELS_BINDING_TEST_REDIS_URL`, else
//! `redis://127.0.0.1:6379`. Without it (or without `redis-server` for a
//! private one) a test fails under CI and says SKIPPED loudly otherwise.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use channels_binding::jwt::TokenIssuer;
use serde_json::{Value, json};

use crate::common::Client;
use crate::quickstart_process_harness::Quickstart;

/// The JWT secret every process of these tests is started with.
pub const SECRET: &str = "cluster-test-secret-of-at-least-32-bytes";

/// A bearer token for `user`, valid for ten minutes.
pub fn token(user: &str) -> String {
    TokenIssuer::new(SECRET.as_bytes())
        .unwrap()
        .issue(user, Duration::from_secs(600))
        .unwrap()
}

pub fn redis_url() -> String {
    std::env::var("CHANNELS_BINDING_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The shared test Redis's address, or `None` (after SKIPPED) without it.
pub async fn redis_addr() -> Option<SocketAddr> {
    let url = redis_url();
    let host = url
        .trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    match tokio::net::lookup_host(&host)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
    {
        Some(addr) if tokio::net::TcpStream::connect(addr).await.is_ok() => Some(addr),
        _ if std::env::var_os("CI").is_some() => panic!("Redis is required in CI ({host})"),
        _ => {
            let _ = writeln!(std::io::stderr(), "SKIPPED: Redis not reachable at {host}");
            None
        }
    }
}

/// A name no other test run uses (channel prefixes, titles).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// A process's settings: database, channel layer, channel prefix, JWT secret.
pub fn settings(database: &str, layer: &str, prefix: &str) -> Vec<(String, String)> {
    vec![
        ("CHANNELS_BINDING_DATABASE_URL".into(), database.into()),
        ("CHANNELS_BINDING_CHANNEL_LAYER".into(), layer.into()),
        ("CHANNELS_BINDING_CHANNEL_PREFIX".into(), prefix.into()),
        ("CHANNELS_BINDING_JWT_SECRET".into(), SECRET.into()),
    ]
}

/// Starts a quickstart process; `Err` with its complaint when it does not come up.
pub async fn try_start(env: Vec<(String, String)>) -> Result<Quickstart, String> {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        std::panic::catch_unwind(|| Quickstart::start(&env)).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        })
    })
    .await
    .unwrap()
}

/// Starts a quickstart process with [`settings`].
pub async fn start(database: &str, layer: &str, prefix: &str) -> Quickstart {
    try_start(settings(database, layer, prefix)).await.unwrap()
}

pub fn addr(server: &Quickstart) -> SocketAddr {
    server.addr.parse().unwrap()
}

/// A WebSocket to `server`, as `user` (a bearer token) or anonymous.
pub async fn socket(server: &Quickstart, user: Option<&str>) -> Client {
    let url = match user {
        Some(user) => format!("ws://{}/?access_token={}", server.addr, token(user)),
        None => format!("ws://{}/", server.addr),
    };
    Client::connect_url(&url).await
}

/// Subscribes `client` to `stream`'s change feed; the reply.
pub async fn subscribe(client: &mut Client, stream: &str) -> Value {
    let reply = client
        .call(json!({"event": format!("{stream}.subscribe"), "request_id": "s"}))
        .await;
    assert_eq!(reply["data"]["subscribed"], stream, "{reply}");
    reply
}

/// A `redis-server` of the test's own, on a free port, that the test may
/// stop and restart (keeping the port) or freeze with signals.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Started and answering, or `None` (after SKIPPED) without `redis-server`.
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .unwrap();
        let mut redis = Self { port, child: None };
        if !redis.restart() {
            return None;
        }
        Some(redis)
    }

    /// Starts it again on its port (it keeps nothing: a new epoch).
    pub fn restart(&mut self) -> bool {
        let spawned = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) if std::env::var_os("CI").is_some() => panic!("redis-server is required in CI: {err}"),
            Err(err) => {
                let _ = writeln!(std::io::stderr(), "SKIPPED: cannot run redis-server ({err})");
                return false;
            }
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Sends `signal` (`-STOP`, `-CONT`, …) to the running server.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills it (a frozen one too) and waits for its exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
