//! The command line's client and cluster commands: `ringstore put/get/delete`,
//! `ringstore table ...` and `ringstore item ...` ([`tables`]),
//! `ringstore cluster up/status/down/add/remove/kill/restart/partition/heal/slow`, and
//! `ringstore bench` (whose flags and logic are `ringstore_bench`'s).
//!
//! The clap types live here and each command is a thin shell over library functions
//! ([`http_client::HttpClient`], [`cluster::up`], [`cluster::Cluster`]) so that the end-to-end tests call
//! exactly the code the command line runs. `ringstore node` (the node process) is the runtime's.
//!
//! # Guarantees
//! - Bad input (an unknown node id, a missing `cluster.json`, an unreachable node, a malformed
//!   address) is a one-line `error: ...` on stderr and a non-zero exit code, never a panic.
//! - Exit codes: 0 success; 1 error; 2 bad usage (clap); 3 `get` (or `item get`) found no
//!   value.
//!
//! # Limits
//! - Values are shown as text when they are UTF-8 and as `base64:...` otherwise.

pub mod cluster;
pub mod http_client;
pub mod tables;

use clap::{Args, Subcommand};
use cluster::{Cluster, ClusterError, DEFAULT_CLUSTER_DIR, StopOutcome, UpOptions};
use http_client::{HttpClient, HttpClientError, ReadOutcome};
use ringstore_client::cluster_file::{ClusterFile, ClusterFileError, parse_http_addr};
use ringstore_client::{CallError, ClientIdentity, ClientSetupError, NativeClient};
use ringstore_core::NodeId;
use ringstore_core::version::{CausalContext, ContextError};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `println!` that ignores a closed stdout (`ringstore get k | head -1`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// Exit code of `get` when the key has no value.
pub const EXIT_NOT_FOUND: u8 = 3;

/// The client and cluster commands (flattened into the binary's top-level commands).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write VALUE under KEY (prints the new context).
    Put(PutArgs),
    /// Read KEY: its value, or all its siblings, and the context to write with.
    Get(GetArgs),
    /// Delete KEY (needs the context of a read).
    Delete(DeleteArgs),
    /// Create, list, describe, update and delete tables (through a node's HTTP API).
    #[command(subcommand)]
    Table(tables::TableCommand),
    /// Put, get, update, delete and query the items of a table (DynamoDB JSON, over HTTP).
    #[command(subcommand)]
    Item(tables::ItemCommand),
    /// Start, inspect, break and heal a local multi-process cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Benchmark a running cluster (YCSB workloads A, B, C, D, F), or probe its staleness.
    Bench(Box<ringstore_bench::cli::BenchArgs>),
}

/// Which node a client command talks to.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// A node's HTTP address, like 127.0.0.1:8001: talk HTTP to that node (the default is
    /// the native protocol to a node of --dir).
    #[arg(long, value_name = "ADDR", value_parser = parse_http_addr, conflicts_with = "dir")]
    pub node: Option<SocketAddr>,
    /// A cluster directory: use its nodes over the native protocol (QUIC, with the
    /// directory's client certificate), falling back to the next when one is down.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CLUSTER_DIR)]
    pub dir: PathBuf,
}

/// `ringstore put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The key.
    pub key: String,
    /// The value (`-` reads it from stdin).
    pub value: String,
    /// The context of the read this write follows (omit for a blind write).
    #[arg(long, short = 'c')]
    pub context: Option<String>,
    /// Supersede whatever the coordinating node holds, without a context (versions it has
    /// not seen yet stay as siblings).
    #[arg(long, conflicts_with = "context")]
    pub overwrite: bool,
    /// Write quorum for this request (default: the cluster's W).
    #[arg(short = 'w', long = "w")]
    pub w: Option<u8>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `ringstore get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The key.
    pub key: String,
    /// Read quorum for this request (default: the cluster's R).
    #[arg(short = 'r', long = "r")]
    pub r: Option<u8>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `ringstore delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The key.
    pub key: String,
    /// The context of the read this delete follows (from `get`).
    #[arg(long, short = 'c')]
    pub context: String,
    /// Write quorum for this request (default: the cluster's W).
    #[arg(short = 'w', long = "w")]
    pub w: Option<u8>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The cluster directory every `cluster` subcommand takes.
