//! Scenario (c): fan-out. K subscribers follow `auth.User`'s change feed
//! (`{"event":"auth.User.subscribe"}`, each waits for its `subscribed`
//! reply); one writer socket sends `auth.User.update {id: 5763, username:
//! "bench-<n>"}` at a fixed rate. Every push carries its `n` in the
//! username; the writer notes when it sent `n`, so each delivery's latency is
//! push receipt minus write send, in one clock (one process).
//!
//! Figures: deliveries/s (pushes received over the time from the first write
//! to the last push), delivery latency p50/p99, deliveries missing at the end
//! (never silently: a slow consumer is closed with 1013 and counted), and the
//! server's CPU per delivery.
//!
//! Ours is the quickstart app (the real model binding: SQLite write, then the
//! hub's fan-out); the baseline is a raw axum server with a tokio broadcast
//! channel that serializes each write once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{histogram, per, quantile_ms};
use crate::child::{ServerProcess, own_cpu_seconds};
use crate::cli::{Options, ServerKind};
use crate::client::{self, RecvError, Ws};
use crate::jwt;
use crate::report::{Row, Target};

/// Connections opened (and subscribed) at once while setting up.
const CONNECT_CONCURRENCY: usize = 128;

/// The longest the setup of all subscribers may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(180);

/// How long after the last write subscribers keep waiting for pushes.
const GRACE: Duration = Duration::from_secs(5);

/// Time between the end of the setup and the first write.
const LEAD: Duration = Duration::from_millis(500);

/// The target: p99 delivery latency at 1 000 subscribers, in ms.
const P99_TARGET_MS: f64 = 25.0;

/// The secret the driver gives the quickstart for the writer's token. Not a
/// secret: it protects nothing but a throw-away benchmark process.
const JWT_SECRET: &str = "loadgen-benchmark-secret-not-for-production";

const SUBSCRIBE: &str = r#"{"event":"auth.User.subscribe"}"#;

/// What a push's username starts with; the write number follows.
const MARKER: &str = r#""username":"bench-"#;

