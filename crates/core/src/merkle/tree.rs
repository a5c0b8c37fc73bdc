//! The Merkle tree of one arc: an XOR ("tictac") hash tree over the arc's (key, version
//! digest) pairs, updated in place on every write and rebuilt from storage at start-up.
//!
//! This is the tree of Dynamo §4.7 with the incremental leaf of Riak's tictac AAE: a leaf's
//! hash is the XOR of [`entry_hash`](fn@super::entry_hash) over the keys in its token sub-range,
//! and an inner node's hash is the XOR of its children. XOR is its own inverse and order-free,
//! so a write XORs the key's old contribution out and its new one in, along the leaf-to-root
//! path: `depth + 1` XORs, no sibling is read or rehashed, nothing is rebuilt.
//!
//! # Invariants
//! - Every node's hash equals the XOR of `entry_hash(key, digest)` over the keys (as last told
//!   to the tree) whose tokens lie in the node's range; the empty set hashes to 0. Hence a
//!   tree built incrementally equals [`MerkleTree::rebuild_from`] the same final contents.
//! - The hashes are stored in a flat heap-ordered array of `2^(depth+1)` words (slot 0 unused).
//!
//! # Limits
//! - The tree trusts the caller's `old_digest`: a wrong one corrupts the hashes of the key's
//!   path until the next rebuild (the store knows the old digest from its read-merge-write).
//! - A key counted twice cancels out (XOR): each key must be in the tree at most once.
//! - Memory is `8 * 2^(depth+1)` bytes whatever the key count (64 KiB at the default depth).

use super::entry_hash::entry_hash;
use super::error::MerkleError;
use super::exchange::{HashRequest, HashResponse, MAX_NODES_PER_STEP, short_hash};
use super::shape::{LeafIndex, NodeIndex, TreeShape};
use crate::ring::key_token;

/// The hash tree of one arc, kept current by the store on every write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    shape: TreeShape,
    /// Heap-ordered hashes: `nodes[1]` is the root, `nodes[2^depth + j]` is leaf `j`.
    nodes: Vec<u64>,
}

impl MerkleTree {
    /// An empty tree (every hash 0) of the given shape.
    pub fn new(shape: TreeShape) -> Self {
        Self {
            shape,
            nodes: vec![0; shape.node_count() as usize + 1],
        }
    }

    /// A tree over the given contents, e.g. a storage scan of the arc at start-up. Costs one
    /// hash per key plus one XOR per node (not `depth` XORs per key).
    pub fn rebuild_from<K: AsRef<[u8]>>(
        shape: TreeShape,
        entries: impl IntoIterator<Item = (K, u64)>,
    ) -> Result<Self, MerkleError> {
        let mut tree = Self::new(shape);
        let first_leaf = shape.leaf_count() as usize;
        for (key, digest) in entries {
            let key = key.as_ref();
            let leaf = tree.leaf_of_key(key)?;
            tree.nodes[first_leaf + leaf.0 as usize] ^= entry_hash(key, digest);
        }
        for node in (1..first_leaf).rev() {
            tree.nodes[node] = tree.nodes[2 * node] ^ tree.nodes[2 * node + 1];
        }
        Ok(tree)
    }

    /// Records a write of `key`: its version digest went from `old_digest` to `new_digest`
    /// (`None` = the key was absent / is now gone from storage). Costs `depth + 1` XORs.
    pub fn update(
        &mut self,
        key: &[u8],
        old_digest: Option<u64>,
        new_digest: Option<u64>,
    ) -> Result<(), MerkleError> {
        if old_digest == new_digest {
            return Ok(());
        }
        let leaf = self.leaf_of_key(key)?;
        let old = old_digest.map_or(0, |d| entry_hash(key, d));
        let new = new_digest.map_or(0, |d| entry_hash(key, d));
        let delta = old ^ new;
        let mut node = self.shape.leaf_node(leaf).0 as usize;
        while node >= 1 {
            self.nodes[node] ^= delta;
            node /= 2;
        }
        Ok(())
    }

    /// Records a new key with version digest `digest`.
    pub fn insert(&mut self, key: &[u8], digest: u64) -> Result<(), MerkleError> {
        self.update(key, None, Some(digest))
    }

    /// Records that `key`, whose version digest was `digest`, is gone from storage.
    pub fn remove(&mut self, key: &[u8], digest: u64) -> Result<(), MerkleError> {
        self.update(key, Some(digest), None)
    }

    /// The arc and depth of this tree.
    pub fn shape(&self) -> TreeShape {
        self.shape
    }

    /// The hash of the whole arc: equal roots mean (with probability `1 - 2^-64`) equal data.
    pub fn root_hash(&self) -> u64 {
        self.nodes[NodeIndex::ROOT.0 as usize]
    }

    /// The hash of one node; `None` if `node` is not in this tree.
    pub fn hash(&self, node: NodeIndex) -> Option<u64> {
        if self.shape.contains_node(node) {
            Some(self.nodes[node.0 as usize])
        } else {
            None
        }
    }

