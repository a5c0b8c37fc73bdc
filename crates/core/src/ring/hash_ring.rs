//! The ring itself: the sorted array of virtual-node tokens built from a member list, and the
//! lookup from a token to the virtual node that owns it.
//!
//! Implements Dynamo §4.2 (consistent hashing with virtual nodes): a key belongs to the first
//! token at or clockwise after the key's token; the arc `(previous token, token]` is the range
//! that token's node coordinates.
//!
//! # Invariants
//! - `members` is sorted by `NodeId`, ids are unique, every member has `1..=MAX_VNODES_PER_NODE`
//!   vnodes and there are `1..=MAX_RING_MEMBERS` members.
//! - `tokens` is sorted ascending with no duplicates; `token_owner[i]` is the index in
//!   `members` of the node owning `tokens[i]`; `member_zone[m]` is the zone index of member `m`.
//! - Everything except `members` is a pure function of the *set* of members: the same members
//!   listed in any order give an equal ring. Only `members` travels on the wire (serde goes
//!   through [`Ring::new`]), so a ring received from a peer is validated, never trusted.
//! - Token collisions (two vnodes hashing to the same token) are resolved by keeping the vnode
//!   of the lowest `NodeId`; the loser simply has one token fewer.
//!
//! # Limits
//! - A node whose every token lost a collision owns nothing (all V of its tokens would have to
//!   collide: negligible); it still counts as a member but appears in no preference list.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::member::{RingMember, Zone};
use super::token::{Token, key_token};
use crate::NodeId;

/// The most virtual nodes one member may own (bounds the memory a gossiped ring can demand).
pub const MAX_VNODES_PER_NODE: u32 = 4096;

/// The most members a ring may hold.
pub const MAX_RING_MEMBERS: usize = 1024;

/// Why a member list does not make a ring.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RingError {
    /// The member list is empty: a ring needs at least one node to own the keys.
    #[error("a ring needs at least one member")]
    NoMembers,
    /// More members than [`MAX_RING_MEMBERS`].
    #[error("{count} members exceed the limit of {limit}")]
    TooManyMembers {
        /// How many members were given.
        count: usize,
        /// [`MAX_RING_MEMBERS`].
        limit: usize,
    },
    /// The same node id appears twice.
    #[error("node {0} is listed twice")]
    DuplicateNode(NodeId),
    /// A member has zero vnodes: it would own nothing (remove it instead).
    #[error("node {0} has zero vnodes")]
    ZeroVnodes(NodeId),
    /// A member has more than [`MAX_VNODES_PER_NODE`] vnodes.
    #[error("node {node} has {vnodes} vnodes, above the limit of {limit}")]
    TooManyVnodes {
        /// The member.
        node: NodeId,
        /// Its vnode count.
        vnodes: u32,
        /// [`MAX_VNODES_PER_NODE`].
        limit: u32,
    },
    /// [`Ring::without_member`] was asked to remove a node that is not a member.
    #[error("node {0} is not a member")]
    UnknownNode(NodeId),
}

/// The consistent-hashing ring: plain, deterministic data built from a member list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RingWire", into = "RingWire")]
pub struct Ring {
    /// The members, sorted by node id.
    members: Vec<RingMember>,
    /// All surviving vnode tokens, sorted ascending, unique.
    tokens: Vec<Token>,
    /// For each token, the index in `members` of its owner.
    token_owner: Vec<u32>,
    /// For each member, its zone index (members without a zone share one index).
    member_zone: Vec<u32>,
    /// How many distinct zones hold at least one token.
    zones_with_tokens: usize,
    /// How many members hold at least one token.
    nodes_with_tokens: usize,
    /// The first nodes of each token's walk, precomputed: see [`WalkPrefixes`].
    walk_prefixes: WalkPrefixes,
}

