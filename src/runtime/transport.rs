//! The node-to-node transport: QUIC (quinn) with mutual TLS, carrying `protocol` frames.
//!
//! One quinn endpoint per node is both server (peers dial it) and client (it dials peers).
//! Each node keeps one long-lived outbound connection per peer, owned by that peer's task, and
//! sends only on it; it receives on the connections its peers dialled. So between two nodes
//! there are two connections, one per direction: no tie-breaking of simultaneous dials, and a
//! node's sending side never waits on the other's reconnect logic.
//!
//! # Frames and streams
//! A frame is `u32 length (big-endian) ++ protocol::encode bytes` (`protocol::encode_framed`
//! writes it, `protocol::next_frame` cuts it). A peer task takes the first
//! queued message, then whatever else is queued (up to [`MAX_BATCH_FRAMES`] frames or
//! [`MAX_BATCH_BYTES`]), and writes the batch. A batch of at most [`LANE_MAX_BATCH_BYTES`]
//! goes on the connection's *lane*: one long-lived unidirectional stream, written in order by
//! the peer task, so the common case (requests to replicas, acks, gossip) costs no stream
//! set-up, no task and no stream-limit credit per batch. A larger batch (a handoff transfer,
//! an anti-entropy push) gets a fresh stream of its own, written by its own task, so it never
//! blocks the lane (no head-of-line blocking behind bulk data). Batches a fault delays also
//! take their own stream, so one delay never adds up behind another. The receiver reads every
//! stream the same way: it reads chunks as they come, cuts whole frames from its buffer and
//! decodes each in place, until the stream ends. The protocol never relies on
//! order between messages (the simulator reorders them freely). The number of bulk batches in
//! flight per connection is bounded by the peer's stream limit
//! ([`MAX_CONCURRENT_UNI_STREAMS`]): opening waits when it is reached.
//!
//! # Guarantees
//! - Memory is bounded: each peer's outbound queue holds at most [`PEER_QUEUE_FRAMES`]
//!   messages; when it is full, the new frame is dropped and counted
//!   (`frames_dropped{reason="queue_full"}`). Frames queued while a peer is unreachable are
//!   dropped too: the protocol's timeouts, hints and anti-entropy recover, and nothing stale
//!   piles up.
//! - A peer is dialled when there is something to send to it, so a dead or departed peer
//!   costs no dials once the core stops addressing it; consecutive failed dials back off
//!   exponentially ([`RECONNECT_INITIAL`] doubling to [`RECONNECT_MAX`]).
//! - Only peers with a certificate signed by the cluster CA complete a handshake (see `tls`);
//!   a dialled peer must present the certificate of the node dialled, and each inbound frame's
//!   `from` must be the node its sender's certificate names.
//! - Bytes from a peer never panic the node: an oversized, malformed or other-version frame,
//!   or a spoofed sender, is logged with the peer's identity and its connection closed.
//! - Fault injection ([`Faults`]) is applied to every frame: blocked peers' frames are dropped
//!   both ways, slowed peers' outbound batches wait their delay.
//!
//! # Known limits
//! - Queues are bounded in messages, not bytes (see the driver's input channel).
//! - A peer that vanishes without closing is noticed after [`IDLE_TIMEOUT`]; frames written
//!   meanwhile are lost (recovered by the protocol). A peer that comes back on the same
//!   address is noticed at its first answer, a stateless reset ([`endpoint_config`]); the
//!   frames of the packet that drew the reset are lost.
//! - Inbound frames are delivered to the driver in arrival order per stream only.

use super::driver::{DriverInput, InboxSender};
use super::faults::Faults;
use super::front_door::FrontDoor;
use super::metrics::{DropReason, Metrics};
use super::native_service::serve_client;
use quinn::{Connection, Endpoint, Incoming, RecvStream, SendStream, VarInt};
use ringstore_client::quic::{QuicSettingsError, transport_config};
use ringstore_client::tls::{self, NodeTls, TlsError};
use ringstore_core::NodeId;
use ringstore_core::protocol::{self, PeerMessage};
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Messages queued for one peer before new ones are dropped.
pub const PEER_QUEUE_FRAMES: usize = 1024;

