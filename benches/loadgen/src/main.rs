//! `loadgen`: measures channels-binding against hand-written baselines, side
//! by side, in one run, and prints a markdown table of ratios.
//!
//! ```text
//! cargo run --release -p channels-binding-loadgen -- all
//! cargo run --release -p channels-binding-loadgen -- ping|retrieve|fanout|memory|crossnode
//! ```
//!
//! One binary plays both parts. `loadgen serve <kind>` is a server under
//! test; the scenarios start each server as a child process of the same
//! binary (first stdout line `listening on http://ADDR:PORT`, as the
//! quickstart prints), drive it over loopback, and read its memory and CPU
//! time from `/proc/<pid>`. Ours and the baseline of a scenario run one after
//! the other, never at once, so they see the same machine.
//!
//! See `benches/README.md` for what each figure means.

mod child;
mod cli;
mod client;
mod jwt;
mod report;
mod scenarios;
mod servers;

/// The quickstart app exactly as a newcomer runs it (DEMO.md); compiled in
/// so that `ours-quickstart` measures the real thing.
#[path = "../../../examples/quickstart/app.rs"]
mod quickstart;

/// The demo's schema and rows (the quickstart's own DDL and inserts), so
/// that `baseline-retrieve` reads the same table with the same data and the
/// two can never drift apart. The quickstart keeps its copy private, hence a
/// second, independent load of the same file: that is the point here.
#[path = "../../../examples/quickstart/demo_data.rs"]
#[allow(unreachable_pub)] // written as a module of the quickstart, public there
#[allow(clippy::duplicate_mod)]
mod demo_data;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(cli::Command::Run(scenarios, options)) => scenarios::run(&scenarios, &options),
        Ok(cli::Command::Serve { kind, bind, threads }) => servers::run(kind, bind, threads),
        Err(err) => {
            eprintln!("error: {err}\n\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}
