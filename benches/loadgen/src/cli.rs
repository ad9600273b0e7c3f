//! Command-line parsing, by hand: a handful of flags does not justify a
//! parser dependency, and every flag has a bounded default.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The usage text printed for `--help` and on a parse error.
pub(crate) const USAGE: &str = "\
loadgen: channels-binding against hand-written baselines, side by side, in one run.

USAGE:
    loadgen <all|ping|retrieve|fanout|memory|crossnode> [OPTIONS]
    loadgen serve <KIND> [--bind ADDR] [--threads N]

SCENARIOS:
    ping       round trips/s, `simple_reflexion.ping`, ours-ping vs baseline-echo
    retrieve   round trips/s, `auth.User.retrieve {id}`, ours-quickstart vs baseline-retrieve
    fanout     push deliveries/s and latency to K subscribers, ours-quickstart vs baseline-broadcast
    memory     server RSS per idle WebSocket, ours-ping vs baseline-echo
    crossnode  fan-out to 1000 subscribers: ours-quickstart as two processes sharing Redis
               (127.0.0.1:6379; writes to A, subscribers on B) vs one process; needs Redis
    all        every scenario above, then one table

OPTIONS (scenarios):
    --duration SECS        length of each measurement (default 10, max 120)
    --sockets N            sockets of the round-trip scenarios (default 100)
    --subscribers LIST     fan-out subscriber counts, comma-separated (default 1000,10000)
    --rate N               fan-out writes per second (default 30)
    --idle-sockets N       sockets of the memory scenario (default 10000)
    --trials N             alternating ours/baseline trials of the round-trip scenarios;
                           the median is reported (default 3)
    --server-threads N     tokio workers of each server process (default 1)
    --client-threads N     tokio workers of the load generator (default 1)
    --no-pin               do not pin the servers and the load generator to separate
                           CPUs (default: servers on the last CPU, the client on CPU 0)

KINDS (serve):
    ours-ping, ours-quickstart, baseline-echo, baseline-retrieve, baseline-broadcast
    A server prints `listening on http://ADDR:PORT` as its first stdout line and
    stops on SIGTERM, Ctrl-C or when its stdin closes.
";

/// One server implementation the load generator can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerKind {
    /// channels-binding's `WebSocket` over an `EventRouter` with `simple_reflexion.ping`.
    OursPing,
    /// The quickstart app of `examples/quickstart` (DEMO.md).
    OursQuickstart,
    /// Raw axum WebSocket: parse to `serde_json::Value`, answer a pong.
    BaselineEcho,
    /// Raw axum WebSocket: the same `SELECT` as `auth.User.retrieve` on SQLite.
    BaselineRetrieve,
    /// Raw axum WebSocket with a tokio broadcast channel for pushes.
    BaselineBroadcast,
}

impl ServerKind {
    /// Every kind, for parsing and help.
    const ALL: [ServerKind; 5] = [
        ServerKind::OursPing,
        ServerKind::OursQuickstart,
        ServerKind::BaselineEcho,
        ServerKind::BaselineRetrieve,
        ServerKind::BaselineBroadcast,
    ];

    /// The name used on the command line.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            ServerKind::OursPing => "ours-ping",
            ServerKind::OursQuickstart => "ours-quickstart",
            ServerKind::BaselineEcho => "baseline-echo",
            ServerKind::BaselineRetrieve => "baseline-retrieve",
            ServerKind::BaselineBroadcast => "baseline-broadcast",
        }
    }

    fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| format!("unknown server kind `{name}`"))
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A measurement scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// (a) ping round trips.
    Ping,
    /// (b) retrieve round trips.
    Retrieve,
    /// (c) fan-out deliveries and latency.
    Fanout,
    /// (d) memory per idle socket.
    Memory,
    /// (e) fan-out across two processes sharing Redis vs one process.
    Crossnode,
}

/// Knobs of the scenarios. Every one is bounded, so a run always ends.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Length of each measurement window.
    pub(crate) duration: Duration,
    /// Sockets of the round-trip scenarios.
    pub(crate) sockets: usize,
    /// Subscriber counts of the fan-out scenario.
    pub(crate) subscribers: Vec<usize>,
    /// Fan-out writes per second.
    pub(crate) rate: u32,
    /// Sockets of the memory scenario.
    pub(crate) idle_sockets: usize,
    /// Tokio workers per server process.
    pub(crate) server_threads: usize,
    /// Tokio workers of the driver.
    pub(crate) client_threads: usize,
    /// Alternating trials of the round-trip scenarios.
    pub(crate) trials: usize,
    /// Pin servers and client to separate CPUs (with `taskset`).
    pub(crate) pin: bool,
    /// The CPU servers are pinned to, once pinning has succeeded.
    pub(crate) server_cpu: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(10),
            sockets: 100,
            subscribers: vec![1000, 10_000],
            rate: 30,
            idle_sockets: 10_000,
            server_threads: 1,
            client_threads: 1,
            trials: 3,
            pin: true,
            server_cpu: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    /// Print the usage.
    Help,
    /// Run scenarios and print the table.
    Run(Vec<Scenario>, Options),
    /// Be a server (a child process of a run).
    Serve {
        /// Which server.
        kind: ServerKind,
        /// Where to listen.
        bind: SocketAddr,
        /// Tokio workers.
        threads: usize,
    },
}

