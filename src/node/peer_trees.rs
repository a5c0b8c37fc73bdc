//! One Merkle tree per peer, over the keys this node and that peer both replicate.
//!
//! Anti-entropy compares what two replicas hold *in common*. With virtual nodes a node shares
//! many small arcs with each peer, so instead of a tree per arc (hundreds, each exchanged on
//! its own) ringstore keeps one tree per peer over the whole ring, holding exactly the keys
//! whose preference list names both nodes. Under the same ring, the two sides' trees cover the
//! same key set, and one exchange compares everything they share.
//!
//! # Invariants
//! - While fresh, every tree equals a rebuild from storage: [`PeerTrees::on_write`] is called
//!   for every change of the store (through `Node::merge_local` / `Node::remove_local`).
//! - A ring change makes the trees stale ([`PeerTrees::invalidate`]); they are rebuilt from a
//!   storage scan before the next exchange.
//!
//! # Limits
//! - A rebuild scans every key the node holds: O(keys · N). Ring changes are rare; the cost is
//!   paid once per change, at the next anti-entropy round.

use crate::NodeId;
use crate::merkle::{MerkleTree, TreeShape};
use crate::ring::{Ring, TokenRange};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;

/// Keys read per page while rebuilding.
const REBUILD_PAGE: usize = 4096;

/// The per-peer trees of one node.
#[derive(Default)]
pub(super) struct PeerTrees {
    trees: BTreeMap<NodeId, MerkleTree>,
    fresh: bool,
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
        self.trees.get(&peer)
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
        for peer in pref.iter().filter(|&p| p != me) {
            if let Some(tree) = self.trees.get_mut(&peer) {
                // Shapes are fixed at rebuild and keys always map to a leaf of the full ring.
                let _ = tree.update(key, old_digest, new_digest);
            }
        }
    }

    /// Rebuilds every tree from a scan of the store.
    pub(super) fn rebuild<S: Store>(
        &mut self,
        store: &S,
        ring: Option<&Ring>,
        me: NodeId,
        n: usize,
        depth: u8,
    ) -> Result<(), StoreError> {
        self.trees.clear();
        let Some(ring) = ring else {
            self.fresh = true;
            return Ok(());
        };
        let Ok(shape) = TreeShape::new(TokenRange::full(), depth) else {
            return Ok(());
        };
        for range in ring.ranges_of(me, n) {
            for peer in range.replicas.iter().filter(|&p| p != me) {
                self.trees
                    .entry(peer)
                    .or_insert_with(|| MerkleTree::new(shape));
            }
        }
        let mut cursor = None;
        loop {
            let page = store.scan_digests(TokenRange::full(), cursor.as_ref(), REBUILD_PAGE)?;
            for entry in &page.entries {
                let pref = ring.preference_list(&entry.key, n);
                if !pref.contains(me) {
                    continue;
                }
                for peer in pref.iter().filter(|&p| p != me) {
                    if let Some(tree) = self.trees.get_mut(&peer) {
                        let _ = tree.insert(&entry.key, entry.digest);
                    }
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        self.fresh = true;
        Ok(())
    }
}
