//! The `ringstore bench` and `ringstore bench staleness` command lines: flags, their
//! translation into [`BenchOptions`] / [`StalenessOptions`], the connection to the cluster, and
//! printing the report (table or JSON, and optionally a JSON file).
//!
//! The cluster is reached with the native client ([`NativeClient`]): from a `cluster up`
//! directory (`--dir`, the default) or from a node list with the client's TLS files
//! (`--nodes 1@127.0.0.1:7001,2@... --ca --cert --key`). All logic lives in the generic
//! [`run_bench`] / [`run_staleness`]; this file only parses, connects and prints.
//!
//! # Guarantees
//! - Bad flags are clap errors (exit 2); a run that cannot start (no cluster, unknown node,
//!   invalid options) is one `error: ...` line and exit 1, never a panic.
//! - A run in which no operation succeeded exits 1 after printing its report, so scripts notice
//!   a benchmark of an unreachable cluster.
//! - The progress line is drawn only when stderr is a terminal.
//!
//! # Limits
//! - One tokio runtime with one worker thread per core drives every client: on a small machine
//!   the load generator competes with local nodes for CPU.

use super::items::{ItemOperation, ItemsError, ItemsOptions, run_items};
use super::options::{
    BenchOptions, KeyDistribution, LoopShape, NodeChoice, RequestKnobs, StopAfter, UpdateMode,
};
use super::runner::{BenchError, run_bench};
use super::staleness::{StalenessError, StalenessOptions, run_staleness};
use super::workload::Workload;
use clap::{Args, Subcommand, ValueEnum};
use ringstore_client::cluster_file::DEFAULT_CLUSTER_DIR;
use ringstore_client::{ClientIdentity, ClientSetupError, NativeClient, NodeAddr};
use ringstore_core::NodeId;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Open-loop operations in flight when `--rate` is given without `--max-inflight`.
pub const DEFAULT_MAX_INFLIGHT: usize = 256;

/// `ringstore bench`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// A probe instead of the YCSB workload.
    #[command(subcommand)]
    pub probe: Option<BenchProbe>,
    #[command(flatten)]
    pub target: BenchTargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Threads of the load generator (its tokio workers). One (the default, as in YCSB)
    /// runs on tokio's current-thread scheduler, which cost 40% less CPU per operation than
    /// two workers on a machine the cluster shares; give more when the generator has cores
    /// of its own and one thread saturates.
    #[arg(long, value_name = "N", global = true, default_value = "1")]
    pub threads: std::num::NonZeroUsize,
}

/// Probes under `ringstore bench`.
#[derive(Debug, Subcommand)]
pub enum BenchProbe {
    /// Write through one node, read through another after a delay: P(consistent) per delay.
    Staleness(StalenessArgs),
    /// PutItem, GetItem and a 100-item Query on a table of its own, at each concurrency.
    Items(ItemsArgs),
}

/// `ringstore bench items`.
#[derive(Debug, Args)]
pub struct ItemsArgs {
    #[command(flatten)]
    pub target: BenchTargetArgs,
    /// Partitions of 100 items to load.
    #[arg(long, default_value_t = 50)]
    pub partitions: u32,
    /// Bytes of each item's payload attribute.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// How long each operation runs at each concurrency (`10s`, `500ms`).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Closed-loop clients, one measurement per value.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub clients: Vec<usize>,
    /// The operations to measure, in order, at each concurrency.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "put,get,query"
    )]
    pub operations: Vec<ItemOperation>,
    /// Seed of every random choice (also names the table).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Which cluster to benchmark.
#[derive(Debug, Args)]
pub struct BenchTargetArgs {
    /// A cluster directory made by `cluster up` (its cluster.json and client certificate).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CLUSTER_DIR)]
    pub dir: PathBuf,
    /// The nodes instead of --dir: `ID@HOST:PORT,...` with each node's QUIC (peer) address.
    #[arg(long, value_name = "ID@ADDR,...", value_parser = parse_node_addrs,
          conflicts_with = "dir", requires_all = ["ca", "cert", "key"])]
    pub nodes: Option<NodeAddrList>,
    /// The cluster CA certificate (PEM), with --nodes.
    #[arg(long, value_name = "FILE", requires = "nodes")]
    pub ca: Option<PathBuf>,
    /// The client certificate signed by the cluster CA (PEM), with --nodes.
    #[arg(long, value_name = "FILE", requires = "nodes")]
    pub cert: Option<PathBuf>,
    /// The client's private key (PEM), with --nodes.
    #[arg(long, value_name = "FILE", requires = "nodes")]
    pub key: Option<PathBuf>,
}

