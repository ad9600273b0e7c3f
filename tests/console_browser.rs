//! The console page (`GET /`, DEMO.md) in a real browser: the quickstart runs
//! in-process on an ephemeral port and `tests/browser/console.mjs` drives
//! Debian's Chromium with playwright-core against it: connect, send the seed's
//! search, subscribe, change a user over `POST /` and see the push arrive.
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM_PATH`), `node`, and
//! `tests/browser/node_modules`: `.ci/browser-setup` installs them. Without
//! them the test is skipped loudly, or fails when `CI` is set.

mod common;

mod quickstart_server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use channels_binding::Settings;

/// The whole browser run: launch, every check, the screenshot.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

const SCRIPT: &str = "tests/browser/console.mjs";

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// What the browser test needs and this machine lacks.
fn missing(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let chromium = chromium();
    if !chromium.is_file() {
        missing.push(format!("{} (apt-get install chromium)", chromium.display()));
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
    let playwright = root.join("tests/browser/node_modules/playwright-core/package.json");
    if !playwright.is_file() {
        missing.push("tests/browser/node_modules (npm ci --prefix tests/browser)".to_owned());
    }
    missing
}

/// `target/console.png`, in whatever target directory this build uses.
fn screenshot_path() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("console.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_page_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing = missing(root);
    if !missing.is_empty() {
        let list = missing.join(", ");
        if std::env::var_os("CI").is_some() {
            panic!(
                "the browser test needs chromium and tests/browser/node_modules; missing: {list}. Run .ci/browser-setup first."
            );
        }
        // Straight to stderr: libtest captures `eprintln!` of passing tests.
        let banner = "*".repeat(92);
        let _ = writeln!(
            std::io::stderr(),
            "\n{banner}\nSKIPPED: browser test needs chromium and tests/browser/node_modules (run .ci/browser-setup)\n  \
             missing: {list}\n{banner}"
        );
        return;
    }

    let (addr, shutdown) = quickstart_server::start_with(&Settings::default()).await;
    let url = format!("http://{addr}/");
    let screenshot = screenshot_path();

    let child = tokio::process::Command::new("node")
        .arg(SCRIPT)
        .arg(&url)
        .arg(&screenshot)
        .current_dir(root)
        .env("CHROMIUM_PATH", chromium())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output()).await;
    shutdown.trigger();

    let output = match output {
        Ok(output) => output.expect("wait for node"),
        Err(_) => panic!("node {SCRIPT} {url} did not finish within {SCRIPT_TIMEOUT:?} (killed)"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node {SCRIPT} {url} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    println!("{stdout}");
    if !stderr.trim().is_empty() {
        eprintln!("{stderr}");
    }
    assert!(screenshot.is_file(), "no screenshot at {}", screenshot.display());
}