#[derive(Debug, Args)]
pub struct DirArg {
    /// The cluster directory (holds cluster.json, the CA and one nN/ directory per node).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CLUSTER_DIR)]
    pub dir: PathBuf,
}

/// `ringstore cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a cluster of local node processes (or restart the stopped one in --dir).
    Up(UpArgs),
    /// Show every node: process, state, how the others see it, ownership, keys, hints.
    Status(DirArg),
    /// Stop every node (SIGTERM, then SIGKILL after a grace period).
    Down(DirArg),
    /// Start a new node that joins the cluster; ranges move to it.
    Add(DirArg),
    /// Decommission NODE: it hands its data over, reports Left, and is stopped.
    Remove(NodeArg),
    /// Crash NODE with SIGKILL.
    Kill(NodeArg),
    /// Stop NODE if it runs, start it again with its data, wait until it is back.
    Restart(NodeArg),
    /// Split the cluster: `partition 1,2 3,4,5` cuts every link between the sides.
    Partition(PartitionArgs),
    /// Remove every partition and delay.
    Heal(DirArg),
    /// Make NODE slow: it delays everything it sends.
    Slow(SlowArgs),
}

/// `cluster up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Number of nodes [default: 5].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Replicas per key, N [default: 3].
    #[arg(long)]
    pub n: Option<u8>,
    /// Default read quorum, R [default: 2].
    #[arg(long)]
    pub r: Option<u8>,
    /// Default write quorum, W [default: 2].
    #[arg(long)]
    pub w: Option<u8>,
    /// Which replicas a get asks: `all` N of them (Dynamo, Riak) or `quorum`, R of them and
    /// more only on a failure or after 20 ms (Cassandra). Written into each new node's
    /// config; an existing cluster keeps what its nodes' `node.toml` say [default: all].
    #[arg(long, value_enum)]
    pub read_fanout: Option<ReadFanoutArg>,
    /// How long to wait for the cluster to converge, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// `--read-fanout` (see `config::ReadFanout`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ReadFanoutArg {
    /// Ask all N replicas.
    All,
    /// Ask R replicas, more on failure or after `read_speculate_after`.
    Quorum,
}

impl From<ReadFanoutArg> for ringstore_core::config::ReadFanout {
    fn from(arg: ReadFanoutArg) -> Self {
        match arg {
            ReadFanoutArg::All => Self::All,
            ReadFanoutArg::Quorum => Self::Quorum,
        }
    }
}

/// A subcommand about one node.
#[derive(Debug, Args)]
pub struct NodeArg {
    /// The node's id, as in cluster.json (`3` or `n3`).
    pub node: NodeId,
    #[command(flatten)]
    pub dir: DirArg,
}

/// `cluster partition`.
#[derive(Debug, Args)]
pub struct PartitionArgs {
    /// Two or more sides, each a comma-separated list of node ids: `1,2 3,4,5`.
    #[arg(value_parser = cluster::parse_node_list, num_args = 2.., required = true)]
    pub sides: Vec<Vec<NodeId>>,
    #[command(flatten)]
    pub dir: DirArg,
}

