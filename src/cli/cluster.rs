//! Local multi-process clusters: start, inspect, break and heal real `ringstore node` processes
//! on one machine. This is the code behind `ringstore cluster ...` and the end-to-end tests.
//!
//! A cluster lives in one directory: the CA (`ca.pem`, `ca.key`), `cluster.json`, and one
//! `nN/` directory per node with its config (`node.toml`), certificate (`node.pem`,
//! `node.key`), log (`node.log`) and store (`store/`). Nodes are detached processes (their own
//! process group, stdin closed, output to the log) so they outlive the command that started
//! them; later commands find them through `cluster.json`.
//!
//! Faults are injected the way a real network fails, inside the nodes' live transports through
//! their admin API (`/admin/partition`, `/admin/slow`, `/admin/heal`), and crashes are real
//! signals (SIGKILL). Decommission is the Dynamo §4.9 path: `/admin/leave`, the node hands its
//! ranges to their new owners and reports `Left`, then it is stopped.
//!
//! # Guarantees
//! - Every wait is on a condition polled against a deadline, never a fixed sleep; running out
//!   of time is an error that says which condition did not hold.
//! - `up` returns only when every node answers, every node sees every running node `Up`, every
//!   ring holds all the cluster's nodes, and all rings have the same digest.
//! - A node id is never reused, even after `remove` (the cluster keeps a sticky `Left` record).
//! - `cluster.json` is rewritten atomically after every change of a pid or of the node set.
//!
//! # Limits
//! - Linux-first: liveness is read from `/proc/PID/cmdline` (which also guards against a pid
//!   reused by an unrelated process); elsewhere it falls back to `kill(pid, 0)`.
//! - Free ports are found by binding port 0 and releasing it before the node binds it, so
//!   another program may take a port in between; the node then fails to start and `up` reports
//!   its log.
//! - One command at a time per directory: nothing locks `cluster.json`.

use super::http_client::{HttpClient, HttpClientError, NodeStatus};
use crate::runtime::node_config::{ConfigFileError, NodeFileConfig, SeedPeer, TlsFiles};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use ringstore_client::NodeAddr;
use ringstore_client::cluster_file::{ClusterFile, ClusterFileError, NodeEntry};
use ringstore_client::tls::{ClusterCa, TlsError};
use ringstore_core::NodeId;
use ringstore_core::config::{ConfigError, NodeConfig};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use ringstore_client::cluster_file::DEFAULT_CLUSTER_DIR;

/// Nodes `cluster up` starts when `--nodes` is not given: enough for N = 3 with two failures.
pub const DEFAULT_NODES: usize = 5;

/// The most nodes one local cluster may have (each is a process with its own ports and store).
pub const MAX_NODES: usize = 64;

/// How long `up`, `add` and `restart` wait for the cluster to converge by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a node may take to exit after SIGTERM before it is SIGKILLed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a node may take to vanish after SIGKILL before we give up on it.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// How long `remove` waits for a decommissioning node to hand its data over and report `Left`.
pub const DEFAULT_LEAVE_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a waiting command re-checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Lines of a node's log quoted in an error when the node died.
pub const LOG_TAIL_LINES: usize = 20;

/// How to start a new cluster.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// The cluster directory (created if missing; must be empty or hold a stopped cluster).
    pub dir: PathBuf,
    /// How many nodes to start.
    pub nodes: usize,
    /// Replicas per key (N).
    pub n: u8,
    /// Default read quorum (R).
    pub r: u8,
    /// Default write quorum (W).
    pub w: u8,
    /// Every other node setting (the `[node]` section of each config); its `n`, `r` and `w` are
    /// replaced by the fields above.
    pub node_config: NodeConfig,
    /// The `ringstore` binary to run; `None` for the running executable.
    pub binary: Option<PathBuf>,
    /// How long to wait for the cluster to converge.
    pub ready_timeout: Duration,
}

