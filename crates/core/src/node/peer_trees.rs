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
//! - A rebuild is paged ([`PeerTrees::rebuild_step`]: at most [`REBUILD_PAGE`] keys a step,
//!   the node runs one step per `Timer::TreeRebuild`), so the core keeps serving requests
//!   between pages: a one-shot rebuild of 500,000 keys held the core for about a second. While
//!   the trees are filled, a write to a key the scan has passed updates its tree at once, and a
//!   write to a key ahead of the scan is left for the scan to read: at the end every tree
//!   equals a one-shot rebuild of the store as it is then.
//!
//! # Limits
//! - A rebuild scans every key the node holds twice (count, then insert): O(keys · N). Ring
//!   changes are rare and growth rebuilds are geometric (each one 4× the keys of the last),
//!   so the cost is paid about once per change or per 4× growth. No exchange runs meanwhile.

use crate::NodeId;
use crate::merkle::{MerkleTree, TARGET_KEYS_PER_LEAF, TreeShape};
use crate::ring::{Ring, Token, TokenRange, key_token};
use crate::store::{ScanCursor, Store, StoreError};
use std::collections::BTreeMap;

/// Keys read per rebuild step: about a millisecond of the core's time.
pub(super) const REBUILD_PAGE: usize = 1024;

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
    /// A rebuild under way (only while not fresh).
    rebuild: Option<Rebuild>,
}

/// Where a paged rebuild is.
enum Rebuild {
    /// Counting each peer's shared keys, to choose the trees' depths.
    Counting {
        counts: BTreeMap<NodeId, u64>,
        cursor: Option<ScanCursor>,
    },
    /// Filling the trees, which exist at their final shape.
    Filling {
        cursor: Option<ScanCursor>,
        /// The ring position of the last key scanned: writes at or before it go to the trees.
        scanned_to: Option<(Token, Vec<u8>)>,
    },
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
        self.rebuild = None;
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
        let Some(ring) = ring else {
            return;
        };
        if !self.fresh {
            // Mid-fill, a key the scan has passed is in the trees already: keep it current.
            // A key ahead of the scan (or any key while counting) is read by the scan later.
            let Some(Rebuild::Filling {
                scanned_to: Some(scanned_to),
                ..
            }) = &self.rebuild
            else {
                return;
            };
            if (key_token(key), key) > (scanned_to.0, scanned_to.1.as_slice()) {
                return;
            }
        }
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
        if outgrown && self.fresh {
            self.invalidate();
        }
    }

    /// Does one page of the rebuild (starting one if none is under way); whether the trees are
    /// fresh now. Two passes over the store: one counts each peer's shared keys (which sets
    /// its tree's depth, at most `max_depth`), one fills the trees.
    pub(super) fn rebuild_step<S: Store>(
        &mut self,
        store: &S,
        ring: Option<&Ring>,
        me: NodeId,
        n: usize,
        max_depth: u8,
    ) -> Result<bool, StoreError> {
        if self.fresh {
            return Ok(true);
        }
        let Some(ring) = ring else {
            self.trees.clear();
            self.max_depth = max_depth;
            self.fresh = true;
            return Ok(true);
        };
        let rebuild = self.rebuild.take().unwrap_or_else(|| {
            self.trees.clear();
            self.max_depth = max_depth;
            let mut counts = BTreeMap::new();
            for range in ring.ranges_of(me, n) {
                for peer in range.replicas.iter().filter(|&p| p != me) {
                    counts.entry(peer).or_insert(0);
                }
            }
            Rebuild::Counting {
                counts,
                cursor: None,
            }
        });
        match rebuild {
            Rebuild::Counting { mut counts, cursor } => {
                let page = shared_page(store, ring, me, n, cursor.as_ref(), |peer, _, _| {
                    if let Some(count) = counts.get_mut(&peer) {
                        *count += 1;
                    }
                })?;
                if let Some(next) = page.next {
                    self.rebuild = Some(Rebuild::Counting {
                        counts,
                        cursor: Some(next),
                    });
                    return Ok(false);
                }
                for (&peer, &keys) in &counts {
                    let Ok(shape) = TreeShape::for_expected_keys(TokenRange::full(), keys)
                        .and_then(|s| s.with_depth(s.depth().min(self.max_depth)))
                    else {
                        continue;
                    };
                    let tree = MerkleTree::new(shape);
                    self.trees.insert(peer, PeerTree { tree, keys: 0 });
                }
                self.rebuild = Some(Rebuild::Filling {
                    cursor: None,
                    scanned_to: None,
                });
                Ok(false)
            }
            Rebuild::Filling {
                cursor,
                mut scanned_to,
            } => {
                let trees = &mut self.trees;
                let page =
                    shared_page(store, ring, me, n, cursor.as_ref(), |peer, key, digest| {
                        if let Some(entry) = trees.get_mut(&peer) {
                            let _ = entry.tree.insert(key, digest);
                            entry.keys += 1;
                        }
                    })?;
                if page.last.is_some() {
                    scanned_to = page.last;
                }
                if let Some(next) = page.next {
                    self.rebuild = Some(Rebuild::Filling {
                        cursor: Some(next),
                        scanned_to,
                    });
                    return Ok(false);
                }
                self.fresh = true;
                Ok(true)
            }
        }
    }
}