    /// The hash of one leaf; `None` if `leaf` is not in this tree.
    pub fn leaf_hash(&self, leaf: LeafIndex) -> Option<u64> {
        if leaf.0 < self.shape.leaf_count() {
            self.hash(self.shape.leaf_node(leaf))
        } else {
            None
        }
    }

    /// The hashes of `nodes`, in order; refuses indices outside the tree (they may come from a
    /// peer).
    pub fn hashes(&self, nodes: &[NodeIndex]) -> Result<Vec<u64>, MerkleError> {
        nodes
            .iter()
            .map(|&node| {
                self.hash(node).ok_or(MerkleError::NodeOutOfRange {
                    node,
                    node_count: self.shape.node_count(),
                })
            })
            .collect()
    }

    /// The responder's side of one exchange step: the hashes a peer's [`HashRequest`] asks
    /// for, after checking that this tree covers the request's shape (same arc, at least as
    /// deep: the top levels of a deeper tree are the shallower tree), that every node is in
    /// the request's shape, and that the request is within [`MAX_NODES_PER_STEP`].
    pub fn answer(&self, request: &HashRequest) -> Result<HashResponse, MerkleError> {
        if !self.shape.covers(request.shape) {
            return Err(MerkleError::ShapeMismatch {
                local: self.shape,
                remote: request.shape,
            });
        }
        if request.nodes.len() > MAX_NODES_PER_STEP {
            return Err(MerkleError::TooManyNodes {
                requested: request.nodes.len(),
                max: MAX_NODES_PER_STEP,
            });
        }
        if let Some(&node) = request
            .nodes
            .iter()
            .find(|&&node| !request.shape.contains_node(node))
        {
            return Err(MerkleError::NodeOutOfRange {
                node,
                node_count: request.shape.node_count(),
            });
        }
        let hashes = self.hashes(&request.nodes)?;
        Ok(HashResponse {
            hashes: hashes
                .into_iter()
                .map(|h| short_hash(h, request.rotation))
                .collect(),
        })
    }