/// Most frames written on one stream.
pub const MAX_BATCH_FRAMES: usize = 256;

/// A batch stops growing once it holds this many bytes (a single larger frame is still sent).
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// Batches up to this size go on the connection's lane; larger ones get a stream of their own.
pub const LANE_MAX_BATCH_BYTES: usize = 64 * 1024;

/// First delay before re-dialling an unreachable peer.
pub const RECONNECT_INITIAL: Duration = Duration::from_millis(100);

/// Longest delay between two dials of an unreachable peer.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// How long shutdown waits for connections to close cleanly.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Application close code: the node is shutting down.
const CLOSE_SHUTDOWN: u32 = 0;
/// Application close code: the peer sent bytes that are not a valid frame from it.
const CLOSE_PROTOCOL_ERROR: u32 = 1;

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TLS material could not be turned into QUIC configs.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The UDP socket could not be bound (address in use, no permission).
    #[error("cannot bind the QUIC endpoint to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// quinn refused the transport settings.
    #[error(transparent)]
    Settings(#[from] QuicSettingsError),
}

/// Why dialling a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No address is known for the peer yet.
    #[error("no address known")]
    NoAddress,
    /// quinn refused to start the dial (e.g. the endpoint is closing).
    #[error("cannot dial: {0}")]
    Dial(#[from] quinn::ConnectError),
    /// The handshake or the connection failed (unreachable, certificate refused, ...).
    #[error("{0}")]
    Connection(#[from] quinn::ConnectionError),
}

/// Who we believe each peer is reachable at.
#[derive(Default)]
struct AddressBook {
    addrs: RwLock<HashMap<NodeId, SocketAddr>>,
}

impl AddressBook {
    fn get(&self, node: NodeId) -> Option<SocketAddr> {
        let addrs = self.addrs.read().unwrap_or_else(|e| e.into_inner());
        addrs.get(&node).copied()
    }

    fn set(&self, node: NodeId, addr: SocketAddr) {
        let mut addrs = self.addrs.write().unwrap_or_else(|e| e.into_inner());
        addrs.insert(node, addr);
    }
}

/// What every task of the transport shares.
struct Shared {
    id: NodeId,
    endpoint: Endpoint,
    /// Where native clients' requests go.
    door: Arc<FrontDoor>,
    addresses: AddressBook,
    faults: Arc<Faults>,
    metrics: Arc<Metrics>,
}

/// The transport of one node. Create it inside a tokio runtime; [`Transport::send`] may be
/// called from any thread.
pub struct Transport {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    peers: Mutex<HashMap<NodeId, mpsc::Sender<PeerMessage>>>,
}

impl Transport {
    /// Binds the endpoint on `addr` and starts accepting peers and native clients; inbound
    /// peer frames go to `inbox`, client requests through `door`. Must be called from within
    /// a tokio runtime.
    pub fn bind(
        id: NodeId,
        addr: SocketAddr,
        tls: &NodeTls,
        inbox: InboxSender,
        door: Arc<FrontDoor>,
        faults: Arc<Faults>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, TransportError> {
        let transport_config = Arc::new(transport_config()?);
        let mut server = tls.quic_server_config()?;
        server.transport_config(transport_config.clone());
        let mut client = tls.quic_client_config()?;
        client.transport_config(transport_config);
        let bind_error = |source| TransportError::Bind { addr, source };
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| bind_error(std::io::Error::other("no async runtime found")))?;
        let mut endpoint = Endpoint::new(endpoint_config(tls), Some(server), socket, runtime)
            .map_err(bind_error)?;
        endpoint.set_default_client_config(client);
        let shared = Arc::new(Shared {
            id,
            endpoint,
            door,
            addresses: AddressBook::default(),
            faults,
            metrics,
        });
        tokio::spawn(accept_loop(shared.clone(), inbox));
        Ok(Arc::new(Self {
            shared,
            runtime: tokio::runtime::Handle::current(),
            peers: Mutex::new(HashMap::new()),
        }))
    }

    /// The address the endpoint listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, std::io::Error> {
        self.shared.endpoint.local_addr()
    }

    /// Records where `node` is reachable (from the config's seeds or the membership table).
    pub fn set_address(&self, node: NodeId, addr: SocketAddr) {
        self.shared.addresses.set(node, addr);
    }

    /// Queues a message for `to`; drops it (counted) if that peer's queue is full.
    pub fn send(&self, to: NodeId, message: PeerMessage) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let queue = peers.entry(to).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(PEER_QUEUE_FRAMES);
            self.runtime.spawn(run_peer(self.shared.clone(), to, rx));
            tx
        });
        match queue.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.metrics.frames_dropped(DropReason::QueueFull, 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The peer task ended (the runtime is stopping): forget it.
                peers.remove(&to);
                self.shared
                    .metrics
                    .frames_dropped(DropReason::Unreachable, 1);
            }
        }
    }

    /// Closes every connection (peers see a clean close) and waits briefly for them to go.
    pub async fn shutdown(&self) {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.shared
            .endpoint
            .close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.shared.endpoint.wait_idle()).await;
    }

    /// Dials `peer` at `addr` once (for tests and diagnostics).
    pub async fn dial(&self, peer: NodeId, addr: SocketAddr) -> Result<Connection, ConnectError> {
        self.set_address(peer, addr);
        connect(&self.shared, peer).await
    }
}