/// What one page of a rebuild scan read.
struct SharedPage {
    /// Where the next page starts; `None` once the store is exhausted.
    next: Option<ScanCursor>,
    /// The ring position of the page's last key, if the page had any.
    last: Option<(Token, Vec<u8>)>,
}

/// Reads one page of the store after `cursor` and calls `f(peer, key, digest)` for each key
/// this node replicates, once per other replica of the key.
fn shared_page<S: Store>(
    store: &S,
    ring: &Ring,
    me: NodeId,
    n: usize,
    cursor: Option<&ScanCursor>,
    mut f: impl FnMut(NodeId, &[u8], u64),
) -> Result<SharedPage, StoreError> {
    let page = store.scan_digests(TokenRange::full(), cursor, REBUILD_PAGE)?;
    for entry in &page.entries {
        let pref = ring.preference_list(&entry.key, n);
        if !pref.contains(me) {
            continue;
        }
        for peer in pref.iter().filter(|&p| p != me) {
            f(peer, &entry.key, entry.digest);
        }
    }
    let last = page.entries.last().map(|e| (e.token, e.key.clone()));
    Ok(SharedPage {
        next: page.next,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingMember;
    use crate::store::{MemoryStore, SyncPolicy};
    use crate::version::{ActorId, CausalContext, Value, VersionSet};

    fn set_of(actor: u64, payload: &[u8]) -> VersionSet {
        VersionSet::with_update(
            &CausalContext::empty(),
            ActorId(actor),
            Value::Data(payload.to_vec()),
        )
    }

    /// Writes `key` to the store and tells the trees, as `Node::merge_local` does.
    fn write(
        trees: &mut PeerTrees,
        store: &mut MemoryStore,
        ring: &Ring,
        key: &[u8],
        set: &VersionSet,
    ) {
        let outcome = store.merge(key, set).unwrap();
        if outcome.changed {
            let new = Some(outcome.digest);
            trees.on_write(Some(ring), NodeId(1), 3, key, outcome.previous_digest, new);
        }
    }

    // A paged rebuild interleaved with writes (new keys and updates, behind and ahead of its
    // scan, while counting and while filling) ends equal to a one-shot rebuild of the final
    // store; writes after it keep it equal.
    #[test]
    fn a_paged_rebuild_under_writes_equals_a_one_shot_rebuild() {
        let ring = Ring::new((1..=4).map(|i| RingMember::new(NodeId(i), 16))).unwrap();
        let mut store = MemoryStore::new(SyncPolicy::EveryWrite);
        let keys = REBUILD_PAGE as u64 * 5 / 2;
        let mut trees = PeerTrees::default();
        for i in 0..keys {
            let key = format!("key-{i}");
            write(
                &mut trees,
                &mut store,
                &ring,
                key.as_bytes(),
                &set_of(1, b"v1"),
            );
        }
        let mut steps = 0u64;
        while !trees
            .rebuild_step(&store, Some(&ring), NodeId(1), 3, 12)
            .unwrap()
        {
            steps += 1;
            // Each step: update an old key, add a new one, both spread over the ring.
            let old = format!("key-{}", (steps * 7919) % keys);
            write(
                &mut trees,
                &mut store,
                &ring,
                old.as_bytes(),
                &set_of(2, &steps.to_be_bytes()),
            );
            let new = format!("new-{steps}");
            write(
                &mut trees,
                &mut store,
                &ring,
                new.as_bytes(),
                &set_of(3, b"n"),
            );
        }
        assert!(steps >= 5, "{keys} keys took only {steps} steps");
        for i in 0..50 {
            let key = format!("after-{i}");
            write(
                &mut trees,
                &mut store,
                &ring,
                key.as_bytes(),
                &set_of(4, b"a"),
            );
        }
        // Without writes in between, stepping to the end is the one-shot rebuild.
        let mut one_shot = PeerTrees::default();
        while !one_shot
            .rebuild_step(&store, Some(&ring), NodeId(1), 3, 12)
            .unwrap()
        {}
        assert_eq!(trees.peers(), one_shot.peers());
        for peer in one_shot.peers() {
            assert_eq!(
                trees.tree(peer),
                one_shot.tree(peer),
                "tree shared with {peer}"
            );
        }
    }
}
