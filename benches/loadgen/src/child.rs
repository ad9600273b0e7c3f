//! Server child processes: start one, learn its address, read its memory and
//! CPU time from `/proc`, stop it.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::cli::{Options, ServerKind};

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stopped server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Linux reports CPU times in `/proc/<pid>/stat` in clock ticks of
/// `USER_HZ`, which is 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// A running server process, started by this load generator.
pub(crate) struct ServerProcess {
    child: Child,
    pid: u32,
    /// Held open: the server stops when it closes.
    stdin: Option<ChildStdin>,
    /// Where the server listens.
    pub(crate) addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `loadgen serve <kind>` with these extra environment variables
    /// and waits for its `listening on http://ADDR:PORT` line. With a CPU in
    /// the options, the server runs pinned to it (`taskset` execs the server,
    /// so the pid is the server's).
    pub(crate) async fn start(kind: ServerKind, options: &Options, env: &[(&str, &str)]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the loadgen binary: {e}"))?;
        let mut command = match options.server_cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", &cpu.to_string()]).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let threads = options.server_threads.to_string();
        command
            .args(["serve", kind.as_str(), "--bind", "127.0.0.1:0", "--threads", &threads])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| format!("cannot start {kind}: {e}"))?;
        let pid = child.id().ok_or_else(|| format!("{kind} exited at once"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Err(format!("{kind} exited before listening (see its stderr above)")),
            Ok(Err(err)) => return Err(format!("cannot read {kind}'s stdout: {err}")),
            Err(_) => return Err(format!("{kind} did not print `listening on` within {START_TIMEOUT:?}")),
        };
        let addr = first
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.trim().parse().ok())
            .ok_or_else(|| format!("{kind}: unexpected first line `{first}`"))?;
        // Keep reading so that a chatty server never blocks on a full pipe;
        // ends with the process.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            stdin,
            addr,
        })
    }

    /// Resident memory of the server process, in KiB (`VmRSS`).
    pub(crate) fn rss_kib(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .map_err(|e| format!("cannot read /proc/{}/status: {e}", self.pid))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no VmRSS in /proc/{}/status", self.pid))
    }

    /// CPU time (user + system) the server has used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Result<f64, String> {
        cpu_seconds(&format!("/proc/{}/stat", self.pid))
    }

    /// Stops the server: closes its stdin (it shuts down), then kills it if
    /// it has not exited within a few seconds.
    pub(crate) async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await.is_err() {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await;
        }
    }
}

/// Pins this process (all its threads) to `cpu` with `taskset`. Call it
/// before starting any runtime: threads created later inherit the mask.
pub(crate) fn pin_self(cpu: usize) -> Result<(), String> {
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset failed: {status}"))
    }
}

/// CPU time of this process (the load generator), in seconds.
pub(crate) fn own_cpu_seconds() -> Result<f64, String> {
    cpu_seconds("/proc/self/stat")
}

fn cpu_seconds(path: &str) -> Result<f64, String> {
    let stat = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    // The command name (field 2) may contain spaces; fields after it are
    // numbered from the closing parenthesis. utime and stime are fields 14
    // and 15, i.e. the 12th and 13th after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) as f64 / TICKS_PER_SECOND),
        _ => Err(format!("unexpected {path}")),
    }
}