/// A node's endpoint settings: stateless-reset and connection-id keys derived from its
/// private key, so that a restarted node is recognised at once. A peer still holding a
/// connection to the previous process sends its next packet to the new one, which does not
/// know the connection but can tell (the connection id carries a MAC under the same key) that
/// it issued it, and answers with a stateless reset only the same node could forge: the peer
/// drops the connection and dials again. With per-process random keys the new process dropped
/// those packets, and the peer's replies were lost until the idle timeout (5 s).
fn endpoint_config(tls: &NodeTls) -> quinn::EndpointConfig {
    let reset_key = tls.derived_secret("quic stateless reset key");
    let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset_key);
    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key));
    let cid_secret = tls.derived_secret("quic connection id key");
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&cid_secret[..8]);
    let cid_key = u64::from_le_bytes(cid_key);
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

async fn connect(shared: &Shared, peer: NodeId) -> Result<Connection, ConnectError> {
    let addr = shared.addresses.get(peer).ok_or(ConnectError::NoAddress)?;
    let connecting = shared.endpoint.connect(addr, &tls::node_name(peer))?;
    Ok(connecting.await?)
}

// ----- outbound: one task per peer -----

/// Why a connection's pump stopped.
enum PumpEnd {
    /// The transport dropped the peer's queue: stop for good.
    QueueClosed,
    /// The connection failed; re-dial.
    Lost(quinn::ConnectionError),
}

/// The life of one peer's outbound side: dial when there is something to send, pump batches
/// while connected, and back off (dropping what is queued) after a failed dial.
async fn run_peer(shared: Arc<Shared>, peer: NodeId, mut queue: mpsc::Receiver<PeerMessage>) {
    let mut backoff = RECONNECT_INITIAL;
    let mut failures = 0u32;
    // Dialling on demand: a peer nobody sends to (down, or gone) costs no dials.
    while let Some(first) = queue.recv().await {
        match connect(&shared, peer).await {
            Ok(conn) => {
                tracing::debug!(node = %shared.id, %peer, "connected");
                if failures > 0 {
                    tracing::info!(%peer, "connected after {failures} failed attempts");
                }
                backoff = RECONNECT_INITIAL;
                failures = 0;
                shared.metrics.peer_connected(true);
                let end = pump(&shared, peer, &conn, first, &mut queue).await;
                shared.metrics.peer_connected(false);
                match end {
                    PumpEnd::QueueClosed => {
                        conn.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
                        return;
                    }
                    PumpEnd::Lost(error) => {
                        tracing::info!(%peer, %error, "connection lost; will re-dial");
                    }
                }
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%peer, %error, "cannot connect; retrying with backoff");
                } else {
                    tracing::debug!(%peer, %error, failures, "still cannot connect");
                }
                shared.metrics.frames_dropped(DropReason::Unreachable, 1);
                if !discard_for(&shared, &mut queue, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(RECONNECT_MAX);
            }
        }
    }
}

