//! Ring members and their virtual-node tokens: who sits on the ring, in which failure zone,
//! with what weight, and exactly where each of its virtual nodes lands.
//!
//! Implements the "virtual nodes" of Dynamo §4.2: each physical node owns several positions
//! (tokens) on the circle, as many as its weight, so that load spreads evenly and a node's
//! departure spreads its ranges over many survivors.
//!
//! # Token derivation (pinned by a test; changing it moves every key)
//! Token `i` (for `i` in `0..vnodes`) of node `X` is
//! `xxh3_64(X.0.to_le_bytes() ‖ (i as u32).to_le_bytes())`, seed 0: the XXH3 64-bit hash of
//! 12 bytes, the node id as a little-endian `u64` followed by the index as a little-endian
//! `u32`. It is the same hash as the key hash ([`super::key_token`]), so it is stable across
//! processes, versions and platforms.
//!
//! # Guarantees
//! - A node's tokens depend only on its id and its vnode count: raising the weight from `V` to
//!   `V'` keeps the first `V` tokens, so a reweight moves only the ranges of the added tokens.
//! - Nothing here is random or depends on the order members were listed in.
//!
//! # Limits
//! - Tokens are pseudo-random, not evenly spaced: balance improves with `V` only like
//!   `1/sqrt(V)` (see `docs/ring.md` for measured numbers).

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::token::Token;
use crate::NodeId;

/// A failure domain (rack, availability zone, data centre) that replicas should spread over.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Zone(String);

impl Zone {
    /// A zone named by the operator.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The zone's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One physical node as the ring sees it: the unit a ring is built from and gossiped as.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RingMember {
    /// The node's identity.
    pub node: NodeId,
    /// The node's failure domain; members without one all share a single anonymous zone.
    pub zone: Option<Zone>,
    /// How many virtual nodes (tokens) the node owns: its weight.
    pub vnodes: u32,
}

impl RingMember {
    /// A member without a zone.
    pub fn new(node: NodeId, vnodes: u32) -> Self {
        Self {
            node,
            zone: None,
            vnodes,
        }
    }

    /// A member in `zone`.
    pub fn in_zone(node: NodeId, zone: Zone, vnodes: u32) -> Self {
        Self {
            node,
            zone: Some(zone),
            vnodes,
        }
    }

    /// The member's tokens, in index order (not sorted).
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        (0..self.vnodes).map(|index| vnode_token(self.node, index))
    }
}

/// The position of virtual node `index` of `node` (see the module docs for the exact formula).
pub fn vnode_token(node: NodeId, index: u32) -> Token {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&node.0.to_le_bytes());
    bytes[8..].copy_from_slice(&index.to_le_bytes());
    Token(xxh3_64(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The vnode token derivation must never change: a change would move every key.
    #[test]
    fn vnode_tokens_are_pinned() {
        // The formula, spelled out against the hash itself.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&3u32.to_le_bytes());
        assert_eq!(vnode_token(NodeId(7), 3), Token(xxh3_64(&bytes)));
        // And pinned values, so a change of hash crate behaviour also fails.
        assert_eq!(vnode_token(NodeId(0), 0).0, PINNED_0_0);
        assert_eq!(vnode_token(NodeId(1), 1).0, PINNED_1_1);
        assert_eq!(vnode_token(NodeId(u64::MAX), u32::MAX).0, PINNED_MAX_MAX);
    }

    // Computed with the reference C implementation (python-xxhash 3, `xxh3_64_intdigest`
    // over `struct.pack('<QI', node, index)`), independently of the Rust crate.
    const PINNED_0_0: u64 = 0xc499_8f91_69c2_a4f0;
    const PINNED_1_1: u64 = 0xbc51_e9c7_e72f_4789;
    const PINNED_MAX_MAX: u64 = 0x18d0_81e8_e460_2ab0;

    // Raising a node's weight keeps its existing tokens (only the new ones move ranges).
    #[test]
    fn more_vnodes_extend_the_token_list() {
        let small: Vec<Token> = RingMember::new(NodeId(42), 8).tokens().collect();
        let big: Vec<Token> = RingMember::new(NodeId(42), 16).tokens().collect();
        assert_eq!(small[..], big[..8]);
    }
}