/// The most sockets any scenario may open: the per-process descriptor limit
/// of this machine is 20 000, and the driver needs a few for itself.
const MAX_SOCKETS: usize = 19_000;

fn number<T>(flag: &str, value: Option<String>, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    let parsed: T = value
        .parse()
        .map_err(|_| format!("{flag}: `{value}` is not a number"))?;
    if parsed > max {
        return Err(format!("{flag}: {parsed} is over the maximum {max}"));
    }
    Ok(parsed)
}

fn at_least_one<T: PartialOrd + From<u8>>(flag: &str, value: T) -> Result<T, String> {
    if value < T::from(1) {
        return Err(format!("{flag} must be at least 1"));
    }
    Ok(value)
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Ok(Command::Help);
    };
    let scenarios = match first.as_str() {
        "-h" | "--help" | "help" => return Ok(Command::Help),
        "serve" => return parse_serve(args),
        "all" => vec![
            Scenario::Ping,
            Scenario::Retrieve,
            Scenario::Fanout,
            Scenario::Memory,
            Scenario::Crossnode,
        ],
        "ping" => vec![Scenario::Ping],
        "retrieve" => vec![Scenario::Retrieve],
        "fanout" => vec![Scenario::Fanout],
        "memory" => vec![Scenario::Memory],
        "crossnode" => vec![Scenario::Crossnode],
        other => return Err(format!("unknown command `{other}`")),
    };
    let mut options = Options::default();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--duration" => {
                let secs = at_least_one(&flag, number::<u64>(&flag, args.next(), 120)?)?;
                options.duration = Duration::from_secs(secs);
            }
            "--sockets" => options.sockets = at_least_one(&flag, number(&flag, args.next(), MAX_SOCKETS)?)?,
            "--subscribers" => {
                let list = args.next().ok_or("--subscribers needs a value")?;
                options.subscribers = list
                    .split(',')
                    .map(|part| {
                        number(&flag, Some(part.trim().to_owned()), MAX_SOCKETS).and_then(|n| at_least_one(&flag, n))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--rate" => options.rate = at_least_one(&flag, number(&flag, args.next(), 1000)?)?,
            "--idle-sockets" => options.idle_sockets = at_least_one(&flag, number(&flag, args.next(), MAX_SOCKETS)?)?,
            "--server-threads" => options.server_threads = at_least_one(&flag, number(&flag, args.next(), 64)?)?,
            "--client-threads" => options.client_threads = at_least_one(&flag, number(&flag, args.next(), 64)?)?,
            "--trials" => options.trials = at_least_one(&flag, number(&flag, args.next(), 20)?)?,
            "--no-pin" => options.pin = false,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(Command::Run(scenarios, options))
}

fn parse_serve(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let kind = ServerKind::parse(&args.next().ok_or("serve needs a server kind")?)?;
    let mut bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut threads = 1;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--bind" => {
                let value = args.next().ok_or("--bind needs an address")?;
                bind = value
                    .parse()
                    .map_err(|_| format!("--bind: `{value}` is not ADDR:PORT"))?;
            }
            "--threads" => threads = at_least_one(&flag, number(&flag, args.next(), 64)?)?,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(Command::Serve { kind, bind, threads })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_scenarios_and_bounds() {
        match parse(args("fanout --subscribers 10,20 --duration 3")) {
            Ok(Command::Run(scenarios, options)) => {
                assert_eq!(scenarios, vec![Scenario::Fanout]);
                assert_eq!(options.subscribers, vec![10, 20]);
                assert_eq!(options.duration, Duration::from_secs(3));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(args("ping --duration 100000")).is_err());
        assert!(parse(args("ping --sockets 0")).is_err());
        assert!(parse(args("memory --idle-sockets 50000")).is_err());
    }

    #[test]
    fn parses_serve() {
        match parse(args("serve baseline-echo --bind 127.0.0.1:0 --threads 2")) {
            Ok(Command::Serve { kind, threads, .. }) => {
                assert_eq!(kind, ServerKind::BaselineEcho);
                assert_eq!(threads, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(args("serve nope")).is_err());
    }
}