/// Drops whatever is queued for `wait` (the peer is unreachable); `false` if the queue closed.
async fn discard_for(
    shared: &Shared,
    queue: &mut mpsc::Receiver<PeerMessage>,
    wait: Duration,
) -> bool {
    let mut dropped = 0u64;
    while queue.try_recv().is_ok() {
        dropped += 1;
    }
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    let open = loop {
        tokio::select! {
            () = &mut sleep => break true,
            message = queue.recv() => match message {
                Some(_) => dropped += 1,
                None => break false,
            },
        }
    };
    if dropped > 0 {
        shared
            .metrics
            .frames_dropped(DropReason::Unreachable, dropped);
    }
    open
}

/// Writes `first` and the messages queued after it to `conn`, one stream per batch, until the
/// queue closes or the connection fails.
async fn pump(
    shared: &Arc<Shared>,
    peer: NodeId,
    conn: &Connection,
    first: PeerMessage,
    queue: &mut mpsc::Receiver<PeerMessage>,
) -> PumpEnd {
    let mut pending = Some(first);
    let mut lane: Option<SendStream> = None;
    loop {
        let first = match pending.take() {
            Some(message) => message,
            None => tokio::select! {
                message = queue.recv() => match message {
                    Some(message) => message,
                    None => return PumpEnd::QueueClosed,
                },
                error = conn.closed() => return PumpEnd::Lost(error),
            },
        };
        let batch = encode_batch(shared, peer, first, queue);
        if batch.frames == 0 {
            continue;
        }
        let delay = shared.faults.delay_to(peer);
        if delay.is_none() && batch.bytes.len() <= LANE_MAX_BATCH_BYTES {
            // The common case: small frames on the connection's long-lived lane, written
            // in order by this task (the queue fills meanwhile, so the next batch is larger).
            let stream = match lane.as_mut() {
                Some(stream) => stream,
                None => match open_stream(shared, conn, batch.frames).await {
                    Ok(stream) => lane.insert(stream),
                    Err(error) => return PumpEnd::Lost(error),
                },
            };
            let written = stream.write_all(&batch.bytes).await;
            if !count_batch(shared, peer, batch.frames, written) {
                lane = None; // reopened for the next batch, unless the connection is gone
                if let Some(reason) = conn.close_reason() {
                    return PumpEnd::Lost(reason);
                }
            }
            continue;
        }
        let stream = match open_stream(shared, conn, batch.frames).await {
            Ok(stream) => stream,
            Err(error) => return PumpEnd::Lost(error),
        };
        tracing::trace!(node = %shared.id, %peer, frames = batch.frames, "writing a batch");
        tokio::spawn(write_batch(shared.clone(), peer, stream, batch, delay));
    }
}

/// Opens a stream for a batch of `frames`, counting them dropped if the connection is gone.
async fn open_stream(
    shared: &Shared,
    conn: &Connection,
    frames: u64,
) -> Result<SendStream, quinn::ConnectionError> {
    conn.open_uni().await.inspect_err(|_| {
        shared
            .metrics
            .frames_dropped(DropReason::Unreachable, frames);
    })
}

/// Counts a batch's frames as sent, or as dropped (and logs why) if writing it failed; whether
/// it was written.
fn count_batch<E: std::fmt::Display>(
    shared: &Shared,
    peer: NodeId,
    frames: u64,
    written: Result<(), E>,
) -> bool {
    match written {
        Ok(()) => {
            shared.metrics.frames_sent(frames);
            true
        }
        Err(error) => {
            tracing::debug!(%peer, %error, "a batch was lost with its stream");
            shared
                .metrics
                .frames_dropped(DropReason::Unreachable, frames);
            false
        }
    }
}

/// Length-prefixed frames bound for one stream.
struct Batch {
    bytes: Vec<u8>,
    frames: u64,
}

