//! `cluster.json`: the record a local cluster keeps of its nodes, written by `ringstore cluster
//! up` and read by every other `cluster` subcommand and by the client's `--dir`.
//!
//! It is a convenience of the development tooling, not part of the store: the nodes never read
//! it (they find each other through the seeds in their own config files and then by gossip).
//!
//! # Guarantees
//! - Saved atomically: written to a temporary file in the same directory, synced, then renamed
//!   over the old one, so a crash never leaves a half-written `cluster.json`.
//! - Node ids are unique within the file ([`ClusterFile::load`] refuses a file that repeats one).
//!
//! # Limits
//! - One writer at a time: two `cluster` commands changing the same directory at once may lose
//!   one of the updates (last rename wins). Nothing locks the file.
//! - A `pid` is only as good as the moment it was written; liveness is checked separately
//!   (`cluster::process_alive`) because a pid may have been reused after a reboot.

use ringstore_core::NodeId;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// Where `cluster up` puts a cluster when no `--dir` is given (relative to the working dir).
pub const DEFAULT_CLUSTER_DIR: &str = "ringstore-cluster";

/// Parses `--node`: `HOST:PORT`, optionally written as `http://HOST:PORT/`.
pub fn parse_http_addr(text: &str) -> Result<SocketAddr, String> {
    let trimmed = text
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    trimmed
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("`{text}` is not an address like 127.0.0.1:8001"))
}

/// The name of the file inside a cluster directory.
pub const CLUSTER_FILE_NAME: &str = "cluster.json";

/// Everything a `cluster` command needs to find, talk to and signal the nodes of one cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Replicas per key the nodes were started with.
    pub n: u8,
    /// Default read quorum the nodes were started with.
    pub r: u8,
    /// Default write quorum the nodes were started with.
    pub w: u8,
    /// The cluster CA certificate (PEM); `cluster add` issues new node certificates from it.
    pub ca_cert: PathBuf,
    /// The cluster CA private key (PEM).
    pub ca_key: PathBuf,
    /// The nodes, in id order.
    pub nodes: Vec<NodeEntry>,
    /// Ids of nodes that were removed (decommissioned): never given to a new node, because the
    /// cluster keeps a sticky `Left` record for them.
    #[serde(default)]
    pub removed: Vec<NodeId>,
    /// The `ringstore` binary the nodes run; later commands start nodes with the same one.
    #[serde(default)]
    pub binary: Option<PathBuf>,
}

/// One node of a local cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The node's id (also its name on the command line: `cluster kill 3`).
    pub id: NodeId,
    /// The process id of the node's last start, or `None` once it was stopped by a command.
    pub pid: Option<u32>,
    /// The node's HTTP API address.
    pub http_addr: SocketAddr,
    /// The node's QUIC peer address.
    pub peer_addr: SocketAddr,
    /// The node's data directory (its store lives in `data_dir/store`).
    pub data_dir: PathBuf,
    /// The node's config file, as passed to `ringstore node --config`.
    pub config: PathBuf,
    /// Where the node's stdout and stderr go.
    pub log: PathBuf,
}

/// Why `cluster.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    /// There is no `cluster.json` in the directory: no cluster was ever started there.
    #[error(
        "no cluster in {dir}: {file} not found (start one with `ringstore cluster up --dir {dir}`)",
        dir = .0.display(),
        file = CLUSTER_FILE_NAME
    )]
    Missing(PathBuf),
    /// Reading or writing the file failed.
    #[error("cannot access {path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid `cluster.json`.
    #[error("{path} is not a valid cluster file: {source}", path = .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The file names the same node id twice.
    #[error("{path} lists node {id} more than once", path = .path.display())]
    DuplicateNode {
        /// The file.
        path: PathBuf,
        /// The repeated id.
        id: NodeId,
    },
}

