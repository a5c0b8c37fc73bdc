//! The tree exchange of anti-entropy: a step-by-step walk that compares a local tree with a
//! peer's, one round trip per step, descending only into subtrees whose hashes differ, and
//! ends with the differing leaves as token ranges to scan.
//!
//! This is the Merkle comparison of Dynamo §4.7 ("if the hash values of the root of two trees
//! are equal ... no need for synchronization; if not, ... children ... until the leaves"),
//! shaped as a sans-IO state machine so that the network layer carries the messages:
//!
//! 1. The initiator builds a [`DiffWalk`] for its tree's shape and calls
//!    [`DiffWalk::next_request`], which names nodes (first the root).
//! 2. The peer answers with [`MerkleTree::answer`](super::MerkleTree::answer) (it checks the
//!    shape and the node indices).
//! 3. The initiator feeds the [`HashResponse`] to [`DiffWalk::receive`]: equal nodes are
//!    pruned; a differing inner node is expanded to its descendants `levels_per_step` levels
//!    down; a differing leaf is recorded. Repeat from 2 until [`DiffWalk::is_finished`].
//! 4. [`DiffWalk::into_result`] gives the differing leaves as [`TokenRange`]s, which both
//!    sides scan and compare key by key (see [`LeafListing`](super::LeafListing)).
//!
//! **Half the hashes (XOR).** A node's hash is the XOR of its children's, so once the walk
//! knows the peer's hash of a node it needs only the peer's hash of the *left* child: the
//! right one is `parent ^ left`. Expanding a node by `s` levels therefore asks for the left
//! children of the `2^s - 1` nodes above the bottom level (one hash per binary split) instead
//! of the `2^s` bottom nodes; at one level per step that is one hash per differing inner node.
//!
//! **Four bytes a hash.** The peer sends 32 of each hash's 64 bits: `short_hash(h, rotation)`,
//! the low half of `h` rotated by a per-exchange amount. Rotation and truncation are linear
//! over XOR, so the shortcut above still holds for the short hashes. Two different hashes
//! look equal with probability 2^-32 per comparison; the subtree is then skipped by *this*
//! exchange only: the next one uses another rotation, so no difference hides for ever.
//!
//! **Shallower walks.** The top levels of a deeper tree of the same arc *are* the shallower
//! tree (same heap indices, same XORs), so a walk of depth `d` can run against any tree of the
//! same arc at least `d` deep: replicas whose trees have different depths compare at the
//! smaller one.
//!
//! # Invariants
//! - A node is requested only under a node whose hash differed, so with `d` differing leaves
//!   and one level per step at most `1 + d·depth` hashes are received; with `s` levels per
//!   step at most `1 + d·ceil(depth/s)·(2^s - 1)`. Equal trees cost one hash.
//! - The walk reports the leaves whose local and remote hashes differ, except (probability
//!   2^-32 per node compared) where their short hashes collide under this exchange's rotation.
//! - No request names more than [`MAX_NODES_PER_STEP`] nodes; larger frontiers are split
//!   over several round trips.
//!
//! # Limits
//! - The local tree may change between steps (writes go on); the walk then compares a mix of
//!   old and new hashes. A difference missed or invented this way is found (or found
//!   harmless) by the next exchange: anti-entropy is periodic and merges are idempotent.
//! - One request outstanding at a time; the network layer may run many walks (trees) at once.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::error::MerkleError;
use super::shape::{LeafIndex, NodeIndex, TreeShape};
use super::tree::MerkleTree;
use super::wire::{delta_indices, fixed_u32s};
use crate::ring::TokenRange;

/// The most nodes one request may name (and one response carry): 16 KiB of short hashes.
pub const MAX_NODES_PER_STEP: usize = 4096;

/// The most levels one step may descend: a differing node is expanded to at most `2^8`
/// descendants, so that one node's expansion always fits in a request.
pub const MAX_LEVELS_PER_STEP: u8 = 8;

/// The default step: one level per round trip. With the XOR shortcut a level costs one hash
/// per differing node, the fewest bytes of any step size (two levels cost 3 hashes per node
/// expanded, 1 + the differing children at one level); deeper steps save round trips only.
/// See docs/anti-entropy-bytes.md for the measurement.
pub const DEFAULT_LEVELS_PER_STEP: u8 = 1;

