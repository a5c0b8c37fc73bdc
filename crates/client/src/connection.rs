//! The QUIC side of the native client: one endpoint, one connection per node, and on each
//! connection one long-lived stream carrying every request to that node, pipelined.
//!
//! A node's connection and its stream make a [`Link`]. A call takes a fresh request id,
//! registers itself under it in the link's table of waiting calls, and queues its request
//! frame; the link's writer task drains everything queued into one write; its reader task cuts
//! response frames from the stream and hands each to the call waiting under its id. Answers
//! come back in whatever order the node finishes them.
//!
//! # Guarantees
//! - No lock is held across an await: the connection table, the table of dials under way and
//!   each link's table of waiting calls are std mutexes taken only to look up, insert or
//!   remove. Concurrent first calls to a node await one shared dial future.
//! - Every call ends: with its answer, with the link's failure (when the stream or the
//!   connection fails, every waiting call fails at once with [`CallError::Connection`], or
//!   [`CallError::Protocol`] for an answer stream that is not frames), or with the timeout of
//!   [`NativeClient::request`]. A call that stops waiting (timed out, dropped) removes its
//!   entry.
//! - A link that failed is never used again: calls skip it and forget it, and the next call to
//!   that node re-dials.
//! - Every call is bounded in time (see [`super::DEADLINE_MARGIN`], [`DEFAULT_WAIT`]).
//!
//! # Known limits
//! - The queue of frames for the writer is unbounded: each frame in it belongs to a call
//!   waiting for its answer, so it holds at most one frame per call in flight.

