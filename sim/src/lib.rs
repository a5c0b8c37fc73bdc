//! ringstore-sim: a deterministic simulator that drives the real `ringstore` node core under
//! virtual time, with partitions, loss, delay, crashes and clock skew, and checks that no
//! acknowledged write is lost and that replicas converge. Same seed, same run, bit for bit.
//!
//! - [`world`]: the event loop, nodes, clients and faults;
//! - [`network`]: latency, loss, duplication, partitions, slow nodes;
//! - [`distribution`]: latency distributions;
//! - [`scenario`]: scenario files (TOML) and the random nemesis;
//! - [`workload`]: what the clients do;
//! - [`oracle`]: the record of every client operation and the checkers;
//! - [`report`]: the summary a run prints;

pub mod distribution;
pub mod network;
pub mod oracle;
pub mod report;
pub mod scenario;
pub mod workload;
pub mod world;
