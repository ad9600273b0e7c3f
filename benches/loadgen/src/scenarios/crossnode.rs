//! Scenario (e): cross-node fan-out. The fan-out of (c) (1 000 subscribers,
//! `--rate` writes/s) measured twice in one run, side by side:
//!
//! 1. **single process**: one `ours-quickstart` on the `memory` channel
//!    layer; the writer and the subscribers on the same process (exactly
//!    (c)'s code path);
//! 2. **cross-node**: two `ours-quickstart` processes, A and B, sharing one
//!    Redis channel layer (`redis://127.0.0.1:6379`, one unique
//!    `CHANNEL_PREFIX` per run) and one database; the writer on A, every
//!    subscriber on B, so every push travels A → Redis → B.
//!
//! Both use a SQLite *file* database (WAL) in a fresh temporary directory,
//! one file per measurement: the quickstart's default in-memory database is
//! private to a process, so the two nodes need a file, and the single process
//! gets one too so the write path is the same on both sides.
//!
//! Pinning (when the run pins at all): B, which does the fan-out, gets the
//! servers' CPU, as the single process does; A, which only takes the
//! writes, gets the CPU before it (CPU 0 on a two-core machine, shared with
//! the client). Redis is not pinned.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fanout::{self, Outcome};
use crate::child::ServerProcess;
use crate::cli::Options;
use crate::report::{Row, Target};

/// The channel layer of the cross-node measurement.
pub(super) const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The subscribers of both measurements.
const SUBSCRIBERS: usize = 1000;

/// Target: cross-node deliveries/s ÷ single-process deliveries/s.
const RATIO_TARGET: f64 = 0.5;

/// Target: cross-node p99 − single-process p99, in ms.
const P99_EXTRA_TARGET_MS: f64 = 5.0;

/// Checks that Redis answers `PING` at `url` (`redis://HOST:PORT`), within
/// two seconds.
pub(super) async fn check_redis(url: &str) -> Result<(), String> {
    let addr = url.trim_start_matches("redis://");
    let ping = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        stream
            .write_all(b"PING\r\n")
            .await
            .map_err(|e| format!("cannot send PING: {e}"))?;
        let mut reply = [0u8; 64];
        let n = stream
            .read(&mut reply)
            .await
            .map_err(|e| format!("no reply to PING: {e}"))?;
        let reply = String::from_utf8_lossy(&reply[..n]);
        if reply.starts_with("+PONG") {
            Ok(())
        } else {
            Err(format!("unexpected reply to PING: {:?}", reply.trim_end()))
        }
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!(
            "the crossnode scenario needs Redis at {url}: {err} (start one, e.g. `redis-server`)"
        )),
        Err(_) => Err(format!(
            "the crossnode scenario needs Redis at {url}: no answer within 2 s"
        )),
    }
}

/// A fresh temporary directory, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<Self, String> {
        let path = std::env::temp_dir().join(tag);
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Self(path))
    }

    fn sqlite_url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// (e) single process vs cross-node. The rows put cross-node in the `ours`
