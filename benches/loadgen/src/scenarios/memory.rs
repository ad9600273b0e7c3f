//! Scenario (d): memory per idle socket. The server's resident memory
//! (`VmRSS` of its process) is read before and after opening N WebSocket
//! connections that then sit idle (handshake done, nothing sent; 2 s to
//! settle); the difference divided by N is the cost of one idle socket.
//!
//! A second reading after one ping round trip on every socket shows what a
//! socket costs once its buffers have been used, which is what a real
//! client's socket looks like.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};

use crate::child::ServerProcess;
use crate::cli::{Options, ServerKind};
use crate::client::{self, Ws};
use crate::report::{Row, Target};

/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 256;

/// The longest opening all sockets may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(180);

/// Time for the server to settle before each reading.
const SETTLE: Duration = Duration::from_secs(2);

/// The target, in KiB per idle socket.
const TARGET_KIB: f64 = 16.0;

const PING: &str = r#"{"event":"simple_reflexion.ping","data":{}}"#;

struct Outcome {
    sockets: usize,
    before_kib: u64,
    idle_kib: u64,
    active_kib: u64,
}

impl Outcome {
    fn idle_per_socket(&self) -> f64 {
        self.idle_kib.saturating_sub(self.before_kib) as f64 / self.sockets as f64
    }

    fn active_per_socket(&self) -> f64 {
        self.active_kib.saturating_sub(self.before_kib) as f64 / self.sockets as f64
    }
}

/// (d) ours-ping vs baseline-echo.
pub(super) async fn run(options: &Options) -> Vec<Row> {
    let scenario = format!("(d) memory, {} sockets", options.idle_sockets);
    println!("\n## {scenario}\n");
    let ours = measure(ServerKind::OursPing, options).await;
    let baseline = measure(ServerKind::BaselineEcho, options).await;
    let (ours, baseline) = (ours.as_ref(), baseline.as_ref());
    vec![
        Row::new(
            &scenario,
            "KiB per idle socket",
            ours.map(Outcome::idle_per_socket),
            baseline.map(Outcome::idle_per_socket),
            1,
        )
        .target(Target::AtMost(TARGET_KIB)),
        Row::new(
            &scenario,
            "KiB per socket after one round trip",
            ours.map(Outcome::active_per_socket),
            baseline.map(Outcome::active_per_socket),
            1,
        ),
    ]
}

async fn measure(kind: ServerKind, options: &Options) -> Option<Outcome> {
    let outcome = match ServerProcess::start(kind, options, &[]).await {
        Ok(server) => {
            let outcome = drive(&server, options.idle_sockets).await;
            server.stop().await;
            outcome
        }
        Err(err) => Err(err),
    };
    match outcome {
        Ok(o) => {
            println!(
                "- **{kind}**: RSS {} KiB before, {} KiB with {} idle sockets (**{:.1} KiB each**), \
                 {} KiB after one round trip on each ({:.1} KiB each)",
                o.before_kib,
                o.idle_kib,
                o.sockets,
                o.idle_per_socket(),
                o.active_kib,
                o.active_per_socket(),
            );
            Some(o)
        }
        Err(err) => {
            println!("- **{kind}: failed**: {err}");
            eprintln!("memory: {kind}: {err}");
            None
        }
    }
}

async fn drive(server: &ServerProcess, sockets: usize) -> Result<Outcome, String> {
    // Let the process finish starting (runtime threads, first allocations).
    tokio::time::sleep(SETTLE).await;
    let before_kib = server.rss_kib()?;

    let addr = server.addr;
    let open = stream::iter(0..sockets)
        .map(|_| client::connect(addr, "/"))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect::<Vec<Ws>>();
    let mut open = tokio::time::timeout(SETUP_TIMEOUT, open)
        .await
        .map_err(|_| format!("opening {sockets} sockets took over {SETUP_TIMEOUT:?}"))??;
    tokio::time::sleep(SETTLE).await;
    let idle_kib = server.rss_kib()?;

    let answered = stream::iter(open.iter_mut())
        .map(|ws| client::call(ws, PING))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect::<Vec<_>>();
    let answered = tokio::time::timeout(SETUP_TIMEOUT, answered)
        .await
        .map_err(|_| format!("one ping on each of {sockets} sockets took over {SETUP_TIMEOUT:?}"))??;
    if let Some(bad) = answered.iter().find(|reply| !reply.contains(r#""pong":true"#)) {
        return Err(format!("unexpected ping reply: {bad}"));
    }
    tokio::time::sleep(SETTLE).await;
    let active_kib = server.rss_kib()?;
    // Closing 10 000 sockets at once is the server's business after the
    // reading; it is stopped right after.
    drop(open);
    Ok(Outcome {
        sockets,
        before_kib,
        idle_kib,
        active_kib,
    })
}