/// The first `width` member indices of the walk from every token index, flattened
/// (`members[i * width..][..width]` for token index `i`), so that a preference list is a
/// binary search and a copy instead of a walk with its taken-set checks: every request, and
/// every replica's write (the Merkle trees' bookkeeping), asks for one. Derived from the
/// members like the rest of the ring; empty when the ring is too large to precompute
/// ([`MAX_WALK_PREFIX_ENTRIES`]), in which case walks step through the tokens as before.
#[derive(Clone, Default, PartialEq)]
struct WalkPrefixes {
    /// Nodes per token: `min(WALK_PREFIX_WIDTH, nodes_with_tokens)`, or 0 when not computed.
    width: usize,
    members: Vec<u32>,
}

/// Its shape only: the table is derived from the members (printed with the ring) and runs to
/// a million entries.
impl std::fmt::Debug for WalkPrefixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalkPrefixes")
            .field("width", &self.width)
            .field("entries", &self.members.len())
            .finish()
    }
}

/// How many nodes of each walk are precomputed: a preference list of up to 5 and a few
/// fallbacks of a sloppy quorum. Walks longer than this step on from there.
const WALK_PREFIX_WIDTH: usize = 8;

/// The largest precomputed table (tokens × width): 4 MiB of member indices, e.g. 512 nodes of
/// 256 vnodes. Larger rings walk instead.
const MAX_WALK_PREFIX_ENTRIES: usize = 1 << 20;

/// What a ring looks like on the wire: its members only; the rest is rebuilt and validated.
#[derive(Serialize, Deserialize)]
struct RingWire {
    members: Vec<RingMember>,
}

impl TryFrom<RingWire> for Ring {
    type Error = RingError;

    fn try_from(wire: RingWire) -> Result<Self, RingError> {
        Ring::new(wire.members)
    }
}

impl From<Ring> for RingWire {
    fn from(ring: Ring) -> Self {
        RingWire {
            members: ring.members,
        }
    }
}

impl Ring {
    /// Builds the ring of `members` (in any order).
    pub fn new(members: impl IntoIterator<Item = RingMember>) -> Result<Self, RingError> {
        let mut members: Vec<RingMember> = members.into_iter().collect();
        validate(&mut members)?;
        let vnodes: Vec<(Token, NodeId)> = members
            .iter()
            .flat_map(|member| member.tokens().map(|token| (token, member.node)))
            .collect();
        Ok(Self::from_vnodes(members, vnodes))
    }

    /// Builds the ring from validated, sorted `members` and their vnode tokens.
    fn from_vnodes(members: Vec<RingMember>, vnodes: Vec<(Token, NodeId)>) -> Self {
        // Index of each member; members are sorted by id, so binary search finds it.
        let member_index = |node: NodeId| -> u32 {
            let found = members.binary_search_by_key(&node, |member| member.node);
            // Vnodes come from the members themselves, so the search always succeeds.
            found.unwrap_or_default() as u32
        };
        let mut entries: Vec<(Token, u32)> = vnodes
            .into_iter()
            .map(|(token, node)| (token, member_index(node)))
            .collect();
        // Sorting by (token, member index) and keeping the first of each token lets the
        // lowest node id win a collision, whatever order the members came in.
        entries.sort_unstable();
        entries.dedup_by_key(|(token, _)| *token);
        let tokens = entries.iter().map(|&(token, _)| token).collect();
        let token_owner: Vec<u32> = entries.iter().map(|&(_, owner)| owner).collect();

        // Zone indices by sorted zone name; `None` sorts first and is one zone of its own.
        let mut zones: Vec<Option<&Zone>> = members.iter().map(|m| m.zone.as_ref()).collect();
        zones.sort_unstable();
        zones.dedup();
        let member_zone: Vec<u32> = members
            .iter()
            .map(|m| zones.binary_search(&m.zone.as_ref()).unwrap_or_default() as u32)
            .collect();

        let mut has_token = vec![false; members.len()];
        for &owner in &token_owner {
            has_token[owner as usize] = true;
        }
        let nodes_with_tokens = has_token.iter().filter(|&&has| has).count();
        let mut zone_has_token = vec![false; zones.len()];
        for (member, &has) in has_token.iter().enumerate() {
            if has {
                zone_has_token[member_zone[member] as usize] = true;
            }
        }
        let zones_with_tokens = zone_has_token.iter().filter(|&&has| has).count();

        let mut ring = Self {
            members,
            tokens,
            token_owner,
            member_zone,
            zones_with_tokens,
            nodes_with_tokens,
            walk_prefixes: WalkPrefixes::default(),
        };
        ring.walk_prefixes = ring.compute_walk_prefixes();
        ring
    }