/// Encodes `first` and whatever else is queued, within the batch bounds, skipping frames a
/// partition blocks.
fn encode_batch(
    shared: &Shared,
    peer: NodeId,
    first: PeerMessage,
    queue: &mut mpsc::Receiver<PeerMessage>,
) -> Batch {
    let mut batch = Batch {
        bytes: Vec::new(),
        frames: 0,
    };
    let mut taken = 0usize;
    let mut next = Some(first);
    while let Some(message) = next.take() {
        taken += 1;
        if shared.faults.is_blocked(peer) {
            shared.metrics.frames_dropped(DropReason::Partitioned, 1);
        } else {
            match protocol::encode_framed(shared.id, &message, &mut batch.bytes) {
                Ok(()) => batch.frames += 1,
                Err(error) => {
                    tracing::warn!(%peer, %error, "cannot encode a message; dropped");
                    shared.metrics.frames_dropped(DropReason::Unencodable, 1);
                }
            }
        }
        if taken < MAX_BATCH_FRAMES && batch.bytes.len() < MAX_BATCH_BYTES {
            next = queue.try_recv().ok();
        }
    }
    batch
}

async fn write_batch(
    shared: Arc<Shared>,
    peer: NodeId,
    mut stream: SendStream,
    batch: Batch,
    delay: Option<Duration>,
) {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let written = async {
        stream.write_all(&batch.bytes).await?;
        stream.finish()?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    count_batch(&shared, peer, batch.frames, written);
}

// ----- inbound -----

/// Accepts connections until the endpoint closes.
async fn accept_loop(shared: Arc<Shared>, inbox: InboxSender) {
    while let Some(incoming) = shared.endpoint.accept().await {
        tokio::spawn(serve_connection(shared.clone(), inbox.clone(), incoming));
    }
}

/// An inbound connection and who its certificate says the peer is.
struct InboundPeer {
    conn: Connection,
    cert: CertificateDer<'static>,
    /// The node id the peer proved (first frame whose `from` its certificate names).
    node: OnceLock<NodeId>,
}

impl InboundPeer {
    /// Whether `from` is the node this connection's certificate names.
    fn check_sender(&self, from: NodeId) -> bool {
        if let Some(&node) = self.node.get() {
            return node == from;
        }
        if !tls::cert_names_node(&self.cert, from) {
            return false;
        }
        *self.node.get_or_init(|| from) == from
    }

    /// The peer's identity for logs: its proven id if any, and its address.
    fn describe(&self) -> String {
        match self.node.get() {
            Some(node) => format!("{node} at {}", self.conn.remote_address()),
            None => format!("unidentified peer at {}", self.conn.remote_address()),
        }
    }

    /// Logs why the peer is refused and closes its connection.
    fn refuse(&self, shared: &Shared, why: &str) {
        tracing::warn!(peer = %self.describe(), "closing connection: {why}");
        shared.metrics.protocol_error();
        self.conn
            .close(VarInt::from_u32(CLOSE_PROTOCOL_ERROR), why.as_bytes());
    }
}

async fn serve_connection(shared: Arc<Shared>, inbox: InboxSender, incoming: Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%remote, %error, "refused a peer's handshake");
            shared.metrics.handshake_refused();
            return;
        }
    };
    let alpn = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol);
    if alpn.as_deref() == Some(tls::ALPN_CLIENT) {
        serve_client(conn, shared.door.clone(), shared.metrics.clone()).await;
        return;
    }
    let cert = conn
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.into_iter().next());
    let Some(cert) = cert else {
        // Unreachable with a client-certificate verifier, but never trust that blindly.
        tracing::warn!(%remote, "peer presented no certificate; closing");
        shared.metrics.handshake_refused();
        conn.close(VarInt::from_u32(CLOSE_PROTOCOL_ERROR), b"no certificate");
        return;
    };
    let peer = Arc::new(InboundPeer {
        conn,
        cert,
        node: OnceLock::new(),
    });
    loop {
        match peer.conn.accept_uni().await {
            Ok(stream) => {
                tokio::spawn(read_stream(
                    shared.clone(),
                    inbox.clone(),
                    peer.clone(),
                    stream,
                ));
            }
            Err(error) => {
                tracing::debug!(peer = %peer.describe(), %error, "inbound connection ended");
                return;
            }
        }
    }
}