fn update(n: &str) -> String {
    format!(r#"{{"event":"auth.User.update","data":{{"id":5763,"username":"bench-{n}"}}}}"#)
}

/// What one measurement of one server (or one pair of servers) found.
pub(super) struct Outcome {
    writes: u64,
    write_errors: u64,
    first_write_error: Option<String>,
    expected: u64,
    delivered: u64,
    closed_early: u64,
    first_close: Option<String>,
    latency: Histogram<u64>,
    /// From the first write to the last push received.
    span: Duration,
    /// CPU time of every server process of the measurement, summed.
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    auth_note: &'static str,
}

impl Outcome {
    pub(super) fn deliveries_per_second(&self) -> Option<f64> {
        per(Some(self.delivered as f64), Some(self.span.as_secs_f64()))
    }

    pub(super) fn p50_ms(&self) -> Option<f64> {
        quantile_ms(&self.latency, 0.5)
    }

    pub(super) fn p99_ms(&self) -> Option<f64> {
        quantile_ms(&self.latency, 0.99)
    }

    /// Pushes that never arrived: subscribers × writes − deliveries.
    pub(super) fn missing(&self) -> u64 {
        self.expected - self.delivered.min(self.expected)
    }

    pub(super) fn server_cpu_us_per_delivery(&self) -> Option<f64> {
        per(self.server_cpu.map(|s| s * 1e6), Some(self.delivered as f64))
    }
}

/// (c) fan-out to `subscribers`, ours-quickstart vs baseline-broadcast.
pub(super) async fn run(options: &Options, subscribers: usize) -> Vec<Row> {
    let scenario = format!("(c) fan-out, {subscribers} subscribers, {} writes/s", options.rate);
    println!("\n## {scenario}\n");
    let ours = measure(ServerKind::OursQuickstart, options, subscribers).await;
    let baseline = measure(ServerKind::BaselineBroadcast, options, subscribers).await;
    let (ours, baseline) = (ours.as_ref(), baseline.as_ref());
    let p99 = |o: &Outcome| quantile_ms(&o.latency, 0.99);
    let mut p99_row = Row::new(
        &scenario,
        "p99 latency (ms)",
        ours.and_then(p99),
        baseline.and_then(p99),
        2,
    );
    if subscribers == 1000 {
        p99_row = p99_row.target(Target::AtMost(P99_TARGET_MS));
    }
    vec![
        Row::new(
            &scenario,
            "deliveries/s",
            ours.and_then(Outcome::deliveries_per_second),
            baseline.and_then(Outcome::deliveries_per_second),
            0,
        ),
        Row::new(
            &scenario,
            "p50 latency (ms)",
            ours.and_then(|o| quantile_ms(&o.latency, 0.5)),
            baseline.and_then(|o| quantile_ms(&o.latency, 0.5)),
            2,
        ),
        p99_row,
        Row::new(
            &scenario,
            "deliveries missing",
            ours.map(|o| (o.expected - o.delivered.min(o.expected)) as f64),
            baseline.map(|o| (o.expected - o.delivered.min(o.expected)) as f64),
            0,
        ),
        Row::new(
            &scenario,
            "server CPU per delivery (µs)",
            ours.and_then(Outcome::server_cpu_us_per_delivery),
            baseline.and_then(Outcome::server_cpu_us_per_delivery),
            2,
        ),
    ]
}

/// Starts the server (ours with a JWT secret when the quickstart accepts
/// one, so that the writer is the staff user), measures, stops it.
async fn measure(kind: ServerKind, options: &Options, subscribers: usize) -> Option<Outcome> {
    let started = match kind {
        ServerKind::OursQuickstart => start_quickstart(options, &[]).await,
        _ => ServerProcess::start(kind, options, &[])
            .await
            .map(|server| (server, None, "no authentication")),
    };
    let outcome = match started {
        Ok((server, token, auth_note)) => {
            let outcome = drive(&server, &server, options, subscribers, token.as_deref(), auth_note).await;
            server.stop().await;
            outcome
        }
        Err(err) => Err(err),
    };
    match outcome {
        Ok(outcome) => {
            print(kind.as_str(), &outcome);
            Some(outcome)
        }
        Err(err) => {
            println!("- **{kind}: failed**: {err}");
            eprintln!("fan-out {subscribers}: {kind}: {err}");
            None
        }
    }
}

/// DEMO.md: only staff (or the user themself) may update a user, and the
/// writer proves it is Admin (id 5763) with an HS256 token. A quickstart
/// that does not support `CHANNELS_BINDING_JWT_SECRET` yet refuses to start
/// with it; then the writer connects anonymously. `extra_env` is passed in
/// both cases (database, channel layer).
pub(super) async fn start_quickstart(
    options: &Options,
    extra_env: &[(&str, &str)],
) -> Result<(ServerProcess, Option<String>, &'static str), String> {
    let mut env = vec![("CHANNELS_BINDING_JWT_SECRET", JWT_SECRET)];
    env.extend_from_slice(extra_env);
    match ServerProcess::start(ServerKind::OursQuickstart, options, &env).await {
        Ok(server) => {
            let expires = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) + 3600;
            let token = jwt::hs256(JWT_SECRET.as_bytes(), "5763", expires);
            Ok((server, Some(token), "writer authenticated as Admin (JWT)"))
        }
        Err(err) => {
            println!("- note: the quickstart did not start with a JWT secret ({err}); the writer connects anonymously");
            let server = ServerProcess::start(ServerKind::OursQuickstart, options, extra_env).await?;
            Ok((server, None, "writer anonymous (quickstart without JWT support)"))
        }
    }
}

/// Prints one measurement's absolute figures as a list item.
pub(super) fn print(label: &str, o: &Outcome) {
    let q = |quantile| quantile_ms(&o.latency, quantile).map_or_else(|| "—".to_owned(), |ms| format!("{ms:.2} ms"));
    let pct = |cpu: Option<f64>| {
        cpu.map_or_else(
            || "—".to_owned(),
            |s| format!("{:.0}%", 100.0 * s / o.span.as_secs_f64()),
        )
    };
    println!(
        "- **{label}** ({}): {} writes ({} failed); {} of {} pushes delivered in {:.1} s = **{:.0}/s**; \
         latency p50 {}, p99 {}, max {}; server CPU {} ({} µs per delivery), client CPU {}; \
         subscribers closed early: {}",
        o.auth_note,
        o.writes,
        o.write_errors,
        o.delivered,
        o.expected,
        o.span.as_secs_f64(),
        o.deliveries_per_second().unwrap_or_default(),
        q(0.5),
        q(0.99),
        q(1.0),
        pct(o.server_cpu),
        o.server_cpu_us_per_delivery()
            .map_or_else(|| "—".to_owned(), |us| format!("{us:.2}")),
        pct(o.client_cpu),
        o.closed_early,
    );
    if let Some(err) = &o.first_write_error {
        println!("  - first failed write: `{err}`");
    }
    if let Some(close) = &o.first_close {
        println!("  - first early close: {close}");
    }
}