use crate::cluster_file::{ClusterFile, ClusterFileError};
use crate::tables::TableHandle;
use crate::tls::{self, ClusterCa, NodeTls, TlsError};
use crate::{CallError, DEADLINE_MARGIN, KvTarget};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt, WriteError};
use ringstore_core::NodeId;
use ringstore_core::native_protocol::{
    BadFrame, ClientResponse, RequestId, decode_response, encode_request, next_frame,
};
use ringstore_core::request::{ClientReply, ClientRequest, ReadResult};
use ringstore_core::version::{CausalContext, Dot};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a call whose request names no deadline waits for its answer (nodes default to a
/// 2 s deadline; this bounds the wait whatever a node is configured with).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The client certificate's file name in a cluster directory.
pub const CLIENT_CERT_FILE: &str = "client.pem";
/// The client key's file name in a cluster directory.
pub const CLIENT_KEY_FILE: &str = "client.key";

/// The most bytes taken from a link's stream per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The most queued frames the writer takes at once.
const MAX_FRAMES_PER_WRITE: usize = 256;

/// The writer's gathering of small frames into one write stops at this many bytes.
const MAX_WRITE_BYTES: usize = 256 * 1024;

/// A frame at least this large is written on its own rather than copied into a batch.
const WRITE_ALONE_BYTES: usize = 64 * 1024;

/// Application close code of a connection whose request stream failed.
const CLOSE_LINK_FAILED: u32 = 1;

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
    Quic(#[from] crate::quic::QuicSettingsError),
}

/// What the clones of one client share.
struct Inner {
    endpoint: Endpoint,
    nodes: Vec<NodeAddr>,
    links: Mutex<HashMap<NodeId, Arc<Link>>>,
    /// The dial under way to each node, shared by every call that finds no link, so that
    /// concurrent first calls make one connection (and one TLS handshake), not one each.
    dials: Mutex<HashMap<NodeId, Dial>>,
    /// What item calls know of tables, by name (`tables.rs`).
    tables: Mutex<HashMap<String, TableHandle>>,
}

/// One dial to a node, awaited by every call that needs it.
type Dial = Shared<BoxFuture<'static, Result<Arc<Link>, CallError>>>;

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
        config.transport_config(Arc::new(crate::quic::transport_config()?));
        endpoint.set_default_client_config(config);
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                nodes,
                links: Mutex::new(HashMap::new()),
                dials: Mutex::new(HashMap::new()),
                tables: Mutex::new(HashMap::new()),
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
            if let Err(error) = self.link(node).await {
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
            _ => Err(CallError::MismatchedReply),
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

    /// Writes `value` under `key` through `node`, superseding whatever that key's coordinator
    /// holds (`ClientOp::Overwrite`); returns the new version's context and dot.
    pub async fn overwrite(
        &self,
        node: NodeId,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        w: Option<u8>,
    ) -> Result<(CausalContext, Dot), CallError> {
        let mut request = ClientRequest::overwrite(key, value);
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
        self.links().clear();
        self.inner.endpoint.close(0u32.into(), b"client closing");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.endpoint.wait_idle()).await;
    }

    /// One request on the node's link: frame out, then the answer under its id.
    async fn exchange(
        &self,
        node: NodeId,
        request: &ClientRequest,
    ) -> Result<ClientReply, CallError> {
        let link = self.link(node).await?;
        let id = link.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::new();
        encode_request(&mut frame, id, request).map_err(|error| CallError::BadRequest {
            node,
            detail: error.to_string(),
        })?;
        let answer = match link.calls.register(id) {
            Ok(answer) => answer,
            Err(undelivered) => {
                self.forget(node, &link);
                return Err(undelivered.into_call_error(node));
            }
        };
        let mut waiting = Waiting {
            calls: &link.calls,
            id,
            ended: false,
        };
        // A refused send means the writer is gone, which it only is after failing every waiting
        // call, this one included: that failure arrives below.
        let _ = link.requests.send(frame);
        let answer = answer.await;
        waiting.ended = true;
        let response = match answer {
            Ok(Ok(response)) => response,
            Ok(Err(undelivered)) => {
                if link.calls.has_failed() {
                    self.forget(node, &link);
                }
                return Err(undelivered.into_call_error(node));
            }
            Err(_) => {
                // Unreachable: a registered call is always answered or failed, never dropped.
                self.forget(node, &link);
                return Err(CallError::Connection {
                    node,
                    detail: "the call was dropped without an answer".into(),
                });
            }
        };
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
            ClientResponse::Unencodable { detail } => Err(CallError::Protocol { node, detail }),
        }
    }

    /// The QUIC connections this client holds open (one per node it has called, plus any
    /// still closing).
    pub fn open_connections(&self) -> usize {
        self.inner.endpoint.open_connections()
    }

    /// The healthy link to `node`, dialling it if there is none. Calls that find none while
    /// a dial to that node is under way await that dial (one connection per node).
    async fn link(&self, node: NodeId) -> Result<Arc<Link>, CallError> {
        if let Some(link) = self.cached(node) {
            return Ok(link);
        }
        let dial = {
            let mut dials = self.dials();
            // A link may have come up between the look-up above and this lock.
            if let Some(link) = self.cached(node) {
                return Ok(link);
            }
            dials
                .entry(node)
                .or_insert_with(|| {
                    let client = self.clone();
                    async move { client.dial(node).await }.boxed().shared()
                })
                .clone()
        };
        let result = dial.clone().await;
        // The dial is over: the next call without a link starts a fresh one.
        let mut dials = self.dials();
        if dials.get(&node).is_some_and(|d| d.ptr_eq(&dial)) {
            dials.remove(&node);
        }
        result
    }

    /// Connects to `node`, opens its stream and records the link.
    async fn dial(&self, node: NodeId) -> Result<Arc<Link>, CallError> {
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
        // Opening is local (nothing reaches the node before the first request).
        let (send, recv) = conn.open_bi().await.map_err(|e| failed(&e))?;
        let link = Link::start(conn, send, recv);
        self.links().insert(node, link.clone());
        Ok(link)
    }

    fn cached(&self, node: NodeId) -> Option<Arc<Link>> {
        self.links()
            .get(&node)
            .filter(|link| link.is_healthy())
            .cloned()
    }

    /// Drops `link` from the table if it is still the one for `node` (the next call re-dials).
    fn forget(&self, node: NodeId, link: &Arc<Link>) {
        let mut links = self.links();
        if links
            .get(&node)
            .is_some_and(|current| Arc::ptr_eq(current, link))
        {
            links.remove(&node);
        }
    }

    fn links(&self) -> MutexGuard<'_, HashMap<NodeId, Arc<Link>>> {
        self.inner.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dials(&self) -> MutexGuard<'_, HashMap<NodeId, Dial>> {
        self.inner.dials.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The table cache of item calls (`tables.rs`).
    pub(crate) fn table_cache(&self) -> MutexGuard<'_, HashMap<String, TableHandle>> {
        self.inner.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One node's connection and the request stream on it, served by a writer and a reader task.
