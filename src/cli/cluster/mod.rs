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

mod processes;
mod readiness;
mod render;
mod setup;

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

pub use processes::log_tail;
pub use readiness::readiness_problem;
pub use render::{ClusterStatus, NodeReport};
pub use ringstore_client::cluster_file::DEFAULT_CLUSTER_DIR;
pub use setup::up;
use setup::{free_port_pair, node_entry, write_node_files};

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

    fn save(&self) -> Result<(), ClusterError> {
        Ok(self.file.save(&self.dir)?)
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
}

fn partial(failures: Vec<(NodeId, HttpClientError)>) -> Result<(), ClusterError> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Partial(failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