/// How a walk trades round trips against hashes sent, and its per-exchange salt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeConfig {
    /// Levels descended per round trip, in `1..=MAX_LEVELS_PER_STEP`: `s` levels per step
    /// takes about `depth / s` round trips and receives `2^s - 1` hashes per differing node
    /// expanded.
    pub levels_per_step: u8,
    /// Picks which 32 bits of each hash are compared (see [`short_hash`]); draw a new one for
    /// every exchange so that a collision does not repeat.
    pub salt: u64,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            levels_per_step: DEFAULT_LEVELS_PER_STEP,
            salt: 0,
        }
    }
}

/// The 32 bits of a node hash that an exchange compares: the low half of the hash rotated by
/// `rotation` bits. Linear over XOR (`short(a ^ b) = short(a) ^ short(b)`), so a parent's short
/// hash is still the XOR of its children's.
pub fn short_hash(hash: u64, rotation: u8) -> u32 {
    // The truncation is the point: 4 bytes on the wire.
    hash.rotate_left(u32::from(rotation % 64)) as u32
}

/// One exchange step, initiator to peer: "send me the short hashes of these nodes of your
/// tree of this shape".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashRequest {
    /// The walk's shape: the peer answers if its tree covers the same arc at least this deep.
    pub shape: TreeShape,
    /// The rotation of [`short_hash`] for this exchange (taken modulo 64).
    pub rotation: u8,
    /// The nodes wanted, at most [`MAX_NODES_PER_STEP`] (sent as varint deltas: 1–2 bytes a
    /// node, since the walk names them in nearly ascending order).
    #[serde(with = "delta_indices")]
    pub nodes: Vec<NodeIndex>,
}

/// The peer's answer to a [`HashRequest`]: one short hash per requested node, in request
/// order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashResponse {
    /// The [`short_hash`]es of the requested nodes (4 bytes each on the wire: uniformly
    /// random values would take 5 bytes as varints).
    #[serde(with = "fixed_u32s")]
    pub hashes: Vec<u32>,
}

/// A leaf whose hashes differ on the two sides: the token range both sides should scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DifferingLeaf {
    /// The leaf.
    pub leaf: LeafIndex,
    /// Its token sub-range.
    pub range: TokenRange,
}

/// The outcome of a finished walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffResult {
    /// The leaves whose hashes differ, in ring order.
    pub differing_leaves: Vec<DifferingLeaf>,
    /// Pairs of (local, remote) node short hashes compared: the walk's work.
    pub nodes_compared: u64,
    /// Hashes received from the peer (fewer than compared: the XOR shortcut derives half).
    pub hashes_received: u64,
    /// Request/response round trips taken.
    pub round_trips: u32,
}

impl DiffResult {
    /// Whether the trees were equal.
    pub fn is_equal(&self) -> bool {
        self.differing_leaves.is_empty()
    }

    /// The differing leaves' ranges with neighbours merged: fewer, longer storage scans.
    pub fn coalesced_ranges(&self) -> Vec<TokenRange> {
        let mut ranges: Vec<TokenRange> = Vec::new();
        let mut previous_leaf: Option<LeafIndex> = None;
        for differing in &self.differing_leaves {
            match (ranges.last_mut(), previous_leaf) {
                (Some(last), Some(prev)) if prev.0 + 1 == differing.leaf.0 => {
                    last.end = differing.range.end;
                }
                _ => ranges.push(differing.range),
            }
            previous_leaf = Some(differing.leaf);
        }
        ranges
    }
}

/// A differing inner node waiting to be expanded, with the peer's hash of it.
#[derive(Clone, Copy, Debug)]
struct Expansion {
    node: NodeIndex,
    remote_hash: u32,
}

/// The request awaiting its response.
#[derive(Clone, Debug)]
enum InFlight {
    /// The first step: the root's hash.
    Root,
    /// These nodes' expansions, in request order.
    Expansions(Vec<Expansion>),
}

/// The initiator's side of a tree exchange: which nodes to ask for next, and what differed.
#[derive(Clone, Debug)]
pub struct DiffWalk {
    shape: TreeShape,
    levels_per_step: u8,
    rotation: u8,
    /// Whether the root's hash is still to be requested.
    root_pending: bool,
    /// Differing inner nodes still to expand, in breadth-first order.
    to_expand: VecDeque<Expansion>,
    /// The request awaiting its response, if any.
    in_flight: Option<InFlight>,
    differing_leaves: Vec<LeafIndex>,
    nodes_compared: u64,
    hashes_received: u64,
    round_trips: u32,
}