impl UpOptions {
    /// The defaults: [`DEFAULT_NODES`] nodes, N = 3, R = 2, W = 2, default node settings.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        UpOptions {
            dir: dir.into(),
            nodes: DEFAULT_NODES,
            n: 3,
            r: 2,
            w: 2,
            node_config: NodeConfig::default(),
            binary: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

/// Why a cluster command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `cluster.json` is missing or unreadable.
    #[error(transparent)]
    File(#[from] ClusterFileError),
    /// A file or directory of the cluster could not be created or read.
    #[error("cannot {action} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Making the CA or a node certificate failed.
    #[error("certificates: {0}")]
    Tls(#[from] TlsError),
    /// An existing node config file could not be read (`add` copies its settings).
    #[error("node config: {0}")]
    NodeConfigFile(#[from] ConfigFileError),
    /// The node settings are inconsistent (for example R above N).
    #[error("invalid node settings: {0}")]
    Config(#[from] ConfigError),
    /// The node count is out of range.
    #[error("--nodes {0} is out of range 1..={MAX_NODES}")]
    BadNodeCount(usize),
    /// N is larger than the cluster.
    #[error("--n {n} needs at least {n} nodes, but the cluster has {nodes}")]
    NTooLarge {
        /// The replication factor asked for.
        n: u8,
        /// The node count.
        nodes: usize,
    },
    /// The directory holds something other than a cluster.
    #[error("{dir} is not empty and holds no cluster.json; choose an empty or new directory", dir = .0.display())]
    DirNotEmpty(PathBuf),
    /// `up` was asked to start a cluster whose nodes are already running.
    #[error("a cluster is already running in {dir} (nodes {running}); stop it with `ringstore cluster down --dir {dir}`", dir = .dir.display(), running = fmt_ids(.running))]
    AlreadyRunning {
        /// The directory.
        dir: PathBuf,
        /// The nodes found running.
        running: Vec<NodeId>,
    },
    /// A node id that `cluster.json` does not have.
    #[error("unknown node {id}: the cluster has {known}", known = fmt_ids(.known))]
    UnknownNode {
        /// The id asked for.
        id: NodeId,
        /// The ids the cluster has.
        known: Vec<NodeId>,
    },
    /// The command needs the node running, and it is not.
    #[error("node {0} is not running (start it with `ringstore cluster restart {id}`)", id = .0.0)]
    NotRunning(NodeId),
    /// The running executable could not be found (to start nodes with it).
    #[error("cannot find the ringstore executable: {0}")]
    NoBinary(std::io::Error),
    /// A node process could not be started.
    #[error("cannot start node {id} ({binary}): {source}", binary = .binary.display())]
    Spawn {
        /// The node.
        id: NodeId,
        /// The executable.
        binary: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A node process exited while it was expected to run.
    #[error("node {id} exited; the end of its log {log}:\n{tail}", log = .log.display())]
    NodeExited {
        /// The node.
        id: NodeId,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// A signal could not be sent.
    #[error("cannot signal node {id} (pid {pid}): {source}")]
    Signal {
        /// The node.
        id: NodeId,
        /// Its process id.
        pid: u32,
        /// The error.
        source: nix::Error,
    },
    /// A node did not exit even after SIGKILL.
    #[error("node {id} (pid {pid}) is still running after SIGKILL")]
    Unkillable {
        /// The node.
        id: NodeId,
        /// Its process id.
        pid: u32,
    },
    /// A condition did not hold in time.
    #[error("timed out after {waited:?} waiting for {goal}: {problem}")]
    Timeout {
        /// What was awaited.
        goal: &'static str,
        /// How long.
        waited: Duration,
        /// The last thing that was not yet true.
        problem: String,
    },
    /// A request to a node failed.
    #[error(transparent)]
    Http(#[from] HttpClientError),
    /// A fault command reached some nodes but not others.
    #[error("the command failed on {count} node(s): {list}", count = .0.len(), list = fmt_failures(.0))]
    Partial(Vec<(NodeId, HttpClientError)>),
    /// `cluster.json` lists no node (every node was removed by hand).
    #[error("the cluster has no nodes left; start a new one with `ringstore cluster up`")]
    NoNodes,
    /// A partition needs at least two sides.
    #[error("a partition needs at least two sides, like `1,2 3,4,5`")]
    TooFewSides,
    /// A partition side names no node.
    #[error("a partition side is empty")]
    EmptySide,
    /// A node is on two sides of a partition.
    #[error("node {0} is on more than one side of the partition")]
    NodeOnTwoSides(NodeId),
    /// `remove` would leave fewer nodes than N.
    #[error("removing a node would leave {left} nodes, fewer than N = {n}")]
    TooFewLeft {
        /// Nodes that would remain.
        left: usize,
        /// The replication factor.
        n: u8,
    },
}

fn fmt_ids(ids: &[NodeId]) -> String {
    ids.iter()
        .map(|id| id.0.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_failures(failures: &[(NodeId, HttpClientError)]) -> String {
    failures
        .iter()
        .map(|(id, e)| format!("node {}: {e}", id.0))
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a node was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// It exited after SIGTERM (a clean shutdown).
    Terminated,
    /// It ignored SIGTERM for [`STOP_GRACE`] and was SIGKILLed.
    Killed,
    /// It was not running.
    NotRunning,
}

/// Parses one side of a partition: `1,2` or `n1,n2`.
pub fn parse_node_list(text: &str) -> Result<Vec<NodeId>, String> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            part.trim()
                .parse::<NodeId>()
                .map_err(|error| error.to_string())
        })
        .collect()
}

/// A handle on a local cluster: its directory, its `cluster.json`, and the node processes this
/// handle started (kept so that they are reaped when they exit).
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    file: ClusterFile,
    client: HttpClient,
    children: BTreeMap<NodeId, Child>,
    /// How long `add`, `restart` and `wait_ready` wait for convergence.
    pub ready_timeout: Duration,
    /// How long `remove` waits for the node to report `Left`.
    pub leave_timeout: Duration,
}

/// Starts a new cluster as `options` says, or restarts the stopped cluster already in
/// `options.dir` (keeping its data; the node count and quorums are then the existing ones).
/// Returns once the cluster has converged; on failure the nodes it started are stopped again.
pub fn up(options: &UpOptions) -> Result<Cluster, ClusterError> {
    if ClusterFile::exists_in(&options.dir) {
        let mut cluster = Cluster::open(&options.dir)?;
        cluster.ready_timeout = options.ready_timeout;
        let running = cluster.running_ids();
        if !running.is_empty() {
            return Err(ClusterError::AlreadyRunning {
                dir: options.dir.clone(),
                running,
            });
        }
        if let Some(binary) = &options.binary {
            cluster.file.binary = Some(binary.clone());
        }
        for id in cluster.file.ids() {
            cluster.start(id)?;
        }
        if let Err(e) = cluster.wait_ready() {
            let _ = cluster.down();
            return Err(e);
        }
        return Ok(cluster);
    }
    let dir = prepare_dir(options)?;
    let binary = match &options.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe().map_err(ClusterError::NoBinary)?,
    };
    let mut node_config = options.node_config.clone();
    node_config.n = options.n;
    node_config.r = options.r;
    node_config.w = options.w;
    node_config.validate()?;

    let ca_cert = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let ca = ClusterCa::generate()?;
    ca.save(&ca_cert, &ca_key)?;

    let ports = allocate_ports(options.nodes)?;
    let entries: Vec<NodeEntry> = ports
        .iter()
        .enumerate()
        .map(|(i, &(peer_addr, http_addr))| {
            node_entry(&dir, NodeId(i as u64 + 1), peer_addr, http_addr)
        })
        .collect();
    for entry in &entries {
        let seeds: Vec<&NodeEntry> = entries.iter().filter(|e| e.id != entry.id).collect();
        write_node_files(&ca, &ca_cert, entry, &seeds, &node_config, None)?;
    }
    let file = ClusterFile {
        n: options.n,
        r: options.r,
        w: options.w,
        ca_cert,
        ca_key,
        nodes: entries,
        removed: Vec::new(),
        binary: Some(binary),
    };
    // Saved before any process starts, so that `cluster down` can clean up after a failure.
    file.save(&dir)?;
    let mut cluster = Cluster {
        dir,
        file,
        client: HttpClient::new(),
        children: BTreeMap::new(),
        ready_timeout: options.ready_timeout,
        leave_timeout: DEFAULT_LEAVE_TIMEOUT,
    };
    let started = cluster
        .file
        .ids()
        .into_iter()
        .try_for_each(|id| cluster.start(id));
    if let Err(e) = started.and_then(|()| cluster.wait_ready().map(|_| ())) {
        let _ = cluster.down();
        return Err(e);
    }
    Ok(cluster)
}

/// Checks the options and makes the (empty) cluster directory; returns its absolute path.
fn prepare_dir(options: &UpOptions) -> Result<PathBuf, ClusterError> {
    if options.nodes == 0 || options.nodes > MAX_NODES {
        return Err(ClusterError::BadNodeCount(options.nodes));
    }
    if usize::from(options.n) > options.nodes {
        return Err(ClusterError::NTooLarge {
            n: options.n,
            nodes: options.nodes,
        });
    }
    let io = |action, source| ClusterError::Io {
        action,
        path: options.dir.clone(),
        source,
    };
    if options.dir.exists() {
        let mut listing = std::fs::read_dir(&options.dir).map_err(|e| io("read", e))?;
        if listing.next().is_some() {
            return Err(ClusterError::DirNotEmpty(options.dir.clone()));
        }
    }
    std::fs::create_dir_all(&options.dir).map_err(|e| io("create", e))?;
    std::fs::canonicalize(&options.dir).map_err(|e| io("resolve", e))
}

/// The entry of node `id` laid out under `dir`.
fn node_entry(dir: &Path, id: NodeId, peer_addr: SocketAddr, http_addr: SocketAddr) -> NodeEntry {
    let node_dir = dir.join(format!("n{}", id.0));
    NodeEntry {
        id,
        pid: None,
        http_addr,
        peer_addr,
        config: node_dir.join("node.toml"),
        log: node_dir.join("node.log"),
        data_dir: node_dir,
    }
}

/// Runtime worker threads for each of `nodes` node processes sharing this machine: its cores
/// divided among them, at least one each.
fn shared_machine_io_threads(nodes: usize) -> std::num::NonZeroUsize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    std::num::NonZeroUsize::new(cores / nodes.max(1)).unwrap_or(std::num::NonZeroUsize::MIN)
}

/// Writes a node's directory, certificate and config file.
fn write_node_files(
    ca: &ClusterCa,
    ca_cert: &Path,
    entry: &NodeEntry,
    seeds: &[&NodeEntry],
    node_config: &NodeConfig,
    template: Option<&NodeFileConfig>,
) -> Result<(), ClusterError> {
    std::fs::create_dir_all(&entry.data_dir).map_err(|source| ClusterError::Io {
        action: "create",
        path: entry.data_dir.clone(),
        source,
    })?;
    let cert = entry.data_dir.join("node.pem");
    let key = entry.data_dir.join("node.key");
    ca.issue_node_cert(entry.id)?.save(&cert, &key)?;
    let config = NodeFileConfig {
        id: entry.id,
        data_dir: entry.data_dir.clone(),
        peer_addr: entry.peer_addr,
        http_addr: entry.http_addr,
        zone: template.and_then(|t| t.zone.clone()),
        seed: None,
        sync: template.map(|t| t.sync).unwrap_or_default(),
        io_threads: template
            .and_then(|t| t.io_threads)
            .or_else(|| Some(shared_machine_io_threads(seeds.len() + 1))),
        tls: TlsFiles {
            ca_cert: ca_cert.to_path_buf(),
            cert,
            key,
        },
        seeds: seeds
            .iter()
            .map(|s| SeedPeer {
                id: s.id,
                addr: s.peer_addr,
            })
            .collect(),
        node: node_config.clone(),
    };
    std::fs::write(&entry.config, config.to_toml()?).map_err(|source| ClusterError::Io {
        action: "write",
        path: entry.config.clone(),
        source,
    })
}

/// One pair of free loopback ports (UDP for QUIC, TCP for HTTP), released for the node.
fn free_port_pair() -> Result<(SocketAddr, SocketAddr), ClusterError> {
    let io = |source| ClusterError::Io {
        action: "bind a free port on",
        path: PathBuf::from("127.0.0.1"),
        source,
    };
    let udp = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
    let tcp = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    Ok((udp.local_addr().map_err(io)?, tcp.local_addr().map_err(io)?))
}

/// Finds `count` pairs of free loopback ports (UDP for QUIC peers, TCP for HTTP). All sockets
/// are held until every port is chosen, so the pairs are distinct, then released for the nodes.
fn allocate_ports(count: usize) -> Result<Vec<(SocketAddr, SocketAddr)>, ClusterError> {
    let io = |source| ClusterError::Io {
        action: "bind a free port on",
        path: PathBuf::from("127.0.0.1"),
        source,
    };
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let udp = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
        let tcp = TcpListener::bind("127.0.0.1:0").map_err(io)?;
        held.push((udp, tcp));
    }
    held.iter()
        .map(|(udp, tcp)| Ok((udp.local_addr().map_err(io)?, tcp.local_addr().map_err(io)?)))
        .collect()
}

/// Whether the process `pid` is alive and runs the node whose config is `config`. A process
/// still exiting counts as alive: its command line is gone (the kernel drops its memory
/// first) but its sockets may not be closed yet, and a restart checking its ports at that
/// moment moved the node to new ones for nothing.
fn pid_runs_config(pid: u32, config: &Path) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) if cmdline.is_empty() => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !process_has_exited(&stat)),
        Ok(cmdline) => {
            let wanted = config.as_os_str().as_encoded_bytes();
            cmdline.split(|&b| b == 0).any(|arg| arg == wanted)
        }
        Err(_) if Path::new("/proc/self").exists() => false,
        Err(_) => i32::try_from(pid).is_ok_and(|pid| kill(Pid::from_raw(pid), None).is_ok()),
    }
}

