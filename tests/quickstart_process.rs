//! The quickstart as a newcomer runs it: a real process, configured by
//! environment and TOML, printing its address, stopping on SIGTERM.

mod common;
mod quickstart_process_harness;

use std::process::Command;

use common::Client;
use quickstart_process_harness::{Quickstart, quickstart_binary};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

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