/// `cluster slow`.
#[derive(Debug, Args)]
pub struct SlowArgs {
    /// The node's id, as in cluster.json.
    pub node: NodeId,
    /// Delay added to everything the node sends, in milliseconds (0 removes it).
    #[arg(long, default_value_t = 50)]
    pub delay_ms: u64,
    #[command(flatten)]
    pub dir: DirArg,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A request to a node failed.
    #[error(transparent)]
    Http(#[from] HttpClientError),
    /// A request over the native protocol failed.
    #[error(transparent)]
    Native(#[from] CallError),
    /// The native client could not be set up (certificates, socket).
    #[error(transparent)]
    NativeSetup(#[from] ClientSetupError),
    /// Every node of the cluster was unreachable over the native protocol.
    #[error(
        "no node of the cluster could be reached (tried {tried:?}); is it up? (`ringstore cluster status`)"
    )]
    NoNodeReachable {
        /// The nodes tried.
        tried: Vec<NodeId>,
    },
    /// `--context` is not a context a read returned.
    #[error("invalid --context: {0}")]
    BadContext(ContextError),
    /// The command's async runtime could not start.
    #[error("cannot start the client's async runtime: {0}")]
    Runtime(std::io::Error),
    /// A cluster operation failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// `cluster.json` could not be read.
    #[error(transparent)]
    File(#[from] ClusterFileError),
    /// The value could not be read from stdin.
    #[error("cannot read the value from stdin: {0}")]
    Stdin(std::io::Error),
    /// A command-line argument is not what the command takes.
    #[error("invalid {what}: {detail}")]
    BadArgument {
        /// Which argument.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// `up` on a directory that holds a different cluster than the flags ask for.
    #[error(
        "{dir} already holds a cluster of {nodes} nodes (N={n}, R={r}, W={w}); `cluster up` \
         restarts it as it is: drop --nodes/--n/--r/--w, or use another --dir",
        dir = .dir.display()
    )]
    ExistingClusterDiffers {
        /// The directory.
        dir: PathBuf,
        /// Its node count.
        nodes: usize,
        /// Its N.
        n: u8,
        /// Its R.
        r: u8,
        /// Its W.
        w: u8,
    },
}

/// Runs one command; prints its result, or `error: ...` on stderr. Returns the exit code.
pub fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Put(args) => put(args),
        Command::Get(args) => get(args),
        Command::Delete(args) => delete(args),
        Command::Table(command) => tables::run_table(command),
        Command::Item(command) => tables::run_item(command),
        Command::Cluster(command) => run_cluster(command),
        Command::Bench(args) => return ringstore_bench::cli::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `op` over the native protocol against the nodes of `dir`, running nodes first, moving
/// to the next only when a node is unreachable (and, when `idempotent` is false, only when
/// the request was surely never sent).
fn with_native<T>(
    dir: &Path,
    idempotent: bool,
    op: impl AsyncFn(&NativeClient, NodeId) -> Result<T, CallError>,
) -> Result<T, CliError> {
    let mut cluster = Cluster::open(dir)?;
    let nodes = cluster.client_nodes();
    let identity = ClientIdentity::of_cluster_dir(dir, cluster.file())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let client = NativeClient::new(&identity, nodes.clone())?;
        let mut tried = Vec::new();
        for node in nodes.iter().map(|n| n.id) {
            match op(&client, node).await {
                Err(CallError::Unreachable { .. }) => tried.push(node),
                Err(CallError::Connection { .. }) if idempotent => tried.push(node),
                other => {
                    client.close().await;
                    return other.map_err(CliError::Native);
                }
            }
        }
        client.close().await;
        Err(CliError::NoNodeReachable { tried })
    })
}

/// Parses a context given on the command line.
fn parse_context(text: Option<&str>) -> Result<CausalContext, CliError> {
    match text {
        None => Ok(CausalContext::empty()),
        Some(text) => CausalContext::decode(text).map_err(CliError::BadContext),
    }
}

fn put(args: PutArgs) -> Result<ExitCode, CliError> {
    let value = if args.value == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(CliError::Stdin)?;
        bytes
    } else {
        args.value.into_bytes()
    };
    let context = match args.target.node {
        Some(addr) if args.overwrite => {
            HttpClient::new().overwrite(addr, args.key.as_bytes(), &value, args.w)?
        }
        Some(addr) => HttpClient::new().put(
            addr,
            args.key.as_bytes(),
            &value,
            args.context.as_deref(),
            args.w,
        )?,
        None => {
            let read_context = parse_context(args.context.as_deref())?;
            let (context, _) = with_native(&args.target.dir, false, async |client, node| {
                if args.overwrite {
                    let key = args.key.as_bytes();
                    return client.overwrite(node, key, value.clone(), args.w).await;
                }
                client
                    .put(
                        node,
                        args.key.as_bytes(),
                        value.clone(),
                        read_context.clone(),
                        args.w,
                    )
                    .await
            })?;
            context.encode()
        }
    };
    say!("context: {context}");
    Ok(ExitCode::SUCCESS)
}

/// A value for the terminal: text if it is UTF-8, `base64:...` otherwise.
pub fn display_value(value: &[u8]) -> String {
    use base64::Engine;
    match std::str::from_utf8(value) {
        Ok(text) => text.to_string(),
        Err(_) => format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(value)
        ),
    }
}

