//! One Merkle tree per peer, over the keys this node and that peer both replicate, each as
//! deep as its key count calls for.
//!
//! Anti-entropy compares what two replicas hold *in common*. With virtual nodes a node shares
//! many small arcs with each peer, so instead of a tree per arc (hundreds, each exchanged on
//! its own) ringstore keeps one tree per peer over the whole ring, holding exactly the keys
//! whose preference list names both nodes. Under the same ring, the two sides' trees cover the
//! same key set, and one exchange compares everything they share.
//!
//! **Depth from the key count.** A tree is built at the depth that leaves about
//! `TARGET_KEYS_PER_LEAF` (8) keys per leaf (`TreeShape::for_expected_keys`), capped by the
//! node's `anti_entropy_tree_depth`: a differing leaf then costs ~8 fingerprints to list, and
//! a peer with few shared keys costs little memory. The two sides of an exchange may pick
//! different depths; they compare at the smaller (the top of a deeper tree is the shallower
//! tree). A tree that grows past [`REBUILD_KEYS_PER_LEAF`] keys per leaf is rebuilt deeper.
//!
//! # Invariants
//! - While fresh, every tree equals a rebuild from storage: [`PeerTrees::on_write`] is called
//!   for every change of the store (through `Node::merge_local` / `Node::remove_local`).
//! - A ring change makes the trees stale ([`PeerTrees::invalidate`]), and so does a tree
//!   outgrowing its depth; stale trees are rebuilt from a storage scan before the next exchange.
//!
//! # Limits
//! - A rebuild scans every key the node holds twice (count, then insert): O(keys · N). Ring
//!   changes are rare and growth rebuilds are geometric (each one 4× the keys of the last),
//!   so the cost is paid about once per change or per 4× growth.

use crate::NodeId;
use crate::merkle::{MerkleTree, TARGET_KEYS_PER_LEAF, TreeShape};
use crate::ring::{Ring, TokenRange};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;

/// Keys read per page while rebuilding.
const REBUILD_PAGE: usize = 4096;

/// A tree holding more keys per leaf than this (two levels too shallow) is rebuilt deeper,
/// unless it is at the depth cap already.
pub(super) const REBUILD_KEYS_PER_LEAF: u64 = 4 * TARGET_KEYS_PER_LEAF;

/// The tree shared with one peer and how many keys it holds.
struct PeerTree {
    tree: MerkleTree,
    keys: u64,
}

/// The per-peer trees of one node.
#[derive(Default)]
pub(super) struct PeerTrees {
    trees: BTreeMap<NodeId, PeerTree>,
    fresh: bool,
    /// The depth cap of the last rebuild.
    max_depth: u8,
}

/// Whether `key` is replicated by both `me` and `peer` under `ring`.
pub(super) fn shared_with(ring: &Ring, n: usize, me: NodeId, peer: NodeId, key: &[u8]) -> bool {
    let pref = ring.preference_list(key, n);
    pref.contains(me) && pref.contains(peer)
}

impl PeerTrees {
    /// Marks every tree stale (the ring changed).
    pub(super) fn invalidate(&mut self) {
        self.trees.clear();
        self.fresh = false;
    }

    /// Whether the trees reflect the store under the current ring.
    pub(super) fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// The tree shared with `peer`.
    pub(super) fn tree(&self, peer: NodeId) -> Option<&MerkleTree> {
        self.trees.get(&peer).map(|t| &t.tree)
    }

    /// The peers this node shares at least one arc with, in id order.
    pub(super) fn peers(&self) -> Vec<NodeId> {
        self.trees.keys().copied().collect()
    }

    /// Keeps the trees in step with one change of the store.
    pub(super) fn on_write(
        &mut self,
        ring: Option<&Ring>,
        me: NodeId,
        n: usize,
        key: &[u8],
        old_digest: Option<u64>,
        new_digest: Option<u64>,
    ) {
        let (true, Some(ring)) = (self.fresh, ring) else {
            return;
        };
        let pref = ring.preference_list(key, n);
        if !pref.contains(me) {
            return;
        }
        let mut outgrown = false;
        for peer in pref.iter().filter(|&p| p != me) {
            if let Some(entry) = self.trees.get_mut(&peer) {
                // Shapes are fixed at rebuild and keys always map to a leaf of the full ring.
                let _ = entry.tree.update(key, old_digest, new_digest);
                match (old_digest, new_digest) {
                    (None, Some(_)) => entry.keys += 1,
                    (Some(_), None) => entry.keys = entry.keys.saturating_sub(1),
                    _ => {}
                }
                let shape = entry.tree.shape();
                outgrown |= shape.depth() < self.max_depth
                    && entry.keys > REBUILD_KEYS_PER_LEAF * u64::from(shape.leaf_count());
            }
        }
        if outgrown {
            self.invalidate();
        }
    }

    /// Rebuilds every tree from two scans of the store: one counts each peer's shared keys
    /// (which sets its tree's depth, at most `max_depth`), one fills the trees.
    pub(super) fn rebuild<S: Store>(
        &mut self,
        store: &S,
        ring: Option<&Ring>,
        me: NodeId,
        n: usize,
        max_depth: u8,
    ) -> Result<(), StoreError> {
        self.trees.clear();
        self.max_depth = max_depth;
        let Some(ring) = ring else {
            self.fresh = true;
            return Ok(());
        };
        let mut counts: BTreeMap<NodeId, u64> = BTreeMap::new();
        for range in ring.ranges_of(me, n) {
            for peer in range.replicas.iter().filter(|&p| p != me) {
                counts.entry(peer).or_insert(0);
            }
        }
        for_each_shared(store, ring, me, n, |peer, _, _| {
            if let Some(count) = counts.get_mut(&peer) {
                *count += 1;
            }
        })?;
        for (&peer, &keys) in &counts {
            let Ok(shape) = TreeShape::for_expected_keys(TokenRange::full(), keys)
                .and_then(|s| s.with_depth(s.depth().min(max_depth)))
            else {
                continue;
            };
            let tree = MerkleTree::new(shape);
            self.trees.insert(peer, PeerTree { tree, keys });
        }
        let trees = &mut self.trees;
        for_each_shared(store, ring, me, n, |peer, key, digest| {
            if let Some(entry) = trees.get_mut(&peer) {
                let _ = entry.tree.insert(key, digest);
            }
        })?;
        self.fresh = true;
        Ok(())
    }
}

/// Calls `f(peer, key, digest)` for every stored key this node replicates, once per other
/// replica of the key.
fn for_each_shared<S: Store>(
    store: &S,
    ring: &Ring,
    me: NodeId,
    n: usize,
    mut f: impl FnMut(NodeId, &[u8], u64),
) -> Result<(), StoreError> {
    let mut cursor = None;
    loop {
        let page = store.scan_digests(TokenRange::full(), cursor.as_ref(), REBUILD_PAGE)?;
        for entry in &page.entries {
            let pref = ring.preference_list(&entry.key, n);
            if !pref.contains(me) {
                continue;
            }
            for peer in pref.iter().filter(|&p| p != me) {
                f(peer, &entry.key, entry.digest);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}