/// Whether a `/proc/PID/stat` line shows a process that has finished exiting (a zombie, or
/// dead), all its files closed. The state follows the command name, which may itself hold
/// spaces and parentheses, so it is read after the last `)`.
fn process_has_exited(stat: &str) -> bool {
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    matches!(state, Some("Z" | "X" | "x") | None)
}

/// Ready (`None`) when every node in `running` answered, is `Up`, has `ring_nodes` nodes in its
/// ring, sees every other running node `Up` and alive, and all rings have the same digest;
/// otherwise the first thing that is not yet so.
pub fn readiness_problem(
    running: &[NodeId],
    statuses: &BTreeMap<NodeId, Result<NodeStatus, HttpClientError>>,
    ring_nodes: usize,
) -> Option<String> {
    let mut digest: Option<(NodeId, u64)> = None;
    for &id in running {
        let status = match statuses.get(&id) {
            Some(Ok(status)) => status,
            Some(Err(e)) => return Some(format!("node {} does not answer: {e}", id.0)),
            None => return Some(format!("node {} was not asked", id.0)),
        };
        if status.status != "Up" {
            return Some(format!("node {} is {}", id.0, status.status));
        }
        if status.ring.nodes != ring_nodes as u64 {
            return Some(format!(
                "node {} has {} of {ring_nodes} nodes in its ring",
                id.0, status.ring.nodes
            ));
        }
        for &peer in running.iter().filter(|&&p| p != id) {
            match status.member(peer) {
                None => return Some(format!("node {} does not know node {} yet", id.0, peer.0)),
                Some(m) if m.status != "Up" => {
                    return Some(format!("node {} sees node {} {}", id.0, peer.0, m.status));
                }
                Some(m) if !m.up => {
                    return Some(format!("node {} sees node {} down", id.0, peer.0));
                }
                Some(_) => {}
            }
        }
        match digest {
            None => digest = Some((id, status.ring_digest)),
            Some((first, d)) if d != status.ring_digest => {
                return Some(format!(
                    "nodes {} and {} have different rings",
                    first.0, id.0
                ));
            }
            Some(_) => {}
        }
    }
    None
}

