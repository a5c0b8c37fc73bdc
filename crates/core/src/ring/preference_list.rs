//! Preference lists: which physical nodes hold a key's replicas, in which order, and which
//! nodes stand in for them when they are down.
//!
//! Implements Dynamo §4.3 (the preference list: the first N *distinct physical* nodes met
//! walking clockwise from the key, skipping further vnodes of nodes already chosen) and the
//! extended list of §4.6 (the nodes after the first N, the fallbacks a sloppy quorum writes
//! to with a hint when a replica is unreachable).
//!
//! # The walk order
//! [`Ring::walk`] yields every node that owns a token exactly once, in *preference order*:
//! 1. **Zone pass.** Walking clockwise from the key's successor token, take each node whose
//!    zone has not been taken yet, until every zone is covered (one node per zone, in the
//!    clockwise order their first vnode is met).
//! 2. **Fill pass.** Walking clockwise again from the same start, take every node not yet
//!    taken, in clockwise order.
//!
//! `preference_list(key, n)` is the first `n` nodes of that walk: with `z` zones it covers
//! `min(n, z)` distinct zones, then fills up with the clockwise successors. This is the
//! placement of Cassandra's `NetworkTopologyStrategy` within one data centre (racks there,
//! zones here). Members without a zone share one anonymous zone, so on a ring without zones
//! the zone pass takes just the primary and the walk is Dynamo's plain clockwise walk.
//!
//! # Guarantees
//! - The nodes of a walk are distinct; it yields every node owning a token, then stops.
//! - `preference_list(key, n)` is a prefix of `preference_list(key, n + 1)` and of the walk.
//! - The first node (the primary, the usual coordinator) is always the owner of the key's
//!   successor token.
//! - Without zones, each node after the first is the next distinct node clockwise, which is
//!   what makes a join move keys only to the joining node (tested below).
//!
//! # Cost
//! The ring precomputes the first `WALK_PREFIX_WIDTH` (8) nodes of the walk from every token
//! when it is built (up to a million entries: 4 MiB). A preference list of up to 8 nodes is
//! then a binary search, O(log T) for T tokens, and a copy; a longer walk continues by
//! stepping. Without the table (larger rings), a lookup is the binary search plus a walk over
//! the tokens until `n`
//! nodes are found: about `n · (1 + n/M)` steps for M nodes without zones; a zone pass may
//! look further for a zone with few tokens (at worst once around the ring, O(T)). Each step
//! checks the nodes taken so far: a scan of at most `WALK_TAKEN_INLINE` nodes, then a
//! bitset lookup (a walk to all M nodes visits about `M · ln M` tokens, and a scan there made
//! it quadratic: 0.4 ms for 1000 nodes, see `docs/microbench.md`). A preference list of up to
//! [`PREFERENCE_LIST_INLINE`] nodes lives inline: no heap allocation.
//!
//! # Limits
//! - `n == 0` gives an empty list; `n` above the number of nodes gives all nodes (fewer than
//!   `n`): callers compare `len()` with their N when they need that many replicas.
//! - Zones are spread first, even at the cost of balance: with unequal zones the nodes of a
//!   small zone carry more replicas (see `docs/ring.md`).

use smallvec::SmallVec;

use super::hash_ring::Ring;
use super::token::{Token, key_token};
use crate::NodeId;

/// How many nodes a preference list holds without allocating (replication factors up to 5).
pub const PREFERENCE_LIST_INLINE: usize = 5;

/// How many nodes a walk remembers without allocating (a preference list and a few fallbacks),
/// and how many it checks by scanning before it switches to a bitset of taken members.
const WALK_TAKEN_INLINE: usize = 8;

/// The nodes that hold a key's replicas, primary first, all distinct.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PreferenceList(SmallVec<[NodeId; PREFERENCE_LIST_INLINE]>);

impl PreferenceList {
    /// The primary: the node owning the key's token, the coordinator of choice (Dynamo §4.5).
    pub fn primary(&self) -> Option<NodeId> {
        self.0.first().copied()
    }

