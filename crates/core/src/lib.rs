//! ringstore-core: the deterministic, sans-IO core of ringstore, a leaderless Dynamo-style store.
//!
//! Everything here is a pure function of its inputs: no I/O runtime, no clock (time arrives as
//! [`Time`]), no global RNG (a node draws from a `ChaCha8Rng` seeded through its constructor),
//! storage only through the [`store::Store`] trait. The real runtime (the `ringstore` crate)
//! and the simulator (`ringstore-sim`) both drive [`node::Node`]; see `docs/architecture.md`.
//! `.ci/run` checks with `cargo tree` that no I/O crate enters this crate's dependency tree.
//!
//! Invariants are checked where they must hold (`invariant!`: `debug_assert!` that the
//! simulator turns on in optimised builds with the `invariants` feature).
//!
//! - [`ring`]: tokens, the consistent-hashing ring with virtual nodes, preference lists.
//! - [`item`]: DynamoDB's data model: attribute values, items, keys, write stamps, the merge.
//! - [`version`]: dotted version vector sets (siblings, causal contexts, tombstones).
//! - [`merkle`]: incrementally updated Merkle trees for anti-entropy.
//! - [`membership`]: the gossiped member table and the phi accrual failure detector.
//! - [`store`]: the `Store` trait a node keeps its data in, and `MemoryStore`.
//! - [`protocol`]: every node-to-node message and its codec.
//! - [`request`]: what a client asks a node and what it is told.
//! - [`native_protocol`]: the native client protocol's frames and their codec.
//! - [`catalog`]: the table catalog, a gossiped CRDT of table incarnations.
//! - [`config`]: every timing and limit of a node.
//! - [`node`]: the state machine, one file per mechanism.
//! - [`harness`]: several nodes in one process under virtual time, for tests and scripts.

/// Checks an invariant of the core: `assert!` in debug builds (the tests) and in builds with
/// the `invariants` feature (the simulator, whose sweeps run optimised), nothing otherwise (the
/// `ringstore` binary). Every invariant a module documents is one of these.
macro_rules! invariant {
    ($($arg:tt)*) => {
        if cfg!(any(debug_assertions, feature = "invariants")) {
            assert!($($arg)*);
        }
    };
}

pub mod catalog;
pub mod config;
pub mod harness;
pub mod item;
pub mod membership;
pub mod merkle;
pub mod native_protocol;
pub mod node;
pub mod node_id;
pub mod protocol;
pub mod request;
pub mod ring;
pub mod store;
pub mod time;
pub mod version;

pub use node_id::NodeId;
pub use time::Time;