fn get(args: GetArgs) -> Result<ExitCode, CliError> {
    let outcome = match args.target.node {
        Some(addr) => HttpClient::new().get(addr, args.key.as_bytes(), args.r)?,
        None => {
            let read = with_native(&args.target.dir, true, async |client, node| {
                client.get(node, args.key.as_bytes(), args.r).await
            })?;
            ReadOutcome::from(read)
        }
    };
    match outcome {
        ReadOutcome::Found { values, context } => {
            if let [value] = values.as_slice() {
                say!("value: {}", display_value(value));
            } else {
                say!(
                    "{} siblings (concurrent writes; a put with this context replaces them all):",
                    values.len()
                );
                for (i, value) in values.iter().enumerate() {
                    say!("  [{}] {}", i + 1, display_value(value));
                }
            }
            say!("context: {context}");
            Ok(ExitCode::SUCCESS)
        }
        ReadOutcome::NotFound { context } => {
            match context {
                Some(context) => say!("not found (deleted)\ncontext: {context}"),
                None => say!("not found"),
            }
            Ok(ExitCode::from(EXIT_NOT_FOUND))
        }
    }
}

fn delete(args: DeleteArgs) -> Result<ExitCode, CliError> {
    let context = match args.target.node {
        Some(addr) => HttpClient::new().delete(addr, args.key.as_bytes(), &args.context, args.w)?,
        None => {
            let read_context = parse_context(Some(&args.context))?;
            let (context, _) = with_native(&args.target.dir, false, async |client, node| {
                client
                    .delete(node, args.key.as_bytes(), read_context.clone(), args.w)
                    .await
            })?;
            context.encode()
        }
    };
    say!("deleted\ncontext: {context}");
    Ok(ExitCode::SUCCESS)
}