    /// The nodes, in preference order.
    pub fn nodes(&self) -> &[NodeId] {
        &self.0
    }

    /// The nodes, in preference order.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.0.iter().copied()
    }

    /// How many nodes the list holds (fewer than asked when the ring has fewer nodes).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty (only when zero replicas were asked for).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `node` is one of the replicas.
    pub fn contains(&self, node: NodeId) -> bool {
        self.0.contains(&node)
    }

    /// Whether both lists hold the same nodes, in whatever order (same replica set).
    pub fn same_nodes(&self, other: &PreferenceList) -> bool {
        self.len() == other.len() && self.iter().all(|node| other.contains(node))
    }
}

impl FromIterator<NodeId> for PreferenceList {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a PreferenceList {
    type Item = NodeId;
    type IntoIter = std::iter::Copied<std::slice::Iter<'a, NodeId>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().copied()
    }
}

/// Which pass of the walk is running (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Taking one node per zone not yet covered.
    Zones,
    /// Taking every node not yet taken.
    Fill,
    /// Every node owning a token has been yielded.
    Done,
}

/// All distinct nodes in preference order from one token: the preference list, then the
/// fallbacks of a sloppy quorum (Dynamo §4.6). Lazy: it walks only as far as it is asked.
/// Its first nodes come from the ring's precomputed walk prefix; past those (or on a ring too
/// large to precompute) it steps through the tokens.
#[derive(Clone, Debug)]
pub struct Walk<'a> {
    ring: &'a Ring,
    /// Token index where the walk starts.
    start: usize,
    /// The precomputed first nodes (member indices) of this walk.
    prefix: &'a [u32],
    /// How many nodes have been yielded.
    yielded: usize,
    /// The stepping walk, once the prefix is used up (it skips the prefix's nodes first).
    stepper: Option<Stepper<'a>>,
}

impl Iterator for Walk<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        if let Some(&member) = self.prefix.get(self.yielded) {
            self.yielded += 1;
            return Some(self.ring.node_of_member(member));
        }
        if self.prefix.len() == self.ring.nodes_with_tokens() {
            // The prefix is the whole walk.
            return None;
        }
        let (ring, start, skip) = (self.ring, self.start, self.prefix.len());
        let stepper = self.stepper.get_or_insert_with(|| {
            let mut stepper = ring.stepping_walk_from_index(start);
            // The same walk, so its first `skip` nodes are the prefix's.
            for _ in stepper.by_ref().take(skip) {}
            stepper
        });
        let member = stepper.next()?;
        self.yielded += 1;
        Some(self.ring.node_of_member(member))
    }
}

/// The walk itself, token by token, yielding member indices (see the module docs).
#[derive(Clone, Debug)]
pub(super) struct Stepper<'a> {
    ring: &'a Ring,
    /// Token index where both passes start.
    start: usize,
    /// Tokens visited in the current pass.
    steps: usize,
    pass: Pass,
    /// Member indices taken so far, in order.
    taken: SmallVec<[u32; WALK_TAKEN_INLINE]>,
    /// The members of `taken` as a bitset (bit `i` of word `i / 64`), built once the walk has
    /// taken more than [`WALK_TAKEN_INLINE`] nodes; empty (never allocated) before.
    taken_bits: Vec<u64>,
    /// Zones covered by the zone pass.
    zones_taken: usize,
}