/// The tasks end when the link is dropped (the writer finishes the stream, the node then
/// finishes its side) or when the link fails.
struct Link {
    conn: Connection,
    /// Request frames for the writer task.
    requests: mpsc::UnboundedSender<Vec<u8>>,
    /// The calls waiting for an answer, shared with both tasks.
    calls: Arc<Calls>,
    /// The next request id (ids are never reused on a link).
    next_id: AtomicU64,
}

impl Link {
    /// A link on `conn` and its stream `send`/`recv`, with its two tasks started.
    fn start(conn: Connection, send: SendStream, recv: RecvStream) -> Arc<Self> {
        let (requests, queue) = mpsc::unbounded_channel();
        let calls = Arc::new(Calls::default());
        tokio::spawn(write_requests(send, queue, calls.clone(), conn.clone()));
        tokio::spawn(read_answers(recv, calls.clone(), conn.clone()));
        Arc::new(Self {
            conn,
            requests,
            calls,
            next_id: AtomicU64::new(0),
        })
    }

    fn is_healthy(&self) -> bool {
        !self.calls.has_failed() && self.conn.close_reason().is_none()
    }
}

/// Why no valid answer reached a call.
#[derive(Clone, Debug)]
enum Undelivered {
    /// The stream or the connection failed (the request may or may not have been applied).
    Lost(String),
    /// The node's bytes were not a valid answer.
    Garbled(String),
}

impl Undelivered {
    fn into_call_error(self, node: NodeId) -> CallError {
        match self {
            Undelivered::Lost(detail) => CallError::Connection { node, detail },
            Undelivered::Garbled(detail) => CallError::Protocol { node, detail },
        }
    }
}

/// What a waiting call receives.
type Answer = Result<ClientResponse, Undelivered>;

/// The calls waiting on one link, by request id.
#[derive(Default)]
struct Calls {
    state: Mutex<CallsState>,
}

#[derive(Default)]
struct CallsState {
    waiting: HashMap<RequestId, oneshot::Sender<Answer>>,
    /// The link's failure, once it failed: no call waits on it any more.
    failure: Option<Undelivered>,
}

impl Calls {
    fn state(&self) -> MutexGuard<'_, CallsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a call under `id`; refused once the link failed.
    fn register(&self, id: RequestId) -> Result<oneshot::Receiver<Answer>, Undelivered> {
        let (reply, answer) = oneshot::channel();
        let mut state = self.state();
        if let Some(failure) = &state.failure {
            return Err(failure.clone());
        }
        state.waiting.insert(id, reply);
        Ok(answer)
    }

    /// Hands every answer in `answers` to its waiting call (draining `answers`); an answer
    /// whose call no longer waits (it timed out) is dropped.
    fn deliver(&self, answers: &mut Vec<(RequestId, Answer)>) {
        if answers.is_empty() {
            return;
        }
        let mut replies = Vec::with_capacity(answers.len());
        {
            let mut state = self.state();
            for (id, answer) in answers.drain(..) {
                if let Some(reply) = state.waiting.remove(&id) {
                    replies.push((reply, answer));
                }
            }
        }
        // Woken outside the lock.
        for (reply, answer) in replies {
            let _ = reply.send(answer);
        }
    }

    /// Removes a call that stopped waiting.
    fn remove(&self, id: RequestId) {
        self.state().waiting.remove(&id);
    }

    /// Fails the link: every waiting call gets `failure`, and so does every later
    /// registration. The first failure is the one reported.
    fn fail(&self, failure: Undelivered) {
        let waiting = {
            let mut state = self.state();
            if state.failure.is_some() {
                return;
            }
            state.failure = Some(failure.clone());
            std::mem::take(&mut state.waiting)
        };
        for reply in waiting.into_values() {
            let _ = reply.send(Err(failure.clone()));
        }
    }