impl Cluster {
    /// Opens the cluster recorded in `dir/cluster.json`.
    pub fn open(dir: &Path) -> Result<Cluster, ClusterError> {
        let file = ClusterFile::load(dir)?;
        Ok(Cluster {
            dir: dir.to_path_buf(),
            file,
            client: HttpClient::new(),
            children: BTreeMap::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            leave_timeout: DEFAULT_LEAVE_TIMEOUT,
        })
    }

    /// Re-reads `cluster.json` (after another command, such as the CLI, changed it).
    pub fn reload(&mut self) -> Result<(), ClusterError> {
        self.file = ClusterFile::load(&self.dir)?;
        Ok(())
    }

    /// The cluster directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster's record.
    pub fn file(&self) -> &ClusterFile {
        &self.file
    }

    /// The HTTP client the cluster commands use.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// The entry of node `id`, or a clear error naming the ids there are.
    pub fn node(&self, id: NodeId) -> Result<&NodeEntry, ClusterError> {
        self.file.node(id).ok_or_else(|| ClusterError::UnknownNode {
            id,
            known: self.file.ids(),
        })
    }

    /// The HTTP address of node `id`.
    pub fn http_addr(&self, id: NodeId) -> Result<SocketAddr, ClusterError> {
        Ok(self.node(id)?.http_addr)
    }

    /// HTTP addresses to try for a client request: running nodes first, in id order.
    pub fn client_addrs(&mut self) -> Vec<SocketAddr> {
        self.entries_running_first()
            .iter()
            .map(|n| n.http_addr)
            .collect()
    }

    /// Whether node `id`'s process is alive (reaping it if this handle started it and it exited).
    pub fn is_running(&mut self, id: NodeId) -> bool {
        let Some(entry) = self.file.node(id) else {
            return false;
        };
        let Some(pid) = entry.pid else {
            return false;
        };
        if let Some(child) = self.children.get_mut(&id)
            && child.id() == pid
        {
            match child.try_wait() {
                Ok(None) => return true,
                Ok(Some(_)) => {
                    self.children.remove(&id);
                    return false;
                }
                Err(_) => {}
            }
        }
        pid_runs_config(pid, &entry.config)
    }

    /// The nodes' QUIC addresses for the native client, running nodes first.
    pub fn client_nodes(&mut self) -> Vec<NodeAddr> {
        self.entries_running_first()
            .iter()
            .map(|n| NodeAddr {
                id: n.id,
                addr: n.peer_addr,
            })
            .collect()
    }

    /// Every node's entry, the running ones first (each group in id order).
    fn entries_running_first(&mut self) -> Vec<NodeEntry> {
        let running = self.running_ids();
        let (mut first, rest): (Vec<_>, Vec<_>) = self
            .file
            .nodes
            .iter()
            .cloned()
            .partition(|n| running.contains(&n.id));
        first.extend(rest);
        first
    }

    /// The ids of the nodes whose processes are alive.
    pub fn running_ids(&mut self) -> Vec<NodeId> {
        self.file
            .ids()
            .into_iter()
            .filter(|&id| self.is_running(id))
            .collect()
    }

    fn binary(&self) -> Result<PathBuf, ClusterError> {
        match &self.file.binary {
            Some(binary) => Ok(binary.clone()),
            None => std::env::current_exe().map_err(ClusterError::NoBinary),
        }
    }

    fn save(&self) -> Result<(), ClusterError> {
        Ok(self.file.save(&self.dir)?)
    }

    /// Starts node `id`'s process (detached: own process group, output to its log) and records
    /// its pid. Does not wait for it to serve.
    pub fn start(&mut self, id: NodeId) -> Result<(), ClusterError> {
        if self.is_running(id) {
            return Ok(());
        }
        let binary = self.binary()?;
        self.keep_ports_free(id)?;
        let entry = self.node(id)?.clone();
        let log_io = |source| ClusterError::Io {
            action: "open",
            path: entry.log.clone(),
            source,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&entry.log)
            .map_err(log_io)?;
        let log_err = log.try_clone().map_err(log_io)?;
        let child = Command::new(&binary)
            .arg("node")
            .arg("--config")
            .arg(&entry.config)
            .stdin(Stdio::null())
            // The log is a file: no terminal colour codes in it.
            .env("NO_COLOR", "1")
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .map_err(|source| ClusterError::Spawn {
                id,
                binary: binary.clone(),
                source,
            })?;
        let pid = child.id();
        self.children.insert(id, child);
        if let Some(entry) = self.file.node_mut(id) {
            entry.pid = Some(pid);
        }
        self.save()
    }

