//! The scenarios: each starts ours and the baseline as child processes, one
//! after the other, measures both the same way, prints the absolute figures,
//! and adds rows (ours, baseline, ratio) to the closing table.

mod crossnode;
mod fanout;
mod memory;
mod roundtrip;

use std::process::ExitCode;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::cli::{Options, Scenario};
use crate::report::{self, Row};

/// Runs the scenarios on a tokio runtime with the client's worker count,
/// then prints the table.
pub(crate) fn run(scenarios: &[Scenario], options: &Options) -> ExitCode {
    let mut options = options.clone();
    // Counted before pinning: afterwards this process sees only its own CPU.
    let cores = cores();
    // On two or more CPUs, the client takes CPU 0 and every server the last
    // one: each side gets a whole core, and the split does not drift with
    // the scheduler's mood from one trial to the next.
    let pinning = if !options.pin {
        "off (--no-pin)".to_owned()
    } else if cores < 2 {
        "off (one CPU)".to_owned()
    } else {
        match crate::child::pin_self(0) {
            Ok(()) => {
                options.server_cpu = Some(cores - 1);
                format!("client on CPU 0, servers on CPU {}", cores - 1)
            }
            Err(err) => format!("off ({err})"),
        }
    };
    let options = &options;
    let crossnode = scenarios.contains(&Scenario::Crossnode);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // A manual benchmark: without Redis, say so at once instead of after
    // the other scenarios.
    if crossnode && let Err(err) = runtime.block_on(crossnode::check_redis(crossnode::REDIS_URL)) {
        eprintln!("error: {err}");
        runtime.shutdown_timeout(Duration::from_secs(1));
        return ExitCode::FAILURE;
    }
    let (rows, failures) = runtime.block_on(run_all(scenarios, options, cores, &pinning));
    runtime.shutdown_timeout(Duration::from_secs(1));
    println!("\n## Summary\n");
    println!("{}", report::table(&rows));
    println!(
        "Ratios are ours/baseline, measured side by side in this run. The load generator \
         (the client) runs on the same {} cores as the servers, over loopback: \
         absolute figures are bounded by the machine, not by the server alone.",
        cores
    );
    if crossnode {
        println!(
            "In the (e) rows, \"ours\" is cross-node (two processes sharing Redis at {}, writes to A, \
             subscribers on B) and \"baseline\" is one process on the memory layer; both on a SQLite file.",
            crossnode::REDIS_URL
        );
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for failure in &failures {
            eprintln!("error: {failure}");
        }
        ExitCode::FAILURE
    }
}

/// Runs the scenarios; returns the rows and the failures that must make the
/// run exit non-zero (only the cross-node scenario reports any).
async fn run_all(scenarios: &[Scenario], options: &Options, cores: usize, pinning: &str) -> (Vec<Row>, Vec<String>) {
    println!("# channels-binding load generator\n");
    println!(
        "Machine: {} cores. Each server is a child process with {} tokio worker(s); \
         the client (this process, {} worker(s)) shares the machine and talks over loopback. \
         CPU pinning: {pinning}. Measurements: {} s each; round-trip scenarios: {} alternating \
         trials per side, median reported.",
        cores,
        options.server_threads,
        options.client_threads,
        options.duration.as_secs(),
        options.trials,
    );
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for scenario in scenarios {
        match scenario {
            Scenario::Ping => rows.extend(roundtrip::ping(options).await),
            Scenario::Retrieve => rows.extend(roundtrip::retrieve(options).await),
            Scenario::Fanout => {
                for &subscribers in &options.subscribers {
                    rows.extend(fanout::run(options, subscribers).await);
                }
            }
            Scenario::Memory => rows.extend(memory::run(options).await),
            Scenario::Crossnode => {
                let (crossnode_rows, status) = crossnode::run(options).await;
                rows.extend(crossnode_rows);
                failures.extend(status.err());
            }
        }
    }
    (rows, failures)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A latency histogram in microseconds, from 1 µs to 60 s at 3 significant
/// figures.
pub(crate) fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 60_000_000, 3) {
        Ok(histogram) => histogram,
        Err(err) => unreachable!("constant histogram bounds are valid: {err}"),
    }
}

/// A quantile of a microsecond histogram, in milliseconds.
pub(crate) fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> Option<f64> {
    if histogram.is_empty() {
        return None;
    }
    Some(histogram.value_at_quantile(quantile) as f64 / 1000.0)
}

/// `a / b`, or `None` when either is missing or `b` is zero.
pub(crate) fn per(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}
