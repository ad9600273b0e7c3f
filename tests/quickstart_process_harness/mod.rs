//! Runs the quickstart example as a real process, for the tests that need
//! several of them or its real start-up and shutdown.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example binary next to this test (`target/<profile>/examples/quickstart`).
/// `cargo test` builds it; a filtered or nextest run may not, so it is built
/// here, once per process, with the same profile.
pub fn quickstart_binary() -> PathBuf {
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

pub struct Quickstart {
    child: Child,
    /// Where its stderr (its log) goes; shown when a test fails.
    log: PathBuf,
    /// `ADDR:PORT` it listens on.
    pub addr: String,
}

impl Quickstart {
    /// Starts the binary with only `env` (and a free port); returns once it
    /// printed its address. Its log goes to a file, printed if the test fails.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(quickstart_binary());
        command.env_clear().env("CHANNELS_BINDING_BIND", "127.0.0.1:0");
        for (key, value) in env {
            command.env(key, value);
        }
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("channels-binding-quickstart-{}-{n}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("create the log file");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
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
            .unwrap_or_else(|| {
                let _ = child.wait();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("unexpected first line {first_line:?}; its log:\n{log}")
            })
            .to_owned();
        assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
        Self { child, log, addr }
    }

    /// The process id, to read its memory under `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (up to 15 s) for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
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
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- quickstart {} log ---\n{log}", self.addr);
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