    /// Walks from every token (stepping, since `walk_prefixes` is empty yet) and keeps the
    /// first nodes of each.
    fn compute_walk_prefixes(&self) -> WalkPrefixes {
        let width = WALK_PREFIX_WIDTH.min(self.nodes_with_tokens);
        let entries = self.tokens.len().saturating_mul(width);
        if width == 0 || entries > MAX_WALK_PREFIX_ENTRIES {
            return WalkPrefixes::default();
        }
        let mut members = Vec::with_capacity(entries);
        for index in 0..self.tokens.len() {
            members.extend(self.stepping_walk_from_index(index).take(width));
        }
        WalkPrefixes { width, members }
    }

    /// The precomputed start of the walk from token index `index` (empty if not computed).
    pub(super) fn walk_prefix(&self, index: usize) -> &[u32] {
        let width = self.walk_prefixes.width;
        self.walk_prefixes
            .members
            .get(index * width..(index + 1) * width)
            .unwrap_or_default()
    }

    /// This ring plus `member` (a join, or a change of its zone or weight).
    pub fn with_member(&self, member: RingMember) -> Result<Self, RingError> {
        let joining = member.node;
        let others = self.members.iter().filter(|m| m.node != joining);
        Ring::new(others.cloned().chain(std::iter::once(member)))
    }

    /// This ring without `node` (a leave).
    pub fn without_member(&self, node: NodeId) -> Result<Self, RingError> {
        if self.member(node).is_none() {
            return Err(RingError::UnknownNode(node));
        }
        Ring::new(self.members.iter().filter(|m| m.node != node).cloned())
    }

    /// The members, sorted by node id.
    pub fn members(&self) -> &[RingMember] {
        &self.members
    }

    /// The member `node`, if it is on the ring.
    pub fn member(&self, node: NodeId) -> Option<&RingMember> {
        let index = self.members.binary_search_by_key(&node, |m| m.node).ok()?;
        self.members.get(index)
    }

    /// How many physical nodes are members.
    pub fn node_count(&self) -> usize {
        self.members.len()
    }

    /// How many distinct zones the members are in (members without a zone count as one).
    pub fn zone_count(&self) -> usize {
        let mut zones: Vec<Option<&Zone>> = self.members.iter().map(|m| m.zone.as_ref()).collect();
        zones.sort_unstable();
        zones.dedup();
        zones.len()
    }

