//! The QUIC side of the native client: one endpoint, one connection per node, one stream per
//! request.
//!
//! # Guarantees
//! - No lock is held across an await: the connection table is a std mutex taken only to look
//!   up or store a connection.
//! - A connection that failed is forgotten and re-dialled by the next call to that node.
//! - Every call is bounded in time (see [`super::DEADLINE_MARGIN`], [`DEFAULT_WAIT`]).

use super::{CallError, DEADLINE_MARGIN, KvTarget};
use crate::NodeId;
use crate::cli::cluster_file::{ClusterFile, ClusterFileError};
use crate::client_protocol::{
    ClientResponse, MAX_CLIENT_FRAME_BYTES, decode_response, encode_request,
};
use crate::request::{ClientReply, ClientRequest, ReadResult};
use crate::runtime::tls::{self, ClusterCa, NodeTls, TlsError};
use crate::version::{CausalContext, Dot};
use quinn::{Connection, Endpoint};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a call whose request names no deadline waits for its answer (nodes default to a
/// 2 s deadline; this bounds the wait whatever a node is configured with).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The client certificate's file name in a cluster directory.
pub const CLIENT_CERT_FILE: &str = "client.pem";
/// The client key's file name in a cluster directory.
pub const CLIENT_KEY_FILE: &str = "client.key";

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

impl ClientIdentity {
    /// The client identity of a local cluster directory: its CA and `client.pem`/`client.key`,
    /// issued from the cluster CA (and saved) the first time they are needed.
    pub fn of_cluster_dir(dir: &Path, file: &ClusterFile) -> Result<Self, ClientSetupError> {
        let cert = dir.join(CLIENT_CERT_FILE);
        let key = dir.join(CLIENT_KEY_FILE);
        if !cert.exists() || !key.exists() {
            let ca = ClusterCa::load(&file.ca_cert, &file.ca_key)?;
            ca.issue_client_cert()?.save(&cert, &key)?;
        }
        Ok(Self {
            ca_cert: file.ca_cert.clone(),
            cert,
            key,
        })
    }
}

/// Why a client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    /// The certificates could not be read, issued or used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The cluster directory's `cluster.json` could not be read.
    #[error(transparent)]
    ClusterFile(#[from] ClusterFileError),
    /// The client's UDP socket could not be bound.
    #[error("cannot bind the client's UDP socket: {0}")]
    Bind(std::io::Error),
    /// No node to talk to.
    #[error("the node list is empty")]
    NoNodes,
    /// quinn refused the connection settings.
    #[error("invalid QUIC settings: {0}")]
    Quic(#[from] crate::runtime::transport::TransportError),
}

/// What the clones of one client share.
struct Inner {
    endpoint: Endpoint,
    nodes: Vec<NodeAddr>,
    connections: Mutex<HashMap<NodeId, Connection>>,
}

/// A client of a cluster over the native protocol. Cheap to clone (shared state); create it
/// inside a tokio runtime.
#[derive(Clone)]
pub struct NativeClient {
    inner: Arc<Inner>,
}

impl NativeClient {
    /// A client of `nodes`, proving itself with `identity`.
    pub fn new(identity: &ClientIdentity, nodes: Vec<NodeAddr>) -> Result<Self, ClientSetupError> {
        let first = nodes.first().ok_or(ClientSetupError::NoNodes)?;
        let tls = NodeTls::load(&identity.ca_cert, &identity.cert, &identity.key)?;
        let bind: SocketAddr = if first.addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let mut endpoint = Endpoint::client(bind).map_err(ClientSetupError::Bind)?;
        let mut config = tls.quic_native_client_config()?;
        config.transport_config(Arc::new(crate::runtime::transport::transport_config()?));
        endpoint.set_default_client_config(config);
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                nodes,
                connections: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A client of the nodes of a local cluster directory (`ringstore cluster up --dir DIR`),
    /// in id order.
    pub fn from_cluster_dir(dir: &Path) -> Result<Self, ClientSetupError> {
        let file = ClusterFile::load(dir)?;
        let identity = ClientIdentity::of_cluster_dir(dir, &file)?;
        let nodes = file
            .nodes
            .iter()
            .map(|node| NodeAddr {
                id: node.id,
                addr: node.peer_addr,
            })
            .collect();
        Self::new(&identity, nodes)
    }

    /// The nodes this client knows.
    pub fn node_addrs(&self) -> &[NodeAddr] {
        &self.inner.nodes
    }

    /// Dials every node now (instead of on first use); returns the nodes that failed.
    pub async fn connect_all(&self) -> Vec<(NodeId, CallError)> {
        let mut failed = Vec::new();
        for node in self.inner.nodes.iter().map(|n| n.id) {
            if let Err(error) = self.connection(node).await {
                failed.push((node, error));
            }
        }
        failed
    }

    /// Reads `key` through `node` with read quorum `r` (`None`: the node's default).
    pub async fn get(
        &self,
        node: NodeId,
        key: impl Into<Vec<u8>>,
        r: Option<u8>,
    ) -> Result<ReadResult, CallError> {
        let mut request = ClientRequest::get(key);
        request.r = r;
        match self.request(node, request).await? {
            ClientReply::Read(read) => Ok(read),
            ClientReply::Written { .. } => Err(CallError::MismatchedReply),
        }
    }

    /// Writes `value` under `key` through `node`, superseding what `context` saw, with write
    /// quorum `w`; returns the new version's context and dot.
    pub async fn put(
        &self,
        node: NodeId,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        context: CausalContext,
        w: Option<u8>,
    ) -> Result<(CausalContext, Dot), CallError> {
        let mut request = ClientRequest::put(key, value, context);
        request.w = w;
        written(self.request(node, request).await?)
    }

    /// Deletes what `context` saw of `key` through `node`.
    pub async fn delete(
        &self,
        node: NodeId,
        key: impl Into<Vec<u8>>,
        context: CausalContext,
        w: Option<u8>,
    ) -> Result<(CausalContext, Dot), CallError> {
        let mut request = ClientRequest::delete(key, context);
        request.w = w;
        written(self.request(node, request).await?)
    }

    /// Sends `request` to `node` and waits for the answer.
    pub async fn request(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> Result<ClientReply, CallError> {
        let wait = request.timeout_ms.map_or(DEFAULT_WAIT, |ms| {
            Duration::from_millis(ms) + DEADLINE_MARGIN
        });
        let started = Instant::now();
        match tokio::time::timeout(wait, self.exchange(node, &request)).await {
            Ok(answer) => answer,
            Err(_) => Err(CallError::TimedOut {
                node,
                waited: started.elapsed(),
            }),
        }
    }

    /// Closes every connection and waits briefly for the nodes to see it.
    pub async fn close(&self) {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.inner.endpoint.close(0u32.into(), b"client closing");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.endpoint.wait_idle()).await;
    }

    /// One request on its own stream: frame out, frame back.
    async fn exchange(
        &self,
        node: NodeId,
        request: &ClientRequest,
    ) -> Result<ClientReply, CallError> {
        let frame = encode_request(request).map_err(|error| CallError::BadRequest {
            node,
            detail: error.to_string(),
        })?;
        let conn = self.connection(node).await?;
        let lost = |error: &dyn std::fmt::Display| {
            self.forget(node, &conn);
            CallError::Connection {
                node,
                detail: error.to_string(),
            }
        };
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
        send.write_all(&frame).await.map_err(|e| lost(&e))?;
        send.finish().map_err(|e| lost(&e))?;
        let bytes = recv
            .read_to_end(MAX_CLIENT_FRAME_BYTES)
            .await
            .map_err(|e| lost(&e))?;
        let response = decode_response(&bytes).map_err(|error| CallError::Protocol {
            node,
            detail: error.to_string(),
        })?;
        match response {
            ClientResponse::Done(Ok(reply)) => Ok(reply),
            ClientResponse::Done(Err(error)) => Err(CallError::Request(error)),
            ClientResponse::Overloaded => Err(CallError::Overloaded { node }),
            ClientResponse::ShuttingDown => Err(CallError::ShuttingDown { node }),
            ClientResponse::CoreTimeout => Err(CallError::TimedOut {
                node,
                waited: Duration::ZERO,
            }),
            ClientResponse::BadRequest { detail } => Err(CallError::BadRequest { node, detail }),
        }
    }

    /// The live connection to `node`, dialling it if there is none.
    async fn connection(&self, node: NodeId) -> Result<Connection, CallError> {
        if let Some(conn) = self.cached(node) {
            return Ok(conn);
        }
        let addr = self
            .inner
            .nodes
            .iter()
            .find(|n| n.id == node)
            .ok_or(CallError::UnknownNode { node })?
            .addr;
        let failed = |error: &dyn std::fmt::Display| CallError::Unreachable {
            node,
            detail: error.to_string(),
        };
        let conn = self
            .inner
            .endpoint
            .connect(addr, &tls::node_name(node))
            .map_err(|e| failed(&e))?
            .await
            .map_err(|e| failed(&e))?;
        let mut connections = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Another call may have dialled meanwhile: keep one connection per node.
        match connections.get(&node) {
            Some(existing) if existing.close_reason().is_none() => {
                conn.close(0u32.into(), b"duplicate");
                Ok(existing.clone())
            }
            _ => {
                connections.insert(node, conn.clone());
                Ok(conn)
            }
        }
    }

    fn cached(&self, node: NodeId) -> Option<Connection> {
        let connections = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        connections
            .get(&node)
            .filter(|conn| conn.close_reason().is_none())
            .cloned()
    }

    /// Drops `conn` from the table if it is still the one for `node` (the next call re-dials).
    fn forget(&self, node: NodeId, conn: &Connection) {
        let mut connections = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if connections
            .get(&node)
            .is_some_and(|current| current.stable_id() == conn.stable_id())
        {
            connections.remove(&node);
        }
    }
}

fn written(reply: ClientReply) -> Result<(CausalContext, Dot), CallError> {
    match reply {
        ClientReply::Written { context, version } => Ok((context, version)),
        ClientReply::Read(_) => Err(CallError::MismatchedReply),
    }
}

impl KvTarget for NativeClient {
    fn nodes(&self) -> Vec<NodeId> {
        self.inner.nodes.iter().map(|n| n.id).collect()
    }

    async fn call(&self, node: NodeId, request: ClientRequest) -> Result<ClientReply, CallError> {
        self.request(node, request).await
    }
}
