//! The node's config file: the TOML file `ringstore node --config FILE` reads.
//!
//! It owns the process-level settings of one node (identity, addresses, data directory, TLS
//! files, seeds, sync policy) and embeds the core's [`NodeConfig`] as its `[node]` table. The
//! format is the runtime contract's §1; `cluster up` writes these files with
//! [`NodeFileConfig::to_toml`].
//!
//! # Guarantees
//! - Unknown fields are refused (a typo is an error that names the field, not a silent default).
//! - A loaded config has passed [`NodeConfig::validate`]: every error names the field at fault.
//! - `to_toml` and `load` round-trip.
//!
//! # Known limits
//! - Addresses are socket addresses (`IP:port`), not host names: no DNS at start-up.

use ringstore_core::NodeId;
use ringstore_core::config::{ConfigError, NodeConfig};
use ringstore_core::store::SyncPolicy;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

/// Most writes a group commit lets wait before the store asks for a sync (the driver syncs
/// after every batch of inputs anyway; this bounds the batch at the store).
pub const GROUP_COMMIT_MAX_WRITES: u32 = 4096;

/// The longest a write waits for its group's sync: the driver drains (and so syncs) after every
/// batch of at most a few hundred inputs, which takes well under this on a healthy disk.
pub const GROUP_COMMIT_MAX_DELAY_MS: u64 = 2;

/// The most runtime worker threads a node starts unless its config says otherwise.
pub const MAX_DEFAULT_IO_THREADS: usize = 4;

/// One node's config file (runtime contract §1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFileConfig {
    /// The node's id; its certificate must name `n{id}.ringstore`.
    pub id: NodeId,
    /// Where the node keeps its data; the store lives in `data_dir/store`.
    pub data_dir: PathBuf,
    /// The QUIC listen address, also gossiped to peers as this node's address.
    pub peer_addr: SocketAddr,
    /// The HTTP API listen address.
    pub http_addr: SocketAddr,
    /// The failure zone, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The RNG seed of the node core (default: derived from the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// When writes reach the disk.
    #[serde(default)]
    pub sync: SyncMode,
    /// Worker threads of the node's async runtime (QUIC, HTTP and the core's driver task; the
    /// syncer has a thread besides). Default: the machine's cores, at most
    /// [`MAX_DEFAULT_IO_THREADS`]. `cluster up` writes `cores / nodes` (at least 1), since its
    /// nodes share one machine: surplus threads only add context switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_threads: Option<NonZeroUsize>,
    /// The certificate files of mutual TLS.
    pub tls: TlsFiles,
    /// Nodes to gossip with at start.
    #[serde(default)]
    pub seeds: Vec<SeedPeer>,
    /// The core's timings and limits.
    #[serde(default)]
    pub node: NodeConfig,
}

/// The sync policy as written in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// Group commit: one fsync per batch of inputs, acks released after it.
    #[default]
    Group,
    /// One fsync per write.
    EveryWrite,
}

/// Paths of the PEM files of mutual TLS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The cluster CA certificate: the only issuer this node trusts.
    pub ca_cert: PathBuf,
    /// This node's certificate, signed by the cluster CA.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// A node to gossip with at start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPeer {
    /// Its id.
    pub id: NodeId,
    /// Its QUIC address.
    pub addr: SocketAddr,
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, misses a field, or has an unknown or mistyped one (the
    /// message names the field and line).
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: toml::de::Error,
    },
    /// A `[node]` value is out of range.
    #[error("invalid [node] section in {path}: {source}")]
    Node {
        /// The file.
        path: PathBuf,
        /// Which value and why.
        source: ConfigError,
    },
    /// A seed names this node itself.
    #[error("invalid config file {path}: seeds lists the node's own id {id}")]
    SelfSeed {
        /// The file.
        path: PathBuf,
        /// The id.
        id: NodeId,
    },
    /// The config could not be written as TOML.
    #[error("cannot write the config as TOML: {0}")]
    Serialize(#[from] toml::ser::Error),
}

