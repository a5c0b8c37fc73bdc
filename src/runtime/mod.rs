//! The real node process: the sans-IO core driven by one task on the node's runtime, QUIC
//! to peers, the durable store on fjall, and the HTTP API.
//!
//! ```text
//!  HTTP (axum, tokio) ──try_send──┐                        ┌──▶ per-peer queues ──▶ QUIC
//!                                 ▼                        │     (transport, tokio)
//!  QUIC inbound (tokio) ──try_send──▶ inbox ──▶ driver task: Node<DurableStore>
//!                                                   ▲       └──▶ oneshot replies ──▶ HTTP
//!                       syncer thread (fsync) ──────┘
//! ```
//!
//! One file per concept: [`node_config`] (the TOML file), [`tls`] (cluster CA, certificates,
//! verifiers), [`transport`] (quinn endpoint, connections, framing), [`faults`] (admin fault
//! injection), [`driver`] (the loop around the core), [`status`] and [`metrics`].
//!
//! # Life cycle
//! [`start`] opens the store, binds the QUIC endpoint and the HTTP listener (a port in use is
//! an error, before anything is served), starts the driver task and serves HTTP.
//! [`RunningNode::shutdown`] (on SIGTERM/SIGINT in [`run_node`]): stop taking requests, let
//! in-flight requests finish, stop the driver (it drains its outputs and syncs the store one
//! last time), then close the QUIC connections.
//!
//! # Guarantees
//! - Every write acknowledged to a client or a peer is on disk (the core's durability rule,
//!   applied by the driver after each batch), and a clean shutdown syncs everything.
//! - A bad config exits with code 2 and a message naming the field; a bind failure exits 1
//!   naming the address.
//!
//! # Known limits
//! - Peer addresses are `IP:port`; no DNS.

pub mod driver;
pub mod faults;
pub mod front_door;
pub mod metrics;
pub mod native_service;
pub mod node_config;
pub mod status;
pub mod transport;

use crate::durable_store::{DurableConfig, DurableStore};
use crate::http::{self, HttpLimits, HttpState};
use driver::{Driver, DriverInput, InboxSender, WallClock};
use faults::Faults;
use front_door::FrontDoor;
use metrics::Metrics;
use node_config::{ConfigFileError, NodeFileConfig};
use ringstore_client::tls::{NodeTls, TlsError};
use ringstore_core::node::{Node, NodeError, NodeIdentity};
use ringstore_core::store::StoreError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use transport::{Transport, TransportError};

/// Exit code for a configuration the node cannot use.
pub const EXIT_BAD_CONFIG: u8 = 2;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    /// The TLS files are missing or invalid.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The HTTP listener could not be bound.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The QUIC endpoint could not be started.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The node core refused its configuration or stored state.
    #[error("cannot start the node core: {0}")]
    Node(#[from] NodeError),
    /// A thread (the syncer, or the one opening the store) could not be spawned.
    #[error("cannot spawn a thread: {0}")]
    Thread(std::io::Error),
}

impl StartError {
    /// The process exit code for this failure: 2 for configuration, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            StartError::Config(_) | StartError::Tls(_) => ExitCode::from(EXIT_BAD_CONFIG),
            StartError::Transport(TransportError::Tls(_)) => ExitCode::from(EXIT_BAD_CONFIG),
            StartError::Node(NodeError::Config(_)) => ExitCode::from(EXIT_BAD_CONFIG),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Why a shutdown was not clean.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// The final sync of the store failed: the last unacknowledged writes may be lost.
    #[error("the final store sync failed: {0}")]
    Store(#[from] StoreError),
    /// The driver task panicked.
    #[error("the core's driver task panicked")]
    CorePanicked,
    /// The HTTP server failed.
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
}

/// A started node: its addresses, and the handles to stop it.
pub struct RunningNode {
    id: ringstore_core::NodeId,
    http_addr: SocketAddr,
    peer_addr: SocketAddr,
    inbox: InboxSender,
    door: Arc<FrontDoor>,
    http_stop: tokio::sync::oneshot::Sender<()>,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
    core: tokio::task::JoinHandle<Result<(), StoreError>>,
    transport: Arc<Transport>,
    metrics: Arc<Metrics>,
}

impl RunningNode {
    /// The node's id.
    pub fn id(&self) -> ringstore_core::NodeId {
        self.id
    }