impl ClusterFile {
    /// The path of `cluster.json` inside `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(CLUSTER_FILE_NAME)
    }

    /// Whether `dir` holds a `cluster.json`.
    pub fn exists_in(dir: &Path) -> bool {
        Self::path_in(dir).is_file()
    }

    /// Reads `dir/cluster.json`.
    pub fn load(dir: &Path) -> Result<Self, ClusterFileError> {
        let path = Self::path_in(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClusterFileError::Missing(dir.to_path_buf()));
            }
            Err(source) => return Err(ClusterFileError::Io { path, source }),
        };
        let file: ClusterFile =
            serde_json::from_str(&text).map_err(|source| ClusterFileError::Malformed {
                path: path.clone(),
                source,
            })?;
        let mut ids: Vec<NodeId> = file.nodes.iter().map(|n| n.id).collect();
        ids.sort();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ClusterFileError::DuplicateNode { path, id: pair[0] });
        }
        Ok(file)
    }

    /// Writes `dir/cluster.json` atomically (temporary file, sync, rename).
    pub fn save(&self, dir: &Path) -> Result<(), ClusterFileError> {
        let path = Self::path_in(dir);
        let tmp = dir.join(format!("{CLUSTER_FILE_NAME}.tmp"));
        let io_err = |source| ClusterFileError::Io {
            path: path.clone(),
            source,
        };
        // Serialising plain structs of numbers, strings and paths cannot fail unless a path is
        // not UTF-8; report that as malformed rather than panic.
        let text =
            serde_json::to_string_pretty(self).map_err(|source| ClusterFileError::Malformed {
                path: path.clone(),
                source,
            })?;
        let mut file = std::fs::File::create(&tmp).map_err(io_err)?;
        file.write_all(text.as_bytes()).map_err(io_err)?;
        file.write_all(b"\n").map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        std::fs::rename(&tmp, &path).map_err(io_err)?;
        Ok(())
    }

    /// The entry of node `id`, if the cluster has it.
    pub fn node(&self, id: NodeId) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The entry of node `id` for updating, if the cluster has it.
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut NodeEntry> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    /// An id no node of this cluster ever had: one above every current and removed id.
    pub fn next_id(&self) -> NodeId {
        let max = self
            .nodes
            .iter()
            .map(|n| n.id.0)
            .chain(self.removed.iter().map(|id| id.0))
            .max()
            .unwrap_or(0);
        NodeId(max + 1)
    }

    /// The ids of the nodes, in file order.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_accept_urls_and_names() {
        // Goal: `--node` takes the forms people paste: a socket address, a URL, a host name.
        let plain = parse_http_addr("127.0.0.1:8001").unwrap();
        assert_eq!(parse_http_addr("http://127.0.0.1:8001/").unwrap(), plain);
        assert_eq!(parse_http_addr("localhost:8001").unwrap().port(), 8001);
        assert!(parse_http_addr("8001").unwrap_err().contains("8001"));
    }

    fn sample(dir: &Path) -> ClusterFile {
        ClusterFile {
            n: 3,
            r: 2,
            w: 2,
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            nodes: (1..=3)
                .map(|i| NodeEntry {
                    id: NodeId(i),
                    pid: Some(1000 + i as u32),
                    http_addr: format!("127.0.0.1:{}", 8000 + i).parse().unwrap(),
                    peer_addr: format!("127.0.0.1:{}", 7000 + i).parse().unwrap(),
                    data_dir: dir.join(format!("n{i}")),
                    config: dir.join(format!("n{i}/node.toml")),
                    log: dir.join(format!("n{i}/node.log")),
                })
                .collect(),
            removed: Vec::new(),
            binary: None,
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        // Goal: what `cluster up` writes is exactly what later commands read.
        let dir = tempfile::tempdir().unwrap();
        let file = sample(dir.path());
        file.save(dir.path()).unwrap();
        assert_eq!(ClusterFile::load(dir.path()).unwrap(), file);
        assert!(!dir.path().join("cluster.json.tmp").exists());
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        // Goal: a directory without a cluster says so and tells how to start one.
        let dir = tempfile::tempdir().unwrap();
        let err = ClusterFile::load(dir.path()).unwrap_err();
        assert!(matches!(err, ClusterFileError::Missing(_)));
        assert!(err.to_string().contains("cluster up"), "{err}");
    }

    #[test]
    fn malformed_and_duplicate_files_are_refused() {
        // Goal: a hand-edited file that is broken or repeats an id is refused, not half-used.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(ClusterFile::path_in(dir.path()), "{not json").unwrap();
        assert!(matches!(
            ClusterFile::load(dir.path()),
            Err(ClusterFileError::Malformed { .. })
        ));
        let mut file = sample(dir.path());
        let first = file.nodes[0].clone();
        file.nodes.push(first);
        file.save(dir.path()).unwrap();
        assert!(matches!(
            ClusterFile::load(dir.path()),
            Err(ClusterFileError::DuplicateNode { id: NodeId(1), .. })
        ));
    }

    #[test]
    fn reads_the_contract_shape() {
        // Goal: the documented cluster.json shape (runtime contract §5) parses.
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"n":3,"r":2,"w":2,"ca_cert":"D/ca.pem","ca_key":"D/ca.key",
          "nodes":[{"id":1,"pid":1234,"http_addr":"127.0.0.1:8001","peer_addr":"127.0.0.1:7001",
                    "data_dir":"D/n1","config":"D/n1/node.toml","log":"D/n1/node.log"}]}"#;
        std::fs::write(ClusterFile::path_in(dir.path()), text).unwrap();
        let file = ClusterFile::load(dir.path()).unwrap();
        assert_eq!(file.nodes[0].id, NodeId(1));
        assert_eq!(file.nodes[0].pid, Some(1234));
        assert_eq!(file.node(NodeId(1)).unwrap().http_addr.port(), 8001);
        assert_eq!(file.next_id(), NodeId(2));
    }

    #[test]
    fn removed_ids_are_never_reused() {
        // Goal: a node added after the highest node was removed gets a fresh id (a `Left`
        // record is sticky, so a reused id would be refused by the cluster).
        let dir = tempfile::tempdir().unwrap();
        let mut file = sample(dir.path());
        assert_eq!(file.next_id(), NodeId(4));
        file.nodes.retain(|n| n.id != NodeId(3));
        file.removed.push(NodeId(3));
        assert_eq!(file.next_id(), NodeId(4));
    }
}