    fn has_failed(&self) -> bool {
        self.state().failure.is_some()
    }
}

/// A registered call: removes its entry if the call stops waiting before it ended (a timeout
/// or a dropped future), so the table holds only calls that still wait.
struct Waiting<'a> {
    calls: &'a Calls,
    id: RequestId,
    /// Its answer or failure arrived (the entry is already gone).
    ended: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.calls.remove(self.id);
        }
    }
}

/// The link's writer: drains the queued frames into as few writes as possible until the link
/// is dropped (then finishes the stream) or a write fails (then fails the link).
async fn write_requests(
    mut send: SendStream,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    calls: Arc<Calls>,
    conn: Connection,
) {
    match pump_requests(&mut send, &mut queue).await {
        Ok(()) => {
            let _ = send.finish();
        }
        Err(error) => {
            // Before the queue is dropped, so a call that queued after this sees the failure.
            calls.fail(Undelivered::Lost(format!("cannot send requests: {error}")));
            conn.close(
                VarInt::from_u32(CLOSE_LINK_FAILED),
                b"request stream failed",
            );
        }
    }
}

async fn pump_requests(
    send: &mut SendStream,
    queue: &mut mpsc::UnboundedReceiver<Vec<u8>>,
) -> Result<(), WriteError> {
    let mut frames = Vec::with_capacity(MAX_FRAMES_PER_WRITE);
    let mut batch = Vec::new();
    while queue.recv_many(&mut frames, MAX_FRAMES_PER_WRITE).await > 0 {
        for frame in frames.drain(..) {
            if frame.len() >= WRITE_ALONE_BYTES {
                if !batch.is_empty() {
                    send.write_all(&batch).await?;
                    batch.clear();
                }
                send.write_all(&frame).await?;
                continue;
            }
            batch.extend_from_slice(&frame);
            if batch.len() >= MAX_WRITE_BYTES {
                send.write_all(&batch).await?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            send.write_all(&batch).await?;
            batch.clear();
        }
    }
    Ok(())
}

/// The link's reader: hands each answer to its call until the stream ends or fails, then
/// fails the link (every call still waiting) and closes its connection.
async fn read_answers(mut recv: RecvStream, calls: Arc<Calls>, conn: Connection) {
    let failure = pump_answers(&mut recv, &calls).await;
    calls.fail(failure);
    conn.close(VarInt::from_u32(CLOSE_LINK_FAILED), b"answer stream ended");
}

/// Reads and delivers answers; returns why it stopped.
async fn pump_answers(recv: &mut RecvStream, calls: &Calls) -> Undelivered {
    let mut inbox: Vec<u8> = Vec::new();
    let mut answers = Vec::new();
    loop {
        match recv.read_chunk(READ_CHUNK_BYTES, true).await {
            Ok(Some(chunk)) => inbox.extend_from_slice(&chunk.bytes),
            Ok(None) => return Undelivered::Lost("the node finished the stream".into()),
            Err(error) => return Undelivered::Lost(error.to_string()),
        }
        let cut = cut_answers(&inbox, &mut answers);
        calls.deliver(&mut answers);
        match cut {
            Ok(used) => {
                inbox.drain(..used);
            }
            Err(failure) => return failure,
        }
    }
}

/// Decodes every whole answer frame at the start of `inbox` into `answers`; returns the bytes
/// they took, or why the stream cannot be read any further.
fn cut_answers(inbox: &[u8], answers: &mut Vec<(RequestId, Answer)>) -> Result<usize, Undelivered> {
    let mut used = 0;
    loop {
        let (payload, len) = match next_frame(&inbox[used..]) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(used),
            Err(error) => return Err(Undelivered::Garbled(error.to_string())),
        };
        used += len;
        match decode_response(payload) {
            Ok((id, response)) => answers.push((id, Ok(response))),
            Err(BadFrame {
                id: Some(id),
                error,
            }) => answers.push((id, Err(Undelivered::Garbled(error.to_string())))),
            // An answer nobody can claim: its call would wait forever.
            Err(BadFrame { id: None, error }) => {
                return Err(Undelivered::Garbled(error.to_string()));
            }
        }
    }
}

