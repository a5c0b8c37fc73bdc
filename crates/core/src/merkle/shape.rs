//! The shape of a Merkle tree: which arc of the ring it covers, how deep it is, and the
//! geometry that maps tokens to leaves and tree nodes to token sub-ranges.
//!
//! A tree over the arc `(start, end]` splits the arc into `2^depth` leaves of (nearly) equal
//! width, in ring order from `start`. Because storage orders keys by `(token, key)`, a leaf (or
//! any inner node) is a contiguous token range, i.e. a cheap storage scan. This is the
//! "one tree per key range" layout of Dynamo §4.7 with Cassandra's equal-width token split.
//!
//! Nodes live in a binary heap layout: the root is node 1, node `i` has children `2i` and
//! `2i + 1`, level `l` holds nodes `2^l .. 2^(l+1)`, and leaf `j` is node `2^depth + j`.
//!
//! # Invariants
//! - A [`TreeShape`] always has `depth <= MAX_DEPTH` and an arc with at least `2^depth`
//!   tokens, so that every leaf covers at least one token (checked on construction and on
//!   deserialisation).
//! - Leaf `j` covers the arc offsets `[ceil(j*W/L), ceil((j+1)*W/L))`, where `W` is the arc's
//!   width in tokens and `L = 2^depth`; the leaves tile the arc exactly, in ring order, and
//!   `leaf_of` agrees with `leaf_range` for every token of the arc.
//! - A node's range is the union of its leaves' ranges; the root's range is the tree's arc.
//!
//! # Limits
//! - `depth <= MAX_DEPTH` (20): a tree holds `2^(depth+1)` hashes of 8 bytes (16 MiB at 20).

use serde::{Deserialize, Serialize};

use super::error::MerkleError;
use crate::ring::{Token, TokenRange};

/// The deepest tree allowed: 2^20 leaves, 16 MiB of hashes. Cassandra uses the same cap.
pub const MAX_DEPTH: u8 = 20;

/// The depth used when nothing is known about the key count: 4096 leaves, 64 KiB per tree, so
/// that a node holding one tree per replicated arc (hundreds) spends a few MiB on them.
pub const DEFAULT_DEPTH: u8 = 12;

/// How many keys a leaf should hold when the depth is chosen from an expected key count.
/// Fewer keys per leaf make the key lists of differing leaves shorter but the tree larger
/// (16 bytes of tree per leaf); 8 keys keeps the tree near 2 bytes per key and a differing
/// leaf's key list near 8 (key, digest) pairs. See docs/merkle.md for the measurement.
pub const TARGET_KEYS_PER_LEAF: u64 = 8;

/// A node of the tree, by its heap index (the root is 1; children of `i` are `2i`, `2i + 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeIndex(pub u32);

impl NodeIndex {
    /// The root of every tree.
    pub const ROOT: NodeIndex = NodeIndex(1);
}

/// A leaf of the tree, counted from 0 in ring order from the arc's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeafIndex(pub u32);

/// The arc a tree covers and its depth: two replicas can compare trees only if these agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "UncheckedShape")]
pub struct TreeShape {
    range: TokenRange,
    depth: u8,
}

/// The wire form of a [`TreeShape`], validated by `TryFrom` so that a shape read from the
/// network is as valid as one built locally.
#[derive(Deserialize)]
struct UncheckedShape {
    range: TokenRange,
    depth: u8,
}

impl TryFrom<UncheckedShape> for TreeShape {
    type Error = MerkleError;

    fn try_from(raw: UncheckedShape) -> Result<Self, Self::Error> {
        TreeShape::new(raw.range, raw.depth)
    }
}

impl TreeShape {
    /// A tree over `range` with `2^depth` leaves.
    pub fn new(range: TokenRange, depth: u8) -> Result<Self, MerkleError> {
        if depth > MAX_DEPTH {
            return Err(MerkleError::DepthTooLarge {
                depth,
                max: MAX_DEPTH,
            });
        }
        let width = arc_width(range);
        let leaves = 1u128 << depth;
        if width < leaves {
            return Err(MerkleError::RangeTooNarrow { width, leaves });
        }
        Ok(Self { range, depth })
    }

    /// A tree over `range` deep enough that `expected_keys` keys leave about
    /// [`TARGET_KEYS_PER_LEAF`] keys per leaf (capped by [`MAX_DEPTH`] and the arc's width).
    pub fn for_expected_keys(range: TokenRange, expected_keys: u64) -> Result<Self, MerkleError> {
        let wanted_leaves = expected_keys.div_ceil(TARGET_KEYS_PER_LEAF).max(1);
        // The smallest depth with 2^depth >= wanted_leaves.
        let wanted_depth = (u64::BITS - (wanted_leaves - 1).leading_zeros()) as u8;
        let width = arc_width(range);
        // The largest depth whose leaves still hold at least one token each.
        let widest_depth = (u128::BITS - 1 - width.leading_zeros()) as u8;
        Self::new(range, wanted_depth.min(MAX_DEPTH).min(widest_depth))
    }

