//! Token ranges and their replica sets: the view of the ring that anti-entropy and range
//! handoff need ("which arcs does node X replicate, and with whom"; "which arcs changed hands
//! when the ring changed").
//!
//! Implements the range bookkeeping behind Dynamo §4.2 (a join or leave moves only the arcs
//! next to the changed tokens) and §4.7 (replicas synchronise per key range).
//!
//! # Guarantees
//! - [`Ring::ranges`] partitions the circle: one arc `(previous token, token]` per token, in
//!   token order; every key token lies in exactly one arc, and the arc's replica set is the
//!   preference list of every key in it.
//! - [`changed_ranges`] partitions the circle by the union of both rings' tokens, so every
//!   key whose replica set differs between the two rings lies in exactly one reported arc,
//!   and no reported arc holds a key whose replica set is unchanged.
//!
//! # Limits
//! - Arcs are per token and adjacent arcs with equal replica sets are not merged: a node with
//!   V vnodes replicates about `N·V` arcs. Callers that scan storage may merge them.
//! - Replica sets are compared as sets: a change of primary alone is not a change of range.
//! - Cost: computing all arcs is O(T · walk) for T tokens (a few milliseconds for thousands).

use super::hash_ring::Ring;
use super::preference_list::PreferenceList;
use super::token::{Token, TokenRange};
use crate::NodeId;

/// An arc of the ring and the nodes that replicate every key on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicatedRange {
    /// The arc `(start, end]`.
    pub range: TokenRange,
    /// Its replicas, primary first.
    pub replicas: PreferenceList,
}

/// An arc whose replica set differs between two rings: the unit of range handoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeChange {
    /// The arc `(start, end]`.
    pub range: TokenRange,
    /// Its replicas on the old ring.
    pub old: PreferenceList,
    /// Its replicas on the new ring.
    pub new: PreferenceList,
}

impl RangeChange {
    /// Nodes that replicate the arc on the new ring only: they must receive its data.
    pub fn gained(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.new.iter().filter(|&node| !self.old.contains(node))
    }

    /// Nodes that replicated the arc on the old ring only: they may hand it off and drop it.
    pub fn lost(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.old.iter().filter(|&node| !self.new.contains(node))
    }
}

impl Ring {
    /// Every arc of the ring with its `n` replicas, in token order.
    pub fn ranges(&self, n: usize) -> Vec<ReplicatedRange> {
        let tokens = self.tokens();
        (0..tokens.len())
            .map(|index| {
                let previous = tokens[(index + tokens.len() - 1) % tokens.len()];
                ReplicatedRange {
                    range: TokenRange::new(previous, tokens[index]),
                    replicas: self.walk_from_index(index).take(n).collect(),
                }
            })
            .collect()
    }

    /// The arcs `node` replicates with `n` replicas per key, with their replica sets.
    pub fn ranges_of(&self, node: NodeId, n: usize) -> Vec<ReplicatedRange> {
        let mut ranges = self.ranges(n);
        ranges.retain(|range| range.replicas.contains(node));
        ranges
    }
}

/// The arcs whose `n`-replica sets differ between `old` and `new`, in token order.
pub fn changed_ranges(old: &Ring, new: &Ring, n: usize) -> Vec<RangeChange> {
    let mut bounds: Vec<Token> = old.tokens().iter().chain(new.tokens()).copied().collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut changes = Vec::new();
    for (index, &end) in bounds.iter().enumerate() {
        let start = bounds[(index + bounds.len() - 1) % bounds.len()];
        // Every token of (start, end] has the same successor in both rings as `end` itself,
        // since no token of either ring lies strictly inside.
        let before = old.preference_list_for_token(end, n);
        let after = new.preference_list_for_token(end, n);
        if !before.same_nodes(&after) {
            changes.push(RangeChange {
                range: TokenRange::new(start, end),
                old: before,
                new: after,
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::member::RingMember;
    use crate::ring::token::key_token;
    use proptest::prelude::*;

    fn ring_of(first_id: u64, count: u64, vnodes: u32) -> Ring {
        Ring::new((0..count).map(|i| RingMember::new(NodeId(first_id + i), vnodes))).unwrap()
    }

    // The arcs partition the circle and carry the preference list of the keys inside them.
    #[test]
    fn ranges_partition_the_ring() {
        let ring = ring_of(1, 4, 8);
        let ranges = ring.ranges(3);
        assert_eq!(ranges.len(), ring.tokens().len());
        let total: f64 = ranges.iter().map(|r| r.range.fraction()).sum();
        assert!((total - 1.0).abs() < 1e-9);
        for i in 0..500u64 {
            let token = key_token(&i.to_le_bytes());
            let holding: Vec<&ReplicatedRange> =
                ranges.iter().filter(|r| r.range.contains(token)).collect();
            assert_eq!(holding.len(), 1);
            assert_eq!(
                holding[0].replicas,
                ring.preference_list_for_token(token, 3)
            );
        }
    }

    // A one-token ring is one arc: the whole circle.
    #[test]
    fn a_single_token_is_the_whole_ring() {
        let ring = ring_of(1, 1, 1);
        let ranges = ring.ranges(3);
        assert_eq!(ranges.len(), 1);
        assert!(ranges[0].range.is_full());
        assert_eq!(ranges[0].replicas.nodes(), &[NodeId(1)]);
    }

    // ranges_of keeps exactly the arcs whose replica set holds the node.
    #[test]
    fn ranges_of_a_node() {
        let ring = ring_of(1, 5, 16);
        let mine = ring.ranges_of(NodeId(3), 3);
        let expected = ring
            .ranges(3)
            .into_iter()
            .filter(|r| r.replicas.contains(NodeId(3)))
            .count();
        assert_eq!(mine.len(), expected);
        assert!(mine.iter().all(|r| r.replicas.contains(NodeId(3))));
        // Each node replicates about 3/5 of the ring.
        let share: f64 = mine.iter().map(|r| r.range.fraction()).sum();
        assert!(share > 0.3 && share < 0.9, "share {share}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        // Dynamo §4.2: the changed arcs are exactly where keys change replica sets, and on a
        // join the only node gaining data is the newcomer.
        #[test]
        fn changed_ranges_match_key_moves(
            first_id in 0u64..1_000_000,
            count in 1u64..8,
            vnodes in 1u32..24,
            n in 1usize..4,
            keys in prop::collection::vec(any::<u64>(), 100),
        ) {
            let old = ring_of(first_id, count, vnodes);
            let newcomer = NodeId(first_id + count);
            let new = old.with_member(RingMember::new(newcomer, vnodes)).unwrap();
            let changes = changed_ranges(&old, &new, n);
            for change in &changes {
                prop_assert_eq!(change.gained().collect::<Vec<_>>(), vec![newcomer]);
            }
            for key in keys {
                let token = key_token(&key.to_le_bytes());
                let moved = !old
                    .preference_list_for_token(token, n)
                    .same_nodes(&new.preference_list_for_token(token, n));
                let reported = changes.iter().filter(|c| c.range.contains(token)).count();
                prop_assert_eq!(reported, usize::from(moved));
            }
            // A leave is the mirror image: the same arcs, old and new swapped.
            let back = changed_ranges(&new, &old, n);
            prop_assert_eq!(back.len(), changes.len());
            for (there, back) in changes.iter().zip(&back) {
                prop_assert_eq!(there.range, back.range);
                prop_assert_eq!(&there.old, &back.new);
            }
        }
    }
}