    /// Moves a stopped node to fresh ports if another process took one of its recorded ones
    /// meanwhile (it would fail with "address in use"): rewrites its `node.toml` and its
    /// `cluster.json` entry. Peers learn the new address from its gossip (a restart bumps its
    /// generation, which supersedes what they knew).
    fn keep_ports_free(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let entry = self.node(id)?.clone();
        let taken = UdpSocket::bind(entry.peer_addr).is_err()
            || TcpListener::bind(entry.http_addr).is_err();
        if !taken {
            return Ok(());
        }
        let (peer_addr, http_addr) = free_port_pair()?;
        let mut config = NodeFileConfig::load(&entry.config)?;
        config.peer_addr = peer_addr;
        config.http_addr = http_addr;
        std::fs::write(&entry.config, config.to_toml()?).map_err(|source| ClusterError::Io {
            action: "write",
            path: entry.config.clone(),
            source,
        })?;
        tracing::info!(
            node = %id,
            old_peer = %entry.peer_addr,
            old_http = %entry.http_addr,
            %peer_addr,
            %http_addr,
            "a recorded port was taken by another process; the node moves to new ones"
        );
        if let Some(entry) = self.file.node_mut(id) {
            entry.peer_addr = peer_addr;
            entry.http_addr = http_addr;
        }
        self.save()
    }

    /// Every running node's `/status` (or why it did not answer).
    pub fn statuses(&mut self) -> BTreeMap<NodeId, Result<NodeStatus, HttpClientError>> {
        let running = self.running_ids();
        running
            .into_iter()
            .filter_map(|id| {
                let addr = self.file.node(id)?.http_addr;
                Some((id, self.client.status(addr)))
            })
            .collect()
    }

    /// Fails with the node's log tail if a node that should run (it has a pid) has exited.
    fn check_alive(&mut self) -> Result<(), ClusterError> {
        for id in self.file.ids() {
            let expected = self.file.node(id).is_some_and(|e| e.pid.is_some());
            if expected && !self.is_running(id) {
                let log = self.node(id)?.log.clone();
                if let Some(entry) = self.file.node_mut(id) {
                    entry.pid = None;
                }
                self.save()?;
                return Err(ClusterError::NodeExited {
                    id,
                    tail: log_tail(&log, LOG_TAIL_LINES),
                    log,
                });
            }
        }
        Ok(())
    }

    /// Waits until the running nodes agree on a ring holding every node of the cluster and see
    /// each other up (see [`readiness_problem`]). Returns how long it took.
    pub fn wait_ready(&mut self) -> Result<Duration, ClusterError> {
        let start = Instant::now();
        let deadline = start + self.ready_timeout;
        loop {
            self.check_alive()?;
            let running = self.running_ids();
            let statuses = self.statuses();
            let problem = readiness_problem(&running, &statuses, self.file.nodes.len());
            match problem {
                None => return Ok(start.elapsed()),
                Some(problem) if Instant::now() >= deadline => {
                    return Err(ClusterError::Timeout {
                        goal: "the cluster to converge",
                        waited: start.elapsed(),
                        problem,
                    });
                }
                Some(_) => std::thread::sleep(POLL_INTERVAL),
            }
        }
    }

    /// Polls `condition` until it returns `Ok(None)` or `timeout` passes; `Ok(Some(problem))`
    /// means "not yet", with what is missing.
    pub fn wait_for(
        &mut self,
        goal: &'static str,
        timeout: Duration,
        mut condition: impl FnMut(&mut Cluster) -> Result<Option<String>, ClusterError>,
    ) -> Result<Duration, ClusterError> {
        let start = Instant::now();
        loop {
            match condition(self)? {
                None => return Ok(start.elapsed()),
                Some(problem) if start.elapsed() >= timeout => {
                    return Err(ClusterError::Timeout {
                        goal,
                        waited: start.elapsed(),
                        problem,
                    });
                }
                Some(_) => std::thread::sleep(POLL_INTERVAL),
            }
        }
    }

    fn signal(&mut self, id: NodeId, signal: Signal) -> Result<(), ClusterError> {
        let Some(pid) = self.node(id)?.pid else {
            return Ok(());
        };
        let raw = i32::try_from(pid).map_err(|_| ClusterError::Signal {
            id,
            pid,
            source: nix::Error::EINVAL,
        })?;
        match kill(Pid::from_raw(raw), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(ClusterError::Signal { id, pid, source }),
        }
    }

