//! ringstore-client: the native client, a Rust library that speaks ringstore's own protocol
//! (QUIC with mutual TLS, postcard frames; see [`native_protocol`]) to any node of a cluster,
//! and what node and client must agree on: the cluster's certificates ([`tls`]), the QUIC
//! settings ([`quic`]) and the `cluster.json` a local cluster is found by ([`cluster_file`]).
//! An application links this crate and `ringstore-core` only, never the node's runtime.
//!
//! Tables and items have their own methods (`create_table`, `put_item`, `query`, ...; see
//! [`TableHandle`] for how the client learns a table's incarnation and key schema).
//!
//! `ringstore bench` and the CLI's `put`/`get`/`delete` use it; the HTTP API stays for
//! interoperability. One [`NativeClient`] holds one QUIC endpoint and at most one connection
//! per node, dialled on first use and re-dialled after it fails; on each connection one
//! long-lived stream carries every request, pipelined (request frames out tagged with an id,
//! answers back under the same id in whatever order the node finishes them), so any number of
//! requests share a connection and no request waits for an earlier one's answer.
//!
//! # Guarantees
//! - A request ends in a [`ClientReply`] or a [`CallError`] naming what went wrong (the node's
//!   own [`RequestError`], overload, a connection failure, a client-side timeout, bytes that
//!   are not a valid answer): never a panic, never a silent hang (every call is bounded by the
//!   request's deadline plus [`DEADLINE_MARGIN`]).
//! - The client proves itself with a certificate signed by the cluster CA and accepts only a
//!   server certificate signed by that CA and naming the node it meant to reach.
//!
//! # Limits
//! - The client does not route by key: it asks the node it is told to, and that node forwards
//!   to a coordinator of the key when it is not one (one extra hop).

pub mod cluster_file;
mod connection;
pub mod quic;
mod tables;
pub mod tls;

pub use connection::{
    CLIENT_CERT_FILE, CLIENT_KEY_FILE, ClientIdentity, ClientSetupError, DEFAULT_WAIT,
    NativeClient, NodeAddr,
};
pub use tables::{ItemPage, ItemWrite, Query, TableHandle, TablePage};

use ringstore_core::NodeId;
use ringstore_core::request::{ClientReply, ClientRequest, RequestError};
use std::future::Future;
use std::time::Duration;

/// Added to a request's deadline before the client gives up on its own: the node answers a
/// timeout itself at the deadline, and this leaves room for that answer to arrive.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The node answered with an error (a quorum not reached, a value too large, ...).
    #[error("{0}")]
    Request(#[from] RequestError),
    /// The node is too busy to take the request (its input queue is full): retry later.
    #[error("node {node} is overloaded")]
    Overloaded {
        /// The node asked.
        node: NodeId,
    },
    /// The node is shutting down.
    #[error("node {node} is shutting down")]
    ShuttingDown {
        /// The node asked.
        node: NodeId,
    },
    /// The node is not one this client knows.
    #[error("node {node} is not in the client's node list")]
    UnknownNode {
        /// The node asked for.
        node: NodeId,
    },
    /// The node could not be dialled: the request was never sent (safe to try another node).
    #[error("cannot reach node {node}: {detail}")]
    Unreachable {
        /// The node asked.
        node: NodeId,
        /// What failed.
        detail: String,
    },
    /// The connection broke after the request may have been sent: it may or may not have
    /// been applied.
    #[error("connection to node {node} lost: {detail}")]
    Connection {
        /// The node asked.
        node: NodeId,
        /// What failed.
        detail: String,
    },
    /// No answer within the request's deadline plus [`DEADLINE_MARGIN`].
    #[error("node {node} did not answer within {waited:?}")]
    TimedOut {
        /// The node asked.
        node: NodeId,
        /// How long the client waited.
        waited: Duration,
    },
    /// The node refused the request as malformed (a client bug or a version mismatch).
    #[error("node {node} refused the request: {detail}")]
    BadRequest {
        /// The node asked.
        node: NodeId,
        /// What it said.
        detail: String,
    },
    /// The node's answer was not a valid response frame.
    #[error("node {node} sent an invalid answer: {detail}")]
    Protocol {
        /// The node asked.
        node: NodeId,
        /// What was wrong.
        detail: String,
    },
    /// The node answered with a reply of another kind than the request's (a get answered as
    /// a write, a table request as an item, ...).
    #[error("the node's answer does not match the request")]
    MismatchedReply,
}

impl CallError {
    /// A short stable label for counting errors by kind (benchmarks, metrics, logs).
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Request(error) => error.kind(),
            CallError::Overloaded { .. } => "overloaded",
            CallError::ShuttingDown { .. } => "shutting_down",
            CallError::UnknownNode { .. } => "unknown_node",
            CallError::Unreachable { .. } => "unreachable",
            CallError::Connection { .. } => "connection",
            CallError::TimedOut { .. } => "client_timeout",
            CallError::BadRequest { .. } => "bad_request",
            CallError::Protocol { .. } => "protocol",
            CallError::MismatchedReply => "mismatched_reply",
        }
    }
}

/// Something that answers client requests addressed to a node: the [`NativeClient`], or a
/// test double. `ringstore bench` is written against this so its logic is testable without
/// a cluster.
pub trait KvTarget: Clone + Send + Sync + 'static {
    /// The nodes requests may be addressed to.
    fn nodes(&self) -> Vec<NodeId>;

    /// Sends `request` to `node` and waits for its answer.
    fn call(
        &self,
        node: NodeId,
        request: ClientRequest,
    ) -> impl Future<Output = Result<ClientReply, CallError>> + Send;
}

/// The tokio runtime a node or a client process runs on: the current-thread scheduler for one
/// thread (no hand-offs between threads), the work-stealing one with `threads` workers above.
pub fn runtime_builder(threads: usize) -> tokio::runtime::Builder {
    if threads <= 1 {
        return tokio::runtime::Builder::new_current_thread();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(threads);
    builder
}