impl DiffWalk {
    /// A walk over trees of `shape`, starting at the root.
    pub fn new(shape: TreeShape, config: ExchangeConfig) -> Result<Self, MerkleError> {
        let levels = config.levels_per_step;
        if !(1..=MAX_LEVELS_PER_STEP).contains(&levels) {
            return Err(MerkleError::LevelsPerStepOutOfRange {
                levels,
                max: MAX_LEVELS_PER_STEP,
            });
        }
        Ok(Self {
            shape,
            levels_per_step: levels,
            rotation: (config.salt % 64) as u8,
            root_pending: true,
            to_expand: VecDeque::new(),
            in_flight: None,
            differing_leaves: Vec::new(),
            nodes_compared: 0,
            hashes_received: 0,
            round_trips: 0,
        })
    }

    /// The shape this walk compares (its depth may be below the local tree's).
    pub fn shape(&self) -> TreeShape {
        self.shape
    }

    /// The levels an expansion of `node` descends (fewer near the leaves).
    fn levels_below(&self, node: NodeIndex) -> u8 {
        let level = self.shape.level_of(node).unwrap_or(self.shape.depth());
        self.levels_per_step.min(self.shape.depth() - level)
    }

    /// The nodes whose hashes expanding `node` needs: the left child of every node of its
    /// subtree above the bottom level, level by level, in ring order.
    fn expansion_requests(&self, node: NodeIndex, out: &mut Vec<NodeIndex>) {
        for k in 0..self.levels_below(node) {
            let first = node.0 << k;
            out.extend((first..first + (1 << k)).map(|q| NodeIndex(2 * q)));
        }
    }

    /// The next request to send to the peer; `None` when the walk is finished or a request
    /// is still awaiting its response.
    pub fn next_request(&mut self) -> Option<HashRequest> {
        if self.in_flight.is_some() {
            return None;
        }
        let mut nodes = Vec::new();
        if self.root_pending {
            self.root_pending = false;
            nodes.push(NodeIndex::ROOT);
            self.in_flight = Some(InFlight::Root);
        } else {
            let mut taken = Vec::new();
            while let Some(&next) = self.to_expand.front() {
                let cost = (1usize << self.levels_below(next.node)) - 1;
                if !taken.is_empty() && nodes.len() + cost > MAX_NODES_PER_STEP {
                    break;
                }
                self.to_expand.pop_front();
                self.expansion_requests(next.node, &mut nodes);
                taken.push(next);
            }
            if taken.is_empty() {
                return None;
            }
            self.in_flight = Some(InFlight::Expansions(taken));
        }
        self.round_trips += 1;
        Some(HashRequest {
            shape: self.shape,
            rotation: self.rotation,
            nodes,
        })
    }

    /// How many hashes the outstanding request asked for.
    fn expected_hashes(&self) -> usize {
        match &self.in_flight {
            None => 0,
            Some(InFlight::Root) => 1,
            Some(InFlight::Expansions(taken)) => taken
                .iter()
                .map(|e| (1usize << self.levels_below(e.node)) - 1)
                .sum(),
        }
    }

    /// Compares a node's remote hash with the local one and plans what follows.
    fn compare(&mut self, local: &MerkleTree, node: NodeIndex, remote_hash: u32) {
        self.nodes_compared += 1;
        // `receive` checked that the local tree covers the walk's shape.
        if local.hash(node).map(|h| short_hash(h, self.rotation)) == Some(remote_hash) {
            return;
        }
        match self.shape.node_leaf(node) {
            Some(leaf) => self.differing_leaves.push(leaf),
            None => self.to_expand.push_back(Expansion { node, remote_hash }),
        }
    }

