//! `loadgen serve <kind>`: the servers under test, each run as its own child
//! process so that its memory (`VmRSS`) and CPU time can be read from
//! `/proc/<pid>` without the load generator's own sockets in the figures.
//!
//! Contract (the quickstart's, DEMO.md): the first stdout line is
//! `listening on http://ADDR:PORT`; the server stops on SIGTERM, Ctrl-C, or
//! when its stdin closes (so a crashed driver never leaves servers behind).

mod baseline;
mod ours;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::cli::ServerKind;

/// The error type of server start-up.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs one server until it is told to stop.
pub(crate) fn run(kind: ServerKind, bind: SocketAddr, threads: usize) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(serve(kind, bind));
    // The stdin watcher sits in a blocking read on tokio's blocking pool;
    // do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {kind}: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(kind: ServerKind, bind: SocketAddr) -> Result<(), BoxError> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    // Build what may fail (database, demo data) before announcing the address,
    // so that "listening" means "ready".
    match kind {
        ServerKind::OursPing => ours::ping(listener, addr).await,
        ServerKind::OursQuickstart => ours::quickstart(listener, addr).await,
        ServerKind::BaselineEcho => baseline::echo(listener, addr).await,
        ServerKind::BaselineRetrieve => baseline::retrieve(listener, addr).await,
        ServerKind::BaselineBroadcast => baseline::broadcast(listener, addr).await,
    }
}

/// Prints the `listening on` line and makes sure it leaves the process now:
/// the driver waits for it.
fn announce(addr: SocketAddr) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on http://{addr}");
    let _ = stdout.flush();
}

/// Completes on SIGTERM, Ctrl-C, or end of stdin.
async fn stop_requested() {
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut scratch = [0u8; 64];
        // Each read blocks until input or end of file; the driver never
        // writes, so this returns once, when the pipe closes.
        while let Ok(n) = stdin.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = stdin_closed => {}
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