/// column and the single process in the `baseline` column. Errs only when a
/// measurement failed (the rows say which); the table is printed either way.
pub(super) async fn run(options: &Options) -> (Vec<Row>, Result<(), String>) {
    let scenario = format!(
        "(e) cross-node (Redis, 2 processes) vs single process, {SUBSCRIBERS} subscribers, {} writes/s",
        options.rate
    );
    println!("\n## {scenario}\n");
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let tag = format!("cb_loadgen_{}_{nanos}", std::process::id());
    let dir = match TempDir::new(&tag) {
        Ok(dir) => dir,
        Err(err) => return (Vec::new(), Err(err)),
    };
    println!(
        "- database: SQLite files (WAL) in `{}`, one per measurement; channel prefix `{tag}`",
        dir.0.display()
    );

    let single = report("single process (memory layer)", single(options, &dir).await);
    let cross = report(
        "cross-node (writer → A, subscribers on B, Redis)",
        cross(options, &dir, &tag).await,
    );
    let (single, cross) = (single.as_ref(), cross.as_ref());

    let metric = |what: &str| format!("{what} (ours = cross-node, baseline = single)");
    let p99_extra = match (cross.and_then(Outcome::p99_ms), single.and_then(Outcome::p99_ms)) {
        (Some(cross), Some(single)) => Some(cross - single),
        _ => None,
    };
    let rows = vec![
        Row::new(
            &scenario,
            &metric("deliveries/s"),
            cross.and_then(Outcome::deliveries_per_second),
            single.and_then(Outcome::deliveries_per_second),
            0,
        )
        .target(Target::RatioAtLeast(RATIO_TARGET)),
        Row::new(
            &scenario,
            &metric("p50 latency (ms)"),
            cross.and_then(Outcome::p50_ms),
            single.and_then(Outcome::p50_ms),
            2,
        ),
        Row::new(
            &scenario,
            &metric("p99 latency (ms)"),
            cross.and_then(Outcome::p99_ms),
            single.and_then(Outcome::p99_ms),
            2,
        ),
        Row::new(&scenario, "p99 cross-node − single process (ms)", p99_extra, None, 2)
            .target(Target::AtMost(P99_EXTRA_TARGET_MS)),
        Row::new(
            &scenario,
            &metric("deliveries missing"),
            cross.map(|o| o.missing() as f64),
            single.map(|o| o.missing() as f64),
            0,
        ),
        Row::new(
            &scenario,
            &metric("server CPU per delivery (µs, all server processes)"),
            cross.and_then(Outcome::server_cpu_us_per_delivery),
            single.and_then(Outcome::server_cpu_us_per_delivery),
            2,
        ),
    ];
    let status = if single.is_some() && cross.is_some() {
        Ok(())
    } else {
        Err("a crossnode measurement failed (see above)".to_owned())
    };
    (rows, status)
}

/// Prints a measurement's figures (or its failure).
fn report(label: &str, outcome: Result<Outcome, String>) -> Option<Outcome> {
    match outcome {
        Ok(outcome) => {
            fanout::print(label, &outcome);
            Some(outcome)
        }
        Err(err) => {
            println!("- **{label}: failed**: {err}");
            eprintln!("crossnode: {label}: {err}");
            None
        }
    }
}

/// (1): one process, memory layer, SQLite file.
async fn single(options: &Options, dir: &TempDir) -> Result<Outcome, String> {
    let database = dir.sqlite_url("single.db");
    let env = [
        ("CHANNELS_BINDING_DATABASE_URL", database.as_str()),
        ("CHANNELS_BINDING_CHANNEL_LAYER", "memory"),
    ];
    let (server, token, auth_note) = fanout::start_quickstart(options, &env).await?;
    let outcome = fanout::drive(&server, &server, options, SUBSCRIBERS, token.as_deref(), auth_note).await;
    server.stop().await;
    outcome
}

/// (2): two processes on one Redis prefix and one SQLite file; A takes the
/// writes, B the subscribers.
async fn cross(options: &Options, dir: &TempDir, prefix: &str) -> Result<Outcome, String> {
    let database = dir.sqlite_url("cross.db");
    let env = [
        ("CHANNELS_BINDING_DATABASE_URL", database.as_str()),
        ("CHANNELS_BINDING_CHANNEL_LAYER", REDIS_URL),
        ("CHANNELS_BINDING_CHANNEL_PREFIX", prefix),
    ];
    // A on the CPU before the servers' one, B on the servers' one.
    let mut a_options = options.clone();
    a_options.server_cpu = options.server_cpu.map(|cpu| cpu.saturating_sub(1));
    // A first: it creates the schema and the demo rows; B finds them.
    let (a, token, auth_note) = fanout::start_quickstart(&a_options, &env).await?;
    let b: Result<ServerProcess, String> = fanout::start_quickstart(options, &env)
        .await
        .map(|(server, _, _)| server);
    let b = match b {
        Ok(b) => b,
        Err(err) => {
            a.stop().await;
            return Err(format!("node B: {err}"));
        }
    };
    println!(
        "- cross-node: A at {} (CPU {}), B at {} (CPU {})",
        a.addr,
        a_options.server_cpu.map_or_else(|| "any".to_owned(), |c| c.to_string()),
        b.addr,
        options.server_cpu.map_or_else(|| "any".to_owned(), |c| c.to_string()),
    );
    let outcome = fanout::drive(&a, &b, options, SUBSCRIBERS, token.as_deref(), auth_note).await;
    a.stop().await;
    b.stop().await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_redis_is_a_clear_error() {
        // Nothing listens on port 1 here.
        let err = check_redis("redis://127.0.0.1:1").await.err();
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("needs Redis at redis://127.0.0.1:1")),
            "{err:?}"
        );
    }
}
