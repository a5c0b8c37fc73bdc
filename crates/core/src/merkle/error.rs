//! The errors of the Merkle module: bad shapes, mismatched trees, and malformed exchange
//! messages from a peer.
//!
//! # Invariants
//! - Every input that can come from a peer (a shape, node indices, a hash list, a key list) is
//!   validated and refused with one of these variants, never with a panic.
//!
//! # Limits
//! - Variants carry numbers, not the offending payloads, to stay small and cheap to log.

use super::shape::{NodeIndex, TreeShape};
use crate::ring::Token;

/// Why a Merkle operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The requested depth exceeds the cap (memory grows as `2^depth`).
    #[error("tree depth {depth} exceeds the maximum {max}")]
    DepthTooLarge {
        /// The depth asked for.
        depth: u8,
        /// [`super::MAX_DEPTH`].
        max: u8,
    },
    /// The arc has fewer tokens than the tree would have leaves, so some leaf would be empty.
    #[error("an arc of {width} tokens cannot be split into {leaves} leaves")]
    RangeTooNarrow {
        /// Tokens on the arc.
        width: u128,
        /// Leaves asked for.
        leaves: u128,
    },
    /// Two trees (or a tree and a message) disagree on range or depth, so their nodes do not
    /// correspond and cannot be compared.
    #[error("tree shapes differ: local {local:?}, remote {remote:?}")]
    ShapeMismatch {
        /// This side's shape.
        local: TreeShape,
        /// The other side's shape.
        remote: TreeShape,
    },
    /// A node index outside the tree (a peer's message was malformed).
    #[error("node {node:?} is not in a tree of {node_count} nodes")]
    NodeOutOfRange {
        /// The offending index.
        node: NodeIndex,
        /// Nodes in the tree (valid indices are `1..=node_count`).
        node_count: u32,
    },
    /// A request names more nodes than one exchange step may carry.
    #[error("{requested} nodes requested in one step, at most {max} allowed")]
    TooManyNodes {
        /// Nodes in the request.
        requested: usize,
        /// [`super::MAX_NODES_PER_STEP`].
        max: usize,
    },
    /// A hash response does not have one hash per requested node.
    #[error("expected {expected} hashes, received {received}")]
    HashCountMismatch {
        /// Nodes requested.
        expected: usize,
        /// Hashes received.
        received: usize,
    },
    /// A response arrived while no request was outstanding.
    #[error("a response arrived with no request outstanding")]
    NoRequestOutstanding,
    /// The walk's step size is outside `1..=MAX_LEVELS_PER_STEP`.
    #[error("levels per step {levels} outside 1..={max}")]
    LevelsPerStepOutOfRange {
        /// The step size asked for.
        levels: u8,
        /// [`super::MAX_LEVELS_PER_STEP`].
        max: u8,
    },
    /// A key whose token lies outside the tree's arc (the caller sent it to the wrong tree).
    #[error("token {token:?} lies outside the tree's range")]
    KeyOutsideRange {
        /// The key's token.
        token: Token,
    },
    /// A key list is not strictly ordered by ring position then key bytes (or repeats a key).
    #[error("{side} key list out of order (or duplicated) at position {position}")]
    EntriesOutOfOrder {
        /// Which list: local or remote.
        side: Side,
        /// The index of the first entry that is not greater than its predecessor.
        position: usize,
    },
    /// A key list holds a key outside the range being compared.
    #[error("{side} key list holds a key outside the compared range at position {position}")]
    EntryOutsideRange {
        /// Which list: local or remote.
        side: Side,
        /// The index of the offending entry.
        position: usize,
    },
    /// A leaf listing names more leaves or fingerprints than one message may carry.
    #[error("leaf listing of {leaves} leaves and {fingerprints} fingerprints is too large")]
    ListingTooLarge {
        /// Leaves named.
        leaves: usize,
        /// Fingerprints carried.
        fingerprints: usize,
    },
    /// A leaf listing's counts do not match its leaves or its fingerprints.
    #[error("leaf listing has {leaves} leaves, {counts} counts and {fingerprints} fingerprints")]
    ListingCountMismatch {
        /// Leaves named.
        leaves: usize,
        /// Counts given.
        counts: usize,
        /// Fingerprints carried.
        fingerprints: usize,
    },
    /// A leaf listing's leaves are not strictly ascending, or one is outside its shape.
    #[error("listed leaf at position {position} is out of order or outside the tree")]
    ListedLeafOutOfOrder {
        /// The index of the offending leaf.
        position: usize,
    },
}

/// Which side of an exchange an input came from, for error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// This node.
    Local,
    /// The peer.
    Remote,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Local => f.write_str("local"),
            Side::Remote => f.write_str("remote"),
        }
    }
}
