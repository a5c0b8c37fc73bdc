//! TEMPORARY stand-in for `crate::runtime::{tls, node_config}` (runtime contract §1, §2) until
//! the runtime branch is merged; deleted at that merge.
#![allow(missing_docs, dead_code)]

use crate::NodeId;
use crate::config::NodeConfig;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("tls: {0}")]
pub struct TlsError(String);

pub struct ClusterCa;
impl ClusterCa {
    pub fn generate() -> Result<Self, TlsError> {
        Ok(ClusterCa)
    }
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
        std::fs::write(cert_path, "ca").map_err(|e| TlsError(e.to_string()))?;
        std::fs::write(key_path, "ca").map_err(|e| TlsError(e.to_string()))
    }
    pub fn load(_cert_path: &Path, _key_path: &Path) -> Result<Self, TlsError> {
        Ok(ClusterCa)
    }
    pub fn issue_node_cert(&self, _node: NodeId) -> Result<NodeCert, TlsError> {
        Ok(NodeCert {
            cert_pem: String::new(),
            key_pem: String::new(),
        })
    }
}
pub struct NodeCert {
    pub cert_pem: String,
    pub key_pem: String,
}
impl NodeCert {
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
        std::fs::write(cert_path, &self.cert_pem).map_err(|e| TlsError(e.to_string()))?;
        std::fs::write(key_path, &self.key_pem).map_err(|e| TlsError(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("config file: {0}")]
pub struct ConfigFileError(String);

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}
#[derive(Clone, Debug)]
pub struct SeedPeer {
    pub id: NodeId,
    pub addr: std::net::SocketAddr,
}
#[derive(Clone, Copy, Debug, Default)]
pub enum SyncMode {
    #[default]
    Group,
    EveryWrite,
}
#[derive(Clone, Debug)]
pub struct NodeFileConfig {
    pub id: NodeId,
    pub data_dir: PathBuf,
    pub peer_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    pub zone: Option<String>,
    pub seed: Option<u64>,
    pub sync: SyncMode,
    pub tls: TlsFiles,
    pub seeds: Vec<SeedPeer>,
    pub node: NodeConfig,
}
impl NodeFileConfig {
    pub fn load(_path: &Path) -> Result<Self, ConfigFileError> {
        Err(ConfigFileError("shim".into()))
    }
    pub fn to_toml(&self) -> Result<String, ConfigFileError> {
        Ok(format!("id = {}\n", self.id.0))
    }
}