/// A parsed `--nodes` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddrList(pub Vec<NodeAddr>);

/// How the report is printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An aligned table.
    Table,
    /// The JSON report.
    Json,
}

/// Where the report goes.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the report as a table or as JSON.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
}

/// The YCSB workload's flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// YCSB core workload: a (50/50 read/update), b (95/5), c (read only), d (read latest,
    /// 5% inserts), f (50% read, 50% read-modify-write).
    #[arg(long, value_enum, default_value_t = Workload::A)]
    pub workload: Workload,
    /// Key popularity for reads and updates (D always reads the latest records).
    #[arg(long, value_enum, default_value_t = KeyDistribution::Zipfian)]
    pub distribution: KeyDistribution,
    /// Records the load phase inserts and the run addresses.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Bytes per value written.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Insert the records first (the load phase).
    #[arg(long)]
    pub load: bool,
    /// Skip the run phase (with --load: only load).
    #[arg(long)]
    pub no_run: bool,
    /// Closed loop: concurrent clients (also the load phase's concurrency).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Open loop: operations per second, scheduled at fixed intervals; latency counts from each
    /// operation's intended start.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<f64>,
    /// Open loop: the most operations in flight [default: 256].
    #[arg(long, requires = "rate")]
    pub max_inflight: Option<usize>,
    /// How long the run phase lasts (`30s`, `500ms`, `2m`).
    #[arg(long, value_parser = parse_duration, default_value = "30s", conflicts_with = "operations")]
    pub duration: Duration,
    /// Run exactly this many operations instead of for --duration.
    #[arg(long)]
    pub operations: Option<u64>,
    /// Read quorum R of every request (default: the cluster's).
    #[arg(long = "r")]
    pub r: Option<u8>,
    /// Write quorum W of every request (default: the cluster's).
    #[arg(long = "w")]
    pub w: Option<u8>,
    /// Deadline of every request in milliseconds (default: the node's).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// How updates of A and B are sent: overwrite (one put that supersedes what its coordinator
    /// holds, YCSB's one-write update), rmw (get, then put with its context) or blind (put with
    /// no context; concurrent ones become siblings).
    #[arg(long, value_enum, default_value_t = UpdateMode::Overwrite)]
    pub update_mode: UpdateMode,
    /// Which node each operation is sent to.
    #[arg(long, value_enum, default_value_t = NodeChoice::Random)]
    pub node_choice: NodeChoice,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `ringstore bench staleness`.
