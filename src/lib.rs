//! ringstore: a leaderless, Dynamo-style key-value store.
//!
//! The crate holds the deterministic core (no I/O runtime, no clock, no global RNG) and, in
//! later modules, the real runtime that drives it. See `docs/architecture.md`.
//!
//! Core modules:
//! - [`ring`]: tokens, the consistent-hashing ring with virtual nodes, preference lists.
//! - [`version`]: dotted version vector sets (siblings, causal contexts, tombstones).
//! - [`merkle`]: incrementally updated Merkle trees for anti-entropy.
//! - [`store`]: a node's local storage: the `Store` trait, in memory and on fjall.
//!
//! Runtime modules (tokio, quinn, axum; never used by the core):
//! - [`runtime`]: the node process: driver task, QUIC transport with mutual TLS, config
//!   file, metrics, fault injection.
//! - [`http`]: the HTTP API.
//!
//! Tooling: [`cli`]: the client commands, an HTTP client, and local multi-process clusters;
//! [`cli::bench`]: the YCSB-style load generator and the live staleness probe.

pub mod cli;
pub mod client;
pub mod client_protocol;
pub mod config;
pub mod http;
pub mod membership;
pub mod merkle;
pub mod node;
pub mod node_id;
pub mod protocol;
pub mod request;
pub mod ring;
pub mod runtime;
pub mod store;
pub mod time;
pub mod version;

pub use node_id::NodeId;
pub use time::Time;
