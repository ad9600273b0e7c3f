//! Scenarios (a) and (b): closed-loop round trips. N sockets, each with
//! exactly one request in flight: send, wait for the reply, send the next.
//! Throughput is replies per second over the window; latency is each
//! request's send-to-reply time.
//!
//! A warm-up second precedes the window (connections settle, caches fill,
//! the SQLite statement is prepared). CPU time of the server process over the
//! window is read from `/proc`, so "server CPU per round trip" shows the
//! server's own cost even when the shared machine, not the server, caps
//! throughput.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{histogram, per, quantile_ms};
use crate::child::{ServerProcess, own_cpu_seconds};
use crate::cli::{Options, ServerKind};
use crate::client::{self, IO_TIMEOUT, Ws};
use crate::report::{Row, Target};

/// Time before the window opens.
const WARMUP: Duration = Duration::from_secs(1);

/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 64;

/// What one closed loop sends and expects.
struct Workload {
    /// The frame for the `i`-th request of a socket.
    frame: fn(u64) -> String,
    /// Every successful reply starts with this (same bytes shape on both sides).
    reply_prefix: &'static str,
}

/// What one measurement of one server found.
struct Outcome {
    round_trips: u64,
    bad_replies: u64,
    first_bad_reply: Option<String>,
    latency: Histogram<u64>,
    window: Duration,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    sample: String,
}

impl Outcome {
    fn per_second(&self) -> f64 {
        self.round_trips as f64 / self.window.as_secs_f64()
    }

    fn server_cpu_us_per_round_trip(&self) -> Option<f64> {
        per(self.server_cpu.map(|s| s * 1e6), Some(self.round_trips as f64))
    }
}

const PING: &str = r#"{"event":"simple_reflexion.ping","data":{}}"#;

/// (a) `simple_reflexion.ping`, ours-ping vs baseline-echo. Target ≥ 0.8×.
pub(super) async fn ping(options: &Options) -> Vec<Row> {
    let workload = Workload {
        frame: |_| PING.to_owned(),
        reply_prefix: r#"{"event":"simple_reflexion.ping","data":{"pong":true,"#,
    };
    let scenario = format!("(a) ping, {} sockets", options.sockets);
    compare(
        &scenario,
        &workload,
        options,
        ServerKind::OursPing,
        ServerKind::BaselineEcho,
        0.8,
    )
    .await
}

/// The id of the `i`-th retrieve: every demo user in turn (1..=101, then 5763).
fn user_id(i: u64) -> u64 {
    match i % 102 {
        101 => 5763,
        n => n + 1,
    }
}