#[derive(Debug, Args)]
pub struct StalenessArgs {
    #[command(flatten)]
    pub target: BenchTargetArgs,
    /// Writes go through this node.
    #[arg(long)]
    pub write_node: NodeId,
    /// Reads go through this node.
    #[arg(long)]
    pub read_node: NodeId,
    /// Delays between a write's acknowledgement and the read, in milliseconds.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,5,10,20,50,100")]
    pub delays_ms: Vec<u64>,
    /// Trials per delay.
    #[arg(long, default_value_t = 500)]
    pub trials: u64,
    /// Read quorum R of the probe's reads.
    #[arg(long = "r", default_value_t = 1)]
    pub r: u8,
    /// Write quorum W of the probe's writes.
    #[arg(long = "w", default_value_t = 1)]
    pub w: u8,
    /// Deadline of every request in milliseconds (default: the node's).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Probe streams at once, each on its own key.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Bytes per probe value.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Why `ringstore bench` failed before it could report.
#[derive(Debug, thiserror::Error)]
pub enum BenchCliError {
    /// The tokio runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The native client could not be set up.
    #[error("cannot set up the client: {0}")]
    Connect(#[from] ClientSetupError),
    /// Not one node answered when dialled.
    #[error("no node of the cluster could be reached (is it up? `ringstore cluster status`)")]
    NoNodeReachable,
    /// The benchmark could not run.
    #[error(transparent)]
    Bench(#[from] BenchError),
    /// The staleness probe could not run.
    #[error(transparent)]
    Staleness(#[from] StalenessError),
    /// The items benchmark could not run.
    #[error(transparent)]
    Items(#[from] ItemsError),
    /// The report could not be encoded.
    #[error("cannot encode the report: {0}")]
    Json(#[from] serde_json::Error),
    /// `--out` could not be written.
    #[error("cannot write {path}: {source}", path = .path.display())]
    Out {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Parses `--nodes`: `1@127.0.0.1:7001,2@127.0.0.1:7002` (ids may be written `n1`).
pub fn parse_node_addrs(text: &str) -> Result<NodeAddrList, String> {
    let mut nodes = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| format!("`{item}` is not ID@HOST:PORT"))?;
        let id: NodeId = id
            .parse()
            .map_err(|error: ringstore_core::node_id::ParseNodeIdError| error.to_string())?;
        let addr = ringstore_client::cluster_file::parse_http_addr(addr)
            .map_err(|_| format!("`{addr}` in `{item}` is not an address like 127.0.0.1:7001"))?;
        nodes.push(NodeAddr { id, addr });
    }
    if nodes.is_empty() {
        return Err("--nodes needs at least one ID@HOST:PORT".to_string());
    }
    Ok(NodeAddrList(nodes))
}

/// Parses a duration: a number with `ms`, `s`, `m` or `h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

impl RunArgs {
    /// The options these flags describe.
    pub fn options(&self) -> BenchOptions {
        let shape = match self.rate {
            Some(rate_per_s) => LoopShape::Open {
                rate_per_s,
                max_inflight: self.max_inflight.unwrap_or(DEFAULT_MAX_INFLIGHT),
            },
            None => LoopShape::Closed {
                clients: self.clients,
            },
        };
        let stop = match self.operations {
            Some(n) => StopAfter::Operations(n),
            None => StopAfter::Duration(self.duration),
        };
        BenchOptions {
            workload: self.workload,
            distribution: self.distribution,
            records: self.records,
            value_bytes: self.value_bytes,
            load: self.load,
            run: !self.no_run,
            load_clients: self.clients,
            shape,
            stop,
            knobs: RequestKnobs {
                r: self.r,
                w: self.w,
                timeout_ms: self.timeout_ms,
            },
            update_mode: self.update_mode,
            node_choice: self.node_choice,
            seed: self.seed,
        }
    }
}

impl StalenessArgs {
    /// The options these flags describe; `key_prefix` makes this run's keys unique.
    pub fn options(&self, key_prefix: String) -> StalenessOptions {
        StalenessOptions {
            write_node: self.write_node,
            read_node: self.read_node,
            delays: self
                .delays_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            trials_per_delay: self.trials,
            knobs: RequestKnobs {
                r: Some(self.r),
                w: Some(self.w),
                timeout_ms: self.timeout_ms,
            },
            concurrency: self.concurrency,
            key_prefix,
            value_bytes: self.value_bytes,
        }
    }
}

/// Runs `ringstore bench ...`; prints the report, or `error: ...` on stderr.
pub fn run(args: BenchArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: BenchArgs) -> Result<ExitCode, BenchCliError> {
    let runtime = ringstore_client::runtime_builder(args.threads.get())
        .enable_all()
        .build()
        .map_err(BenchCliError::Runtime)?;
    let progress = std::io::stderr().is_terminal();
    runtime.block_on(async move {
        match args.probe {
            Some(BenchProbe::Staleness(probe)) => {
                let options = probe.options(probe_key_prefix());
                options.validate()?;
                let client = connect(&probe.target).await?;
                let report = run_staleness(client.clone(), &options, progress).await;
                client.close().await;
                let report = report?;
                emit(&report, report.render(), &probe.output)?;
                let ok = report.delays.iter().any(|d| d.trials > 0);
                Ok(exit_code(ok, "no probe trial completed"))
            }
            Some(BenchProbe::Items(items)) => {
                let options = ItemsOptions {
                    partitions: items.partitions,
                    value_bytes: items.value_bytes,
                    duration: items.duration,
                    concurrency: items.clients.clone(),
                    operations: items.operations.clone(),
                    seed: items.seed,
                };
                let client = connect(&items.target).await?;
                let report = run_items(client.clone(), &options).await;
                client.close().await;
                let report = report?;
                emit(&report, report.render(), &items.output)?;
                let ok = report.phases.iter().any(|p| p.ok > 0);
                Ok(exit_code(ok, "no item operation succeeded"))
            }
            None => {
                let options = args.run.options();
                options.validate().map_err(BenchError::from)?;
                let client = connect(&args.target).await?;
                let report = run_bench(client.clone(), &options, progress).await;
                client.close().await;
                let report = report?;
                emit(&report, report.render(), &args.run.output)?;
                let ok = [&report.load, &report.run]
                    .into_iter()
                    .flatten()
                    .any(|phase| phase.ok > 0);
                Ok(exit_code(ok, "no operation succeeded"))
            }
        }
    })
}

/// Exit 0 when something succeeded; otherwise say so and exit 1.
fn exit_code(anything_succeeded: bool, what: &str) -> ExitCode {
    if anything_succeeded {
        ExitCode::SUCCESS
    } else {
        let _ = writeln!(std::io::stderr(), "error: {what} (see the errors above)");
        ExitCode::FAILURE
    }
}

/// Prints `table` or the JSON of `report` on stdout, and writes the JSON to `--out`.
fn emit<R: Serialize>(report: &R, table: String, output: &OutputArgs) -> Result<(), BenchCliError> {
    let json = serde_json::to_string_pretty(report)?;
    let mut stdout = std::io::stdout();
    let _ = match output.format {
        OutputFormat::Table => write!(stdout, "{table}"),
        OutputFormat::Json => writeln!(stdout, "{json}"),
    };
    if let Some(path) = &output.out {
        std::fs::write(path, format!("{json}\n")).map_err(|source| BenchCliError::Out {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A key prefix no earlier probe used: the wall-clock time in milliseconds.
fn probe_key_prefix() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("staleness-probe-{millis}")
}

/// The native client for `target`, with every node dialled: a node that cannot be reached is
/// a warning (its requests will count as errors), no reachable node at all is an error.
async fn connect(target: &BenchTargetArgs) -> Result<NativeClient, BenchCliError> {
    let client = native_client(target)?;
    let failed = client.connect_all().await;
    for (node, error) in &failed {
        let _ = writeln!(std::io::stderr(), "warning: {node}: {error}");
    }
    if failed.len() == client.node_addrs().len() {
        return Err(BenchCliError::NoNodeReachable);
    }
    Ok(client)
}

/// The native client for `target` (must be built inside the tokio runtime).
fn native_client(target: &BenchTargetArgs) -> Result<NativeClient, BenchCliError> {
    match (&target.nodes, &target.ca, &target.cert, &target.key) {
        (Some(nodes), Some(ca), Some(cert), Some(key)) => {
            let identity = ClientIdentity {
                ca_cert: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            };
            native_client_from_nodes(&identity, nodes.0.clone())
        }
        _ => native_client_from_dir(&target.dir),
    }
}

/// The native client of the cluster in `dir` (its cluster.json, CA and client certificate).
fn native_client_from_dir(dir: &Path) -> Result<NativeClient, BenchCliError> {
    NativeClient::from_cluster_dir(dir).map_err(BenchCliError::Connect)
}

/// The native client of `nodes`, proving itself with `identity`.
fn native_client_from_nodes(
    identity: &ClientIdentity,
    nodes: Vec<NodeAddr>,
) -> Result<NativeClient, BenchCliError> {
    NativeClient::new(identity, nodes).map_err(BenchCliError::Connect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn durations_parse_in_every_unit() {
        // Goal: --duration accepts what people type and refuses garbage with a message.
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert!(parse_duration("3d").unwrap_err().contains("unit"));
    }

    #[test]
    fn node_lists_parse_and_bad_ones_are_refused() {
        // Goal: --nodes takes ID@ADDR pairs (ids as 1 or n1) and names the bad item otherwise.
        let list = parse_node_addrs("1@127.0.0.1:7001, n2@127.0.0.1:7002").unwrap();
        assert_eq!(list.0.len(), 2);
        assert_eq!(list.0[1].id, NodeId(2));
        assert_eq!(list.0[1].addr.port(), 7002);
        assert!(
            parse_node_addrs("127.0.0.1:7001")
                .unwrap_err()
                .contains("ID@")
        );
        assert!(parse_node_addrs("x@127.0.0.1:7001").is_err());
        assert!(parse_node_addrs("").is_err());
    }

    #[test]
    fn flags_become_options() {
        // Goal: the command line maps onto the run it describes (open loop with --rate, an
        // operation count with --operations, quorums on every request).
        let cli = TestCli::parse_from([
            "bench",
            "--workload",
            "f",
            "--rate",
            "500",
            "--operations",
            "1000",
            "--r",
            "1",
            "--w",
            "3",
            "--load",
            "--no-run",
            "--update-mode",
            "blind",
        ]);
        assert!(cli.bench.probe.is_none());
        let options = cli.bench.run.options();
        assert_eq!(options.workload, Workload::F);
        assert_eq!(
            options.shape,
            LoopShape::Open {
                rate_per_s: 500.0,
                max_inflight: DEFAULT_MAX_INFLIGHT
            }
        );
        assert_eq!(options.stop, StopAfter::Operations(1000));
        assert_eq!((options.knobs.r, options.knobs.w), (Some(1), Some(3)));
        assert!(options.load && !options.run);
        assert_eq!(options.update_mode, UpdateMode::Blind);

        let cli = TestCli::parse_from(["bench", "--duration", "5s"]);
        let options = cli.bench.run.options();
        assert_eq!(options.shape, LoopShape::Closed { clients: 64 });
        assert_eq!(options.stop, StopAfter::Duration(Duration::from_secs(5)));
        assert_eq!(cli.bench.target.dir, PathBuf::from(DEFAULT_CLUSTER_DIR));

        // --nodes with the three TLS files does not clash with --dir's default.
        let cli = TestCli::parse_from([
            "bench",
            "--nodes",
            "1@127.0.0.1:7001",
            "--ca",
            "a",
            "--cert",
            "b",
            "--key",
            "c",
        ]);
        assert_eq!(cli.bench.target.nodes.map(|n| n.0.len()), Some(1));
    }

    #[test]
    fn bad_flag_combinations_are_usage_errors() {
        // Goal: contradictory flags fail in clap (exit 2), before anything connects.
        for args in [
            vec!["bench", "--max-inflight", "4"],
            vec!["bench", "--duration", "5s", "--operations", "9"],
            vec!["bench", "--nodes", "1@127.0.0.1:7001"],
            vec!["bench", "--workload", "e"],
            vec![
                "bench",
                "--nodes",
                "1@127.0.0.1:7001",
                "--dir",
                "d",
                "--ca",
                "a",
                "--cert",
                "b",
                "--key",
                "c",
            ],
            vec![
                "bench",
                "--workload",
                "a",
                "staleness",
                "--write-node",
                "1",
                "--read-node",
                "2",
            ],
        ] {
            assert!(TestCli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn staleness_flags_become_options() {
        // Goal: `bench staleness` parses its own flags, with R = W = 1 by default.
        let cli = TestCli::parse_from([
            "bench",
            "staleness",
            "--write-node",
            "n1",
            "--read-node",
            "3",
            "--delays-ms",
            "0,5,50",
            "--trials",
            "10",
        ]);
        let Some(BenchProbe::Staleness(args)) = cli.bench.probe else {
            panic!("not the staleness probe");
        };
        let options = args.options("p".to_string());
        assert_eq!(
            (options.write_node, options.read_node),
            (NodeId(1), NodeId(3))
        );
        assert_eq!(
            options.delays,
            vec![
                Duration::ZERO,
                Duration::from_millis(5),
                Duration::from_millis(50)
            ]
        );
        assert_eq!((options.knobs.r, options.knobs.w), (Some(1), Some(1)));
        assert_eq!(options.trials_per_delay, 10);
    }
}