    /// All tokens on the ring, sorted ascending.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The owner of each token in [`Ring::tokens`] (same order), for iteration over vnodes.
    pub fn vnodes(&self) -> impl Iterator<Item = (Token, NodeId)> + '_ {
        self.tokens
            .iter()
            .zip(&self.token_owner)
            .map(|(&token, &owner)| (token, self.members[owner as usize].node))
    }

    /// The index in [`Ring::tokens`] of the vnode that owns `token`: the first token at or
    /// clockwise after it, wrapping to index 0 past the largest token. O(log T).
    pub fn successor_index(&self, token: Token) -> usize {
        let index = self.tokens.partition_point(|&t| t < token);
        if index == self.tokens.len() { 0 } else { index }
    }

    /// The node whose vnode owns `token` (the primary of keys with that token).
    pub fn owner_of_token(&self, token: Token) -> NodeId {
        self.node_at(self.successor_index(token))
    }

    /// The node whose vnode owns `key` (the primary of `key`).
    pub fn owner_of_key(&self, key: &[u8]) -> NodeId {
        self.owner_of_token(key_token(key))
    }

    /// The node at token index `index` (must be in range).
    pub(super) fn node_at(&self, index: usize) -> NodeId {
        self.members[self.token_owner[index] as usize].node
    }

    /// The member index at token index `index` (must be in range).
    pub(super) fn owner_index_at(&self, index: usize) -> u32 {
        self.token_owner[index]
    }

    /// The zone index of member index `member`.
    pub(super) fn zone_of_member(&self, member: u32) -> u32 {
        self.member_zone[member as usize]
    }

    /// The node id of member index `member`.
    pub(super) fn node_of_member(&self, member: u32) -> NodeId {
        self.members[member as usize].node
    }

    /// How many distinct zones hold at least one token.
    pub(super) fn zones_with_tokens(&self) -> usize {
        self.zones_with_tokens
    }

    /// How many members hold at least one token.
    pub(super) fn nodes_with_tokens(&self) -> usize {
        self.nodes_with_tokens
    }

    /// A ring built from explicit vnode tokens, to test collision handling (real tokens
    /// collide with negligible probability).
    #[cfg(test)]
    pub(super) fn from_explicit_tokens(
        members: Vec<RingMember>,
        vnodes: Vec<(Token, NodeId)>,
    ) -> Result<Self, RingError> {
        let mut members = members;
        validate(&mut members)?;
        Ok(Self::from_vnodes(members, vnodes))
    }
}