/// Reads the frames of one stream and hands them to the driver.
async fn read_stream(
    shared: Arc<Shared>,
    inbox: InboxSender,
    peer: Arc<InboundPeer>,
    mut stream: RecvStream,
) {
    // Bytes arrive in chunks that need not align with frames: whole frames are cut from the
    // front of `pending` and decoded in place; a partial one waits for the next chunk.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let mut cut = 0;
        loop {
            let bytes = match protocol::next_frame(&pending[cut..]) {
                Ok(Some((bytes, taken))) => {
                    cut += taken;
                    bytes
                }
                Ok(None) => break,
                Err(error) => {
                    peer.refuse(&shared, &error.to_string());
                    return;
                }
            };
            if deliver_frame(&shared, &inbox, &peer, bytes).is_break() {
                return;
            }
        }
        pending.drain(..cut);
        if pending.is_empty() && pending.capacity() > MAX_IDLE_READ_BUFFER {
            // A long-lived stream keeps no large frame's buffer once that frame is delivered.
            pending = Vec::new();
        }
        match stream.read_chunk(READ_CHUNK_BYTES, true).await {
            Ok(Some(chunk)) => pending.extend_from_slice(&chunk.bytes),
            Ok(None) if pending.is_empty() => return, // clean end of the batch
            Ok(None) => {
                tracing::debug!(peer = %peer.describe(), "inbound stream cut mid-frame");
                return;
            }
            Err(error) => {
                tracing::debug!(peer = %peer.describe(), %error, "inbound stream failed");
                return;
            }
        }
    }
}

/// The most one read takes from a peer stream.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The largest read buffer an inbound stream keeps between frames.
const MAX_IDLE_READ_BUFFER: usize = 1024 * 1024;

