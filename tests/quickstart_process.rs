//! The quickstart as a newcomer runs it: a real process, configured by
//! environment and TOML, printing its address, stopping on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Client;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The example binary next to this test (`target/<profile>/examples/quickstart`).
/// `cargo test` builds it; a filtered or nextest run may not, so it is built
/// here, once per process, with the same profile.
fn quickstart_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let test_exe = std::env::current_exe().expect("test executable path");
            let profile_dir = test_exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut build = Command::new(cargo);
            build
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["build", "--quiet", "--example", "quickstart"]);
            if profile_dir.file_name().is_some_and(|name| name == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "building the quickstart failed");
            let binary = profile_dir.join("examples").join("quickstart");
            assert!(binary.exists(), "{} is missing after the build", binary.display());
            binary
        })
        .clone()
}

struct Quickstart {
    child: Child,
    addr: String,
}

impl Quickstart {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(quickstart_binary());
        command.env_clear().env("CHANNELS_BINDING_BIND", "127.0.0.1:0");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn quickstart");
        let stdout = child.stdout.take().expect("stdout");
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .expect("read the first line");
        let addr = first_line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
            .to_owned();
        assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
        Self { child, addr }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "quickstart did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn starts_serves_and_stops_cleanly_on_sigterm() {
    let mut server = tokio::task::spawn_blocking(|| Quickstart::start(&[])).await.unwrap();
    let mut ws = Client::connect_url(&format!("ws://{}/", server.addr)).await;
    let reply = ws
        .call(json!({"event": "auth.User.retrieve", "data": {"id": 5763}}))
        .await;
    assert_eq!(reply["data"]["username"], "Admin");

    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert_eq!(ws.close_code().await, Some(CloseCode::Away));
}

#[tokio::test]
async fn reads_a_toml_file_and_the_environment_wins() {
    let dir = std::env::temp_dir().join(format!("channels-binding-qs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("settings.toml");
    std::fs::write(
        &file,
        "DEFAULT_PAGE_SIZE = 7\nmax_page_size = 9\nbind = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let path = file.to_string_lossy().into_owned();
    // BIND in the file is overridden by the environment (port 0).
    let server = tokio::task::spawn_blocking(move || Quickstart::start(&[("CHANNELS_BINDING_CONFIG", &path)]))
        .await
        .unwrap();
    let mut ws = Client::connect_url(&format!("ws://{}/", server.addr)).await;
    let reply = ws.call(json!({"event": "auth.User.search"})).await;
    assert_eq!(reply["data"]["limit"], 7);
    let reply = ws
        .call(json!({"event": "auth.User.search", "data": {"limit": 50}}))
        .await;
    assert_eq!(reply["data"]["limit"], 9);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_wrong_setting_stops_start_up_with_a_message_naming_it() {
    for (key, value) in [
        ("CHANNELS_BINDING_MAX_PAGE_SIZE", "lots"),
        ("CHANNELS_BINDING_BIND", "nowhere"),
        ("CHANNELS_BINDING_ANONYMOUS_CONNECTION_ALLOWED", "perhaps"),
    ] {
        let output = Command::new(quickstart_binary())
            .env_clear()
            .env(key, value)
            .output()
            .expect("run quickstart");
        assert_eq!(output.status.code(), Some(2), "{key}");
        assert!(output.stdout.is_empty(), "nothing is printed on stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}