/// Nanoseconds since `base`, plus one so that zero means "not sent".
fn stamp(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

async fn connect_subscriber(server: &ServerProcess) -> Result<Ws, String> {
    let mut ws = client::connect(server.addr, "/").await?;
    let reply = client::call(&mut ws, SUBSCRIBE).await?;
    if !reply.contains(r#""subscribed""#) {
        return Err(format!("subscribe failed: {reply}"));
    }
    Ok(ws)
}

/// Measures one fan-out: the writer on `writer_server`, the subscribers on
/// `subscriber_server` (the same process for the single-server scenarios;
/// two processes sharing a channel layer for the cross-node one). Server
/// CPU is summed over the distinct processes.
pub(super) async fn drive(
    writer_server: &ServerProcess,
    subscriber_server: &ServerProcess,
    options: &Options,
    subscribers: usize,
    token: Option<&str>,
    auth_note: &'static str,
) -> Result<Outcome, String> {
    // The writer first, with one update outside the measurement: it checks
    // that writes are allowed (before opening thousands of sockets) and
    // warms the database path.
    let path = token.map_or_else(|| "/".to_owned(), |token| format!("/?access_token={token}"));
    let mut writer = client::connect(writer_server.addr, &path).await?;
    let reply = client::call(&mut writer, update("warmup")).await?;
    if reply.contains(r#""error""#) {
        return Err(format!("the writer may not update user 5763: {reply}"));
    }

    let setup = stream::iter(0..subscribers)
        .map(|_| connect_subscriber(subscriber_server))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect::<Vec<Ws>>();
    let sockets = tokio::time::timeout(SETUP_TIMEOUT, setup)
        .await
        .map_err(|_| format!("subscribing {subscribers} sockets took over {SETUP_TIMEOUT:?}"))??;

    let writes = u64::from(options.rate) * options.duration.as_secs();
    let period = Duration::from_secs(1) / options.rate;
    let base = Instant::now();
    let start = base + LEAD;
    let deadline = start + options.duration + GRACE;
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..writes).map(|_| AtomicU64::new(0)).collect());

    let mut readers = JoinSet::new();
    for ws in sockets {
        readers.spawn(subscriber(ws, writes, deadline, base, sent_at.clone()));
    }
    let writer_task = tokio::spawn(writer_loop(
        writer,
        writes,
        start,
        period,
        deadline,
        base,
        sent_at.clone(),
    ));

    tokio::time::sleep_until(start).await;
    let servers: &[&ServerProcess] = if std::ptr::eq(writer_server, subscriber_server) {
        &[writer_server]
    } else {
        &[writer_server, subscriber_server]
    };
    let servers_cpu = || {
        servers
            .iter()
            .map(|server| server.cpu_seconds().ok())
            .sum::<Option<f64>>()
    };
    let server_cpu_start = servers_cpu();
    let client_cpu_start = own_cpu_seconds().ok();

    let mut outcome = Outcome {
        writes: 0,
        write_errors: 0,
        first_write_error: None,
        expected: 0,
        delivered: 0,
        closed_early: 0,
        first_close: None,
        latency: histogram(),
        span: Duration::ZERO,
        server_cpu: None,
        client_cpu: None,
        auth_note,
    };
    let mut last_receipt = 0u64;
    // Every reader stops at `deadline` at the latest.
    let collected = tokio::time::timeout_at(deadline + Duration::from_secs(5), async {
        while let Some(joined) = readers.join_next().await {
            let Ok(reader) = joined else { continue };
            outcome.delivered += reader.received;
            last_receipt = last_receipt.max(reader.last_receipt);
            for micros in reader.latencies {
                let _ = outcome.latency.record(u64::from(micros).clamp(1, 60_000_000));
            }
            if let Some(close) = reader.closed {
                outcome.closed_early += 1;
                outcome.first_close.get_or_insert(close);
            }
        }
    })
    .await;
    outcome.server_cpu = servers_cpu().zip(server_cpu_start).map(|(end, start)| end - start);
    outcome.client_cpu = own_cpu_seconds()
        .ok()
        .zip(client_cpu_start)
        .map(|(end, start)| end - start);
    if collected.is_err() {
        return Err("subscribers did not finish after the deadline".to_owned());
    }
    let written = match tokio::time::timeout(Duration::from_secs(5), writer_task).await {
        Ok(Ok(written)) => written,
        Ok(Err(err)) => return Err(format!("writer task failed: {err}")),
        Err(_) => return Err("writer did not finish".to_owned()),
    };
    outcome.writes = written.sent;
    outcome.write_errors = written.errors;
    outcome.first_write_error = written.first_error;
    outcome.expected = written.sent * subscribers as u64;
    let first_sent = sent_at.first().map_or(0, |at| at.load(Ordering::Relaxed));
    outcome.span = Duration::from_nanos(last_receipt.saturating_sub(first_sent));
    Ok(outcome)
}