    /// The bytes this tree's hashes occupy in memory (the array; the struct adds a few words).
    pub fn memory_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<u64>()
    }

    fn leaf_of_key(&self, key: &[u8]) -> Result<LeafIndex, MerkleError> {
        let token = key_token(key);
        self.shape
            .leaf_of(token)
            .ok_or(MerkleError::KeyOutsideRange { token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Token, TokenRange};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn key(i: u16) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    /// A range holding a good share of the keys: the full ring, or an arc of >= 1/4 of it,
    /// often wrapping.
    fn arb_range() -> impl Strategy<Value = TokenRange> {
        prop_oneof![
            Just(TokenRange::full()),
            (any::<u64>(), (u64::MAX / 4)..u64::MAX)
                .prop_map(|(s, w)| TokenRange::new(Token(s), Token(s.wrapping_add(w)))),
        ]
    }

    /// One write: key index, and the key's new digest (`None` = removed).
    fn arb_ops() -> impl Strategy<Value = Vec<(u16, Option<u64>)>> {
        proptest::collection::vec((0u16..64, proptest::option::of(0u64..4)), 0..200)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // Incremental updates (insert / change / remove in any order) equal a rebuild of the
        // final contents.
        #[test]
        fn incremental_equals_rebuild(range in arb_range(), depth in 0u8..=8, ops in arb_ops()) {
            let shape = TreeShape::new(range, depth).unwrap();
            let mut tree = MerkleTree::new(shape);
            let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
            for (i, new) in ops {
                let k = key(i);
                if !range.contains(key_token(&k)) {
                    prop_assert!(tree.update(&k, None, new.or(Some(0))).is_err());
                    continue;
                }
                let old = model.get(&k).copied();
                tree.update(&k, old, new).unwrap();
                match new {
                    Some(d) => model.insert(k, d),
                    None => model.remove(&k),
                };
            }
            let rebuilt = MerkleTree::rebuild_from(shape, model.iter().map(|(k, &d)| (k, d)));
            prop_assert_eq!(&tree, &rebuilt.unwrap());
        }

        // Every node's hash is the XOR of the entry hashes of the keys in its range.
        #[test]
        fn node_hash_is_xor_of_its_range(range in arb_range(), depth in 0u8..=6, ops in arb_ops()) {
            let shape = TreeShape::new(range, depth).unwrap();
            let model: BTreeMap<Vec<u8>, u64> = ops
                .into_iter()
                .filter_map(|(i, d)| Some((key(i), d?)))
                .filter(|(k, _)| range.contains(key_token(k)))
                .collect();
            let tree = MerkleTree::rebuild_from(shape, model.iter().map(|(k, &d)| (k, d))).unwrap();
            for node in 1..=shape.node_count() {
                let node_range = shape.node_range(NodeIndex(node)).unwrap();
                let expected = model
                    .iter()
                    .filter(|(k, _)| node_range.contains(key_token(k)))
                    .fold(0, |acc, (k, &d)| acc ^ entry_hash(k, d));
                prop_assert_eq!(tree.hash(NodeIndex(node)), Some(expected));
            }
        }

        // The order in which keys arrive does not matter (XOR is commutative).
        #[test]
        fn xor_is_order_independent(ops in arb_ops(), seed in any::<u64>()) {
            let shape = TreeShape::new(TokenRange::full(), 5).unwrap();
            let model: BTreeMap<Vec<u8>, u64> =
                ops.into_iter().filter_map(|(i, d)| Some((key(i), d?))).collect();
            let mut entries: Vec<(Vec<u8>, u64)> = model.into_iter().collect();
            let forward = MerkleTree::rebuild_from(shape, entries.iter().cloned()).unwrap();
            // A seeded rotation and reversal of the insertion order.
            let n = entries.len().max(1);
            entries.rotate_left((seed as usize) % n);
            entries.reverse();
            let mut shuffled = MerkleTree::new(shape);
            for (k, d) in &entries {
                shuffled.insert(k, *d).unwrap();
            }
            prop_assert_eq!(&forward, &shuffled);
        }
    }

    // Inserting then removing every key returns the tree to all zeroes.
    #[test]
    fn insert_then_remove_is_empty() {
        let shape = TreeShape::new(TokenRange::full(), 4).unwrap();
        let mut tree = MerkleTree::new(shape);
        for i in 0..100 {
            tree.insert(&key(i), u64::from(i)).unwrap();
        }
        assert_ne!(tree.root_hash(), 0);
        for i in 0..100 {
            tree.remove(&key(i), u64::from(i)).unwrap();
        }
        assert_eq!(tree, MerkleTree::new(shape));
    }

    // A write changes exactly the hashes on the key's leaf-to-root path.
    #[test]
    fn update_touches_only_the_path() {
        let shape = TreeShape::new(TokenRange::full(), 6).unwrap();
        let mut tree = MerkleTree::rebuild_from(shape, (0..200).map(|i| (key(i), 1u64))).unwrap();
        let before = tree.clone();
        tree.update(&key(7), Some(1), Some(2)).unwrap();
        let leaf = shape.leaf_of(key_token(&key(7))).unwrap();
        let mut path = vec![];
        let mut node = shape.leaf_node(leaf).0;
        while node >= 1 {
            path.push(node);
            node /= 2;
        }
        for n in 1..=shape.node_count() {
            let changed = tree.hash(NodeIndex(n)) != before.hash(NodeIndex(n));
            assert_eq!(changed, path.contains(&n), "node {n}");
        }
    }

    // Requests from a peer are validated: shape, node indices, size.
    #[test]
    fn answer_validates_requests() {
        let shape = TreeShape::new(TokenRange::full(), 3).unwrap();
        let tree = MerkleTree::new(shape);
        let deeper = TreeShape::new(TokenRange::full(), 4).unwrap();
        let other_arc = TreeShape::new(TokenRange::new(Token(1), Token(1 << 40)), 3).unwrap();
        let request = |shape, nodes| HashRequest {
            shape,
            rotation: 0,
            nodes,
        };
        for other in [deeper, other_arc] {
            assert!(matches!(
                tree.answer(&request(other, vec![NodeIndex::ROOT])),
                Err(MerkleError::ShapeMismatch { .. })
            ));
        }
        // A shallower walk is answered, but only with nodes of its own shape.
        let shallower = TreeShape::new(TokenRange::full(), 2).unwrap();
        assert!(tree.answer(&request(shallower, vec![NodeIndex(7)])).is_ok());
        assert!(matches!(
            tree.answer(&request(shallower, vec![NodeIndex(8)])),
            Err(MerkleError::NodeOutOfRange { node_count: 7, .. })
        ));
        for bad in [0, 16, u32::MAX] {
            assert!(matches!(
                tree.answer(&request(shape, vec![NodeIndex(bad)])),
                Err(MerkleError::NodeOutOfRange { .. })
            ));
        }
        let too_many = vec![NodeIndex::ROOT; MAX_NODES_PER_STEP + 1];
        assert!(matches!(
            tree.answer(&request(shape, too_many)),
            Err(MerkleError::TooManyNodes { .. })
        ));
        let ok = tree.answer(&request(shape, vec![NodeIndex(1), NodeIndex(15)]));
        assert_eq!(ok.unwrap().hashes, vec![0, 0]);
    }

    // The documented memory cost: 8 bytes per heap slot, 2^(depth+1) slots.
    #[test]
    fn memory_is_two_words_per_leaf() {
        let shape = TreeShape::new(TokenRange::full(), super::super::shape::DEFAULT_DEPTH).unwrap();
        assert_eq!(MerkleTree::new(shape).memory_bytes(), 64 * 1024);
    }
}