    /// Where the HTTP API listens (the real port when configured with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the QUIC endpoint listens (and the address gossiped to peers).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Stops taking requests, lets in-flight ones finish, stops the core (final sync) and
    /// closes the peer connections.
    pub async fn shutdown(self) -> Result<(), ShutdownError> {
        self.door.stop_accepting();
        let _ = self.http_stop.send(());
        let http = match self.http_task.await {
            Ok(result) => result.map_err(ShutdownError::Http),
            Err(_) => Ok(()), // the HTTP task was cancelled: nothing left to finish
        };
        // The driver keeps draining, so this waits at most one batch.
        let _ = self.inbox.send(DriverInput::Shutdown).await;
        let stopped = self.core.await;
        self.transport.shutdown().await;
        match stopped {
            Ok(store_result) => store_result?,
            Err(_) => return Err(ShutdownError::CorePanicked),
        }
        http
    }
}

/// Starts a node from its config. Must be called within a multi-threaded tokio runtime.
pub async fn start(config: NodeFileConfig) -> Result<RunningNode, StartError> {
    let tls = NodeTls::load(&config.tls.ca_cert, &config.tls.cert, &config.tls.key)?;
    let metrics = Arc::new(Metrics::new());
    let faults = Arc::new(Faults::default());
    let (inbox, inbox_rx) = driver::inbox();

    let http_listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| StartError::HttpBind {
            addr: config.http_addr,
            source,
        })?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|source| StartError::HttpBind {
            addr: config.http_addr,
            source,
        })?;
    let door = Arc::new(FrontDoor::new(inbox.clone(), config.node.request_timeout));
    let transport = Transport::bind(
        config.id,
        config.peer_addr,
        &tls,
        inbox.clone(),
        door.clone(),
        faults.clone(),
        metrics.clone(),
    )?;
    let peer_addr = transport
        .local_addr()
        .map_err(|source| TransportError::Bind {
            addr: config.peer_addr,
            source,
        })?;
    for seed in &config.seeds {
        transport.set_address(seed.id, seed.addr);
    }

    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let store_dir = config.store_dir();
    let durable = DurableConfig::new(config.sync_policy()).with_staggered_memtable(config.id.0);
    let store = tokio::task::spawn_blocking(move || DurableStore::open(store_dir, durable))
        .await
        .map_err(|e| StartError::Thread(std::io::Error::other(e)))??;
    let identity = NodeIdentity {
        id: config.id,
        addr: peer_addr.to_string(),
        zone: config.zone.clone(),
        seeds: config.seeds.iter().map(|seed| seed.id).collect(),
    };
    let mut clock = WallClock::default();
    let node = Node::new(
        config.node.clone(),
        identity,
        store,
        config.rng_seed(),
        clock.now(),
    )?;
    let driver = Driver::new(node, inbox_rx, inbox.clone(), transport.clone(), clock)
        .map_err(StartError::Thread)?;
    let core = tokio::spawn(driver.run());

    let http_state = Arc::new(HttpState::new(
        door.clone(),
        metrics.clone(),
        faults,
        HttpLimits {
            max_value_bytes: config.node.max_value_bytes,
        },
    ));
    let (http_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let router = http::router(http_state);
    let http_task = tokio::spawn(http::serve(http_listener, router, async move {
        let _ = stop_rx.await;
    }));
    tracing::info!(
        id = config.id.0,
        %http_addr,
        %peer_addr,
        data_dir = %config.data_dir.display(),
        "node started"
    );
    Ok(RunningNode {
        id: config.id,
        http_addr,
        peer_addr,
        inbox,
        door,
        http_stop,
        http_task,
        core,
        transport,
        metrics,
    })
}

/// A tokio runtime builder for `threads` threads. One thread runs tokio's current-thread
/// scheduler: the same single thread, without the work-stealing scheduler's cross-thread
/// bookkeeping (nodes' CPU per operation 114–127 → 103–111 µs, the load generator's 26 → 15 µs;
/// `docs/performance.md`). More run the multi-thread scheduler with that many workers.
pub fn runtime_builder(threads: usize) -> tokio::runtime::Builder {
    if threads <= 1 {
        return tokio::runtime::Builder::new_current_thread();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(threads);
    builder
}

/// `ringstore node --config FILE`: runs a node until SIGTERM or SIGINT; the process exit code.
pub fn run_node(config_path: &Path) -> ExitCode {
    let config = match NodeFileConfig::load(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ringstore node: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    // One I/O thread is what `cluster up` writes when nodes share a machine.
    let mut builder = runtime_builder(config.io_threads());
    let runtime = match builder.thread_name("ringstore-io").enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ringstore node: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let node = match start(config).await {
            Ok(node) => node,
            Err(error) => {
                eprintln!("ringstore node: {error}");
                return error.exit_code();
            }
        };
        if let Err(error) = wait_for_signal().await {
            eprintln!("ringstore node: cannot listen for signals: {error}");
        }
        tracing::info!("signal received: shutting down");
        match node.shutdown().await {
            Ok(()) => {
                tracing::info!("clean shutdown");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("ringstore node: unclean shutdown: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