impl NodeFileConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The runtime worker threads to start: `io_threads`, or the default.
    pub fn io_threads(&self) -> usize {
        self.io_threads.map_or_else(
            || {
                std::thread::available_parallelism()
                    .map_or(1, NonZeroUsize::get)
                    .min(MAX_DEFAULT_IO_THREADS)
            },
            NonZeroUsize::get,
        )
    }

    /// Parses and validates config text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigFileError> {
        let config: NodeFileConfig =
            toml::from_str(text).map_err(|source| ConfigFileError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        config
            .node
            .validate()
            .map_err(|source| ConfigFileError::Node {
                path: path.to_path_buf(),
                source,
            })?;
        if config.seeds.iter().any(|seed| seed.id == config.id) {
            return Err(ConfigFileError::SelfSeed {
                path: path.to_path_buf(),
                id: config.id,
            });
        }
        Ok(config)
    }

    /// The file's text, as `load` reads it.
    pub fn to_toml(&self) -> Result<String, ConfigFileError> {
        Ok(toml::to_string(self)?)
    }

    /// Where the durable store lives.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// The core's RNG seed: the configured one, or one derived from the id.
    pub fn rng_seed(&self) -> u64 {
        self.seed.unwrap_or(self.id.0)
    }

    /// The store's sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        match self.sync {
            SyncMode::EveryWrite => SyncPolicy::EveryWrite,
            SyncMode::Group => SyncPolicy::Group {
                max_delay_ms: GROUP_COMMIT_MAX_DELAY_MS,
                max_writes: GROUP_COMMIT_MAX_WRITES,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SAMPLE: &str = r#"
id = 1
data_dir = "/tmp/n1"
peer_addr = "127.0.0.1:7001"
http_addr = "127.0.0.1:8001"
zone = "z1"
sync = "every-write"

[tls]
ca_cert = "/tmp/ca.pem"
cert = "/tmp/n1.pem"
key = "/tmp/n1.key"

[[seeds]]
id = 2
addr = "127.0.0.1:7002"

[node]
n = 3
r = 2
w = 2
gossip_interval = "250ms"
"#;

    // The contract's example parses, with the [node] table's durations and defaults.
    #[test]
    fn the_contract_example_parses() {
        let config = NodeFileConfig::parse(SAMPLE, Path::new("n1.toml")).unwrap();
        assert_eq!(config.id, NodeId(1));
        assert_eq!(config.sync, SyncMode::EveryWrite);
        assert_eq!(config.seeds[0].id, NodeId(2));
        assert_eq!(config.node.gossip_interval, Duration::from_millis(250));
        assert_eq!(config.node.hint_window, NodeConfig::default().hint_window);
        assert_eq!(config.store_dir(), PathBuf::from("/tmp/n1/store"));
    }

    // Writing and reading a config gives the same config back.
    #[test]
    fn to_toml_round_trips() {
        let config = NodeFileConfig::parse(SAMPLE, Path::new("n1.toml")).unwrap();
        let text = config.to_toml().unwrap();
        let again = NodeFileConfig::parse(&text, Path::new("again.toml")).unwrap();
        assert_eq!(config, again);
    }

    // A typo, a missing field and an out-of-range value are errors that name the field.
    #[test]
    fn bad_configs_name_the_field() {
        let typo = SAMPLE.replace("zone =", "zonee =");
        let err = NodeFileConfig::parse(&typo, Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("zonee"), "{err}");

        let missing = SAMPLE.replace("http_addr = \"127.0.0.1:8001\"", "");
        let err = NodeFileConfig::parse(&missing, Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("http_addr"), "{err}");

        let bad_r = SAMPLE.replace("r = 2", "r = 5");
        let err = NodeFileConfig::parse(&bad_r, Path::new("f")).unwrap_err();
        assert!(matches!(err, ConfigFileError::Node { .. }), "{err}");
        assert!(err.to_string().contains("r = 5"), "{err}");

        let self_seed = SAMPLE.replace("id = 2", "id = 1");
        let err = NodeFileConfig::parse(&self_seed, Path::new("f")).unwrap_err();
        assert!(matches!(err, ConfigFileError::SelfSeed { .. }), "{err}");

        let no_threads = SAMPLE.replace("sync = ", "io_threads = 0\nsync = ");
        let err = NodeFileConfig::parse(&no_threads, Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("io_threads"), "{err}");
    }

    // io_threads: as written when given, else the machine's cores up to the cap.
    #[test]
    fn io_threads_default_to_the_cores() {
        let config = NodeFileConfig::parse(SAMPLE, Path::new("f")).unwrap();
        assert_eq!(config.io_threads, None);
        assert!((1..=MAX_DEFAULT_IO_THREADS).contains(&config.io_threads()));
        let three = SAMPLE.replace("sync = ", "io_threads = 3\nsync = ");
        let config = NodeFileConfig::parse(&three, Path::new("f")).unwrap();
        assert_eq!(config.io_threads(), 3);
    }
}
