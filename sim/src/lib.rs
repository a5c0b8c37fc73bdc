//! ringstore-sim: a deterministic simulator that drives the real `ringstore` node core under
//! virtual time, with partitions, loss, delay, crashes and clock skew, and checks that no
//! acknowledged write is lost and that replicas converge. Same seed, same run, bit for bit.
//!
//! - [`world`]: the event loop, nodes, clients and faults;
//! - [`network`]: latency, loss, duplication, partitions, slow nodes;
//! - [`distribution`]: latency distributions;
//! - [`scenario`]: scenario files (TOML) and the random nemesis;
//! - [`workload`]: what the clients do;
//! - [`item_workload`]: the item operations clients run in item mode;
//! - [`oracle`]: the record of every client operation and the checkers;
//! - [`item_oracle`]: the record of every item operation and the item checkers;
//! - [`report`]: the summary a run prints;

pub mod distribution;
pub mod item_oracle;
pub mod item_workload;
pub mod network;
pub mod oracle;
pub mod report;
pub mod scenario;
pub mod workload;
pub mod world;