/// Sorts `members` by id and checks them against the construction rules.
fn validate(members: &mut [RingMember]) -> Result<(), RingError> {
    if members.is_empty() {
        return Err(RingError::NoMembers);
    }
    if members.len() > MAX_RING_MEMBERS {
        return Err(RingError::TooManyMembers {
            count: members.len(),
            limit: MAX_RING_MEMBERS,
        });
    }
    members.sort_unstable_by_key(|m| m.node);
    for pair in members.windows(2) {
        if pair[0].node == pair[1].node {
            return Err(RingError::DuplicateNode(pair[0].node));
        }
    }
    for member in members.iter() {
        if member.vnodes == 0 {
            return Err(RingError::ZeroVnodes(member.node));
        }
        if member.vnodes > MAX_VNODES_PER_NODE {
            return Err(RingError::TooManyVnodes {
                node: member.node,
                vnodes: member.vnodes,
                limit: MAX_VNODES_PER_NODE,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn members(count: u64, vnodes: u32) -> Vec<RingMember> {
        (1..=count)
            .map(|id| RingMember::new(NodeId(id), vnodes))
            .collect()
    }

    // Construction rejects each malformed member list with its own error.
    #[test]
    fn construction_errors() {
        assert_eq!(Ring::new(vec![]), Err(RingError::NoMembers));
        let twice = vec![
            RingMember::new(NodeId(1), 4),
            RingMember::new(NodeId(2), 4),
            RingMember::new(NodeId(1), 8),
        ];
        assert_eq!(Ring::new(twice), Err(RingError::DuplicateNode(NodeId(1))));
        let zero = vec![RingMember::new(NodeId(1), 4), RingMember::new(NodeId(2), 0)];
        assert_eq!(Ring::new(zero), Err(RingError::ZeroVnodes(NodeId(2))));
        let heavy = vec![RingMember::new(NodeId(3), MAX_VNODES_PER_NODE + 1)];
        assert_eq!(
            Ring::new(heavy),
            Err(RingError::TooManyVnodes {
                node: NodeId(3),
                vnodes: MAX_VNODES_PER_NODE + 1,
                limit: MAX_VNODES_PER_NODE
            })
        );
        let crowd = members(MAX_RING_MEMBERS as u64 + 1, 1);
        assert_eq!(
            Ring::new(crowd),
            Err(RingError::TooManyMembers {
                count: MAX_RING_MEMBERS + 1,
                limit: MAX_RING_MEMBERS
            })
        );
        let ring = Ring::new(members(3, 4)).unwrap();
        assert_eq!(
            ring.without_member(NodeId(9)),
            Err(RingError::UnknownNode(NodeId(9)))
        );
    }

    // The ring holds every vnode token of every member, sorted, each owned by its node.
    #[test]
    fn tokens_are_the_members_vnodes_sorted() {
        let ring = Ring::new(members(5, 16)).unwrap();
        assert_eq!(ring.tokens().len(), 5 * 16);
        assert!(ring.tokens().windows(2).all(|w| w[0] < w[1]));
        for (token, node) in ring.vnodes() {
            let member = ring.member(node).unwrap();
            assert!(member.tokens().any(|t| t == token));
        }
    }

    // A key belongs to the first token at or after its own, wrapping past the largest.
    #[test]
    fn successor_lookup_wraps() {
        let ring = Ring::new(members(3, 8)).unwrap();
        let tokens = ring.tokens();
        let last = *tokens.last().unwrap();
        assert_eq!(ring.successor_index(tokens[0]), 0);
        assert_eq!(ring.successor_index(Token(tokens[0].0 + 1)), 1);
        assert_eq!(ring.successor_index(last), tokens.len() - 1);
        if last.0 < u64::MAX {
            assert_eq!(ring.successor_index(Token(last.0 + 1)), 0);
        }
        assert_eq!(ring.successor_index(Token(0)), 0);
    }

    // A token collision is won by the lowest node id, whatever order the members came in.
    #[test]
    fn collisions_go_to_the_lowest_node_id() {
        let a = RingMember::new(NodeId(5), 2);
        let b = RingMember::new(NodeId(9), 2);
        let vnodes = vec![
            (Token(100), NodeId(9)),
            (Token(100), NodeId(5)),
            (Token(200), NodeId(9)),
            (Token(300), NodeId(5)),
        ];
        let forward =
            Ring::from_explicit_tokens(vec![a.clone(), b.clone()], vnodes.clone()).unwrap();
        let mut reversed_vnodes = vnodes;
        reversed_vnodes.reverse();
        let backward = Ring::from_explicit_tokens(vec![b, a], reversed_vnodes).unwrap();
        assert_eq!(forward, backward);
        assert_eq!(forward.tokens(), &[Token(100), Token(200), Token(300)]);
        assert_eq!(forward.owner_of_token(Token(100)), NodeId(5));
        assert_eq!(forward.owner_of_token(Token(150)), NodeId(9));
    }

    // A ring survives a round trip through the wire format, and a bad wire ring is an error.
    #[test]
    fn serde_round_trip_validates() {
        let ring = Ring::new(vec![
            RingMember::in_zone(NodeId(1), Zone::new("a"), 8),
            RingMember::new(NodeId(2), 16),
        ])
        .unwrap();
        let bytes = postcard::to_allocvec(&ring).unwrap();
        let back: Ring = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, ring);
        let bad = postcard::to_allocvec(&RingWire {
            members: vec![RingMember::new(NodeId(1), 0)],
        })
        .unwrap();
        assert!(postcard::from_bytes::<Ring>(&bad).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // Determinism: the same members in any order give an equal ring (it is gossiped and
        // compared by value).
        #[test]
        fn construction_ignores_member_order(
            weights in prop::collection::vec(1u32..40, 1..12),
            zones in prop::collection::vec(prop::option::of(0u8..3), 12),
            seed in any::<u64>(),
        ) {
            let list: Vec<RingMember> = weights.iter().enumerate().map(|(i, &vnodes)| {
                let zone = zones[i].map(|z| Zone::new(format!("z{z}")));
                RingMember { node: NodeId(i as u64 * 7 + 1), zone, vnodes }
            }).collect();
            let mut shuffled = list.clone();
            // A seeded Fisher-Yates shuffle (proptest reports the seed on failure).
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let ring = Ring::new(list).unwrap();
            let other = Ring::new(shuffled).unwrap();
            prop_assert_eq!(&ring, &other);
            prop_assert_eq!(ring.tokens(), other.tokens());
        }
    }
}
