//! The QUIC side of the native client (filled in next).
use super::{CallError, KvTarget};
use crate::NodeId;
use crate::request::{ClientReply, ClientRequest};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A node and the address of its QUIC endpoint (`peer_addr` in cluster.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    /// The node's id: its certificate must name it.
    pub id: NodeId,
    /// Where its QUIC endpoint listens.
    pub addr: SocketAddr,
}

/// The files a client proves itself with.
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    /// The cluster CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// The client certificate, signed by the cluster CA (PEM).
    pub cert: PathBuf,
    /// The client's private key (PEM).
    pub key: PathBuf,
}

/// A client of a cluster over the native protocol. Cheap to clone (shared state).
#[derive(Clone)]
pub struct NativeClient {
    nodes: Vec<NodeAddr>,
}

impl KvTarget for NativeClient {
    fn nodes(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    async fn call(&self, node: NodeId, _request: ClientRequest) -> Result<ClientReply, CallError> {
        Err(CallError::UnknownNode { node })
    }
}
