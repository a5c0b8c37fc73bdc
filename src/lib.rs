//! ringstore: the node process and the tools around it, a leaderless Dynamo-style store.
//!
//! The protocol is not here: it is `ringstore-core`'s deterministic state machine, which this
//! crate drives with real I/O (see `docs/architecture.md`). This crate owns:
//! - [`runtime`]: the node process: driver task and syncer thread, QUIC transport with mutual
//!   TLS, the front door shared by HTTP and native clients, config file, metrics, faults;
//! - [`durable_store`]: `DurableStore`, the core's `Store` on fjall, with group commit;
//! - [`http`]: the HTTP API (axum);
//! - [`cli`]: the `ringstore` command: client commands over HTTP, local multi-process clusters
//!   (`cluster up/status/kill/...`) and `bench` (the load generator, `ringstore-bench`).
//!
//! The native client library is `ringstore-client`; the simulator `ringstore-sim`.

pub mod cli;
pub mod durable_store;
pub mod http;
pub mod runtime;