    /// Whether a tree of this shape can stand for one of `other`: the same arc, at least as
    /// deep. The top `other.depth` levels of such a tree are a tree of `other`'s shape (same
    /// heap indices, same leaf boundaries, same XORs), so exchanges may run at the smaller of
    /// two depths.
    pub fn covers(&self, other: TreeShape) -> bool {
        self.range == other.range && self.depth >= other.depth
    }

    /// The same arc at another depth.
    pub fn with_depth(&self, depth: u8) -> Result<TreeShape, MerkleError> {
        TreeShape::new(self.range, depth)
    }

    /// The arc this tree covers.
    pub fn range(&self) -> TokenRange {
        self.range
    }

    /// The number of levels below the root (a tree of depth 0 is a single leaf).
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// The number of leaves, `2^depth`.
    pub fn leaf_count(&self) -> u32 {
        1 << self.depth
    }

    /// The number of nodes, `2^(depth+1) - 1` (the heap's slot 0 is unused).
    pub fn node_count(&self) -> u32 {
        (2 << self.depth) - 1
    }

    /// Whether `node` is a node of this tree.
    pub fn contains_node(&self, node: NodeIndex) -> bool {
        node.0 >= 1 && node.0 <= self.node_count()
    }

    /// The level of `node`: 0 for the root, `depth` for leaves. `None` if not a node here.
    pub fn level_of(&self, node: NodeIndex) -> Option<u8> {
        if !self.contains_node(node) {
            return None;
        }
        Some((u32::BITS - 1 - node.0.leading_zeros()) as u8)
    }

    /// The two children of an inner node; `None` for a leaf or a node not in this tree.
    pub fn children_of(&self, node: NodeIndex) -> Option<[NodeIndex; 2]> {
        let level = self.level_of(node)?;
        if level >= self.depth {
            return None;
        }
        Some([NodeIndex(2 * node.0), NodeIndex(2 * node.0 + 1)])
    }

    /// The descendants of `node` that are `levels_down` levels below it (clamped at the
    /// leaves), in ring order. Empty if `node` is not in this tree.
    pub fn descendants(&self, node: NodeIndex, levels_down: u8) -> std::ops::Range<u32> {
        let Some(level) = self.level_of(node) else {
            return 0..0;
        };
        let down = levels_down.min(self.depth - level);
        let first = node.0 << down;
        first..first + (1 << down)
    }

    /// The heap node of leaf `leaf`.
    pub fn leaf_node(&self, leaf: LeafIndex) -> NodeIndex {
        NodeIndex(self.leaf_count() + leaf.0)
    }

    /// The leaf that `node` is, or `None` if `node` is an inner node or not in this tree.
    pub fn node_leaf(&self, node: NodeIndex) -> Option<LeafIndex> {
        if self.contains_node(node) && node.0 >= self.leaf_count() {
            Some(LeafIndex(node.0 - self.leaf_count()))
        } else {
            None
        }
    }

    /// The leaf whose sub-range holds `token`, or `None` if `token` is outside the arc.
    pub fn leaf_of(&self, token: Token) -> Option<LeafIndex> {
        if !self.range.contains(token) {
            return None;
        }
        let offset = u128::from(self.offset_of(token));
        let leaf = offset * u128::from(self.leaf_count()) / arc_width(self.range);
        // leaf < 2^depth <= 2^20 because offset < width.
        Some(LeafIndex(leaf as u32))
    }

    /// The token sub-range leaf `leaf` covers: the storage scan that lists its keys.
    pub fn leaf_range(&self, leaf: LeafIndex) -> TokenRange {
        self.leaves_range(leaf.0, leaf.0 + 1)
    }

    /// The token sub-range `node` covers (the union of its leaves); `None` if not a node here.
    pub fn node_range(&self, node: NodeIndex) -> Option<TokenRange> {
        let level = self.level_of(node)?;
        let leaves_per_node = 1u32 << (self.depth - level);
        let first_leaf = (node.0 - (1 << level)) * leaves_per_node;
        Some(self.leaves_range(first_leaf, first_leaf + leaves_per_node))
    }

    /// The range covered by leaves `first .. end` (`end <= leaf_count`).
    fn leaves_range(&self, first: u32, end: u32) -> TokenRange {
        let start = self.range.start.0;
        // Offsets below 2^64; the boundary of the last leaf of the full ring is 2^64, which
        // wraps to offset 0, giving start == end: the whole ring, as it should.
        TokenRange::new(
            Token(start.wrapping_add(self.leaf_boundary(first) as u64)),
            Token(start.wrapping_add(self.leaf_boundary(end) as u64)),
        )
    }