fn written(reply: ClientReply) -> Result<(CausalContext, Dot), CallError> {
    match reply {
        ClientReply::Written { context, version } => Ok((context, version)),
        _ => Err(CallError::MismatchedReply),
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

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::native_protocol::{CLIENT_PROTOCOL_VERSION, encode_response};

    fn overloaded() -> Answer {
        Ok(ClientResponse::Overloaded)
    }

    // Answers reach the calls waiting under their ids, in whatever order they come; an answer
    // for an id nobody waits on is dropped.
    #[test]
    fn answers_reach_their_calls_by_id() {
        let calls = Calls::default();
        let mut first = calls.register(1).unwrap();
        let mut second = calls.register(2).unwrap();
        let mut answers = vec![
            (2, Ok(ClientResponse::ShuttingDown)),
            (9, overloaded()),
            (1, overloaded()),
        ];
        calls.deliver(&mut answers);
        assert!(answers.is_empty());
        assert!(matches!(
            first.try_recv(),
            Ok(Ok(ClientResponse::Overloaded))
        ));
        assert!(matches!(
            second.try_recv(),
            Ok(Ok(ClientResponse::ShuttingDown))
        ));
        assert!(calls.state().waiting.is_empty());
    }

    // A call that stops waiting removes its entry; one that got its answer leaves nothing.
    #[test]
    fn a_call_that_stops_waiting_leaves_no_entry() {
        let calls = Calls::default();
        let _answer = calls.register(5).unwrap();
        drop(Waiting {
            calls: &calls,
            id: 5,
            ended: false,
        });
        assert!(calls.state().waiting.is_empty());
        let _answer = calls.register(6).unwrap();
        calls.deliver(&mut vec![(6, overloaded())]);
        drop(Waiting {
            calls: &calls,
            id: 6,
            ended: true,
        });
        assert!(calls.state().waiting.is_empty());
    }

    // A failure reaches every waiting call, the first failure is the one reported, and a call
    // registering afterwards is refused with it.
    #[test]
    fn a_failed_link_fails_every_call_now_and_later() {
        let calls = Calls::default();
        let mut waiting: Vec<_> = (0..3).map(|id| calls.register(id).unwrap()).collect();
        assert!(!calls.has_failed());
        calls.fail(Undelivered::Lost("first".into()));
        calls.fail(Undelivered::Garbled("second".into()));
        assert!(calls.has_failed());
        for answer in &mut waiting {
            assert!(matches!(
                answer.try_recv(),
                Ok(Err(Undelivered::Lost(detail))) if detail == "first"
            ));
        }
        assert!(matches!(
            calls.register(3),
            Err(Undelivered::Lost(detail)) if detail == "first"
        ));
        assert!(calls.state().waiting.is_empty());
    }

    // Answer bytes are cut into answers by id; an answer with a readable id but a bad body
    // fails only its own call, one without an id fails the link, and a partial frame waits.
    #[test]
    fn answer_bytes_are_cut_by_id() {
        let mut inbox = Vec::new();
        encode_response(&mut inbox, 3, &ClientResponse::Overloaded).unwrap();
        let mut garbled = postcard::to_stdvec(&CLIENT_PROTOCOL_VERSION).unwrap();
        garbled.extend(postcard::to_stdvec(&4u64).unwrap());
        garbled.push(0xff);
        inbox.extend(u32::try_from(garbled.len()).unwrap().to_le_bytes());
        inbox.extend(&garbled);
        let whole = inbox.len();
        inbox.extend([9, 0]);
        let mut answers = Vec::new();
        assert_eq!(cut_answers(&inbox, &mut answers).unwrap(), whole);
        assert!(matches!(
            answers.as_slice(),
            [
                (3, Ok(ClientResponse::Overloaded)),
                (4, Err(Undelivered::Garbled(_)))
            ]
        ));
        let no_id = [1, 0, 0, 0, 2];
        assert!(matches!(
            cut_answers(&no_id, &mut Vec::new()),
            Err(Undelivered::Garbled(_))
        ));
    }
}