    /// Waits up to `timeout` for every node of `ids` to exit; returns those still running.
    fn wait_exit(&mut self, ids: &[NodeId], timeout: Duration) -> Vec<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            let alive: Vec<NodeId> = ids
                .iter()
                .copied()
                .filter(|&id| self.is_running(id))
                .collect();
            if alive.is_empty() || Instant::now() >= deadline {
                return alive;
            }
            std::thread::sleep(POLL_INTERVAL / 2);
        }
    }

    /// Stops the nodes `ids`: SIGTERM, up to [`STOP_GRACE`] for a clean exit, then SIGKILL.
    fn stop_nodes(&mut self, ids: &[NodeId]) -> Result<Vec<(NodeId, StopOutcome)>, ClusterError> {
        let mut outcomes = Vec::new();
        let mut signalled = Vec::new();
        for &id in ids {
            if self.is_running(id) {
                self.signal(id, Signal::SIGTERM)?;
                signalled.push(id);
            } else {
                outcomes.push((id, StopOutcome::NotRunning));
            }
        }
        let stragglers = self.wait_exit(&signalled, STOP_GRACE);
        for &id in &stragglers {
            self.signal(id, Signal::SIGKILL)?;
        }
        let survivors = self.wait_exit(&stragglers, KILL_WAIT);
        for &id in &signalled {
            if survivors.contains(&id) {
                continue;
            }
            let outcome = if stragglers.contains(&id) {
                StopOutcome::Killed
            } else {
                StopOutcome::Terminated
            };
            outcomes.push((id, outcome));
            if let Some(entry) = self.file.node_mut(id) {
                entry.pid = None;
            }
        }
        self.save()?;
        if let Some(&id) = survivors.first() {
            let pid = self.node(id)?.pid.unwrap_or(0);
            return Err(ClusterError::Unkillable { id, pid });
        }
        outcomes.sort_by_key(|(id, _)| *id);
        Ok(outcomes)
    }

    /// `cluster down`: stops every node (SIGTERM, then SIGKILL for stragglers).
    pub fn down(&mut self) -> Result<Vec<(NodeId, StopOutcome)>, ClusterError> {
        let ids = self.file.ids();
        self.stop_nodes(&ids)
    }

    /// `cluster kill NODE`: SIGKILLs the node (a crash: no clean shutdown).
    pub fn kill(&mut self, id: NodeId) -> Result<(), ClusterError> {
        self.node(id)?;
        if !self.is_running(id) {
            return Err(ClusterError::NotRunning(id));
        }
        self.signal(id, Signal::SIGKILL)?;
        if !self.wait_exit(&[id], KILL_WAIT).is_empty() {
            let pid = self.node(id)?.pid.unwrap_or(0);
            return Err(ClusterError::Unkillable { id, pid });
        }
        if let Some(entry) = self.file.node_mut(id) {
            entry.pid = None;
        }
        self.save()
    }

    /// `cluster restart NODE`: stops the node if it runs (cleanly), starts it again with its
    /// data, and waits until the cluster has converged with it.
    pub fn restart(&mut self, id: NodeId) -> Result<Duration, ClusterError> {
        self.node(id)?;
        self.stop_nodes(&[id])?;
        self.start(id)?;
        self.wait_ready()
    }

    /// `cluster partition A B ...`: every node of each side drops all traffic to and from the
    /// nodes of the other sides. Nodes named on no side are not affected.
    pub fn partition(&mut self, sides: &[Vec<NodeId>]) -> Result<(), ClusterError> {
        if sides.len() < 2 {
            return Err(ClusterError::TooFewSides);
        }
        let mut seen = Vec::new();
        for side in sides {
            if side.is_empty() {
                return Err(ClusterError::EmptySide);
            }
            for &id in side {
                self.node(id)?;
                if seen.contains(&id) {
                    return Err(ClusterError::NodeOnTwoSides(id));
                }
                seen.push(id);
            }
        }
        let mut failures = Vec::new();
        for (i, side) in sides.iter().enumerate() {
            let others: Vec<NodeId> = sides
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .flat_map(|(_, s)| s.iter().copied())
                .collect();
            for &id in side {
                let addr = self.http_addr(id)?;
                if let Err(e) = self.client.partition(addr, &others) {
                    failures.push((id, e));
                }
            }
        }
        partial(failures)
    }

    /// `cluster heal`: every running node clears its partitions and delays.
    pub fn heal(&mut self) -> Result<(), ClusterError> {
        let mut failures = Vec::new();
        for id in self.running_ids() {
            let addr = self.http_addr(id)?;
            if let Err(e) = self.client.heal(addr) {
                failures.push((id, e));
            }
        }
        partial(failures)
    }

    /// `cluster slow NODE --delay-ms D`: the node delays everything it sends by `delay_ms`, so
    /// its replies (and its requests as a coordinator) arrive late: a slow node.
    pub fn slow(&mut self, id: NodeId, delay_ms: u64) -> Result<(), ClusterError> {
        let addr = self.http_addr(id)?;
        Ok(self.client.slow(addr, None, delay_ms)?)
    }

    /// `cluster add`: starts a new node (a fresh id, the same settings as the first node) that
    /// joins through the running nodes as seeds; waits until every node's ring holds it.
    /// Ranges then move to it by ownership handoff in the background.
    pub fn add(&mut self) -> Result<NodeId, ClusterError> {
        let template_entry = self
            .file
            .nodes
            .first()
            .ok_or(ClusterError::NoNodes)?
            .clone();
        let template = NodeFileConfig::load(&template_entry.config)?;
        let ca = ClusterCa::load(&self.file.ca_cert, &self.file.ca_key)?;
        let id = self.file.next_id();
        let (peer_addr, http_addr) = free_port_pair()?;
        let entry = node_entry(&self.dir, id, peer_addr, http_addr);
        let running = self.running_ids();
        let seeds: Vec<NodeEntry> = self
            .file
            .nodes
            .iter()
            .filter(|n| running.contains(&n.id))
            .cloned()
            .collect();
        let seed_refs: Vec<&NodeEntry> = seeds.iter().collect();
        let ca_cert = self.file.ca_cert.clone();
        write_node_files(
            &ca,
            &ca_cert,
            &entry,
            &seed_refs,
            &template.node,
            Some(&template),
        )?;
        self.file.nodes.push(entry);
        self.save()?;
        self.start(id)?;
        self.wait_ready()?;
        Ok(id)
    }

    /// `cluster remove NODE`: decommissions the node (it hands its ranges to their new owners
    /// and reports `Left`), stops it, and drops it from `cluster.json`. Its directory is kept.
    pub fn remove(&mut self, id: NodeId) -> Result<Duration, ClusterError> {
        self.node(id)?;
        let left = self.file.nodes.len() - 1;
        if left < usize::from(self.file.n) {
            return Err(ClusterError::TooFewLeft {
                left,
                n: self.file.n,
            });
        }
        if !self.is_running(id) {
            return Err(ClusterError::NotRunning(id));
        }
        let addr = self.http_addr(id)?;
        self.client.leave(addr)?;
        let timeout = self.leave_timeout;
        let waited = self.wait_for(
            "the node to hand off its data and report Left",
            timeout,
            |c| {
                c.check_alive()?;
                Ok(match c.client.status(addr) {
                    Ok(status) if status.status == "Left" => None,
                    Ok(status) => Some(format!("node {} is {}", id.0, status.status)),
                    Err(e) => Some(e.to_string()),
                })
            },
        )?;
        self.stop_nodes(&[id])?;
        self.file.nodes.retain(|n| n.id != id);
        self.file.removed.push(id);
        self.children.remove(&id);
        self.save()?;
        self.wait_ready()?;
        Ok(waited)
    }

    /// `cluster status`: every node's view, for [`ClusterStatus::render`].
    pub fn status(&mut self) -> ClusterStatus {
        let running = self.running_ids();
        let statuses = self.statuses();
        let nodes = self
            .file
            .nodes
            .iter()
            .map(|entry| NodeReport {
                id: entry.id,
                http_addr: entry.http_addr,
                running: running.contains(&entry.id),
                log: entry.log.clone(),
                status: match statuses.get(&entry.id) {
                    Some(Ok(status)) => Some(status.clone()),
                    _ => None,
                },
                error: match statuses.get(&entry.id) {
                    Some(Err(e)) => Some(e.to_string()),
                    _ => None,
                },
            })
            .collect();
        ClusterStatus {
            nodes,
            problem: readiness_problem(&running, &statuses, self.file.nodes.len()),
        }
    }
}