/// Decodes one inbound frame and hands it to the driver; `Break` when the stream must stop
/// (a malformed frame or a forged sender refuses the peer; a stopped driver ends the node).
fn deliver_frame(
    shared: &Shared,
    inbox: &InboxSender,
    peer: &InboundPeer,
    bytes: &[u8],
) -> std::ops::ControlFlow<()> {
    use std::ops::ControlFlow::{Break, Continue};
    let frame = match protocol::decode(bytes) {
        Ok(frame) => frame,
        Err(error) => {
            peer.refuse(shared, &error.to_string());
            return Break(());
        }
    };
    if !peer.check_sender(frame.from) {
        peer.refuse(
            shared,
            &format!(
                "frame claims to come from {} but the certificate names another node",
                frame.from
            ),
        );
        return Break(());
    }
    if shared.faults.is_blocked(frame.from) {
        shared.metrics.frames_dropped(DropReason::Partitioned, 1);
        return Continue(());
    }
    tracing::trace!(node = %shared.id, from = %frame.from, "frame received");
    let input = DriverInput::Peer {
        from: frame.from,
        message: frame.message,
    };
    match inbox.try_send(input) {
        Ok(()) => {
            shared.metrics.frame_received();
            Continue(())
        }
        Err(TrySendError::Full(_)) => {
            shared.metrics.frames_dropped(DropReason::InboxFull, 1);
            Continue(())
        }
        Err(TrySendError::Closed(_)) => Break(()), // the driver stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::driver::InboxReceiver;
    use ringstore_client::tls::{ClusterCa, NodeTls};
    use std::time::Instant;

    /// Bound on every wait of these tests.
    const WAIT: Duration = Duration::from_secs(10);

    struct TestNode {
        transport: Arc<Transport>,
        inbox: InboxReceiver,
        metrics: Arc<Metrics>,
    }

    fn node(id: u64, tls: &NodeTls) -> TestNode {
        let (tx, inbox) = crate::runtime::driver::inbox();
        let metrics = Arc::new(Metrics::new());
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let door = Arc::new(FrontDoor::new(tx.clone(), Duration::from_secs(2)));
        let transport = Transport::bind(
            NodeId(id),
            addr,
            tls,
            tx,
            door,
            Arc::new(Faults::default()),
            metrics.clone(),
        )
        .unwrap();
        TestNode {
            transport,
            inbox,
            metrics,
        }
    }

    fn tls_for(ca: &ClusterCa, id: u64) -> NodeTls {
        NodeTls::from_pem_strings(ca, &ca.issue_node_cert(NodeId(id)).unwrap()).unwrap()
    }

    /// Nodes 1 and 2 of one CA, node 1 knowing node 2's address.
    fn node_pair() -> (TestNode, TestNode) {
        let ca = ClusterCa::generate().unwrap();
        let a = node(1, &tls_for(&ca, 1));
        let b = node(2, &tls_for(&ca, 2));
        a.transport
            .set_address(NodeId(2), b.transport.local_addr().unwrap());
        (a, b)
    }

    fn gossip() -> PeerMessage {
        PeerMessage::Gossip {
            members: Vec::new(),
            want_reply: false,
        }
    }

    /// The next input of `inbox`, waiting at most `WAIT`.
    async fn next_input(inbox: &mut InboxReceiver) -> Option<DriverInput> {
        tokio::time::timeout(WAIT, inbox.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits (bounded) until `condition` holds.
    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // Two nodes with certificates of the same CA connect, and a frame arrives with its sender.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_of_one_ca_exchange_frames() {
        let (a, mut b) = node_pair();
        a.transport.send(NodeId(2), gossip());
        match next_input(&mut b.inbox).await {
            Some(DriverInput::Peer { from, message }) => {
                assert_eq!(from, NodeId(1));
                assert_eq!(message, gossip());
            }
            _ => panic!("no frame arrived"),
        }
        eventually("the sent counter", || {
            a.metrics.encode().contains("ringstore_frames_sent_total 1")
        })
        .await;
    }

    // Many small messages (the lane) and one larger than a lane batch (a stream of its own)
    // all arrive, each once, with their sender.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lane_and_bulk_batches_both_arrive() {
        let (a, mut b) = node_pair();
        let small = 200u64;
        let bulk = PeerMessage::Read {
            op: protocol::OpId(u64::MAX),
            key: vec![7u8; LANE_MAX_BATCH_BYTES * 2],
        };
        for op in 0..small {
            if op == small / 2 {
                a.transport.send(NodeId(2), bulk.clone());
            }
            let key = op.to_be_bytes().to_vec();
            let op = protocol::OpId(op);
            a.transport.send(NodeId(2), PeerMessage::Read { op, key });
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut bulk_seen = 0;
        for _ in 0..=small {
            match next_input(&mut b.inbox).await {
                Some(DriverInput::Peer { from, message }) => {
                    assert_eq!(from, NodeId(1));
                    match message {
                        PeerMessage::Read { op, .. } if op.0 == u64::MAX => {
                            assert_eq!(message, bulk);
                            bulk_seen += 1;
                        }
                        PeerMessage::Read { op, key } => {
                            assert_eq!(key, op.0.to_be_bytes().to_vec());
                            assert!(seen.insert(op.0), "op {} arrived twice", op.0);
                        }
                        other => panic!("unexpected message {other:?}"),
                    }
                }
                _ => panic!("only {} of {small} small messages arrived", seen.len()),
            }
        }
        assert_eq!(bulk_seen, 1);
        assert_eq!(seen.len() as u64, small);
    }

    // A peer whose certificate was signed by another CA is refused by the listener (counted
    // and logged), and none of its frames reach the core; dialling a server of another CA
    // fails at the dialler.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peers_of_another_ca_are_refused() {
        let ca = ClusterCa::generate().unwrap();
        let rogue_ca = ClusterCa::generate().unwrap();
        let mut good = node(2, &tls_for(&ca, 2));
        let rogue = node(3, &tls_for(&rogue_ca, 3));
        let good_addr = good.transport.local_addr().unwrap();

        // Rogue client → good server: the server refuses the client certificate. With TLS 1.3
        // the client may finish its side first, so the refusal reaches it as a failed dial or
        // as the connection being closed.
        match rogue.transport.dial(NodeId(2), good_addr).await {
            Err(error) => assert!(!error.to_string().is_empty()),
            Ok(conn) => {
                let closed = tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
                assert!(!closed.to_string().is_empty());
            }
        }
        eventually("the refused handshake", || {
            good.metrics.handshakes_refused() == 1
        })
        .await;
        rogue.transport.send(NodeId(2), gossip());
        eventually("the rogue's frame to be dropped", || {
            rogue.metrics.dropped(DropReason::Unreachable) >= 1
        })
        .await;
        assert!(
            good.inbox.try_recv().is_err(),
            "a rogue frame reached the core"
        );

        // Good client → rogue server: the client refuses the server's certificate.
        let rogue_addr = rogue.transport.local_addr().unwrap();
        let error = good
            .transport
            .dial(NodeId(3), rogue_addr)
            .await
            .expect_err("dialling a server of another CA must fail");
        assert!(
            error.to_string().to_lowercase().contains("certificate"),
            "{error}"
        );
    }

    // A node that presents a valid certificate but claims another id in its frames is cut
    // off, and its frame never reaches the core.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spoofed_senders_are_cut_off() {
        let ca = ClusterCa::generate().unwrap();
        let mut receiver = node(2, &tls_for(&ca, 2));
        // Id 5, but the certificate of node 1.
        let spoofer = node(5, &tls_for(&ca, 1));
        spoofer
            .transport
            .set_address(NodeId(2), receiver.transport.local_addr().unwrap());
        spoofer.transport.send(NodeId(2), gossip());
        eventually("the spoofed frame to be refused", || {
            receiver.metrics.protocol_errors() == 1
        })
        .await;
        assert!(receiver.inbox.try_recv().is_err());
    }

    // Garbage and frames of another protocol version close the connection that sent them,
    // counted and logged, and reach nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_and_foreign_frames_close_the_connection() {
        let ca = ClusterCa::generate().unwrap();
        let sender = node(1, &tls_for(&ca, 1));
        let mut receiver = node(2, &tls_for(&ca, 2));
        let addr = receiver.transport.local_addr().unwrap();
        let mut foreign = protocol::encode(NodeId(1), &gossip()).unwrap();
        foreign[0] = 9; // the version varint: protocol version 9
        let garbage = vec![0xff_u8; 7];
        for (round, payload) in [garbage, foreign].into_iter().enumerate() {
            let conn = sender.transport.dial(NodeId(2), addr).await.unwrap();
            let mut stream = conn.open_uni().await.unwrap();
            let len = u32::try_from(payload.len()).unwrap();
            stream.write_all(&len.to_be_bytes()).await.unwrap();
            stream.write_all(&payload).await.unwrap();
            stream.finish().unwrap();
            let closed = tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
            assert!(
                matches!(closed, quinn::ConnectionError::ApplicationClosed(ref c)
                    if c.error_code == VarInt::from_u32(CLOSE_PROTOCOL_ERROR)),
                "{closed}"
            );
            assert_eq!(receiver.metrics.protocol_errors(), round as u64 + 1);
        }
        assert!(receiver.inbox.try_recv().is_err());
    }

    // Frames to a peer that cannot be reached are dropped and every one is counted: the
    // queue never holds more than its bound, and nothing is lost silently.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_peers_drop_and_count() {
        let ca = ClusterCa::generate().unwrap();
        let a = node(1, &tls_for(&ca, 1));
        // No address for node 9: its dials fail, and sending floods its queue.
        let sent = PEER_QUEUE_FRAMES as u64 * 3;
        for _ in 0..sent {
            a.transport.send(NodeId(9), gossip());
        }
        let dropped = || {
            a.metrics.dropped(DropReason::QueueFull) + a.metrics.dropped(DropReason::Unreachable)
        };
        eventually("every frame to be counted as dropped", || dropped() == sent).await;
        assert_eq!(a.metrics.encode().matches("frames_sent_total 0").count(), 1);
    }
}