impl Stepper<'_> {
    /// Whether `member` has been taken already.
    fn is_taken(&self, member: u32) -> bool {
        if self.taken_bits.is_empty() {
            self.taken.contains(&member)
        } else {
            self.taken_bits[member as usize / 64] & (1 << (member % 64)) != 0
        }
    }

    /// Takes `member` (not taken yet); switches to the bitset past [`WALK_TAKEN_INLINE`].
    fn mark_taken(&mut self, member: u32) {
        self.taken.push(member);
        if self.taken_bits.is_empty() && self.taken.len() > WALK_TAKEN_INLINE {
            self.taken_bits = vec![0; self.ring.members().len().div_ceil(64)];
            for index in 0..self.taken.len() - 1 {
                let taken = self.taken[index];
                self.taken_bits[taken as usize / 64] |= 1 << (taken % 64);
            }
        }
        if !self.taken_bits.is_empty() {
            self.taken_bits[member as usize / 64] |= 1 << (member % 64);
        }
    }

    /// Whether the zone of `member` is already covered by a node taken in the zone pass.
    fn zone_taken(&self, member: u32) -> bool {
        let zone = self.ring.zone_of_member(member);
        // In the zone pass every taken node has a distinct zone, so these are the covered ones.
        self.taken
            .iter()
            .any(|&taken| self.ring.zone_of_member(taken) == zone)
    }
}

impl Iterator for Stepper<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let token_count = self.ring.tokens().len();
        loop {
            match self.pass {
                Pass::Done => return None,
                Pass::Zones if self.zones_taken == self.ring.zones_with_tokens() => {
                    self.pass = Pass::Fill;
                    self.steps = 0;
                }
                Pass::Fill if self.taken.len() == self.ring.nodes_with_tokens() => {
                    self.pass = Pass::Done;
                }
                pass if self.steps == token_count => {
                    // A full turn; cannot happen with the counts above, but never loop forever.
                    self.pass = if pass == Pass::Zones {
                        Pass::Fill
                    } else {
                        Pass::Done
                    };
                    self.steps = 0;
                }
                pass => {
                    let index = (self.start + self.steps) % token_count;
                    self.steps += 1;
                    let member = self.ring.owner_index_at(index);
                    if self.is_taken(member) {
                        continue;
                    }
                    if pass == Pass::Zones {
                        if self.zone_taken(member) {
                            continue;
                        }
                        self.zones_taken += 1;
                    }
                    self.mark_taken(member);
                    return Some(member);
                }
            }
        }
    }
}