fn partial(failures: Vec<(NodeId, HttpClientError)>) -> Result<(), ClusterError> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Partial(failures))
    }
}

/// Milliseconds from `at_ms` (since the Unix epoch) to now; 0 for a time in the future.
fn ms_since(at_ms: u64) -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    now_ms.saturating_sub(at_ms)
}

/// The last `lines` lines of a log file (or a note that it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..].join("\n")
        }
        Err(e) => format!("(cannot read the log: {e})"),
    }
}

/// One node in `cluster status`.
#[derive(Clone, Debug)]
pub struct NodeReport {
    /// The node.
    pub id: NodeId,
    /// Its HTTP address.
    pub http_addr: SocketAddr,
    /// Whether its process is alive.
    pub running: bool,
    /// Its log file.
    pub log: PathBuf,
    /// Its `/status`, when it answered.
    pub status: Option<NodeStatus>,
    /// Why it did not answer, when it runs but did not.
    pub error: Option<String>,
}

/// A snapshot of the whole cluster for `cluster status`.
#[derive(Clone, Debug)]
pub struct ClusterStatus {
    /// Every node of `cluster.json`, in order.
    pub nodes: Vec<NodeReport>,
    /// `None` when the running nodes have converged (see [`readiness_problem`]).
    pub problem: Option<String>,
}

impl ClusterStatus {
    /// How `observer` sees `node`: `U` up, `D` down, `J`/`L` joining or leaving/left, `-`
    /// unknown to it, `?` observer not answering, `.` itself.
    fn view_char(&self, observer: &NodeReport, node: NodeId) -> char {
        if observer.id == node {
            return '.';
        }
        let Some(status) = &observer.status else {
            return '?';
        };
        match status.member(node) {
            None => '-',
            Some(m) => match m.status.as_str() {
                "Up" if m.up => 'U',
                "Up" => 'D',
                "Joining" => 'J',
                _ => 'L',
            },
        }
    }

