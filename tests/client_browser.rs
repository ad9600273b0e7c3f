//! The JavaScript client (`GET /channels-binding.mjs`, `src/client/`) in a
//! real browser against real quickstart processes: `tests/browser/client.mjs`
//! drives Debian's Chromium with playwright-core, one scenario per test.
//! When a scenario needs the server stopped, restarted on the same port or
//! frozen, the script prints `@<command>`; this side does it and answers
//! `@ok` on the script's stdin.
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM_PATH`), `node`, and
//! `tests/browser/node_modules`: `.ci/browser-setup` installs them. Without
//! them the tests are skipped loudly, or fail when `CI` is set. The Redis
//! scenario also needs Redis and PostgreSQL, as `tests/quickstart_cluster.rs`.
#![allow(clippy::unwrap_used)]

mod pg_schema;
mod quickstart_process_harness;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use quickstart_process_harness::quickstart_binary;

const SCRIPT: &str = "tests/browser/client.mjs";
const SECRET: &str = "client-browser-test-secret-of-32-bytes!!";

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the browser tests can run here: panics under CI when they
/// cannot, says SKIPPED loudly otherwise.
pub(crate) fn browser_available(packages: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !chromium().is_file() {
        missing.push(format!("{} (apt-get install chromium)", chromium().display()));
    }
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !node_ok {
        missing.push("node on PATH".to_owned());
    }
    for package in packages {
        if !root()
            .join("tests/browser/node_modules")
            .join(package)
            .join("package.json")
            .is_file()
        {
            missing.push(format!(
                "tests/browser/node_modules/{package} (npm ci --prefix tests/browser)"
            ));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let list = missing.join(", ");
    assert!(
        std::env::var_os("CI").is_none(),
        "the browser tests need chromium and tests/browser/node_modules; missing: {list}. Run .ci/browser-setup first."
    );
    let banner = "*".repeat(92);
    let _ = writeln!(
        std::io::stderr(),
        "\n{banner}\nSKIPPED: browser test needs chromium and tests/browser/node_modules (run .ci/browser-setup)\n  \
         missing: {list}\n{banner}"
    );
    false
}

/// A quickstart process that can be stopped, frozen and started again on
/// the same port (the harness's `Quickstart` picks a new port each time).
struct Server {
    env: Vec<(String, String)>,
    child: Option<Child>,
    addr: String,
    log: PathBuf,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let log = std::env::temp_dir().join(format!(
            "channels-binding-client-browser-{}-{}.log",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut server = Self {
            env,
            child: None,
            addr: "127.0.0.1:0".to_owned(),
            log,
        };
        server.spawn();
        server
    }

    /// Starts the process on `self.addr`; the same port is retried briefly,
    /// since the old process may still hold it while it exits.
    fn spawn(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .unwrap();
            let mut command = Command::new(quickstart_binary());
            command.env_clear().env("CHANNELS_BINDING_BIND", &self.addr);
            for (key, value) in &self.env {
                command.env(key, value);
            }
            let mut child = command
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn quickstart");
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if let Some(addr) = line.trim().strip_prefix("listening on http://") {
                self.addr = addr.to_owned();
                self.child = Some(child);
                return;
            }
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "quickstart did not start on {}; its log:\n{}",
                self.addr,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn base(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// SIGTERM, and wait for the exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().expect("wait").is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- quickstart {} log ---\n{log}", self.addr);
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Does what the script asked of `server`.
fn act(server: &mut Server, command: &str, stdin: &mut ChildStdin) {
    match command {
        "restart" => {
            server.stop();
            server.spawn();
        }
        "stop" => server.stop(),
        "start" => server.spawn(),
        "freeze" => server.signal("-STOP"),
        "thaw" => server.signal("-CONT"),
        other => panic!("the script asked for an unknown command {other:?}"),
    }
    writeln!(stdin, "@ok").expect("answer the script");
    stdin.flush().expect("flush");
}

/// Runs one scenario of the script against `server` (and `other`, a second
/// process, when given); panics with the script's output when it fails.
fn scenario(name: &str, server: &mut Server, other: Option<&Server>) {
    node(&[SCRIPT, name], server, other);
}

/// Runs `node <args> <server's base URL> [<other's base URL>]`, acting on
/// its `@` commands; panics with its output when it fails.
fn node(args: &[&str], server: &mut Server, other: Option<&Server>) {
    let name = args.join(" ");
    let mut command = Command::new("node");
    command
        .args(args)
        .arg(server.base())
        .current_dir(root())
        .env("CHROMIUM_PATH", chromium())
        .env("CLIENT_TEST_JWT_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(other) = other {
        command.arg(other.base());
    }
    let mut child = command.spawn().expect("start node");
    let mut stdin = child.stdin.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut output = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.expect("read the script's output");
        output.push_str(&line);
        output.push('\n');
        if line == "@end" {
            break;
        }
        if let Some(command) = line.strip_prefix('@') {
            act(server, command, &mut stdin);
        }
    }
    drop(stdin);
    // The script has its own deadline (80 s) and exits on it.
    let status = child.wait().expect("wait for node");
    let errors = errors.join().unwrap_or_default();
    assert!(
        status.success(),
        "node {name} failed ({status}):\n--- stdout ---\n{output}\n--- stderr ---\n{errors}"
    );
    println!("{output}");
}

/// One browser and one server at a time: the timing checks (heartbeat
/// bound, reconnect) must not compete with each other for two cores.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run(name: &str, env: &[(&str, &str)]) {
    if !browser_available(&["playwright-core"]) {
        return;
    }
    let _one_at_a_time = one_at_a_time();
    let mut server = Server::start(env);
    scenario(name, &mut server, None);
}

#[test]
fn two_hundred_concurrent_calls_are_matched_by_request_id_and_errors_reject_with_their_code() {
    run("calls", &[]);
}

#[test]
fn a_subscriber_receives_a_thousand_pushes_in_order_without_gap_or_duplicate() {
    run("pushes", &[]);
}

#[test]
fn a_server_restart_on_the_memory_layer_reconnects_renews_and_reports_resync() {
    run("restart", &[]);
}

#[test]
fn an_expired_token_closes_with_1008_and_the_client_reconnects_with_a_fresh_one() {
    run("token", &[("CHANNELS_BINDING_JWT_SECRET", SECRET)]);
}

#[test]
fn a_slow_consumer_closed_with_1013_resumes_with_since_and_loses_nothing() {
    run("slow", &[("CHANNELS_BINDING_JWT_SECRET", SECRET)]);
}

#[test]
fn a_frozen_server_is_noticed_by_the_heartbeat_within_its_bound() {
    run("heartbeat", &[]);
}

#[test]
fn without_websocket_calls_go_over_post_and_subscriptions_over_sse() {
    run("http", &[]);
}

#[test]
fn tsc_strict_accepts_the_typed_usage_and_rejects_a_wrong_field_name() {
    if !browser_available(&["typescript"]) {
        return;
    }
    let _one_at_a_time = one_at_a_time();
    let mut server = Server::start(&[]);
    node(&["tests/browser/typescript.mjs"], &mut server, None);
}

#[test]
fn the_react_hooks_render_a_live_page() {
    if !browser_available(&["playwright-core", "react", "react-dom", "esbuild"]) {
        return;
    }
    let _one_at_a_time = one_at_a_time();
    let mut server = Server::start(&[]);
    node(&["tests/browser/react.mjs"], &mut server, None);
}

/// Whether Redis answers at 127.0.0.1:6379 (or `CHANNELS_BINDING_TEST_REDIS_URL`).
fn redis_url() -> Option<String> {
    let url = std::env::var("CHANNELS_BINDING_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let addr = url
        .trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_owned();
    match std::net::TcpStream::connect(&addr) {
        Ok(_) => Some(url),
        Err(err) if std::env::var_os("CI").is_some() => panic!("Redis is required in CI ({addr}): {err}"),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED: Redis not reachable at {addr} ({err})");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_restarted_process_replays_what_the_client_missed() {
    if !browser_available(&["playwright-core"]) {
        return;
    }
    let Some(redis) = redis_url() else { return };
    let Some((admin, schema, database)) = pg_schema::schema().await else {
        return;
    };
    let prefix = format!("cb_client_{schema}");
    let outcome = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = one_at_a_time();
        let env = [
            ("CHANNELS_BINDING_DATABASE_URL", database.as_str()),
            ("CHANNELS_BINDING_CHANNEL_LAYER", redis.as_str()),
            ("CHANNELS_BINDING_CHANNEL_PREFIX", prefix.as_str()),
        ];
        std::panic::catch_unwind(|| {
            let mut server = Server::start(&env);
            let other = Server::start(&env);
            scenario("replay", &mut server, Some(&other));
        })
    })
    .await
    .unwrap();
    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&admin)
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
