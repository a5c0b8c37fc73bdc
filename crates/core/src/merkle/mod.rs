//! Merkle trees for anti-entropy: one hash tree per ring arc over its (key, version digest)
//! pairs, kept current on every write, and a step-by-step exchange that finds the keys two
//! replicas disagree on while sending O(d·log n) hashes for d differences among n keys, and
//! lists the keys of differing leaves as 4-byte fingerprints.
//!
//! This implements the replica synchronisation of Dynamo §4.7 (a Merkle tree per key range, a
//! top-down comparison of hashes) with these refinements:
//! - the XOR-combined ("tictac") hashes of Riak's tictac AAE, so that a write updates its
//!   leaf-to-root path with `depth + 1` XORs instead of rehashing a leaf and its ancestors;
//! - Cassandra's split of a token range into equal-width leaves, so that a differing leaf is
//!   a token range that a storage ordered by `(token, key)` scans cheaply;
//! - for the bytes on the wire: one hash per binary split (XOR of the parent), 32-bit short
//!   hashes and key fingerprints salted per exchange, and walks at the smaller of two trees'
//!   depths (the top of a deeper tree is the shallower tree).
//!
//! The parts, one per file:
//! - [`shape`]: [`TreeShape`] (arc and depth), the token-to-leaf and node-to-range geometry.
//! - [`entry_hash`](mod@entry_hash): the 64-bit hash of one (key, digest) pair.
//! - [`tree`]: [`MerkleTree`], its incremental update, rebuild and hash queries.
//! - [`exchange`]: the [`DiffWalk`] state machine, its messages, and in-process [`diff`].
//! - [`leaf_diff`]: the key-level comparison of a differing range's (key, digest) lists.
//! - [`listing`]: the same comparison on the wire: salted 4-byte fingerprints per key.
//! - [`wire`]: compact encodings (varint-delta index lists, fixed-width 32-bit values).
//! - [`error`]: the [`MerkleError`] enum.
//!
//! # Guarantees
//! - A tree updated write by write equals a tree rebuilt from the same final contents.
//! - Two trees of the same shape and contents have identical hashes on every node; two trees
//!   whose contents differ in a leaf differ there with probability `1 - 2^-64` per leaf.
//! - The walk compares only children of differing nodes, and receives one hash per binary
//!   split (the XOR of the parent gives the other child); equal trees cost one hash.
//! - Every input from a peer (shape, node indices, hash counts, key lists) is validated.
//!
//! # Known limits
//! - The store must pass each write's old digest; a wrong one leaves the tree wrong until the
//!   next rebuild (e.g. at start-up).
//! - Trees live in memory only and are rebuilt by a storage scan at start-up.
//! - XOR hashes are not collision-resistant against a malicious peer; replicas are trusted.
//! - Short hashes and fingerprints (32 bits) let a difference slip through one exchange with
//!   probability 2^-32 per comparison; the per-exchange salt makes the next one find it.

pub mod entry_hash;
pub mod error;
pub mod exchange;
pub mod leaf_diff;
pub mod listing;
pub mod shape;
pub mod tree;
pub mod wire;

pub use entry_hash::entry_hash;
pub use error::{MerkleError, Side};
pub use exchange::{
    DEFAULT_LEVELS_PER_STEP, DiffResult, DiffWalk, DifferingLeaf, ExchangeConfig, HashRequest,
    HashResponse, MAX_LEVELS_PER_STEP, MAX_NODES_PER_STEP, diff, diff_with, short_hash,
};
pub use leaf_diff::{KeyDifference, LeafEntry, diff_leaf_entries, sort_in_ring_order};
pub use listing::{
    LeafListing, LeafMatch, MAX_LISTED_FINGERPRINTS, MAX_LISTED_LEAVES, entry_fingerprint,
    key_fingerprint, match_leaf,
};
pub use shape::{DEFAULT_DEPTH, LeafIndex, MAX_DEPTH, NodeIndex, TARGET_KEYS_PER_LEAF, TreeShape};
pub use tree::MerkleTree;