/// (b) `auth.User.retrieve {id}`, ours-quickstart vs baseline-retrieve. Target ≥ 0.9×.
pub(super) async fn retrieve(options: &Options) -> Vec<Row> {
    let workload = Workload {
        frame: |i| format!(r#"{{"event":"auth.User.retrieve","data":{{"id":{}}}}}"#, user_id(i)),
        reply_prefix: r#"{"event":"auth.User.retrieve","data":{"id":"#,
    };
    let scenario = format!("(b) retrieve, {} sockets", options.sockets);
    compare(
        &scenario,
        &workload,
        options,
        ServerKind::OursQuickstart,
        ServerKind::BaselineRetrieve,
        0.9,
    )
    .await
}

async fn compare(
    scenario: &str,
    workload: &Workload,
    options: &Options,
    ours_kind: ServerKind,
    baseline_kind: ServerKind,
    target: f64,
) -> Vec<Row> {
    println!("\n## {scenario}\n");
    let mut ours_trials = Vec::new();
    let mut baseline_trials = Vec::new();
    for trial in 1..=options.trials {
        // Alternate which side goes first, so neither always meets a
        // machine that just warmed up (or just got busy).
        let order = if trial % 2 == 1 {
            [ours_kind, baseline_kind]
        } else {
            [baseline_kind, ours_kind]
        };
        for kind in order {
            if let Some(outcome) = measure(scenario, kind, workload, options, trial).await {
                if kind == ours_kind {
                    ours_trials.push(outcome);
                } else {
                    baseline_trials.push(outcome);
                }
            }
        }
    }
    let ours = median(ours_trials);
    let baseline = median(baseline_trials);
    let (ours, baseline) = (ours.as_ref(), baseline.as_ref());
    vec![
        Row::new(
            scenario,
            "round trips/s",
            ours.map(Outcome::per_second),
            baseline.map(Outcome::per_second),
            0,
        )
        .target(Target::RatioAtLeast(target)),
        Row::new(
            scenario,
            "p99 latency (ms)",
            ours.and_then(|o| quantile_ms(&o.latency, 0.99)),
            baseline.and_then(|o| quantile_ms(&o.latency, 0.99)),
            2,
        ),
        Row::new(
            scenario,
            "server CPU per round trip (µs)",
            ours.and_then(Outcome::server_cpu_us_per_round_trip),
            baseline.and_then(Outcome::server_cpu_us_per_round_trip),
            1,
        ),
    ]
}

/// The trial with the median throughput (the lower middle one for an even
/// count): robust to one trial that met a busy machine.
fn median(mut trials: Vec<Outcome>) -> Option<Outcome> {
    trials.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    let middle = trials.len().saturating_sub(1) / 2;
    trials.into_iter().nth(middle)
}

/// Starts the server, measures, stops the server, prints the figures.
async fn measure(
    scenario: &str,
    kind: ServerKind,
    workload: &Workload,
    options: &Options,
    trial: usize,
) -> Option<Outcome> {
    let outcome = match ServerProcess::start(kind, options, &[]).await {
        Ok(server) => {
            let outcome = drive(&server, workload, options).await;
            server.stop().await;
            outcome
        }
        Err(err) => Err(err),
    };
    match outcome {
        Ok(outcome) => {
            print(kind, trial, &outcome);
            Some(outcome)
        }
        Err(err) => {
            println!("- trial {trial}, **{kind}: failed**: {err}");
            eprintln!("{scenario}: {kind}: {err}");
            None
        }
    }
}

fn print(kind: ServerKind, trial: usize, o: &Outcome) {
    let q = |quantile| quantile_ms(&o.latency, quantile).map_or_else(|| "—".to_owned(), |ms| format!("{ms:.2} ms"));
    let pct = |cpu: Option<f64>| {
        cpu.map_or_else(
            || "—".to_owned(),
            |s| format!("{:.0}%", 100.0 * s / o.window.as_secs_f64()),
        )
    };
    println!(
        "- trial {trial}, **{kind}**: {} round trips in {:.1} s = **{:.0}/s**; latency p50 {}, p99 {}, max {}; \
         server CPU {} ({} µs per round trip), client CPU {}; unexpected replies: {}",
        o.round_trips,
        o.window.as_secs_f64(),
        o.per_second(),
        q(0.5),
        q(0.99),
        q(1.0),
        pct(o.server_cpu),
        o.server_cpu_us_per_round_trip()
            .map_or_else(|| "—".to_owned(), |us| format!("{us:.1}")),
        pct(o.client_cpu),
        o.bad_replies,
    );
    println!("  - sample reply ({} bytes): `{}`", o.sample.len(), o.sample);
    if let Some(bad) = &o.first_bad_reply {
        println!("  - first unexpected reply: `{bad}`");
    }
}

/// What one socket's loop found.
struct SocketOutcome {
    round_trips: u64,
    bad_replies: u64,
    first_bad_reply: Option<String>,
    latency: Histogram<u64>,
}

async fn drive(server: &ServerProcess, workload: &Workload, options: &Options) -> Result<Outcome, String> {
    let addr = server.addr;
    let mut sockets: Vec<Ws> = stream::iter(0..options.sockets)
        .map(|_| client::connect(addr, "/"))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;

    // One call first, to show (and check) what the server answers.
    let first = sockets.first_mut().ok_or("no socket")?;
    let sample = client::call(first, (workload.frame)(0)).await?.to_string();
    if !sample.starts_with(workload.reply_prefix) {
        return Err(format!("unexpected reply to the first request: {sample}"));
    }

    let window_start = Instant::now() + WARMUP;
    let window_end = window_start + options.duration;
    let mut tasks = JoinSet::new();
    for (n, ws) in sockets.into_iter().enumerate() {
        let frame = workload.frame;
        let prefix = workload.reply_prefix;
        // Sockets start at different points of the id cycle.
        let first_request = n as u64 * 7;
        tasks.spawn(socket_loop(ws, frame, prefix, first_request, window_start, window_end));
    }

    tokio::time::sleep_until(window_start).await;
    let server_cpu_start = server.cpu_seconds().ok();
    let client_cpu_start = own_cpu_seconds().ok();
    tokio::time::sleep_until(window_end).await;
    let server_cpu = server
        .cpu_seconds()
        .ok()
        .zip(server_cpu_start)
        .map(|(end, start)| end - start);
    let client_cpu = own_cpu_seconds()
        .ok()
        .zip(client_cpu_start)
        .map(|(end, start)| end - start);

    let mut outcome = Outcome {
        round_trips: 0,
        bad_replies: 0,
        first_bad_reply: None,
        latency: histogram(),
        window: options.duration,
        server_cpu,
        client_cpu,
        sample,
    };
    // Every socket stops sending at the window's end; its last call is
    // bounded by IO_TIMEOUT.
    let joined = tokio::time::timeout(IO_TIMEOUT + Duration::from_secs(5), async {
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(socket)) => {
                    outcome.round_trips += socket.round_trips;
                    outcome.bad_replies += socket.bad_replies;
                    if outcome.first_bad_reply.is_none() {
                        outcome.first_bad_reply = socket.first_bad_reply;
                    }
                    let _ = outcome.latency.add(&socket.latency);
                }
                Ok(Err(err)) => {
                    first_error.get_or_insert(err);
                }
                Err(err) => {
                    first_error.get_or_insert(format!("socket task failed: {err}"));
                }
            }
        }
        first_error
    })
    .await;
    match joined {
        Ok(None) => Ok(outcome),
        Ok(Some(err)) => Err(err),
        Err(_) => Err("sockets did not finish after the window".to_owned()),
    }
}

async fn socket_loop(
    mut ws: Ws,
    frame: fn(u64) -> String,
    prefix: &'static str,
    mut request: u64,
    window_start: Instant,
    window_end: Instant,
) -> Result<SocketOutcome, String> {
    let mut outcome = SocketOutcome {
        round_trips: 0,
        bad_replies: 0,
        first_bad_reply: None,
        latency: histogram(),
    };
    loop {
        let sent = Instant::now();
        if sent >= window_end {
            break;
        }
        let reply = client::call(&mut ws, frame(request)).await?;
        request += 1;
        if sent < window_start {
            continue;
        }
        outcome.round_trips += 1;
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = outcome.latency.record(micros.min(60_000_000));
        if !reply.starts_with(prefix) {
            outcome.bad_replies += 1;
            outcome.first_bad_reply.get_or_insert_with(|| reply.to_string());
        }
    }
    Ok(outcome)
}