impl Ring {
    /// Every node in preference order for keys with `token` (see the module docs).
    pub fn walk_from_token(&self, token: Token) -> Walk<'_> {
        self.walk_from_index(self.successor_index(token))
    }

    /// Every node in preference order for `key`: the preference list, then the fallbacks.
    pub fn walk(&self, key: &[u8]) -> Walk<'_> {
        self.walk_from_token(key_token(key))
    }

    /// The walk for the arc ending at token index `index`.
    pub(super) fn walk_from_index(&self, index: usize) -> Walk<'_> {
        Walk {
            ring: self,
            start: index,
            prefix: self.walk_prefix(index),
            yielded: 0,
            stepper: None,
        }
    }

    /// The walk from token index `index`, stepping through the tokens (what the precomputed
    /// prefixes are made of).
    pub(super) fn stepping_walk_from_index(&self, index: usize) -> Stepper<'_> {
        Stepper {
            ring: self,
            start: index,
            steps: 0,
            pass: Pass::Zones,
            taken: SmallVec::new(),
            taken_bits: Vec::new(),
            zones_taken: 0,
        }
    }

    /// The `n` nodes that replicate keys with `token` (fewer if the ring has fewer nodes).
    pub fn preference_list_for_token(&self, token: Token, n: usize) -> PreferenceList {
        self.walk_from_token(token).take(n).collect()
    }

    /// The `n` nodes that replicate `key` (fewer if the ring has fewer nodes).
    pub fn preference_list(&self, key: &[u8], n: usize) -> PreferenceList {
        self.preference_list_for_token(key_token(key), n)
    }

    /// The preference list and then every other node, in order: the candidates a sloppy quorum
    /// tries (Dynamo §4.6). Collects the whole walk; use [`Ring::walk`] to stop early.
    pub fn extended_preference_list(&self, key: &[u8]) -> Vec<NodeId> {
        self.walk(key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::member::{RingMember, Zone};
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn plain_ring(ids: &[u64], vnodes: u32) -> Ring {
        Ring::new(ids.iter().map(|&id| RingMember::new(NodeId(id), vnodes))).unwrap()
    }

    /// Key `i` of a sample: any bytes would do, these are cheap and distinct.
    fn sample_key(i: u64) -> [u8; 8] {
        i.to_le_bytes()
    }

    // Dynamo §4.3: without zones, the list is the distinct owners met walking clockwise.
    #[test]
    fn preference_list_is_the_clockwise_distinct_owners() {
        let ring = plain_ring(&[1, 2, 3, 4, 5], 8);
        for i in 0..200 {
            let token = key_token(&sample_key(i));
            let mut expected = Vec::new();
            let start = ring.successor_index(token);
            for step in 0..ring.tokens().len() {
                let node = ring.node_at((start + step) % ring.tokens().len());
                if !expected.contains(&node) {
                    expected.push(node);
                }
            }
            assert_eq!(
                ring.preference_list_for_token(token, 3).nodes(),
                &expected[..3]
            );
            assert_eq!(ring.walk_from_token(token).collect::<Vec<_>>(), expected);
        }
    }

    // n == 0 gives nothing; n above the node count gives every node once.
    #[test]
    fn short_rings_give_what_they_have() {
        let ring = plain_ring(&[1, 2], 4);
        assert!(ring.preference_list(b"k", 0).is_empty());
        let list = ring.preference_list(b"k", 5);
        assert_eq!(list.len(), 2);
        assert_ne!(list.nodes()[0], list.nodes()[1]);
        assert_eq!(list.primary(), Some(ring.owner_of_key(b"k")));
    }

    // Zones are covered first even when a zone's nodes are far along the ring: one node in
    // zone "b" among eight in zone "a" is always in the list of N = 2.
    #[test]
    fn a_lonely_zone_is_always_chosen() {
        let mut members: Vec<RingMember> = (1..=8)
            .map(|id| RingMember::in_zone(NodeId(id), Zone::new("a"), 16))
            .collect();
        members.push(RingMember::in_zone(NodeId(9), Zone::new("b"), 16));
        let ring = Ring::new(members).unwrap();
        for i in 0..500 {
            let list = ring.preference_list(&sample_key(i), 2);
            assert!(list.contains(NodeId(9)), "key {i}: {list:?}");
        }
    }

    /// A ring of `count` nodes with ids from `first_id`, `zones` zones assigned round robin
    /// (or none when `zones` is 0).
    fn ring_of(first_id: u64, count: u64, zones: u64, vnodes: u32) -> Ring {
        Ring::new((0..count).map(|i| RingMember {
            node: NodeId(first_id + i),
            zone: (zones > 0).then(|| Zone::new(format!("zone-{}", i % zones))),
            vnodes,
        }))
        .unwrap()
    }

    /// The walk as the module docs define it, computed naively (a zone pass, then a fill
    /// pass, both checking with linear scans).
    fn reference_walk(ring: &Ring, token: Token) -> Vec<NodeId> {
        let start = ring.successor_index(token);
        let tokens = ring.tokens().len();
        let zone = |node: NodeId| ring.member(node).unwrap().zone.clone();
        let mut taken: Vec<NodeId> = Vec::new();
        for step in 0..tokens {
            let node = ring.node_at((start + step) % tokens);
            if !taken.iter().any(|&t| zone(t) == zone(node)) {
                taken.push(node);
            }
        }
        for step in 0..tokens {
            let node = ring.node_at((start + step) % tokens);
            if !taken.contains(&node) {
                taken.push(node);
            }
        }
        taken
    }

    // Full walks of rings much larger than `WALK_TAKEN_INLINE` (where the walk switches from
    // scanning to a bitset, over more than one bitset word) still follow the defined order.
    #[test]
    fn long_walks_follow_the_defined_order() {
        for zones in [0, 3] {
            let ring = ring_of(1_000, 150, zones, 4);
            for i in 0..20 {
                let token = key_token(&sample_key(i));
                let walk: Vec<NodeId> = ring.walk_from_token(token).collect();
                assert_eq!(walk.len(), 150);
                assert_eq!(walk, reference_walk(&ring, token), "zones {zones}, key {i}");
            }
        }
    }

    // A ring too large for the precomputed prefixes walks by stepping, in the same order.
    #[test]
    fn rings_too_large_to_precompute_still_walk() {
        let ring = ring_of(1, 600, 0, 256);
        assert!(ring.walk_prefix(0).is_empty());
        let small = ring_of(1, 6, 2, 16);
        assert_eq!(small.walk_prefix(0).len(), 6);
        for i in 0..5 {
            let token = key_token(&sample_key(i));
            let index = ring.successor_index(token);
            let walked: Vec<NodeId> = ring.walk_from_token(token).take(12).collect();
            let stepped: Vec<NodeId> = ring
                .stepping_walk_from_index(index)
                .take(12)
                .map(|member| ring.node_of_member(member))
                .collect();
            assert_eq!(walked, stepped);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        // The walk (its precomputed prefix, then stepping on past it for rings of more than
        // WALK_PREFIX_WIDTH nodes) is the defined order, from any token.
        #[test]
        fn walks_follow_the_defined_order(
            first_id in 0u64..1_000_000,
            count in 1u64..20,
            zones in 0u64..5,
            vnodes in 1u32..32,
            keys in prop::collection::vec(any::<u64>(), 1..20),
        ) {
            let ring = ring_of(first_id, count, zones, vnodes);
            for key in keys {
                let token = key_token(&sample_key(key));
                let walk: Vec<NodeId> = ring.walk_from_token(token).collect();
                prop_assert_eq!(walk, reference_walk(&ring, token));
            }
        }

        // Dynamo §4.3: every key gets min(N, nodes) distinct nodes, primary = token owner,
        // and min(N, zones) distinct zones.
        #[test]
        fn distinct_nodes_and_zones(
            first_id in 0u64..1_000_000,
            count in 1u64..12,
            zones in 0u64..5,
            vnodes in 1u32..32,
            n in 1usize..6,
            keys in prop::collection::vec(any::<u64>(), 1..40),
        ) {
            let ring = ring_of(first_id, count, zones, vnodes);
            let zone_count = ring.zone_count();
            for key in keys {
                let key = sample_key(key);
                let list = ring.preference_list(&key, n);
                prop_assert_eq!(list.len(), n.min(count as usize));
                let distinct: HashSet<NodeId> = list.iter().collect();
                prop_assert_eq!(distinct.len(), list.len());
                prop_assert_eq!(list.primary(), Some(ring.owner_of_key(&key)));
                let covered: HashSet<Option<Zone>> =
                    list.iter().map(|node| ring.member(node).unwrap().zone.clone()).collect();
                prop_assert_eq!(covered.len(), n.min(zone_count).min(list.len()));
                // The extended list holds every node, and starts with the preference list.
                let extended = ring.extended_preference_list(&key);
                prop_assert_eq!(extended.len(), count as usize);
                prop_assert_eq!(&extended[..list.len()], list.nodes());
            }
        }

        // Dynamo §4.2: a join moves a key's primary only to the joining node (N = 1).
        #[test]
        fn join_moves_primaries_only_to_the_new_node(
            first_id in 0u64..1_000_000,
            count in 1u64..10,
            vnodes in 1u32..64,
            keys in prop::collection::vec(any::<u64>(), 200),
        ) {
            let before = ring_of(first_id, count, 0, vnodes);
            let newcomer = NodeId(first_id + count);
            let after = before.with_member(RingMember::new(newcomer, vnodes)).unwrap();
            for key in keys {
                let key = sample_key(key);
                let (old, new) = (before.owner_of_key(&key), after.owner_of_key(&key));
                prop_assert!(old == new || new == newcomer, "{old} -> {new}");
                // Leave is the mirror: removing the newcomer restores the old owner.
                let left = after.without_member(newcomer).unwrap();
                prop_assert_eq!(left.owner_of_key(&key), old);
            }
        }

        // Dynamo §4.2: with N = 3, a changed preference list gains the joining node and loses
        // exactly one old node; a leave is the mirror image.
        #[test]
        fn join_changes_replica_sets_by_one_swap(
            first_id in 0u64..1_000_000,
            count in 1u64..10,
            vnodes in 1u32..64,
            keys in prop::collection::vec(any::<u64>(), 200),
        ) {
            let n = 3;
            let before = ring_of(first_id, count, 0, vnodes);
            let newcomer = NodeId(first_id + count);
            let after = before.with_member(RingMember::new(newcomer, vnodes)).unwrap();
            for key in keys {
                let key = sample_key(key);
                let old: HashSet<NodeId> = before.preference_list(&key, n).iter().collect();
                let new: HashSet<NodeId> = after.preference_list(&key, n).iter().collect();
                if old == new {
                    continue;
                }
                let gained: Vec<NodeId> = new.difference(&old).copied().collect();
                let lost: Vec<NodeId> = old.difference(&new).copied().collect();
                prop_assert_eq!(gained, vec![newcomer]);
                // With fewer than n old nodes the newcomer is simply added.
                prop_assert_eq!(lost.len(), usize::from(old.len() == n));
            }
        }

        // Dynamo §4.2, the mirror of a join: when any node leaves, only the key ranges it
        // replicated change, each losing it and gaining one other node.
        #[test]
        fn leave_changes_only_the_leavers_replica_sets(
            first_id in 0u64..1_000_000,
            count in 2u64..10,
            leaver_offset in 0u64..10,
            vnodes in 1u32..64,
            keys in prop::collection::vec(any::<u64>(), 200),
        ) {
            let n = 3;
            let before = ring_of(first_id, count, 0, vnodes);
            let leaver = NodeId(first_id + leaver_offset % count);
            let after = before.without_member(leaver).unwrap();
            // Leaving and re-joining restores the very same ring.
            let rejoined = after.with_member(RingMember::new(leaver, vnodes)).unwrap();
            prop_assert_eq!(&rejoined, &before);
            for key in keys {
                let key = sample_key(key);
                let old: HashSet<NodeId> = before.preference_list(&key, n).iter().collect();
                let new: HashSet<NodeId> = after.preference_list(&key, n).iter().collect();
                if !old.contains(&leaver) {
                    prop_assert_eq!(&old, &new);
                    continue;
                }
                let lost: Vec<NodeId> = old.difference(&new).copied().collect();
                let gained: Vec<NodeId> = new.difference(&old).copied().collect();
                prop_assert_eq!(lost, vec![leaver]);
                // With no more than n nodes there is nobody left to take its place.
                prop_assert_eq!(gained.len(), usize::from(count as usize > n));
            }
        }
    }

    // Dynamo §4.2 / §6.2: adding one node to n moves about 1/(n+1) of the keys (seeded sample
    // of 20k keys; with V = 256 the newcomer's share is within a few percent of 1/(n+1)).
    #[test]
    fn join_moves_about_one_over_n_plus_one() {
        let seed = 0x5eed_0001_u64;
        println!("seed {seed:#x}");
        for count in [4u64, 9, 19] {
            let before = ring_of(seed, count, 0, 256);
            let after = before
                .with_member(RingMember::new(NodeId(seed + count), 256))
                .unwrap();
            let sample = 20_000u64;
            let moved = (0..sample)
                .map(|i| sample_key(seed.wrapping_mul(31).wrapping_add(i)))
                .filter(|key| before.owner_of_key(key) != after.owner_of_key(key))
                .count();
            let fraction = moved as f64 / sample as f64;
            let expected = 1.0 / (count as f64 + 1.0);
            println!(
                "{count} -> {}: moved {fraction:.4}, 1/(n+1) = {expected:.4}",
                count + 1
            );
            assert!(
                (fraction - expected).abs() < 0.25 * expected,
                "{count} nodes: moved {fraction}, expected about {expected}"
            );
        }
    }
}