fn run_cluster(command: ClusterCommand) -> Result<ExitCode, CliError> {
    match command {
        ClusterCommand::Up(args) => cluster_up(args)?,
        ClusterCommand::Status(DirArg { dir }) => {
            let mut cluster = Cluster::open(&dir)?;
            say_raw!("{}", cluster.status().render());
        }
        ClusterCommand::Down(DirArg { dir }) => {
            let mut cluster = Cluster::open(&dir)?;
            for (id, outcome) in cluster.down()? {
                let what = match outcome {
                    StopOutcome::Terminated => "stopped",
                    StopOutcome::Killed => "killed (did not stop within the grace period)",
                    StopOutcome::NotRunning => "was not running",
                };
                say!("n{}: {what}", id.0);
            }
            say!("data and logs are kept in {}", dir.display());
        }
        ClusterCommand::Add(DirArg { dir }) => {
            let mut cluster = Cluster::open(&dir)?;
            let start = Instant::now();
            let id = cluster.add()?;
            let addr = cluster.http_addr(id)?;
            say!(
                "n{} joined at {addr} in {:.1}s; its ranges move to it in the background",
                id.0,
                start.elapsed().as_secs_f64()
            );
            say_raw!("{}", cluster.status().render());
        }
        ClusterCommand::Remove(NodeArg { node, dir }) => {
            let mut cluster = Cluster::open(&dir.dir)?;
            say!(
                "n{}: leaving (handing its data to the new owners)...",
                node.0
            );
            let waited = cluster.remove(node)?;
            say!(
                "n{} left after {:.1}s and was stopped; its directory is kept",
                node.0,
                waited.as_secs_f64()
            );
        }
        ClusterCommand::Kill(NodeArg { node, dir }) => {
            Cluster::open(&dir.dir)?.kill(node)?;
            say!("n{}: killed (SIGKILL)", node.0);
        }
        ClusterCommand::Restart(NodeArg { node, dir }) => {
            let waited = Cluster::open(&dir.dir)?.restart(node)?;
            say!(
                "n{}: restarted; the cluster converged in {:.1}s",
                node.0,
                waited.as_secs_f64()
            );
        }
        ClusterCommand::Partition(PartitionArgs { sides, dir }) => {
            Cluster::open(&dir.dir)?.partition(&sides)?;
            let sides: Vec<String> = sides
                .iter()
                .map(|side| {
                    side.iter()
                        .map(|id| format!("n{}", id.0))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            say!("partitioned: {}", sides.join(" | "));
        }
        ClusterCommand::Heal(DirArg { dir }) => {
            Cluster::open(&dir)?.heal()?;
            say!("healed: every partition and delay removed");
        }
        ClusterCommand::Slow(SlowArgs {
            node,
            delay_ms,
            dir,
        }) => {
            Cluster::open(&dir.dir)?.slow(node, delay_ms)?;
            say!(
                "n{}: everything it sends is delayed by {delay_ms} ms",
                node.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cluster_up(args: UpArgs) -> Result<(), CliError> {
    let dir = args.dir.dir;
    let mut options = UpOptions::new(&dir);
    options.ready_timeout = Duration::from_secs(args.timeout_secs);
    if ClusterFile::exists_in(&dir) {
        let file = ClusterFile::load(&dir)?;
        let differs = args.nodes.is_some_and(|n| n != file.nodes.len())
            || args.n.is_some_and(|n| n != file.n)
            || args.r.is_some_and(|r| r != file.r)
            || args.w.is_some_and(|w| w != file.w);
        if differs {
            return Err(CliError::ExistingClusterDiffers {
                dir,
                nodes: file.nodes.len(),
                n: file.n,
                r: file.r,
                w: file.w,
            });
        }
        say!(
            "restarting the stopped cluster in {} (data kept)",
            dir.display()
        );
    }
    options.nodes = args.nodes.unwrap_or(options.nodes);
    options.n = args.n.unwrap_or(options.n);
    options.r = args.r.unwrap_or(options.r);
    options.w = args.w.unwrap_or(options.w);
    if let Some(fanout) = args.read_fanout {
        options.node_config.read_fanout = fanout.into();
    }
    let start = Instant::now();
    let mut cluster = cluster::up(&options)?;
    let file = cluster.file().clone();
    say!(
        "{} nodes up in {} (N={}, R={}, W={}); converged in {:.1}s\n",
        file.nodes.len(),
        dir.display(),
        file.n,
        file.r,
        file.w,
        start.elapsed().as_secs_f64()
    );
    say_raw!("{}", cluster.status().render());
    print_usage_hints(&dir, &file);
    Ok(())
}

/// Prints how to talk to a freshly started cluster.
fn print_usage_hints(dir: &Path, file: &ClusterFile) {
    let exe = std::env::args()
        .next()
        .unwrap_or_else(|| "ringstore".to_string());
    let dir_flag = if dir == Path::new(DEFAULT_CLUSTER_DIR) {
        String::new()
    } else {
        format!(" --dir {}", dir.display())
    };
    let Some(first) = file.nodes.first() else {
        return;
    };
    let addr = first.http_addr;
    say!("\ntalk to it:");
    say!("  {exe} put greeting hello{dir_flag}");
    say!("  {exe} get greeting{dir_flag}");
    say!("  curl -i -X PUT --data-binary hello http://{addr}/kv/greeting");
    say!("  curl -i http://{addr}/kv/greeting");
    say!("  curl -s http://{addr}/status");
    say!("break it:");
    say!("  {exe} cluster kill 2{dir_flag}; {exe} cluster restart 2{dir_flag}");
    say!("  {exe} cluster partition 1,2 3,4,5{dir_flag}; {exe} cluster heal{dir_flag}");
    say!(
        "logs: {}/nN/node.log    stop: {exe} cluster down{dir_flag}",
        dir.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_display_as_text_or_base64() {
        // Goal: a binary value never garbles the terminal, text stays readable.
        assert_eq!(display_value(b"hello"), "hello");
        assert_eq!(display_value(&[0xff, 0x00]), "base64:/wA=");
    }

    #[test]
    fn client_commands_without_a_cluster_fail_clearly() {
        // Goal: `get --dir` on a directory with no cluster.json is an error naming the fix.
        let dir = tempfile::tempdir().unwrap();
        let err = with_native(dir.path(), true, async |client, node| {
            client.get(node, b"k".to_vec(), None).await
        })
        .unwrap_err();
        assert!(err.to_string().contains("cluster up"), "{err}");
    }
}