    /// The status as a table, one line per node, then whether the rings agree.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<5} {:<21} {:<8} {:<8} {:<w$} {:>6} {:>8} {:>6} {:>13}",
            "node",
            "http address",
            "process",
            "state",
            "seen by",
            "owns",
            "keys",
            "hints",
            "anti-entropy",
            w = self.nodes.len().max(7),
        );
        for node in &self.nodes {
            let views: String = self
                .nodes
                .iter()
                .map(|observer| self.view_char(observer, node.id))
                .collect();
            let process = if node.running { "running" } else { "stopped" };
            let state = match (&node.status, node.running) {
                (Some(s), _) => s.status.clone(),
                (None, true) => "no answer".to_string(),
                (None, false) => "-".to_string(),
            };
            // Ownership as this node computes it, or as the first answering node does.
            let owns = node
                .status
                .as_ref()
                .and_then(|s| s.ownership_of(node.id))
                .or_else(|| {
                    self.nodes
                        .iter()
                        .filter_map(|o| o.status.as_ref()?.ownership_of(node.id))
                        .next()
                })
                .map(|f| format!("{:.1}%", f * 100.0))
                .unwrap_or_else(|| "-".to_string());
            let (keys, hints, anti_entropy) = match &node.status {
                Some(s) => (
                    s.keys.to_string(),
                    s.hints_total().to_string(),
                    match s.last_anti_entropy_ms {
                        Some(at_ms) => format!("{:.1}s ago", ms_since(at_ms) as f64 / 1000.0),
                        None => "never".to_string(),
                    },
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "{:<5} {:<21} {:<8} {:<8} {:<w$} {:>6} {:>8} {:>6} {:>13}",
                format!("n{}", node.id.0),
                node.http_addr.to_string(),
                process,
                state,
                views,
                owns,
                keys,
                hints,
                anti_entropy,
                w = self.nodes.len().max(7),
            );
        }
        let _ = writeln!(
            out,
            "seen by: how each node (in the order above) sees this one: U up, D down, J joining, \
             L leaving/left, - unknown, ? not answering, . itself"
        );
        let stopped: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !n.running)
            .map(|n| format!("n{}", n.id.0))
            .collect();
        match &self.problem {
            None if stopped.is_empty() => {
                let _ = writeln!(out, "ring: converged (all nodes agree)");
            }
            None => {
                let _ = writeln!(
                    out,
                    "ring: converged among the running nodes ({} stopped)",
                    stopped.join(", ")
                );
            }
            Some(problem) => {
                let _ = writeln!(out, "ring: not converged: {problem}");
            }
        }
        for node in &self.nodes {
            if let Some(error) = &node.error {
                let _ = writeln!(out, "n{}: {error} (log: {})", node.id.0, node.log.display());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http_client::{MemberView, RingView};

    // A zombie or dead process has exited; a running or exiting one (R, S, D) has not, even
    // when its command name holds spaces and parentheses; an unreadable line means gone.
    #[test]
    fn exited_processes_are_told_from_exiting_ones() {
        assert!(process_has_exited("4242 (ringstore) Z 1 4242 4242 0 -1"));
        assert!(process_has_exited("4242 (ringstore) X 1"));
        assert!(!process_has_exited("4242 (ringstore) R 1 4242"));
        assert!(!process_has_exited("4242 (ringstore) D 1 4242"));
        assert!(!process_has_exited("4242 (a) Z (b)) S 1 4242"));
        assert!(process_has_exited("garbage"));
        // This test's own process is running.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        assert!(own.is_empty() || !process_has_exited(&own));
    }

    fn status(id: u64, digest: u64, ring_nodes: u64, peers: &[(u64, &str, bool)]) -> NodeStatus {
        NodeStatus {
            id,
            status: "Up".into(),
            ring_digest: digest,
            members: peers
                .iter()
                .map(|&(id, status, up)| MemberView {
                    id,
                    addr: String::new(),
                    status: status.into(),
                    up,
                    phi: 0.0,
                })
                .collect(),
            ring: RingView {
                nodes: ring_nodes,
                ownership: BTreeMap::new(),
            },
            ..NodeStatus::default()
        }
    }

    #[test]
    fn node_lists_parse_with_or_without_prefix() {
        // Goal: `1,n2, 3` names nodes 1, 2 and 3; a part that is no node id is a clear error.
        assert_eq!(
            parse_node_list("1,n2, 3"),
            Ok(vec![NodeId(1), NodeId(2), NodeId(3)])
        );
        assert!(parse_node_list("1,x").unwrap_err().contains("`x`"));
    }

    #[test]
    fn readiness_needs_agreement_and_mutual_liveness() {
        // Goal: `up` waits until every node sees every other up and all rings are equal.
        let all = [(1, "Up", true), (2, "Up", true)];
        let running = [NodeId(1), NodeId(2)];
        let mut statuses = BTreeMap::new();
        statuses.insert(NodeId(1), Ok(status(1, 7, 2, &all)));
        statuses.insert(NodeId(2), Ok(status(2, 7, 2, &all)));
        assert_eq!(readiness_problem(&running, &statuses, 2), None);
        // A different digest.
        statuses.insert(NodeId(2), Ok(status(2, 8, 2, &all)));
        assert!(
            readiness_problem(&running, &statuses, 2)
                .unwrap()
                .contains("different rings")
        );
        // A peer judged down.
        statuses.insert(NodeId(2), Ok(status(2, 7, 2, &[(1, "Up", false)])));
        assert!(
            readiness_problem(&running, &statuses, 2)
                .unwrap()
                .contains("down")
        );
        // A ring that misses a node (e.g. the killed node 3 is still a member).
        statuses.insert(NodeId(2), Ok(status(2, 7, 2, &all)));
        assert!(
            readiness_problem(&running, &statuses, 3)
                .unwrap()
                .contains("of 3 nodes")
        );
        // A node that does not answer.
        statuses.insert(
            NodeId(2),
            Err(HttpClientError::BadResponse {
                addr: "127.0.0.1:1".parse().unwrap(),
                what: "x".into(),
            }),
        );
        assert!(
            readiness_problem(&running, &statuses, 2)
                .unwrap()
                .contains("does not answer")
        );
    }

    #[test]
    fn up_refuses_bad_options_before_touching_disk() {
        // Goal: impossible options are clear errors, and nothing is created for them.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c");
        let mut options = UpOptions::new(&target);
        options.nodes = 0;
        assert!(matches!(up(&options), Err(ClusterError::BadNodeCount(0))));
        options.nodes = 2;
        assert!(matches!(
            up(&options),
            Err(ClusterError::NTooLarge { n: 3, nodes: 2 })
        ));
        assert!(!target.exists());
        // A directory with other things in it is not taken over.
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("precious.txt"), "x").unwrap();
        options.nodes = 3;
        assert!(matches!(up(&options), Err(ClusterError::DirNotEmpty(_))));
    }

    #[test]
    fn commands_on_unknown_nodes_are_clear_errors() {
        // Goal: naming a node that cluster.json lacks is an error listing the known ids.
        let dir = tempfile::tempdir().unwrap();
        let file = ClusterFile {
            n: 1,
            r: 1,
            w: 1,
            ca_cert: dir.path().join("ca.pem"),
            ca_key: dir.path().join("ca.key"),
            nodes: vec![node_entry(
                dir.path(),
                NodeId(1),
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:2".parse().unwrap(),
            )],
            removed: Vec::new(),
            binary: None,
        };
        file.save(dir.path()).unwrap();
        let mut cluster = Cluster::open(dir.path()).unwrap();
        let err = cluster.kill(NodeId(9)).unwrap_err();
        assert!(err.to_string().contains("unknown node n9"), "{err}");
        assert!(matches!(
            cluster.kill(NodeId(1)),
            Err(ClusterError::NotRunning(_))
        ));
        assert!(matches!(
            cluster.partition(&[vec![NodeId(1)], vec![NodeId(1)]]),
            Err(ClusterError::NodeOnTwoSides(_))
        ));
        assert!(matches!(
            cluster.partition(&[vec![NodeId(1)]]),
            Err(ClusterError::TooFewSides)
        ));
        assert!(!cluster.is_running(NodeId(1)));
    }

    #[test]
    fn liveness_reads_the_command_line() {
        // Goal: a pid counts as our node only if its command line names the node's config, so
        // a reused pid (here: this test process) is not mistaken for a node.
        let me = std::process::id();
        assert!(!pid_runs_config(me, Path::new("/nonexistent/node.toml")));
        let cmdline = std::fs::read(format!("/proc/{me}/cmdline")).unwrap();
        let arg0 = cmdline.split(|&b| b == 0).next().unwrap();
        assert!(pid_runs_config(
            me,
            Path::new(std::str::from_utf8(arg0).unwrap())
        ));
    }

    #[test]
    fn free_ports_are_distinct() {
        // Goal: the ports handed to the nodes of one cluster never collide.
        let ports = allocate_ports(8).unwrap();
        let mut udp: Vec<u16> = ports.iter().map(|(p, _)| p.port()).collect();
        let mut tcp: Vec<u16> = ports.iter().map(|(_, h)| h.port()).collect();
        udp.sort();
        udp.dedup();
        tcp.sort();
        tcp.dedup();
        assert_eq!((udp.len(), tcp.len()), (8, 8));
        assert!(
            ports
                .iter()
                .all(|(p, h)| p.ip().is_loopback() && h.ip().is_loopback())
        );
    }
}