/// What the writer did.
struct Written {
    sent: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Sends `writes` updates at `start + n * period`, and reads their replies.
async fn writer_loop(
    ws: Ws,
    writes: u64,
    start: Instant,
    period: Duration,
    deadline: Instant,
    base: Instant,
    sent_at: Arc<Vec<AtomicU64>>,
) -> Written {
    let (mut sink, mut replies) = ws.split();
    let sender = async {
        let mut sent = 0u64;
        for n in 0..writes {
            let Ok(step) = u32::try_from(n) else { break };
            tokio::time::sleep_until(start + period * step).await;
            if let Some(at) = sent_at.get(n as usize) {
                at.store(stamp(base), Ordering::Relaxed);
            }
            let send = sink.send(Message::Text(update(&n.to_string()).into()));
            match tokio::time::timeout(client::IO_TIMEOUT, send).await {
                Ok(Ok(())) => sent += 1,
                _ => break,
            }
        }
        sent
    };
    let receiver = async {
        let mut replies_seen = 0u64;
        let mut errors = 0u64;
        let mut first_error = None;
        while replies_seen < writes {
            match tokio::time::timeout_at(deadline, replies.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    replies_seen += 1;
                    if text.contains(r#""error""#) {
                        errors += 1;
                        first_error.get_or_insert_with(|| text.to_string());
                    }
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) | Err(_) => break,
            }
        }
        (replies_seen, errors, first_error)
    };
    let (sent, (replies_seen, errors, first_error)) = tokio::join!(sender, receiver);
    Written {
        sent,
        // A write whose reply never came counts as failed.
        errors: errors + sent.saturating_sub(replies_seen),
        first_error,
    }
}

/// What one subscriber saw.
struct Reader {
    received: u64,
    latencies: Vec<u32>,
    last_receipt: u64,
    closed: Option<String>,
}

/// Reads pushes until it has one per write, or the deadline.
async fn subscriber(mut ws: Ws, writes: u64, deadline: Instant, base: Instant, sent_at: Arc<Vec<AtomicU64>>) -> Reader {
    let mut reader = Reader {
        received: 0,
        latencies: Vec::with_capacity(usize::try_from(writes).unwrap_or(0)),
        last_receipt: 0,
        closed: None,
    };
    while reader.received < writes {
        let text = match client::recv_until(&mut ws, deadline).await {
            Ok(text) => text,
            Err(RecvError::Timeout) => break,
            Err(err) => {
                reader.closed = Some(err.to_string());
                break;
            }
        };
        let now = stamp(base);
        // Only numbered pushes count (the warm-up write predates the subscription).
        let Some(n) = write_number(&text) else { continue };
        let Some(sent) = sent_at.get(n).map(|at| at.load(Ordering::Relaxed)) else {
            continue;
        };
        if sent == 0 {
            continue;
        }
        reader.received += 1;
        reader.last_receipt = now;
        let micros = now.saturating_sub(sent) / 1000;
        reader.latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
    }
    reader
}

/// The `n` of a push whose username is `bench-<n>`.
fn write_number(text: &str) -> Option<usize> {
    let start = text.find(MARKER)? + MARKER.len();
    let digits = &text[start..];
    let end = digits.find('"')?;
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_write_number() {
        let push = r#"{"event":"auth.User.updated#5763","data":{"id":5763,"username":"bench-42","email":"a"},"seq":3}"#;
        assert_eq!(write_number(push), Some(42));
        assert_eq!(write_number(r#"{"data":{"username":"bench-warmup"}}"#), None);
        assert_eq!(write_number(r#"{"data":{"username":"Admin"}}"#), None);
    }
}