    /// Compares the peer's response with `local` and plans the next step. On error the walk
    /// is unchanged (the request stays outstanding). `local` may be deeper than the walk.
    pub fn receive(
        &mut self,
        local: &MerkleTree,
        response: &HashResponse,
    ) -> Result<(), MerkleError> {
        if self.in_flight.is_none() {
            return Err(MerkleError::NoRequestOutstanding);
        }
        if !local.shape().covers(self.shape) {
            return Err(MerkleError::ShapeMismatch {
                local: local.shape(),
                remote: self.shape,
            });
        }
        let expected = self.expected_hashes();
        if response.hashes.len() != expected {
            return Err(MerkleError::HashCountMismatch {
                expected,
                received: response.hashes.len(),
            });
        }
        self.hashes_received += expected as u64;
        match self.in_flight.take() {
            None => {}
            Some(InFlight::Root) => self.compare(local, NodeIndex::ROOT, response.hashes[0]),
            Some(InFlight::Expansions(taken)) => {
                let mut hashes = response.hashes.iter().copied();
                for expansion in taken {
                    // The peer's hashes of the subtree, one level at a time: each left child
                    // is received, each right child is its parent's hash XOR the left one.
                    let mut level = vec![expansion.remote_hash];
                    for _ in 0..self.levels_below(expansion.node) {
                        let mut below = Vec::with_capacity(level.len() * 2);
                        for parent in level {
                            let left = hashes.next().unwrap_or_default();
                            below.push(left);
                            below.push(parent ^ left);
                        }
                        level = below;
                    }
                    let down = self.levels_below(expansion.node);
                    let first = expansion.node.0 << down;
                    for (j, remote) in level.into_iter().enumerate() {
                        self.compare(local, NodeIndex(first + j as u32), remote);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether every differing subtree has been walked down to its leaves.
    pub fn is_finished(&self) -> bool {
        self.in_flight.is_none() && !self.root_pending && self.to_expand.is_empty()
    }

    /// The differing leaves and the walk's cost; `None` if the walk is not finished.
    pub fn into_result(mut self) -> Option<DiffResult> {
        if !self.is_finished() {
            return None;
        }
        self.differing_leaves.sort_unstable();
        let shape = self.shape;
        Some(DiffResult {
            differing_leaves: self
                .differing_leaves
                .into_iter()
                .map(|leaf| DifferingLeaf {
                    leaf,
                    range: shape.leaf_range(leaf),
                })
                .collect(),
            nodes_compared: self.nodes_compared,
            hashes_received: self.hashes_received,
            round_trips: self.round_trips,
        })
    }
}

/// Compares two in-process trees with the default step; see [`diff_with`].
pub fn diff(local: &MerkleTree, remote: &MerkleTree) -> Result<DiffResult, MerkleError> {
    diff_with(local, remote, ExchangeConfig::default())
}

/// Compares two in-process trees by running the network walk against `remote` directly, so
/// that its cost (nodes compared, hashes, round trips) is the protocol's. Trees of the same
/// arc and different depths compare at the smaller depth.
pub fn diff_with(
    local: &MerkleTree,
    remote: &MerkleTree,
    config: ExchangeConfig,
) -> Result<DiffResult, MerkleError> {
    let shape = if local.shape().covers(remote.shape()) {
        remote.shape()
    } else if remote.shape().covers(local.shape()) {
        local.shape()
    } else {
        return Err(MerkleError::ShapeMismatch {
            local: local.shape(),
            remote: remote.shape(),
        });
    };
    let mut walk = DiffWalk::new(shape, config)?;
    while let Some(request) = walk.next_request() {
        let response = remote.answer(&request)?;
        walk.receive(local, &response)?;
    }
    // The loop ends only when no request is outstanding and none is left to send.
    walk.into_result().ok_or(MerkleError::NoRequestOutstanding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Token, key_token};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    type Model = BTreeMap<Vec<u8>, u64>;

    fn key(i: u32) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    fn tree_of(shape: TreeShape, model: &Model) -> MerkleTree {
        MerkleTree::rebuild_from(shape, model.iter().map(|(k, &d)| (k, d))).unwrap()
    }

    /// The leaves holding keys whose digests differ (or that exist on one side only).
    fn leaves_that_differ(shape: TreeShape, a: &Model, b: &Model) -> BTreeSet<LeafIndex> {
        let keys: BTreeSet<&Vec<u8>> = a.keys().chain(b.keys()).collect();
        keys.into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| shape.leaf_of(key_token(k)).unwrap())
            .collect()
    }

    fn arb_range() -> impl Strategy<Value = TokenRange> {
        prop_oneof![
            Just(TokenRange::full()),
            (any::<u64>(), (u64::MAX / 4)..u64::MAX)
                .prop_map(|(s, w)| TokenRange::new(Token(s), Token(s.wrapping_add(w)))),
        ]
    }

    /// A base model and the edits that make the second replica from it: key index and new
    /// digest (`None` = missing on the second replica).
    fn arb_replicas() -> impl Strategy<Value = (Vec<u32>, Vec<(u32, Option<u64>)>)> {
        (
            proptest::collection::vec(0u32..400, 0..300),
            proptest::collection::vec((0u32..500, proptest::option::of(1u64..3)), 0..20),
        )
    }

    fn build_replicas(
        range: TokenRange,
        base: &[u32],
        edits: &[(u32, Option<u64>)],
    ) -> (Model, Model) {
        let a: Model = base
            .iter()
            .map(|&i| (key(i), 0))
            .filter(|(k, _)| range.contains(key_token(k)))
            .collect();
        let mut b = a.clone();
        for &(i, digest) in edits {
            let k = key(i);
            if !range.contains(key_token(&k)) {
                continue;
            }
            match digest {
                Some(d) => b.insert(k, d),
                None => b.remove(&k),
            };
        }
        (a, b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // Dynamo §4.7: the walk finds exactly the leaves holding changed or one-sided keys,
        // whatever the step size, and in both directions.
        #[test]
        fn diff_finds_exactly_the_differing_leaves(
            range in arb_range(), depth in 0u8..=9, levels in 1u8..=4,
            (base, edits) in arb_replicas(),
        ) {
            let shape = TreeShape::new(range, depth).unwrap();
            let (a, b) = build_replicas(range, &base, &edits);
            let (ta, tb) = (tree_of(shape, &a), tree_of(shape, &b));
            let config = ExchangeConfig { levels_per_step: levels, ..Default::default() };
            let expected = leaves_that_differ(shape, &a, &b);
            for (x, y) in [(&ta, &tb), (&tb, &ta)] {
                let result = diff_with(x, y, config).unwrap();
                let found: BTreeSet<LeafIndex> =
                    result.differing_leaves.iter().map(|l| l.leaf).collect();
                prop_assert_eq!(&found, &expected);
                for l in &result.differing_leaves {
                    prop_assert_eq!(l.range, shape.leaf_range(l.leaf));
                }
                // The documented bounds on work and hashes, with d differing leaves.
                let d = expected.len() as u64;
                let s = u64::from(levels);
                let expansions = d * u64::from(depth).div_ceil(s);
                let bound = 1 + expansions * (1 << s);
                prop_assert!(result.nodes_compared <= bound,
                    "{} nodes > bound {}", result.nodes_compared, bound);
                let hash_bound = 1 + expansions * ((1 << s) - 1);
                prop_assert!(result.hashes_received <= hash_bound,
                    "{} hashes > bound {}", result.hashes_received, hash_bound);
            }
        }

        // Coalesced ranges cover exactly the differing leaves' tokens.
        #[test]
        fn coalesced_ranges_cover_the_differing_leaves(
            range in arb_range(), depth in 0u8..=6, (base, edits) in arb_replicas(),
            probes in proptest::collection::vec(any::<u64>(), 32),
        ) {
            let shape = TreeShape::new(range, depth).unwrap();
            let (a, b) = build_replicas(range, &base, &edits);
            let result = diff(&tree_of(shape, &a), &tree_of(shape, &b)).unwrap();
            let coalesced = result.coalesced_ranges();
            prop_assert!(coalesced.len() <= result.differing_leaves.len());
            let ends = result.differing_leaves.iter().map(|l| l.range.end.0);
            for t in probes.into_iter().chain(ends).map(Token) {
                let in_leaves = result.differing_leaves.iter().any(|l| l.range.contains(t));
                let in_coalesced = coalesced.iter().any(|r| r.contains(t));
                prop_assert_eq!(in_leaves, in_coalesced);
            }
        }
    }

    // Equal trees: the walk compares the root and stops, in one round trip.
    #[test]
    fn equal_trees_visit_only_the_root() {
        let shape = TreeShape::new(TokenRange::full(), 10).unwrap();
        let model: Model = (0..1000).map(|i| (key(i), u64::from(i))).collect();
        let result = diff(&tree_of(shape, &model), &tree_of(shape, &model)).unwrap();
        assert!(result.is_equal());
        assert_eq!(result.nodes_compared, 1);
        assert_eq!(result.round_trips, 1);
    }

    // The work bound on a mid-sized instance: 100k keys differing in 50, one level per step
    // compares at most 2·d·log2(leaves) + 1 nodes (c = 2), far fewer than the tree holds.
    #[test]
    fn nodes_compared_is_order_d_log_n() {
        let keys = 100_000;
        let shape = TreeShape::for_expected_keys(TokenRange::full(), keys).unwrap();
        let a: Model = (0..keys as u32).map(|i| (key(i), 1)).collect();
        let mut b = a.clone();
        // 50 differences: 20 changed, 15 missing on b, 15 only on b.
        for j in 0..50u32 {
            let i = j * 1999 + 7;
            match j % 10 {
                0..=3 => b.insert(key(i), 2),
                4..=6 => b.remove(&key(i)),
                _ => b.insert(key(keys as u32 + i), 1),
            };
        }
        assert_eq!(a.len(), b.len()); // as many keys removed as added
        let (ta, tb) = (tree_of(shape, &a), tree_of(shape, &b));
        let d = 50u64;
        let depth = u64::from(shape.depth());
        for levels in [1u8, 2, 4] {
            let config = ExchangeConfig {
                levels_per_step: levels,
                ..Default::default()
            };
            let result = diff_with(&ta, &tb, config).unwrap();
            let differing = leaves_that_differ(shape, &a, &b).len();
            assert_eq!(result.differing_leaves.len(), differing);
            let s = u64::from(levels);
            assert!(result.nodes_compared <= 1 + d * depth.div_ceil(s) * (1 << s));
            assert_eq!(u64::from(result.round_trips), 1 + depth.div_ceil(s));
            if levels == 1 {
                assert!(result.nodes_compared <= 2 * d * depth + 1);
                // The XOR shortcut: one hash per differing inner node.
                assert!(result.hashes_received <= d * depth + 1);
                assert!(2 * result.hashes_received <= result.nodes_compared + 1);
            }
            assert!(result.nodes_compared * 10 < u64::from(shape.node_count()));
        }
    }

    // Trees of different arcs cannot be compared; trees of one arc and different depths
    // compare at the smaller depth; a bad step size is refused.
    #[test]
    fn mismatched_shapes_and_configs_are_refused() {
        let a = MerkleTree::new(TreeShape::new(TokenRange::full(), 4).unwrap());
        let c =
            MerkleTree::new(TreeShape::new(TokenRange::new(Token(1), Token(1 << 40)), 4).unwrap());
        assert!(matches!(
            diff(&a, &c),
            Err(MerkleError::ShapeMismatch { .. })
        ));
        for levels in [0, MAX_LEVELS_PER_STEP + 1] {
            let config = ExchangeConfig {
                levels_per_step: levels,
                ..Default::default()
            };
            assert!(matches!(
                diff_with(&a, &a, config),
                Err(MerkleError::LevelsPerStepOutOfRange { .. })
            ));
        }
    }

    // A deeper tree stands for a shallower one: the walk at the smaller depth finds the
    // shallow leaves that hold the differing keys, from either side.
    #[test]
    fn trees_of_different_depths_compare_at_the_smaller_depth() {
        let a: Model = (0..2000).map(|i| (key(i), 1)).collect();
        let mut b = a.clone();
        for i in [3u32, 500, 1999] {
            b.insert(key(i), 2);
        }
        let shallow = TreeShape::new(TokenRange::full(), 6).unwrap();
        let deep = TreeShape::new(TokenRange::full(), 11).unwrap();
        let expected = leaves_that_differ(shallow, &a, &b);
        let (ta, tb) = (tree_of(shallow, &a), tree_of(deep, &b));
        for (x, y) in [(&ta, &tb), (&tb, &ta)] {
            let found: BTreeSet<LeafIndex> = diff(x, y)
                .unwrap()
                .differing_leaves
                .iter()
                .map(|l| l.leaf)
                .collect();
            assert_eq!(found, expected);
        }
    }

    // The walk refuses malformed responses and keeps its request outstanding.
    #[test]
    fn walk_refuses_bad_responses() {
        let shape = TreeShape::new(TokenRange::full(), 3).unwrap();
        let tree = MerkleTree::new(shape);
        let mut walk = DiffWalk::new(shape, ExchangeConfig::default()).unwrap();
        let empty = HashResponse { hashes: vec![] };
        assert_eq!(
            walk.receive(&tree, &empty),
            Err(MerkleError::NoRequestOutstanding)
        );
        let request = walk.next_request().unwrap();
        assert_eq!(request.nodes, vec![NodeIndex::ROOT]);
        assert!(
            walk.next_request().is_none(),
            "one request outstanding at a time"
        );
        assert!(matches!(
            walk.receive(&tree, &empty),
            Err(MerkleError::HashCountMismatch {
                expected: 1,
                received: 0
            })
        ));
        let other = MerkleTree::new(TreeShape::new(TokenRange::full(), 2).unwrap());
        let one = HashResponse { hashes: vec![0] };
        assert!(matches!(
            walk.receive(&other, &one),
            Err(MerkleError::ShapeMismatch { .. })
        ));
        walk.receive(&tree, &one).unwrap();
        assert!(walk.is_finished());
        assert!(walk.into_result().unwrap().is_equal());
    }

    // Responses round-trip through the wire format at 4 bytes per hash.
    #[test]
    fn responses_use_four_bytes_per_hash() {
        let response = HashResponse {
            hashes: vec![0, 1, u32::MAX, 0x0123_4567],
        };
        let wire = postcard::to_allocvec(&response).unwrap();
        assert_eq!(wire.len(), 1 + 4 * 4);
        assert_eq!(
            postcard::from_bytes::<HashResponse>(&wire).unwrap(),
            response
        );
        assert!(postcard::from_bytes::<HashResponse>(&wire[..wire.len() - 1]).is_err());
        let request = HashRequest {
            shape: TreeShape::new(TokenRange::full(), 17).unwrap(),
            rotation: 17,
            nodes: vec![NodeIndex::ROOT, NodeIndex(1 << 17)],
        };
        let wire = postcard::to_allocvec(&request).unwrap();
        assert_eq!(postcard::from_bytes::<HashRequest>(&wire).unwrap(), request);
    }

    // Short hashes are linear over XOR (the shortcut needs it), and a difference hidden under
    // one rotation shows under another.
    #[test]
    fn short_hashes_are_linear_and_rotate() {
        let (a, b) = (0x0123_4567_89ab_cdef_u64, 0xfedc_ba98_7654_3210_u64);
        for rotation in [0, 1, 31, 32, 63, 64, 200] {
            assert_eq!(
                short_hash(a ^ b, rotation),
                short_hash(a, rotation) ^ short_hash(b, rotation)
            );
        }
        // Two hashes equal in their low half only: equal at rotation 0, not at 32.
        let (x, y) = (0x1111_1111_2222_2222_u64, 0x3333_3333_2222_2222_u64);
        assert_eq!(short_hash(x, 0), short_hash(y, 0));
        assert_ne!(short_hash(x, 32), short_hash(y, 32));
    }

    // Frontiers larger than one step are split over several round trips.
    #[test]
    fn large_frontiers_are_split() {
        let shape = TreeShape::new(TokenRange::full(), 14).unwrap();
        let a = MerkleTree::new(shape);
        // Every leaf differs: the frontier reaches 2^14 nodes.
        let b = MerkleTree::rebuild_from(shape, (0..200_000u32).map(|i| (key(i), 1))).unwrap();
        let mut walk = DiffWalk::new(
            shape,
            ExchangeConfig {
                levels_per_step: 1,
                ..Default::default()
            },
        )
        .unwrap();
        let mut largest = 0;
        while let Some(request) = walk.next_request() {
            largest = largest.max(request.nodes.len());
            walk.receive(&a, &b.answer(&request).unwrap()).unwrap();
        }
        assert_eq!(largest, MAX_NODES_PER_STEP);
        let result = walk.into_result().unwrap();
        assert_eq!(result.differing_leaves.len(), 1 << 14);
        assert_eq!(result.coalesced_ranges(), vec![TokenRange::full()]);
        assert!(result.round_trips > u32::from(shape.depth()) + 1);
    }
}