    /// The first arc offset of leaf `leaf` (or the arc width for `leaf == leaf_count`).
    fn leaf_boundary(&self, leaf: u32) -> u128 {
        let leaves = u128::from(self.leaf_count());
        (u128::from(leaf) * arc_width(self.range)).div_ceil(leaves)
    }

    /// The position of `token` within the arc: 0 for the arc's first token.
    fn offset_of(&self, token: Token) -> u64 {
        token.0.wrapping_sub(self.range.start.0).wrapping_sub(1)
    }
}

/// The number of tokens on an arc: `2^64` for the whole ring.
fn arc_width(range: TokenRange) -> u128 {
    if range.is_full() {
        1u128 << 64
    } else {
        u128::from(range.end.0.wrapping_sub(range.start.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_range() -> impl Strategy<Value = TokenRange> {
        prop_oneof![
            Just(TokenRange::full()),
            any::<u64>().prop_map(|s| TokenRange::new(Token(s), Token(s))),
            (any::<u64>(), any::<u64>()).prop_map(|(s, e)| TokenRange::new(Token(s), Token(e))),
            // Wrapping arcs just across u64::MAX.
            (0u64..1 << 40, 0u64..1 << 40)
                .prop_map(|(a, b)| TokenRange::new(Token(u64::MAX - a), Token(b))),
        ]
    }

    // The leaves tile the arc exactly, in ring order, each non-empty, and nodes are unions.
    proptest! {
        #[test]
        fn leaves_tile_the_arc(range in arb_range(), depth in 0u8..=10) {
            let Ok(shape) = TreeShape::new(range, depth) else {
                return Ok(()); // an arc narrower than its leaf count is rejected; tested below
            };
            let leaves = shape.leaf_count();
            prop_assert_eq!(shape.leaf_range(LeafIndex(0)).start, range.start);
            prop_assert_eq!(shape.leaf_range(LeafIndex(leaves - 1)).end, range.end);
            for j in 0..leaves {
                let r = shape.leaf_range(LeafIndex(j));
                if j + 1 < leaves {
                    prop_assert_eq!(r.end, shape.leaf_range(LeafIndex(j + 1)).start);
                }
                // Non-empty: its last token maps back to it, and so does its first.
                prop_assert_eq!(shape.leaf_of(r.end), Some(LeafIndex(j)));
                let first = Token(r.start.0.wrapping_add(1));
                prop_assert_eq!(shape.leaf_of(first), Some(LeafIndex(j)));
            }
            prop_assert_eq!(shape.node_range(NodeIndex::ROOT), Some(range));
            for node in 1..=shape.node_count() {
                if let Some([l, r]) = shape.children_of(NodeIndex(node)) {
                    let parent = shape.node_range(NodeIndex(node)).unwrap();
                    let (lr, rr) = (shape.node_range(l).unwrap(), shape.node_range(r).unwrap());
                    prop_assert_eq!(parent.start, lr.start);
                    prop_assert_eq!(lr.end, rr.start);
                    prop_assert_eq!(rr.end, parent.end);
                }
            }
        }

        // Every token of the arc lands in a leaf whose range contains it; others in none.
        #[test]
        fn leaf_of_agrees_with_leaf_range(range in arb_range(), depth in 0u8..=MAX_DEPTH,
                                          tokens in proptest::collection::vec(any::<u64>(), 64)) {
            let Ok(shape) = TreeShape::new(range, depth) else { return Ok(()) };
            let near_edges = [range.start.0, range.start.0.wrapping_add(1), range.end.0,
                              range.end.0.wrapping_add(1), 0, u64::MAX];
            for t in tokens.into_iter().chain(near_edges).map(Token) {
                match shape.leaf_of(t) {
                    Some(leaf) => {
                        prop_assert!(range.contains(t));
                        prop_assert!(shape.leaf_range(leaf).contains(t));
                    }
                    None => prop_assert!(!range.contains(t)),
                }
            }
        }
    }

    // The full ring starting at 0: leaf j holds tokens whose top `depth` bits are j, except
    // that token 0 (the arc's last token, as ranges are (start, end]) is in the last leaf.
    #[test]
    fn full_ring_leaves_follow_the_top_bits() {
        let shape = TreeShape::new(TokenRange::full(), 4).unwrap();
        assert_eq!(shape.leaf_of(Token(1)), Some(LeafIndex(0)));
        assert_eq!(shape.leaf_of(Token(1 << 60)), Some(LeafIndex(0)));
        assert_eq!(shape.leaf_of(Token((1 << 60) + 1)), Some(LeafIndex(1)));
        assert_eq!(shape.leaf_of(Token(u64::MAX)), Some(LeafIndex(15)));
        assert_eq!(shape.leaf_of(Token(0)), Some(LeafIndex(15)));
        assert_eq!(shape.leaf_range(LeafIndex(15)).end, Token(0));
        assert!(shape.leaf_range(LeafIndex(15)).contains(Token(0)));
    }

    // A wrapping arc maps tokens on both sides of u64::MAX into consecutive leaves.
    #[test]
    fn wrapping_arc_is_split_in_ring_order() {
        let range = TokenRange::new(Token(u64::MAX - 7), Token(8)); // 16 tokens
        let shape = TreeShape::new(range, 2).unwrap();
        let leaves: Vec<u32> = [
            u64::MAX - 6,
            u64::MAX - 3,
            u64::MAX - 2,
            u64::MAX,
            0,
            1,
            4,
            5,
            8,
        ]
        .into_iter()
        .map(|t| shape.leaf_of(Token(t)).unwrap().0)
        .collect();
        assert_eq!(leaves, vec![0, 0, 1, 1, 1, 2, 2, 3, 3]);
        assert_eq!(shape.leaf_of(Token(9)), None);
        assert_eq!(shape.leaf_of(Token(u64::MAX - 7)), None);
    }

    // Shapes that cannot be built are refused, including when read from the wire.
    #[test]
    fn invalid_shapes_are_rejected() {
        assert!(matches!(
            TreeShape::new(TokenRange::full(), MAX_DEPTH + 1),
            Err(MerkleError::DepthTooLarge { .. })
        ));
        let narrow = TokenRange::new(Token(10), Token(13)); // 3 tokens
        assert!(TreeShape::new(narrow, 1).is_ok());
        assert!(matches!(
            TreeShape::new(narrow, 2),
            Err(MerkleError::RangeTooNarrow {
                width: 3,
                leaves: 4
            })
        ));
        let bad = UncheckedShape {
            range: TokenRange::full(),
            depth: 99,
        };
        assert!(TreeShape::try_from(bad).is_err());
        let wire = postcard::to_allocvec(&(TokenRange::full(), 99u8)).unwrap();
        assert!(postcard::from_bytes::<TreeShape>(&wire).is_err());
        let wire = postcard::to_allocvec(&(TokenRange::full(), 7u8)).unwrap();
        assert_eq!(postcard::from_bytes::<TreeShape>(&wire).unwrap().depth(), 7);
    }

    // The depth follows the expected key count, within the caps.
    #[test]
    fn depth_from_expected_keys() {
        let full = TokenRange::full();
        let depth = |n| TreeShape::for_expected_keys(full, n).unwrap().depth();
        assert_eq!(depth(0), 0);
        assert_eq!(depth(TARGET_KEYS_PER_LEAF), 0);
        assert_eq!(depth(TARGET_KEYS_PER_LEAF + 1), 1);
        assert_eq!(depth(1_000_000), 17); // 2^17 leaves, 7.6 keys per leaf
        assert_eq!(depth(u64::MAX), MAX_DEPTH);
        let narrow = TokenRange::new(Token(0), Token(5));
        assert_eq!(
            TreeShape::for_expected_keys(narrow, 1_000_000)
                .unwrap()
                .depth(),
            2
        );
    }

    // Heap navigation: levels, children and descendants.
    #[test]
    fn heap_navigation() {
        let shape = TreeShape::new(TokenRange::full(), 3).unwrap();
        assert_eq!(shape.node_count(), 15);
        assert_eq!(shape.level_of(NodeIndex(1)), Some(0));
        assert_eq!(shape.level_of(NodeIndex(7)), Some(2));
        assert_eq!(shape.level_of(NodeIndex(8)), Some(3));
        assert_eq!(shape.level_of(NodeIndex(16)), None);
        assert_eq!(shape.level_of(NodeIndex(0)), None);
        assert_eq!(
            shape.children_of(NodeIndex(3)),
            Some([NodeIndex(6), NodeIndex(7)])
        );
        assert_eq!(shape.children_of(NodeIndex(8)), None);
        assert_eq!(shape.descendants(NodeIndex(1), 2), 4..8);
        assert_eq!(shape.descendants(NodeIndex(3), 5), 12..16);
        assert_eq!(shape.node_leaf(NodeIndex(9)), Some(LeafIndex(1)));
        assert_eq!(shape.leaf_node(LeafIndex(1)), NodeIndex(9));
        assert_eq!(shape.node_leaf(NodeIndex(7)), None);
    }
}
